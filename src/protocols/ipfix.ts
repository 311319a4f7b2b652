/**
 * IPFIX (RFC 7011).
 *
 * message:  header Set*            (a datagram may hold several messages back to back; each is decoded)
 * header:   version u16 (10) | length u16 (whole message) | exportTime u32 s | sequence u32 | domain u32
 * Set:      set_id u16 | length u16 (incl. these 4 bytes) | records | padding
 *   id 2    template set: { template_id u16 | field_count u16 | field* }*     field_count 0 = withdrawal
 *   id 3    options template set: { template_id u16 | field_count u16 | scope_field_count u16 | field* }*
 *   id ≥256 data set: records laid out by the template, then padding (shorter than one record)
 * field:    E|ie_id u16 | length u16 | [enterprise u32 when E=1]      length 0xFFFF = variable length
 * variable-length value: len u8 (< 255) | value,  or 255 | len u16 | value
 * Withdrawal of template 2 (or 3) withdraws every template (options template) of the domain.
 */

import type { Datagram } from "../core/datagram.ts";
import { DecodeError } from "../core/errors.ts";
import type { RecordHandler } from "../core/flow.ts";
import type { DecodeContext, Decoder } from "./context.ts";
import type { MessageHeader } from "./netflow/header.ts";
import { dataSet, learnTemplate, withdrawTemplate } from "./netflow/sets.ts";
import type { SequenceTracker } from "./sequence.ts";
import { makeField, type TemplateField } from "./template.ts";

export const IPFIX_HEADER_LENGTH = 16;

const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const u32 = (b: Uint8Array, o: number): number =>
  b[o]! * 16777216 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);

type Code = "TRUNCATED" | "BAD_LENGTH" | "BAD_TEMPLATE" | "BAD_VERSION";

/** The registry entry (index.ts): version 10. */
export const ipfix = {
  name: "ipfix",
  flowType: "IPFIX",
  matches: (b: Buffer): boolean => b.length >= 2 && b[0] === 0 && b[1] === 10,
  decode: decodeIpfix,
  sequence: sequenceIpfix,
} as const satisfies Decoder;

/**
 * The sequence (RFC 7011 §3.1) counts data records sent before this message (options records included),
 * so a gap is in flows; the next one expected is sequence + the message's records. Only a datagram of one
 * message whose records were all decoded from it (`exact`: none held for a missing template, none released)
 * gives that count; any other only resynchronizes. One stream per exporter, source port and domain.
 */
function sequenceIpfix(dg: Datagram, track: SequenceTracker, records: number, exact: boolean): void {
  const b = dg.payload;
  if (b.length < IPFIX_HEADER_LENGTH) return;
  const domain = u32(b, 12);
  const key = `10|${dg.exporter}|${dg.port}|${domain}`;
  const s =
    track.get(key) ??
    track.open(key, {
      exporter: dg.exporter,
      protocol: "ipfix",
      a: domain,
      b: -1,
      c: -1,
      unit: "flows",
    });
  const single = u16(b, 2) === b.length;
  track.advance(s, u32(b, 8), exact && single ? records : -1, -1, dg.receivedAtMs);
}

export function decodeIpfix(ctx: DecodeContext, emit: RecordHandler): void {
  const dg = ctx.datagram;
  const b = dg.payload;
  const err = (code: Code, msg: string, at: number) => new DecodeError(code, msg, "ipfix", dg.exporter, at);
  let m = 0;
  do {
    if (b.length - m < IPFIX_HEADER_LENGTH)
      throw err("TRUNCATED", `message header needs 16 bytes, have ${b.length - m}`, m);
    if (u16(b, m) !== 10)
      throw err("BAD_VERSION", `message version ${u16(b, m)} inside an IPFIX datagram`, m);
    const length = u16(b, m + 2);
    if (length < IPFIX_HEADER_LENGTH)
      throw err("BAD_LENGTH", `message length ${length} is shorter than its header`, m + 2);
    const msgEnd = m + length;
    if (msgEnd > b.length)
      throw err("TRUNCATED", `message length ${length} runs past the datagram (${b.length - m})`, m + 2);
    const h: MessageHeader = {
      version: 10,
      exportMs: u32(b, m + 4) * 1000,
      sequence: u32(b, m + 8),
      domain: u32(b, m + 12),
      uptimeMs: -1,
    };
    emit.message?.({
      version: 10,
      protocol: "ipfix",
      exporter: dg.exporter,
      count: 0,
      sequence: h.sequence,
      exportTimeMs: h.exportMs,
      domain: h.domain,
    });
    let o = m + IPFIX_HEADER_LENGTH;
    while (o + 4 <= msgEnd) {
      const id = u16(b, o);
      const len = u16(b, o + 2);
      if (len < 4) throw err("BAD_LENGTH", `set ${id} length ${len} is shorter than its header`, o + 2);
      const end = o + len;
      if (end > msgEnd) throw err("TRUNCATED", `set ${id} length ${len} runs past the message`, o + 2);
      if (id === 2 || id === 3) parseTemplates(b, o + 4, end, id, h, ctx, emit, err);
      else if (id >= 256) dataSet(ctx, h, id, b, o + 4, end, emit);
      // ids 0, 1 (NetFlow v9) and 4..255 are reserved: skipped by their length
      o = end;
    }
    m = msgEnd;
  } while (m + IPFIX_HEADER_LENGTH <= b.length && u16(b, m) === 10);
}

function parseTemplates(
  b: Uint8Array,
  o: number,
  end: number,
  setId: 2 | 3,
  h: MessageHeader,
  ctx: DecodeContext,
  emit: RecordHandler,
  err: (code: Code, msg: string, at: number) => DecodeError,
): void {
  const headerLen = setId === 2 ? 4 : 6;
  while (o + 4 <= end) {
    const id = u16(b, o);
    const count = u16(b, o + 2);
    if (count === 0) {
      // withdrawal (a 4-byte record in either set type)
      if (id === setId || id >= 256) withdrawTemplate(ctx, h, id, setId);
      else if (id !== 0) throw err("BAD_TEMPLATE", `withdrawal of reserved template id ${id}`, o);
      o += 4;
      continue;
    }
    if (id < 256) {
      if (id === 0) return; // padding
      throw err("BAD_TEMPLATE", `template id ${id} is reserved`, o);
    }
    if (o + headerLen > end) throw err("BAD_TEMPLATE", `template ${id} header overruns its set`, o);
    const scopeCount = setId === 3 ? u16(b, o + 4) : 0;
    if (scopeCount > count)
      throw err("BAD_TEMPLATE", `template ${id}: scope count ${scopeCount} > field count ${count}`, o);
    let p = o + headerLen;
    const fields: TemplateField[] = [];
    for (let i = 0; i < count; i++) {
      if (p + 4 > end) throw err("BAD_TEMPLATE", `template ${id} field ${i} overruns its set`, p);
      const raw = u16(b, p);
      const length = u16(b, p + 2);
      p += 4;
      let pen = 0;
      if (raw & 0x8000) {
        if (p + 4 > end)
          throw err("BAD_TEMPLATE", `template ${id} field ${i} enterprise number overruns its set`, p);
        pen = u32(b, p);
        p += 4;
      }
      fields.push(makeField(pen, raw & 0x7fff, length, false));
    }
    learnTemplate(ctx, h, id, fields, setId === 3, scopeCount, emit);
    o = p;
  }
}

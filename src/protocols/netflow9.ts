/**
 * NetFlow v9 (RFC 3954).
 *
 * packet:   header FlowSet*
 * header:   version u16 (9) | count u16 | sysUptime u32 ms | unix_secs u32 | sequence u32 | source_id u32
 * FlowSet:  flowset_id u16 | length u16 (incl. these 4 bytes) | body | padding
 *   id 0    template FlowSet: { template_id u16 (≥256) | field_count u16 | { type u16 | length u16 }* }*
 *   id 1    options template FlowSet: { template_id u16 | scope_length u16 (bytes) | option_length u16 (bytes) |
 *           { scope_type u16 | length u16 }* | { type u16 | length u16 }* }* padding
 *   id ≥256 data FlowSet: records laid out by the template, then padding (shorter than one record)
 * A FlowSet of length 0 is padding up to the end of the packet (seen from Cisco ACI and PAN-OS).
 * Field length 0xFFFF is read as variable length with the IPFIX escape (H3C NetStream does this).
 */

import type { Datagram } from "../core/datagram.ts";
import { DecodeError } from "../core/errors.ts";
import type { RecordHandler } from "../core/flow.ts";
import type { DecodeContext, Decoder } from "./context.ts";
import type { MessageHeader } from "./netflow/header.ts";
import { dataSet, learnTemplate } from "./netflow/sets.ts";
import type { SequenceTracker } from "./sequence.ts";
import { makeField, type TemplateField, v9ScopeField } from "./template.ts";

export const V9_HEADER_LENGTH = 20;

const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const u32 = (b: Uint8Array, o: number): number =>
  b[o]! * 16777216 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);

/** The registry entry (index.ts): version 9. */
export const netflow9 = {
  name: "netflow9",
  flowType: "NETFLOW_V9",
  matches: (b: Buffer): boolean => b.length >= 2 && b[0] === 0 && b[1] === 9,
  decode: decodeNetflow9,
  sequence: sequenceNetflow9,
} as const satisfies Decoder;

/**
 * `package_sequence` (RFC 3954 §5.1) counts export packets, so a gap is in datagrams (a v9 packet carries
 * an unknown number of flows). One stream per exporter, source port and source id.
 */
function sequenceNetflow9(dg: Datagram, track: SequenceTracker): void {
  const b = dg.payload;
  if (b.length < V9_HEADER_LENGTH) return;
  const domain = u32(b, 16);
  const key = `9|${dg.exporter}|${dg.port}|${domain}`;
  const s =
    track.get(key) ??
    track.open(key, {
      exporter: dg.exporter,
      protocol: "netflow9",
      a: domain,
      b: -1,
      c: -1,
      unit: "datagrams",
    });
  track.advance(s, u32(b, 12), 1, u32(b, 4), dg.receivedAtMs);
}

export function decodeNetflow9(ctx: DecodeContext, emit: RecordHandler): void {
  const dg = ctx.datagram;
  const b = dg.payload;
  const err = (code: "TRUNCATED" | "BAD_LENGTH" | "BAD_TEMPLATE", msg: string, at: number) =>
    new DecodeError(code, msg, "netflow9", dg.exporter, at);
  if (b.length < V9_HEADER_LENGTH) throw err("TRUNCATED", `header needs 20 bytes, have ${b.length}`, 0);
  const h: MessageHeader = {
    version: 9,
    uptimeMs: u32(b, 4),
    exportMs: u32(b, 8) * 1000,
    sequence: u32(b, 12),
    domain: u32(b, 16),
  };
  emit.message?.({
    version: 9,
    protocol: "netflow9",
    exporter: dg.exporter,
    count: u16(b, 2),
    sequence: h.sequence,
    exportTimeMs: h.exportMs,
    domain: h.domain,
  });
  let o = V9_HEADER_LENGTH;
  while (o + 4 <= b.length) {
    const id = u16(b, o);
    const len = u16(b, o + 2);
    if (len === 0) break; // padding to the end of the packet
    if (len < 4) throw err("BAD_LENGTH", `FlowSet ${id} length ${len} is shorter than its header`, o + 2);
    const end = o + len;
    if (end > b.length) throw err("TRUNCATED", `FlowSet ${id} length ${len} runs past the packet`, o + 2);
    if (id === 0) parseTemplates(b, o + 4, end, h, ctx, emit, err);
    else if (id === 1) parseOptionsTemplates(b, o + 4, end, h, ctx, emit, err);
    else if (id >= 256) dataSet(ctx, h, id, b, o + 4, end, emit);
    // ids 2..255 are reserved: skipped by their length
    o = end;
  }
}

type Err = (code: "TRUNCATED" | "BAD_LENGTH" | "BAD_TEMPLATE", msg: string, at: number) => DecodeError;

function parseTemplates(
  b: Uint8Array,
  o: number,
  end: number,
  h: MessageHeader,
  ctx: DecodeContext,
  emit: RecordHandler,
  err: Err,
): void {
  while (o + 4 <= end) {
    const id = u16(b, o);
    const count = u16(b, o + 2);
    if (id < 256) {
      if (id === 0 && count === 0) return; // zero padding
      throw err("BAD_TEMPLATE", `template id ${id} is reserved`, o);
    }
    if (o + 4 + count * 4 > end)
      throw err("BAD_TEMPLATE", `template ${id} with ${count} fields overruns its FlowSet`, o);
    const fields: TemplateField[] = [];
    let p = o + 4;
    for (let i = 0; i < count; i++, p += 4) fields.push(makeField(0, u16(b, p), u16(b, p + 2), true));
    learnTemplate(ctx, h, id, fields, false, 0, emit);
    o = p;
  }
}

function parseOptionsTemplates(
  b: Uint8Array,
  o: number,
  end: number,
  h: MessageHeader,
  ctx: DecodeContext,
  emit: RecordHandler,
  err: Err,
): void {
  while (o + 6 <= end) {
    const id = u16(b, o);
    const scopeLen = u16(b, o + 2);
    const optLen = u16(b, o + 4);
    if (id < 256) {
      if (id === 0) return; // padding
      throw err("BAD_TEMPLATE", `options template id ${id} is reserved`, o);
    }
    if (scopeLen % 4 !== 0 || optLen % 4 !== 0) {
      throw err(
        "BAD_TEMPLATE",
        `options template ${id}: scope/option lengths ${scopeLen}/${optLen} not multiples of 4`,
        o,
      );
    }
    if (o + 6 + scopeLen + optLen > end)
      throw err("BAD_TEMPLATE", `options template ${id} overruns its FlowSet`, o);
    const fields: TemplateField[] = [];
    let p = o + 6;
    for (const stop = p + scopeLen; p < stop; p += 4) fields.push(v9ScopeField(u16(b, p), u16(b, p + 2)));
    for (const stop = p + optLen; p < stop; p += 4) fields.push(makeField(0, u16(b, p), u16(b, p + 2), true));
    learnTemplate(ctx, h, id, fields, true, scopeLen / 4, emit);
    o = p;
  }
}

/**
 * Compiled vs interpreted record decoding, over every data record of the corpus (test/fixtures/logstash).
 *
 * Every FlowRecord of NetFlow v9 and IPFIX comes from a record decoder generated per template layout
 * (src/protocols/template.ts). The corpus test checks elements through the interpreter (`walkRecord`), so
 * here each data record the corpus holds is decoded twice: by the compiled decoder and by the plain
 * interpreter of the field kinds (test/helpers/record-interpreter.ts), one case per kind, without code
 * generation. The record, the scratch values and the end offset must be the same.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { DecodeError } from "../../src/core/errors.ts";
import { FlowRecord } from "../../src/core/flow.ts";
import { FlowDecoder, type TemplateInfo } from "../../src/protocols/decoder.ts";
import {
  compileRecordDecoder,
  makeField,
  RecordOverrun,
  recordLengths,
  Scratch,
  type TemplateField,
} from "../../src/protocols/template.ts";
import { caseDatagrams, loadCorpus } from "../helpers/corpus.ts";
import { interpret } from "../helpers/record-interpreter.ts";

const manifest = loadCorpus();

interface DataSet {
  version: 9 | 10;
  domain: number;
  id: number;
  start: number;
  end: number;
}

/** Data sets of a v9 or IPFIX datagram, found by a walk of the set headers only. */
function dataSets(b: Buffer): DataSet[] {
  const out: DataSet[] = [];
  const u16 = (o: number) => b.readUInt16BE(o);
  const version = b.length >= 2 ? u16(0) : 0;
  if (version === 9) {
    if (b.length < 20) return out;
    const domain = b.readUInt32BE(16);
    for (let o = 20; o + 4 <= b.length; ) {
      const id = u16(o);
      const len = u16(o + 2);
      if (len < 4 || o + len > b.length) break;
      if (id >= 256) out.push({ version, domain, id, start: o + 4, end: o + len });
      o += len;
    }
  } else if (version === 10) {
    for (let m = 0; m + 16 <= b.length && u16(m) === 10; ) {
      const msgEnd = m + u16(m + 2);
      if (msgEnd > b.length || msgEnd < m + 16) break;
      const domain = b.readUInt32BE(m + 12);
      for (let o = m + 16; o + 4 <= msgEnd; ) {
        const id = u16(o);
        const len = u16(o + 2);
        if (len < 4 || o + len > msgEnd) break;
        if (id >= 256) out.push({ version, domain, id, start: o + 4, end: o + len });
        o += len;
      }
      m = msgEnd;
    }
  }
  return out;
}

function fieldsOf(t: TemplateInfo): TemplateField[] {
  return t.fields.map((f) => makeField(f.pen, f.id, f.length, t.version === 9));
}

function plain(r: FlowRecord): Record<string, unknown> {
  return { ...r, src_addr: r.src_addr, dst_addr: r.dst_addr, next_hop: r.next_hop };
}

test("the compiled record decoders agree with the interpreter on every data record of the corpus", () => {
  let records = 0;
  let cases = 0;
  const kinds = new Set<number>();
  for (const c of manifest) {
    const decoder = new FlowDecoder({ now: () => Date.UTC(2020, 0, 1) });
    let caseRecords = 0;
    for (const { at, payload } of caseDatagrams(c)) {
      try {
        decoder.decode(
          { payload, exporter: "192.0.2.10", port: 2055, receivedAtMs: 1_600_000_000_000, listener: "" },
          { flow: () => {} },
        );
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
      }
      const templates = decoder.templates();
      for (const set of dataSets(payload)) {
        const t = templates.find(
          (x) => x.version === set.version && x.domain === set.domain && x.id === set.id,
        );
        if (t === undefined || t.options) continue;
        const fields = fieldsOf(t);
        for (const field of fields) kinds.add(field.kind);
        const { min } = recordLengths(fields);
        if (min === 0) continue;
        const compiled = compileRecordDecoder(fields);
        for (let o = set.start; o + min <= set.end; ) {
          const r1 = new FlowRecord();
          const s1 = new Scratch();
          let o1: number;
          try {
            o1 = compiled(payload, o, set.end, r1, s1);
          } catch (e) {
            if (!(e instanceof RecordOverrun)) throw e;
            o1 = -1;
          }
          const r2 = new FlowRecord();
          const s2 = new Scratch();
          const o2 = interpret(fields, payload, o, set.end, r2, s2);
          const where: string = `${c.name}: ${at} template ${t.id} record at ${o}`;
          assert.equal(o1, o2, `${where}: end offset`);
          if (o1 < 0) break;
          assert.deepEqual(plain(r1), plain(r2), `${where}: record`);
          assert.deepEqual({ ...s1 }, { ...s2 }, `${where}: scratch`);
          records++;
          caseRecords++;
          o = o1;
        }
      }
    }
    if (caseRecords > 0) cases++;
  }
  // the corpus holds ~390 v9/IPFIX flow records over ~40 cases and ~50 field kinds: make sure we saw them
  assert.ok(records > 350, `records compared: ${records}`);
  assert.ok(cases >= 35, `cases with data records: ${cases}`);
  assert.ok(kinds.size >= 45, `field kinds exercised: ${kinds.size}`);
});

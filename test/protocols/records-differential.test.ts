/**
 * Compiled vs interpreted decoding of the issue 19 record fields: random IPFIX templates drawn from the
 * elements of dual-stack families, next hops, prefix lengths, ipVersion, NAT, RFC 5103 reverse counters,
 * MPLS labels and addresses, packet sections and repeated (outer/inner) elements, with random records
 * (addresses often all-zero so every family rule is exercised). The compiled decoder (template.ts) and the
 * plain interpreter of the field kinds (test/helpers/record-interpreter.ts, shared with compiled.test.ts)
 * must give the same record and the same end offset.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { FlowRecord } from "../../src/core/flow.ts";
import { dualStackLayout } from "../../src/protocols/family.ts";
import { sectionLayout } from "../../src/protocols/sections.ts";
import { compileRecordDecoder, makeField, Scratch } from "../../src/protocols/template.ts";
import { interpret } from "../helpers/record-interpreter.ts";
import { eth, ipv4, ipv6 as ipv6Header, mpls, tcp, udp } from "../helpers/sflow-builder.ts";

/** [pen, id, length] of the elements templates are drawn from. */
const POOL: [number, number, number][] = [
  [0, 8, 4],
  [0, 12, 4],
  [0, 27, 16],
  [0, 28, 16],
  [0, 9, 1],
  [0, 13, 1],
  [0, 29, 1],
  [0, 30, 1],
  [0, 15, 4],
  [0, 62, 16],
  [0, 18, 4],
  [0, 63, 16],
  [0, 60, 1],
  [0, 7, 2],
  [0, 11, 2],
  [0, 4, 1],
  [0, 256, 2],
  [0, 225, 4],
  [0, 226, 4],
  [0, 281, 16],
  [0, 282, 16],
  [0, 227, 2],
  [0, 228, 2],
  [0, 232, 8],
  [29305, 1, 8],
  [29305, 2, 4],
  [29305, 85, 8],
  [29305, 86, 8],
  [0, 70, 3],
  [0, 71, 3],
  [0, 72, 3],
  [0, 47, 4],
  [0, 140, 16],
  [0, 315, 0xffff],
  [0, 313, 0xffff],
  [0, 317, 0xffff],
  [0, 315, 54],
];

/** xorshift32: a seeded generator, so a failure repeats. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return (n: number): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

const FRAMES = [
  Buffer.concat([
    eth({ etype: 0x0800 }),
    ipv4({ src: "10.1.2.3", dst: "10.4.5.6", proto: 6, id: 9 }),
    tcp({ sport: 1, dport: 2, flags: 2 }),
  ]),
  Buffer.concat([
    eth({ tags: [{ tpid: 0x8100, vid: 7 }], etype: 0x8847 }),
    mpls([100, 200]),
    ipv6Header({ src: "2001:db8::1", dst: "2001:db8::2", next: 17 }),
    udp({ sport: 53, dport: 5353 }),
  ]),
  Buffer.concat([
    ipv4({ src: "192.0.2.1", dst: "192.0.2.2", proto: 4 }),
    ipv4({ src: "10.0.0.1", dst: "10.0.0.2", proto: 6 }),
  ]),
];

function value(field: [number, number, number], next: (n: number) => number): number[] {
  const [, id, len] = field;
  if (len === 0xffff) {
    const frame = FRAMES[next(FRAMES.length)]!;
    const cut = frame.subarray(id === 313 ? 14 : id === 317 ? 18 : 0);
    return [cut.length, ...cut];
  }
  if (id === 60) return [[4, 6, 0, 5][next(4)]!];
  if (id === 315) return [...FRAMES[0]!.subarray(0, len)];
  if (next(5) < 2) return new Array(len).fill(0);
  return Array.from({ length: len }, () => next(256));
}

test("compiled and interpreted decoding agree on random dual-stack, NAT, biflow, MPLS and section records", () => {
  const next = rng(0x19c0ffee);
  let dualTemplates = 0;
  let sectionTemplates = 0;
  for (let t = 0; t < 300; t++) {
    const n = 3 + next(10);
    const specs = Array.from({ length: n }, () => POOL[next(POOL.length)]!);
    const fields = specs.map(([pen, id, len]) => makeField(pen, id, len, false));
    if (dualStackLayout(fields) !== null) dualTemplates++;
    if (sectionLayout(fields) !== null) sectionTemplates++;
    const decode = compileRecordDecoder(fields);
    for (let k = 0; k < 5; k++) {
      const bytes = Uint8Array.from([0xee, ...specs.flatMap((f) => value(f, next)), 0xee]);
      const a = new FlowRecord();
      const b = new FlowRecord();
      const end = bytes.length - 1;
      const oa = decode(bytes, 1, end, a, new Scratch());
      const ob = interpret(fields, bytes, 1, end, b, new Scratch());
      assert.equal(oa, ob, `template ${t} record ${k}: end offset`);
      assert.deepEqual(a, b, `template ${t} record ${k}: ${specs.map((f) => f[1]).join(",")}`);
    }
  }
  assert.ok(dualTemplates > 40, `dual-stack templates drawn: ${dualTemplates}`);
  assert.ok(sectionTemplates > 40, `section templates drawn: ${sectionTemplates}`);
});

/**
 * Compiled vs interpreted decoding of the issue 19 record fields: random IPFIX templates drawn from the
 * elements of dual-stack families, next hops, prefix lengths, ipVersion, NAT, RFC 5103 reverse counters,
 * MPLS labels and addresses, packet sections and repeated (outer/inner) elements, with random records
 * (addresses often all-zero so every family rule is exercised). The compiled decoder (template.ts) and a
 * plain interpreter over `walkRecord` written from the field kinds — using the interpreter forms
 * `dualSlot`/`resolveFamily` (family.ts) and `sectionSlot`/`applySections` (sections.ts) — must give the
 * same record and the same end offset.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ipv4Text } from "../../src/core/address.ts";
import { FlowRecord } from "../../src/core/flow.ts";
import { dualSlot, dualStackLayout, resetDualSlots, resolveFamily } from "../../src/protocols/family.ts";
import { K } from "../../src/protocols/fields.ts";
import { applySections, sectionLayout, sectionSlot } from "../../src/protocols/sections.ts";
import {
  compileRecordDecoder,
  F,
  makeField,
  Scratch,
  type TemplateField,
  walkRecord,
} from "../../src/protocols/template.ts";
import { ipv6, readUint, readUintNumber, renderElement } from "../../src/protocols/wire.ts";
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

function setExtra(r: FlowRecord, f: TemplateField, b: Uint8Array, p: number, len: number): void {
  if (r.extra === null) r.extra = {};
  r.extra[f.name] = renderElement(f.type, b, p, len);
}

/** The plain interpreter for the kinds of POOL. */
function interpret(
  fields: readonly TemplateField[],
  b: Uint8Array,
  o: number,
  end: number,
  r: FlowRecord,
  s: Scratch,
) {
  const dual = dualStackLayout(fields);
  const sections = sectionLayout(fields);
  s.m = 0;
  if (dual !== null) resetDualSlots(s);
  if (sections !== null) s.sec.fill(-1);
  const next = walkRecord(fields, b, o, end, (f, _i, p, len) => {
    if (f.kind === K.SECTION) {
      setExtra(r, f, b, p, len);
      sectionSlot(f, p, len, s);
      return;
    }
    if (f.length === 0xffff || f.kind === K.EXTRA) {
      setExtra(r, f, b, p, len);
      return;
    }
    if (dual !== null && dualSlot(f, b, p, s)) return;
    const v = () => readUintNumber(b, p, len);
    switch (f.kind) {
      case K.SRC_ADDR4:
        r.src_v4 = v();
        s.m |= F.V4;
        break;
      case K.DST_ADDR4:
        r.dst_v4 = v();
        s.m |= F.V4;
        break;
      case K.SRC_ADDR6:
        r.src_addr = ipv6(b, p);
        s.m |= F.V6;
        break;
      case K.DST_ADDR6:
        r.dst_addr = ipv6(b, p);
        s.m |= F.V6;
        break;
      case K.SRC_NET:
        r.src_net = v();
        break;
      case K.DST_NET:
        r.dst_net = v();
        break;
      case K.NEXT_HOP4:
        r.next_hop_v4 = v();
        break;
      case K.NEXT_HOP6:
        r.next_hop = ipv6(b, p);
        break;
      case K.BGP_NH4:
        r.bgp_next_hop = ipv4Text(v());
        break;
      case K.BGP_NH6:
        r.bgp_next_hop = ipv6(b, p);
        break;
      case K.IP_VERSION:
        s.ipv = v();
        s.m |= F.IPV;
        break;
      case K.ETYPE:
        r.etype = v();
        break;
      case K.SRC_PORT:
        r.src_port = v();
        break;
      case K.DST_PORT:
        r.dst_port = v();
        break;
      case K.PROTO:
        r.proto = v();
        break;
      case K.NAT_SRC4:
        r.post_nat_src_addr = ipv4Text(v());
        break;
      case K.NAT_DST4:
        r.post_nat_dst_addr = ipv4Text(v());
        break;
      case K.NAT_SRC6:
        r.post_nat_src_addr = ipv6(b, p);
        break;
      case K.NAT_DST6:
        r.post_nat_dst_addr = ipv6(b, p);
        break;
      case K.NAT_SRC_PORT:
        r.post_nat_src_port = v();
        break;
      case K.NAT_DST_PORT:
        r.post_nat_dst_port = v();
        break;
      case K.REV_BYTES:
        r.reverse_bytes = readUint(b, p, len);
        break;
      case K.REV_BYTES_FB:
        if (!r.reverse_bytes) r.reverse_bytes = readUint(b, p, len);
        break;
      case K.REV_PACKETS:
        r.reverse_packets = readUint(b, p, len);
        break;
      case K.REV_PACKETS_FB:
        if (!r.reverse_packets) r.reverse_packets = readUint(b, p, len);
        break;
      case K.MPLS: {
        if (r.mpls_label === null) r.mpls_label = [];
        const a = r.mpls_label;
        const idx = f.id - 70;
        while (a.length < idx) a.push(0);
        a[idx] = v() >>> 4;
        break;
      }
      case K.MPLS_IP4:
      case K.MPLS_IP6:
        if (r.mpls_ip === null) r.mpls_ip = [];
        r.mpls_ip.push(f.kind === K.MPLS_IP4 ? ipv4Text(v()) : ipv6(b, p));
        break;
      default:
        throw new Error(`kind ${f.kind} (${f.name}) not in the interpreter`);
    }
  });
  if (dual !== null) resolveFamily(b, r, s, s.m & F.IPV ? s.ipv : 0, dual.lastAddressFamily);
  if (sections !== null) applySections(b, r, s, sections.explicit);
  return next;
}

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

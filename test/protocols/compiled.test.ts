/**
 * Compiled vs interpreted record decoding, over every data record of the corpus (test/fixtures/logstash).
 *
 * Every FlowRecord of NetFlow v9 and IPFIX comes from a record decoder generated per template layout
 * (src/protocols/template.ts). The corpus test checks elements through the interpreter (`walkRecord`), so
 * here each data record the corpus holds is decoded twice: by the compiled decoder and by a plain
 * interpreter written below from the field kinds (src/protocols/fields.ts), one case per kind, without code
 * generation. The record, the scratch values and the end offset must be the same.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { ipv4Text } from "../../src/core/address.ts";
import { DecodeError } from "../../src/core/errors.ts";
import { FlowRecord } from "../../src/core/flow.ts";
import { FlowDecoder, type TemplateInfo } from "../../src/protocols/decoder.ts";
import { dualSlot, dualStackLayout, resetDualSlots, resolveFamily } from "../../src/protocols/family.ts";
import { K } from "../../src/protocols/fields.ts";
import { applySections, sectionLayout, sectionSlot } from "../../src/protocols/sections.ts";
import {
  compileRecordDecoder,
  F,
  makeField,
  ntpToMs,
  RecordOverrun,
  recordLengths,
  Scratch,
  type TemplateField,
  walkRecord,
} from "../../src/protocols/template.ts";
import { ipv6, macInt, readUint, readUintNumber, renderElement } from "../../src/protocols/wire.ts";

const DIR = new URL("../fixtures/logstash/", import.meta.url);

interface Case {
  name: string;
  files: string[];
  file_info: { file: string; datagrams?: { offset: number; length: number }[] }[];
}
const manifest = JSON.parse(readFileSync(new URL("MANIFEST.json", DIR), "utf8")) as Case[];

function setExtra(r: FlowRecord, name: string, value: unknown): void {
  if (r.extra === null) r.extra = {};
  r.extra[name] = value as never;
}

/** The plain interpreter: what the generated code for each field kind does, written out. */
function interpret(
  fields: readonly TemplateField[],
  b: Uint8Array,
  o: number,
  end: number,
  r: FlowRecord,
  s: Scratch,
) {
  // Dual-stack templates and packet sections (issue 19): the interpreter forms family.ts and sections.ts
  // keep next to their code generators.
  const dual = dualStackLayout(fields);
  const sections = sectionLayout(fields);
  s.m = 0;
  if (dual !== null) resetDualSlots(s);
  if (sections !== null) s.sec.fill(-1);
  const next = walkRecord(fields, b, o, end, (f, _i, p, len) => {
    if (f.kind === K.SECTION) {
      setExtra(r, f.name, renderElement(f.type, b, p, len));
      sectionSlot(f, p, len, s);
      return;
    }
    if (f.length === 0xffff) {
      setExtra(r, f.name, renderElement(f.type, b, p, len));
      return;
    }
    if (len === 0) return;
    if (dual !== null && dualSlot(f, b, p, s)) return;
    const v = () => readUintNumber(b, p, len);
    const counter = () => readUint(b, p, len);
    switch (f.kind) {
      case K.BYTES:
        r.bytes = counter();
        break;
      case K.BYTES_FB:
        if (r.bytes === 0) r.bytes = counter();
        break;
      case K.PACKETS:
        r.packets = counter();
        break;
      case K.PACKETS_FB:
        if (r.packets === 0) r.packets = counter();
        break;
      case K.PROTO:
        r.proto = v();
        break;
      case K.TOS:
        r.ip_tos = v();
        break;
      case K.TCP_FLAGS:
        r.tcp_flags = v();
        break;
      case K.SRC_PORT:
        r.src_port = v();
        break;
      case K.DST_PORT:
        r.dst_port = v();
        break;
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
      case K.IN_IF:
        r.in_if = v();
        break;
      case K.OUT_IF:
        r.out_if = v();
        break;
      case K.IN_IF_FB:
        if (r.in_if === 0) r.in_if = v();
        break;
      case K.OUT_IF_FB:
        if (r.out_if === 0) r.out_if = v();
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
      case K.SRC_AS:
        r.src_as = v();
        break;
      case K.DST_AS:
        r.dst_as = v();
        break;
      case K.NEXT_HOP_AS:
        r.next_hop_as = v();
        break;
      case K.END_UPTIME:
        s.eUp = v();
        s.m |= F.E_UP;
        break;
      case K.START_UPTIME:
        s.sUp = v();
        s.m |= F.S_UP;
        break;
      case K.FLOW_LABEL:
        r.ipv6_flow_label = v();
        break;
      case K.ICMP_TYPECODE:
        r.icmp_type = (v() >>> 8) & 255;
        r.icmp_code = v() & 255;
        break;
      case K.ICMP_TYPE:
        r.icmp_type = v();
        break;
      case K.ICMP_CODE:
        r.icmp_code = v();
        break;
      case K.TTL:
        r.ip_ttl = v();
        break;
      case K.TTL_FB:
        if (r.ip_ttl === 0) r.ip_ttl = v();
        break;
      case K.FRAG_ID:
        r.fragment_id = v();
        break;
      case K.FRAG_OFFSET:
        r.fragment_offset = v();
        break;
      case K.IP_FLAGS:
        r.ip_flags = v();
        break;
      case K.SRC_MAC:
        r.src_mac = macInt(b, p);
        break;
      case K.DST_MAC:
        r.dst_mac = macInt(b, p);
        break;
      case K.SRC_MAC_FB:
        if (r.src_mac === 0) r.src_mac = macInt(b, p);
        break;
      case K.DST_MAC_FB:
        if (r.dst_mac === 0) r.dst_mac = macInt(b, p);
        break;
      case K.SRC_VLAN:
        r.src_vlan = v();
        if (r.vlan_id === 0) r.vlan_id = r.src_vlan;
        break;
      case K.DST_VLAN:
        r.dst_vlan = v();
        break;
      case K.VLAN_ID:
        r.vlan_id = v();
        break;
      case K.IP_VERSION:
        s.ipv = v();
        s.m |= F.IPV;
        break;
      case K.ETYPE:
        r.etype = v();
        break;
      case K.DIRECTION:
        r.flow_direction = v();
        break;
      case K.FWD_STATUS:
        r.forwarding_status = v();
        break;
      case K.OBS_POINT:
        r.observation_point_id = v();
        break;
      case K.OBS_DOMAIN:
        r.observation_domain_id = v();
        break;
      case K.START_S:
        s.sS = v();
        s.m |= F.S_S;
        break;
      case K.END_S:
        s.eS = v();
        s.m |= F.E_S;
        break;
      case K.START_MS:
        s.sMs = v();
        s.m |= F.S_MS;
        break;
      case K.END_MS:
        s.eMs = v();
        s.m |= F.E_MS;
        break;
      case K.START_US:
      case K.START_NS:
        s.sNtp = ntpToMs(b, p);
        s.m |= F.S_NTP;
        break;
      case K.END_US:
      case K.END_NS:
        s.eNtp = ntpToMs(b, p);
        s.m |= F.E_NTP;
        break;
      case K.START_DELTA_US:
        s.sDus = v();
        s.m |= F.S_DUS;
        break;
      case K.END_DELTA_US:
        s.eDus = v();
        s.m |= F.E_DUS;
        break;
      case K.SYS_INIT_MS:
        s.init = v();
        s.m |= F.INIT;
        break;
      case K.MPLS: {
        // mplsTopLabelStackSection (70) .. mplsLabelStackSection10 (79) by position, as GoFlow2
        const a = r.mpls_label ?? [];
        r.mpls_label = a;
        while (a.length < f.id - 70) a.push(0);
        a[f.id - 70] = (b[p]! << 12) | (b[p + 1]! << 4) | (b[p + 2]! >>> 4);
        break;
      }
      case K.MPLS_IP4:
        r.mpls_ip = [...(r.mpls_ip ?? []), ipv4Text(v())];
        break;
      case K.MPLS_IP6:
        r.mpls_ip = [...(r.mpls_ip ?? []), ipv6(b, p)];
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
        r.reverse_bytes = counter();
        break;
      case K.REV_BYTES_FB:
        if (!r.reverse_bytes) r.reverse_bytes = counter();
        break;
      case K.REV_PACKETS:
        r.reverse_packets = counter();
        break;
      case K.REV_PACKETS_FB:
        if (!r.reverse_packets) r.reverse_packets = counter();
        break;
      case K.SRC_SGT:
        r.src_sgt = v();
        break;
      case K.DST_SGT:
        r.dst_sgt = v();
        break;
      case K.RECORD_RATE:
        s.rate = v();
        s.m |= F.RATE;
        setExtra(r, f.name, renderElement(f.type, b, p, len));
        break;
      case K.IN_VRF:
        r.in_vrf_id = v();
        break;
      case K.OUT_VRF:
        r.out_vrf_id = v();
        break;
      case K.SEQUENCE_ID:
        s.sequence = v();
        s.m |= F.SEQUENCE;
        setExtra(r, f.name, renderElement(f.type, b, p, len));
        break;
      case K.SAMPLER_ID:
        s.sampler = v();
        s.m |= F.SAMPLER;
        setExtra(r, f.name, renderElement(f.type, b, p, len));
        break;
      default:
        setExtra(r, f.name, renderElement(f.type, b, p, len));
    }
  });
  if (dual !== null) resolveFamily(b, r, s, s.m & F.IPV ? s.ipv : 0, dual.lastAddressFamily);
  if (sections !== null) applySections(b, r, s, sections.explicit);
  return next;
}

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
    for (const f of c.files) {
      const data = readFileSync(new URL(f, DIR));
      const info = c.file_info.find((i) => i.file === f);
      const slices = info?.datagrams?.length ? info.datagrams : [{ offset: 0, length: data.length }];
      for (const sl of slices) {
        const payload = data.subarray(sl.offset, sl.offset + sl.length);
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
            const where: string = `${c.name}: ${f} template ${t.id} record at ${o}`;
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
    }
    if (caseRecords > 0) cases++;
  }
  // the corpus holds ~390 v9/IPFIX flow records over ~40 cases and ~50 field kinds: make sure we saw them
  assert.ok(records > 350, `records compared: ${records}`);
  assert.ok(cases >= 35, `cases with data records: ${cases}`);
  assert.ok(kinds.size >= 45, `field kinds exercised: ${kinds.size}`);
});

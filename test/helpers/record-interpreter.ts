/**
 * The plain record interpreter of the tests: what the code generated for each field kind
 * (src/protocols/template.ts `compileRecordDecoder`) does, written out one case per kind over `walkRecord`,
 * without code generation. Dual-stack templates and packet sections (issue 19) use the interpreter forms
 * family.ts and sections.ts keep next to their code generators. Used by test/protocols/compiled.test.ts
 * (every data record of the corpus) and test/protocols/records-differential.test.ts (random records): the
 * compiled decoder must give the same record, scratch values and end offset.
 */
import { ipv4Text } from "../../src/core/address.ts";
import type { FlowRecord } from "../../src/core/flow.ts";
import { dualSlot, dualStackLayout, resetDualSlots, resolveFamily } from "../../src/protocols/family.ts";
import { K } from "../../src/protocols/fields.ts";
import { applySections, sectionLayout, sectionSlot } from "../../src/protocols/sections.ts";
import { F, ntpToMs, type Scratch, type TemplateField, walkRecord } from "../../src/protocols/template.ts";
import { ipv6, macInt, readUint, readUintNumber, renderElement } from "../../src/protocols/wire.ts";

function setExtra(r: FlowRecord, name: string, value: unknown): void {
  if (r.extra === null) r.extra = {};
  r.extra[name] = value as never;
}

/** Decodes the record at `o` into `r` and `s` as the compiled decoder does; returns the end offset. */
export function interpret(
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
        r.bgp_next_hop_v4 = v();
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

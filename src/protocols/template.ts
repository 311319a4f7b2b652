/**
 * Templates (NetFlow v9 and IPFIX) and their compiled record decoders.
 *
 * A template is compiled once, when it is learned, into a JavaScript function that decodes one data
 * record straight into a FlowRecord: one typed read and one assignment per field, at offsets computed at
 * compile time (`new Function` over numbers and field indexes only; no wire text is ever spliced into the
 * code). Variable-length fields (255 / 0xFFFF escape, RFC 7011 §7) are bounds-checked where they occur.
 * Options templates and `--elements` use the interpreter `walkRecord`, off the hot path.
 */

import { ipv4Text } from "../core/address.ts";
import type { FlowRecord } from "../core/flow.ts";
import { type AbstractType, elementName, ipfixElement, netflow9Field } from "./elements.ts";
import { DUAL_RESET, dualSlotCode, dualStackLayout, resolveFamily } from "./family.ts";
import { type FieldKind, fieldKind, K } from "./fields.ts";
import { applySections, SECTION_RESET, sectionLayout, sectionSlotCode } from "./sections.ts";
import { type ElementValue, ipv6, macInt, readUint, readUintNumber, renderElement } from "./wire.ts";

export interface TemplateField {
  /** 0 for IANA elements and all NetFlow v9 field types. */
  readonly pen: number;
  readonly id: number;
  /** Field length on the wire; 0xFFFF = variable length. */
  readonly length: number;
  readonly name: string;
  readonly type: AbstractType | undefined;
  readonly kind: FieldKind;
}

/** Scratch values a record decoder leaves for the post-processing step (times, sampler, IP version). */
export class Scratch {
  m = 0;
  sMs = 0;
  eMs = 0;
  sS = 0;
  eS = 0;
  sNtp = 0;
  eNtp = 0;
  sDus = 0;
  eDus = 0;
  sUp = 0;
  eUp = 0;
  init = 0;
  sampler = 0;
  /** selectionSequenceId (301) of the record (F.SEQUENCE). */
  sequence = 0;
  /** A rate the flow record itself carries (samplingInterval 34, flowSamplerRandomInterval 50). */
  rate = 0;
  ipv = 0;
  // Dual-stack templates (family.ts): each family's value per role, −1 when the template has no such field.
  // IPv4 addresses as numbers, IPv6 addresses as offsets of their 16 bytes, prefix lengths as numbers.
  s4 = -1;
  d4 = -1;
  n4 = -1;
  b4 = -1;
  s6 = -1;
  d6 = -1;
  n6 = -1;
  b6 = -1;
  sn4 = -1;
  sn6 = -1;
  dn4 = -1;
  dn6 = -1;
  /** Packet sections 313–317 (sections.ts): offset and length per IE, −1 when absent. */
  readonly sec = new Int32Array(10).fill(-1);
  /** Tunnelled packet sections describe the inner headers (DecoderOptions.tunnelHeader "inner"). */
  innerTunnel = false;
}

export const F = {
  S_MS: 1,
  E_MS: 2,
  S_S: 4,
  E_S: 8,
  S_NTP: 16,
  E_NTP: 32,
  S_DUS: 64,
  E_DUS: 128,
  S_UP: 256,
  E_UP: 512,
  INIT: 1024,
  SAMPLER: 2048,
  V4: 4096,
  V6: 8192,
  IPV: 16384,
  RATE: 32768,
  SEQUENCE: 65536,
} as const;

export type RecordDecoder = (b: Uint8Array, o: number, end: number, r: FlowRecord, s: Scratch) => number;

export interface Template {
  readonly version: 9 | 10;
  readonly id: number;
  readonly domain: number;
  readonly options: boolean;
  readonly scopeCount: number;
  readonly fields: readonly TemplateField[];
  /** Record length when every field is fixed, else -1. */
  readonly fixedLength: number;
  /** Smallest possible record length (variable fields count 1 byte). */
  readonly minLength: number;
  /** Whether a field carries ICMP type/code (else they come from the destination port, DESIGN §3). */
  readonly hasIcmp: boolean;
  /** Whether the flow records carry applicationName (96) themselves (nProbe): it is their application_name. */
  readonly hasAppName?: boolean;
  /** Compiled flow decoder; null for options templates. */
  readonly decode: RecordDecoder | null;
  learnedMs: number;
  refreshedMs: number;
  lastUsedMs: number;
}

export function makeField(pen: number, id: number, length: number, v9: boolean): TemplateField {
  const def = v9 ? netflow9Field(id) : ipfixElement(pen, id);
  return {
    pen,
    id,
    length,
    name: def?.name ?? elementName(pen, id),
    type: def?.type,
    kind: fieldKind(pen, id, length, v9),
  };
}

/** v9 options scope types (RFC 3954 §6.1). */
const SCOPE_NAMES: Record<number, string> = {
  1: "scopeSystem",
  2: "scopeInterface",
  3: "scopeLineCard",
  4: "scopeCache",
  5: "scopeTemplate",
};

export function v9ScopeField(type: number, length: number): TemplateField {
  return {
    pen: 0,
    id: type,
    length,
    name: SCOPE_NAMES[type] ?? `scope${type}`,
    type: length >= 1 && length <= 8 ? "unsigned64" : "octetArray",
    kind: 0,
  };
}

const NTP_EPOCH_OFFSET_S = 2208988800;

/** NTP-format 64-bit timestamp (RFC 7011 §6.1.9/10) → ms since the Unix epoch (fractional). */
export function ntpToMs(b: Uint8Array, o: number): number {
  const sec = b[o]! * 16777216 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
  const frac = b[o + 4]! * 16777216 + ((b[o + 5]! << 16) | (b[o + 6]! << 8) | b[o + 7]!);
  return (sec - NTP_EPOCH_OFFSET_S) * 1000 + (frac / 4294967296) * 1000;
}

function extraSetter(fields: readonly TemplateField[]) {
  return (r: FlowRecord, i: number, b: Uint8Array, p: number, l: number): void => {
    const f = fields[i]!;
    if (r.extra === null) r.extra = {};
    r.extra[f.name] = renderElement(f.type, b, p, l);
  };
}

/** Expression reading an unsigned integer of `len` bytes at `at` as a number (≤ 4 bytes inline). */
function numExpr(at: string, len: number): string {
  switch (len) {
    case 1:
      return `b[${at}]`;
    case 2:
      return `(b[${at}]<<8|b[${at}+1])`;
    case 3:
      return `(b[${at}]<<16|b[${at}+1]<<8|b[${at}+2])`;
    case 4:
      return `(b[${at}]*16777216+(b[${at}+1]<<16|b[${at}+2]<<8|b[${at}+3]))`;
    case 8:
      // hi × 2^32 is exact and the sum rounds once: the same number readUintNumber gives, without the call
      return `(${numExpr(at, 4)}*4294967296+${numExpr(`${at}+4`, 4)})`;
    default:
      return `N(b,${at},${len})`;
  }
}

/** Expression reading a counter (number, or bigint above 2^53). */
function counterExpr(at: string, len: number): string {
  if (len <= 4) return numExpr(at, len);
  // 8 bytes (the usual counter size) inline while the high word keeps the value under 2^53; `h` is a local
  // of the compiled function
  if (len === 8) return `((h=${numExpr(at, 4)})<2097152?h*4294967296+${numExpr(`${at}+4`, 4)}:U(b,${at},8))`;
  return `U(b,${at},${len})`;
}

function fieldCode(f: TemplateField, i: number, at: string, len: number, dual: boolean): string {
  const v = () => numExpr(at, len);
  if (dual) {
    const slot = dualSlotCode(f, at, v());
    if (slot !== null) return slot;
  }
  switch (f.kind) {
    case K.BYTES:
      return `r.bytes=${counterExpr(at, len)};`;
    case K.BYTES_FB:
      return `if(r.bytes===0)r.bytes=${counterExpr(at, len)};`;
    case K.PACKETS:
      return `r.packets=${counterExpr(at, len)};`;
    case K.PACKETS_FB:
      return `if(r.packets===0)r.packets=${counterExpr(at, len)};`;
    case K.PROTO:
      return `r.proto=${v()};`;
    case K.TOS:
      return `r.ip_tos=${v()};`;
    case K.TCP_FLAGS:
      return `r.tcp_flags=${v()};`;
    case K.SRC_PORT:
      return `r.src_port=${v()};`;
    case K.DST_PORT:
      return `r.dst_port=${v()};`;
    case K.SRC_ADDR4:
      return `r.src_v4=${numExpr(at, 4)};s.m|=${F.V4};`;
    case K.DST_ADDR4:
      return `r.dst_v4=${numExpr(at, 4)};s.m|=${F.V4};`;
    case K.SRC_ADDR6:
      return `r.src_addr=IP6(b,${at});s.m|=${F.V6};`;
    case K.DST_ADDR6:
      return `r.dst_addr=IP6(b,${at});s.m|=${F.V6};`;
    case K.SRC_NET:
      return `r.src_net=${v()};`;
    case K.DST_NET:
      return `r.dst_net=${v()};`;
    case K.IN_IF:
      return `r.in_if=${v()};`;
    case K.OUT_IF:
      return `r.out_if=${v()};`;
    case K.IN_IF_FB:
      return `if(r.in_if===0)r.in_if=${v()};`;
    case K.OUT_IF_FB:
      return `if(r.out_if===0)r.out_if=${v()};`;
    case K.NEXT_HOP4:
      return `r.next_hop_v4=${numExpr(at, 4)};`;
    case K.NEXT_HOP6:
      return `r.next_hop=IP6(b,${at});`;
    case K.BGP_NH4:
      return `r.bgp_next_hop_v4=${numExpr(at, 4)};`;
    case K.BGP_NH6:
      return `r.bgp_next_hop=IP6(b,${at});`;
    case K.SRC_AS:
      return `r.src_as=${v()};`;
    case K.DST_AS:
      return `r.dst_as=${v()};`;
    case K.NEXT_HOP_AS:
      return `r.next_hop_as=${v()};`;
    case K.END_UPTIME:
      return `s.eUp=${v()};s.m|=${F.E_UP};`;
    case K.START_UPTIME:
      return `s.sUp=${v()};s.m|=${F.S_UP};`;
    case K.FLOW_LABEL:
      return `r.ipv6_flow_label=${v()};`;
    case K.ICMP_TYPECODE:
      return `{const t=${v()};r.icmp_type=(t>>>8)&255;r.icmp_code=t&255;}`;
    case K.ICMP_TYPE:
      return `r.icmp_type=${v()};`;
    case K.ICMP_CODE:
      return `r.icmp_code=${v()};`;
    case K.TTL:
      return `r.ip_ttl=${v()};`;
    case K.TTL_FB:
      return `if(r.ip_ttl===0)r.ip_ttl=${v()};`;
    case K.FRAG_ID:
      return `r.fragment_id=${v()};`;
    case K.FRAG_OFFSET:
      return `r.fragment_offset=${v()};`;
    case K.IP_FLAGS:
      return `r.ip_flags=${v()};`;
    case K.SRC_MAC:
      return `r.src_mac=MAC(b,${at});`;
    case K.DST_MAC:
      return `r.dst_mac=MAC(b,${at});`;
    case K.SRC_MAC_FB:
      return `if(r.src_mac===0)r.src_mac=MAC(b,${at});`;
    case K.DST_MAC_FB:
      return `if(r.dst_mac===0)r.dst_mac=MAC(b,${at});`;
    case K.SRC_VLAN:
      return `r.src_vlan=${v()};if(r.vlan_id===0)r.vlan_id=r.src_vlan;`;
    case K.DST_VLAN:
      return `r.dst_vlan=${v()};`;
    case K.VLAN_ID:
      return `r.vlan_id=${v()};`;
    case K.IP_VERSION:
      return `s.ipv=${v()};s.m|=${F.IPV};`;
    case K.ETYPE:
      return `r.etype=${v()};`;
    case K.DIRECTION:
      return `r.flow_direction=${v()};`;
    case K.FWD_STATUS:
      return `r.forwarding_status=${v()};`;
    case K.OBS_POINT:
      return `r.observation_point_id=${v()};`;
    case K.OBS_DOMAIN:
      return `r.observation_domain_id=${v()};`;
    case K.START_S:
      return `s.sS=${v()};s.m|=${F.S_S};`;
    case K.END_S:
      return `s.eS=${v()};s.m|=${F.E_S};`;
    case K.START_MS:
      return `s.sMs=${v()};s.m|=${F.S_MS};`;
    case K.END_MS:
      return `s.eMs=${v()};s.m|=${F.E_MS};`;
    case K.START_US:
    case K.START_NS:
      return `s.sNtp=NTP(b,${at});s.m|=${F.S_NTP};`;
    case K.END_US:
    case K.END_NS:
      return `s.eNtp=NTP(b,${at});s.m|=${F.E_NTP};`;
    case K.START_DELTA_US:
      return `s.sDus=${v()};s.m|=${F.S_DUS};`;
    case K.END_DELTA_US:
      return `s.eDus=${v()};s.m|=${F.E_DUS};`;
    case K.SYS_INIT_MS:
      return `s.init=${v()};s.m|=${F.INIT};`;
    case K.MPLS: {
      // mplsTopLabelStackSection (70) … mplsLabelStackSection10 (79): label n at index n − 1, as GoFlow2
      const idx = f.id - 70;
      return `{const a=(r.mpls_label??=[]);while(a.length<${idx})a.push(0);a[${idx}]=(b[${at}]<<12)|(b[${at}+1]<<4)|(b[${at}+2]>>>4);}`;
    }
    case K.MPLS_IP4:
      return `(r.mpls_ip??=[]).push(IP4(${numExpr(at, 4)}));`;
    case K.MPLS_IP6:
      return `(r.mpls_ip??=[]).push(IP6(b,${at}));`;
    case K.NAT_SRC4:
      return `r.post_nat_src_addr=IP4(${numExpr(at, 4)});`;
    case K.NAT_DST4:
      return `r.post_nat_dst_addr=IP4(${numExpr(at, 4)});`;
    case K.NAT_SRC6:
      return `r.post_nat_src_addr=IP6(b,${at});`;
    case K.NAT_DST6:
      return `r.post_nat_dst_addr=IP6(b,${at});`;
    case K.NAT_SRC_PORT:
      return `r.post_nat_src_port=${v()};`;
    case K.NAT_DST_PORT:
      return `r.post_nat_dst_port=${v()};`;
    case K.REV_BYTES:
      return `r.reverse_bytes=${counterExpr(at, len)};`;
    case K.REV_BYTES_FB:
      return `if(!r.reverse_bytes)r.reverse_bytes=${counterExpr(at, len)};`;
    case K.REV_PACKETS:
      return `r.reverse_packets=${counterExpr(at, len)};`;
    case K.REV_PACKETS_FB:
      return `if(!r.reverse_packets)r.reverse_packets=${counterExpr(at, len)};`;
    case K.SRC_SGT:
      return `r.src_sgt=${v()};`;
    case K.DST_SGT:
      return `r.dst_sgt=${v()};`;
    case K.SAMPLER_ID:
      return `s.sampler=${v()};s.m|=${F.SAMPLER};X(r,${i},b,${at},${len});`;
    case K.SEQUENCE_ID:
      return `s.sequence=${v()};s.m|=${F.SEQUENCE};X(r,${i},b,${at},${len});`;
    case K.RECORD_RATE:
      return `s.rate=${v()};s.m|=${F.RATE};X(r,${i},b,${at},${len});`;
    case K.IN_VRF:
      return `r.in_vrf_id=${v()};`;
    case K.OUT_VRF:
      return `r.out_vrf_id=${v()};`;
    case K.SECTION:
      return `X(r,${i},b,${at},${len});${sectionSlotCode(f, at, String(len))}`;
    default:
      return `X(r,${i},b,${at},${len});`;
  }
}

/**
 * Compile a flow template into a record decoder. The function returns the offset after the record, or
 * throws via T() when a variable-length field runs past `end`. For all-fixed templates the caller checks
 * `o + fixedLength <= end` before calling.
 */
export function compileRecordDecoder(fields: readonly TemplateField[]): RecordDecoder {
  // One compiled function per layout, shared by every exporter and domain that uses it: a function that
  // many exporters call gets hot and fully optimized (with its helpers inlined) where one copy per
  // template would each stay in a lower tier. The decoder is a pure function of the fields' identities.
  const key = fields.map((f) => `${f.pen}/${f.id}/${f.length}/${f.kind}/${f.type}/${f.name}`).join(",");
  let decoder = compiled.get(key);
  if (decoder === undefined) {
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    decoder = compileLayout(fields);
    compiled.set(key, decoder);
  }
  return decoder;
}

/** Compiled record decoders by layout (see compileRecordDecoder); emptied when it reaches MAX_COMPILED. */
const compiled = new Map<string, RecordDecoder>();
const MAX_COMPILED = 4096;

function compileLayout(fields: readonly TemplateField[]): RecordDecoder {
  const lines: string[] = ["let h=0;s.m=0;"];
  const dual = dualStackLayout(fields);
  if (dual !== null) lines.push(DUAL_RESET);
  const sections = sectionLayout(fields);
  if (sections !== null) lines.push(SECTION_RESET);
  let base = "o";
  let k = 0; // constant offset from base
  let pendingCheck = true; // whether the next fixed run needs a bounds check (after a variable field)
  let variable = false;
  const runLength = (from: number): number => {
    let n = 0;
    for (let j = from; j < fields.length && fields[j]!.length !== 0xffff; j++) n += fields[j]!.length;
    return n;
  };
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    if (f.length === 0xffff) {
      variable = true;
      if (base === "o") {
        lines.push(`let p=o+${k};`);
      } else if (k !== 0) {
        lines.push(`p+=${k};`);
      }
      base = "p";
      k = 0;
      lines.push(
        "if(p>=end)T(p);",
        "{let l=b[p++];if(l===255){if(p+2>end)T(p);l=(b[p]<<8)|b[p+1];p+=2;}",
        "if(p+l>end)T(p);",
        `X(r,${i},b,p,l);${f.kind === K.SECTION ? sectionSlotCode(f, "p", "l") : ""}p+=l;}`,
      );
      pendingCheck = true;
      continue;
    }
    if (base === "p" && pendingCheck) {
      const n = runLength(i);
      if (n > 0) lines.push(`if(p+${n}>end)T(p);`);
      pendingCheck = false;
    }
    if (f.length > 0) {
      const at = k === 0 ? base : `${base}+${k}`;
      lines.push(fieldCode(f, i, at, f.length, dual !== null));
      k += f.length;
    }
  }
  if (dual !== null) lines.push(`D(b,r,s,s.m&${F.IPV}?s.ipv:0,${dual.lastAddressFamily});`);
  if (sections !== null) lines.push(`P(b,r,s,${sections.explicit});`);
  lines.push(variable ? `return p+${k};` : `return o+${k};`);
  const body = `"use strict";return function decodeRecord(b,o,end,r,s){${lines.join("")}};`;
  const factory = new Function("IP4", "IP6", "MAC", "U", "N", "NTP", "X", "T", "D", "P", body) as (
    ...helpers: unknown[]
  ) => RecordDecoder;
  return factory(
    ipv4Text,
    ipv6,
    macInt,
    readUint,
    readUintNumber,
    ntpToMs,
    extraSetter(fields),
    truncated,
    resolveFamily,
    applySections,
  );
}

/** Thrown by compiled decoders; the caller turns it into a DecodeError with its context. */
export class RecordOverrun {
  readonly offset: number;
  constructor(offset: number) {
    this.offset = offset;
  }
}

function truncated(p: number): never {
  throw new RecordOverrun(p);
}

export function recordLengths(fields: readonly TemplateField[]): { fixed: number; min: number } {
  let min = 0;
  let variable = false;
  for (const f of fields) {
    if (f.length === 0xffff) {
      variable = true;
      min += 1;
    } else min += f.length;
  }
  return { fixed: variable ? -1 : min, min };
}

/**
 * Interpreter over one record: calls `visit` for every field with its value's offset and length.
 * Returns the offset after the record, or -1 when the record runs past `end`.
 */
export function walkRecord(
  fields: readonly TemplateField[],
  b: Uint8Array,
  o: number,
  end: number,
  visit: (field: TemplateField, index: number, p: number, len: number) => void,
): number {
  let p = o;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    let len = f.length;
    if (len === 0xffff) {
      if (p >= end) return -1;
      len = b[p++]!;
      if (len === 255) {
        if (p + 2 > end) return -1;
        len = (b[p]! << 8) | b[p + 1]!;
        p += 2;
      }
    }
    if (p + len > end) return -1;
    visit(f, i, p, len);
    p += len;
  }
  return p;
}

export function renderField(f: TemplateField, b: Uint8Array, p: number, len: number): ElementValue {
  return renderElement(f.type, b, p, len);
}

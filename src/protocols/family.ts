/**
 * Dual-stack templates (DESIGN §4): real routers (Cisco IPFIX, Juniper, Huawei) send one template for
 * both address families, carrying sourceIPv4Address *and* sourceIPv6Address (and the destinations, next
 * hops, BGP next hops and both prefix lengths); a flow fills its own family and leaves the other all-zero.
 *
 * A template is "dual" when any of these roles has a field in each family. Its compiled record decoder
 * (template.ts) then does not assign the addresses while it reads the record: it leaves each family's
 * value in the Scratch (an IPv4 address as its number, an IPv6 address as the offset of its 16 bytes,
 * a prefix length as its number; −1 = the template has no such field) and calls `resolveFamily` at the
 * end of the record, which picks the flow's family once for all roles:
 * - `ipVersion` (60) when the record carries 4 or 6;
 * - else the family whose source or destination address is non-zero; when both are (Huawei repeats the
 *   addresses for the outer and the inner header) or neither is, the family of the template's last
 *   address field, which is what a single-family decode gives: the last one written wins;
 * - else (no address field at all) by the non-zero next hops the same way.
 * Addresses and prefix lengths come from the flow's family (the other family's when the template has no
 * field of the flow's family for that role); next hops and BGP next hops from the flow's family when
 * non-zero, else from the other family when that one is non-zero (an IPv4 route over an IPv6 next hop,
 * RFC 8950). `etype` is set from the family when the record carried no `ethernetType` and the template
 * has address fields or the record an ipVersion.
 *
 * Single-family templates never come here: their decoders assign straight into the record, so the hot
 * path of the common template is unchanged. An interpreter over `walkRecord` fills the same slots
 * (`resetDualSlots`, `dualSlot`) and calls the same `resolveFamily`, so both agree
 * (test/protocols/records-differential.test.ts).
 */
import type { FlowRecord } from "../core/flow.ts";
import { K } from "./fields.ts";
import type { Scratch, TemplateField } from "./template.ts";
import { ipv6, readUintNumber } from "./wire.ts";

/** Element ids of the IPv6 prefix lengths (the IPv4 ones, 9 and 13, share their kinds). */
const SRC_NET6 = 29;
const DST_NET6 = 30;

/** Which family each dual-stack slot belongs to (4 or 6), by kind; prefix lengths by element id. */
function slotFamily(f: TemplateField): 4 | 6 | 0 {
  switch (f.kind) {
    case K.SRC_ADDR4:
    case K.DST_ADDR4:
    case K.NEXT_HOP4:
    case K.BGP_NH4:
      return 4;
    case K.SRC_ADDR6:
    case K.DST_ADDR6:
    case K.NEXT_HOP6:
    case K.BGP_NH6:
      return 6;
    case K.SRC_NET:
      return f.id === SRC_NET6 ? 6 : 4;
    case K.DST_NET:
      return f.id === DST_NET6 ? 6 : 4;
    default:
      return 0;
  }
}

/** Role of a dual-stack slot: 0 src address, 1 dst address, 2 next hop, 3 BGP next hop, 4/5 prefixes. */
function slotRole(f: TemplateField): number {
  switch (f.kind) {
    case K.SRC_ADDR4:
    case K.SRC_ADDR6:
      return 0;
    case K.DST_ADDR4:
    case K.DST_ADDR6:
      return 1;
    case K.NEXT_HOP4:
    case K.NEXT_HOP6:
      return 2;
    case K.BGP_NH4:
    case K.BGP_NH6:
      return 3;
    case K.SRC_NET:
      return 4;
    case K.DST_NET:
      return 5;
    default:
      return -1;
  }
}

/**
 * The template's dual-stack layout: null when no role has a field in both families (the decoder then
 * assigns directly), else the family of its last address field (4 or 6; 4 when it has none), which
 * breaks ties in `resolveFamily`.
 */
export function dualStackLayout(fields: readonly TemplateField[]): { lastAddressFamily: 4 | 6 } | null {
  const seen = [0, 0, 0, 0, 0, 0]; // per role: bit 1 = IPv4 field, bit 2 = IPv6 field
  let last: 4 | 6 = 4;
  for (const f of fields) {
    const role = slotRole(f);
    if (role < 0) continue;
    const fam = slotFamily(f);
    seen[role]! |= fam === 4 ? 1 : 2;
    if (role <= 1) last = fam === 6 ? 6 : 4;
  }
  return seen.some((s) => s === 3) ? { lastAddressFamily: last } : null;
}

/**
 * Code of the compiled decoder for one dual-stack slot: the value goes to the Scratch, not the record.
 * `num` reads the field as a number, `at` is its offset expression. Returns null for other kinds.
 */
export function dualSlotCode(f: TemplateField, at: string, num: string): string | null {
  switch (f.kind) {
    case K.SRC_ADDR4:
      return `s.s4=${num};`;
    case K.DST_ADDR4:
      return `s.d4=${num};`;
    case K.NEXT_HOP4:
      return `s.n4=${num};`;
    case K.BGP_NH4:
      return `s.b4=${num};`;
    case K.SRC_ADDR6:
      return `s.s6=${at};`;
    case K.DST_ADDR6:
      return `s.d6=${at};`;
    case K.NEXT_HOP6:
      return `s.n6=${at};`;
    case K.BGP_NH6:
      return `s.b6=${at};`;
    case K.SRC_NET:
      return f.id === SRC_NET6 ? `s.sn6=${num};` : `s.sn4=${num};`;
    case K.DST_NET:
      return f.id === DST_NET6 ? `s.dn6=${num};` : `s.dn4=${num};`;
    default:
      return null;
  }
}

/** Resets the dual-stack slots at the start of a record (code of the compiled decoder). */
export const DUAL_RESET = "s.s4=s.d4=s.n4=s.b4=s.s6=s.d6=s.n6=s.b6=s.sn4=s.sn6=s.dn4=s.dn6=-1;";

function nonZero6(b: Uint8Array, at: number): boolean {
  if (at < 0) return false;
  for (let i = 0; i < 16; i++) if (b[at + i] !== 0) return true;
  return false;
}

/**
 * Which slot of a role to take (6, 4, or 0 for none): the preferred family's when present, else the
 * other's. With `nonZeroFirst` (next hops), a non-zero value of either family beats a zero one.
 */
function pick(
  six: boolean,
  at4: number,
  at6: number,
  nz4: boolean,
  nz6: boolean,
  nonZeroFirst: boolean,
): number {
  if (nonZeroFirst) {
    if (six ? nz6 : nz4) return six ? 6 : 4;
    if (six ? nz4 : nz6) return six ? 4 : 6;
  }
  if (six ? at6 >= 0 : at4 >= 0) return six ? 6 : 4;
  if (six ? at4 >= 0 : at6 >= 0) return six ? 4 : 6;
  return 0;
}

/**
 * Picks the record's family and assigns its addresses, prefix lengths, next hops and etype from the
 * Scratch slots (see the module comment). `b` is the buffer the IPv6 offsets point into; `ipVersion` is
 * the record's ipVersion element (0 when absent).
 */
export function resolveFamily(
  b: Uint8Array,
  r: FlowRecord,
  s: Scratch,
  ipVersion: number,
  lastAddressFamily: number,
): void {
  const known = ipVersion === 4 || ipVersion === 6;
  let fam = known ? ipVersion : 0;
  const hasAddress = s.s4 >= 0 || s.d4 >= 0 || s.s6 >= 0 || s.d6 >= 0;
  if (fam === 0) {
    if (hasAddress) {
      const v4 = s.s4 > 0 || s.d4 > 0;
      const v6 = nonZero6(b, s.s6) || nonZero6(b, s.d6);
      fam = v4 === v6 ? lastAddressFamily : v4 ? 4 : 6;
    } else {
      const v4 = s.n4 > 0 || s.b4 > 0;
      const v6 = nonZero6(b, s.n6) || nonZero6(b, s.b6);
      fam = v6 && !v4 ? 6 : 4;
    }
  }
  const six = fam === 6;
  let p = pick(six, s.s4, s.s6, false, false, false);
  if (p === 6) r.src_addr = ipv6(b, s.s6);
  else if (p === 4) r.src_v4 = s.s4;
  p = pick(six, s.d4, s.d6, false, false, false);
  if (p === 6) r.dst_addr = ipv6(b, s.d6);
  else if (p === 4) r.dst_v4 = s.d4;
  p = pick(six, s.sn4, s.sn6, false, false, false);
  if (p !== 0) r.src_net = p === 6 ? s.sn6 : s.sn4;
  p = pick(six, s.dn4, s.dn6, false, false, false);
  if (p !== 0) r.dst_net = p === 6 ? s.dn6 : s.dn4;
  p = pick(six, s.n4, s.n6, s.n4 > 0, nonZero6(b, s.n6), true);
  if (p === 6) r.next_hop = ipv6(b, s.n6);
  else if (p === 4) r.next_hop_v4 = s.n4;
  p = pick(six, s.b4, s.b6, s.b4 > 0, nonZero6(b, s.b6), true);
  if (p === 6) r.bgp_next_hop = ipv6(b, s.b6);
  else if (p === 4) r.bgp_next_hop_v4 = s.b4;
  if (r.etype === 0 && (hasAddress || known)) r.etype = six ? 0x86dd : 0x0800;
}

/**
 * The interpreter's form of `dualSlotCode`: stores the value of field `f` at `p` in its Scratch slot and
 * returns true, or returns false for a field that is not a dual-stack slot.
 */
export function dualSlot(f: TemplateField, b: Uint8Array, p: number, s: Scratch): boolean {
  const num = () => readUintNumber(b, p, f.length);
  switch (f.kind) {
    case K.SRC_ADDR4:
      s.s4 = num();
      return true;
    case K.DST_ADDR4:
      s.d4 = num();
      return true;
    case K.NEXT_HOP4:
      s.n4 = num();
      return true;
    case K.BGP_NH4:
      s.b4 = num();
      return true;
    case K.SRC_ADDR6:
      s.s6 = p;
      return true;
    case K.DST_ADDR6:
      s.d6 = p;
      return true;
    case K.NEXT_HOP6:
      s.n6 = p;
      return true;
    case K.BGP_NH6:
      s.b6 = p;
      return true;
    case K.SRC_NET:
      if (f.id === SRC_NET6) s.sn6 = num();
      else s.sn4 = num();
      return true;
    case K.DST_NET:
      if (f.id === DST_NET6) s.dn6 = num();
      else s.dn4 = num();
      return true;
    default:
      return false;
  }
}

/** The interpreter's form of DUAL_RESET. */
export function resetDualSlots(s: Scratch): void {
  s.s4 = s.d4 = s.n4 = s.b4 = s.s6 = s.d6 = s.n6 = s.b6 = s.sn4 = s.sn6 = s.dn4 = s.dn6 = -1;
}

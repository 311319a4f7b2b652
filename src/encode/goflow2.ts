/**
 * GoFlow2 v2 `json` format: one JSON object per flow, byte-for-byte what `goflow2 -format=json` prints for
 * the same flow, followed by our own fields.
 *
 * Grammar (verified against netsampler/goflow2 v2: pb/flow.proto field order, producer/proto/messages.go
 * FormatMessageReflectCustom, producer/proto/render.go renderers):
 *
 *   {"type":"IPFIX","time_received_ns":N,"sequence_num":N,"sampling_rate":N,"sampler_address":IP,
 *    "time_flow_start_ns":N,"time_flow_end_ns":N,"bytes":N,"packets":N,"src_addr":IP,"dst_addr":IP,
 *    "etype":ETYPE,"proto":PROTO,"src_port":N,"dst_port":N,"in_if":N,"out_if":N,"src_mac":MAC,
 *    "dst_mac":MAC,"src_vlan":N,"dst_vlan":N,"vlan_id":N,"ip_tos":N,"forwarding_status":N,"ip_ttl":N,
 *    "ip_flags":N,"tcp_flags":N,"icmp_type":N,"icmp_code":N,"ipv6_flow_label":N,"fragment_id":N,
 *    "fragment_offset":N,"src_as":N,"dst_as":N,"next_hop":IP,"next_hop_as":N,"src_net":NET,"dst_net":NET,
 *    "bgp_next_hop":IP,"bgp_communities":[N,..],"as_path":[N,..],"mpls_ttl":[N,..],"mpls_label":[N,..],
 *    "mpls_ip":[IP,..],"observation_domain_id":N,"observation_point_id":N,"layer_stack":[..],
 *    "layer_size":[..],"ipv6_routing_header_addresses":[..],"ipv6_routing_header_seg_left":N
 *    ── ours, appended ──
 *    [,"src_sgt":N][,"dst_sgt":N],"switch_id":S[,"flow_direction":N][,"in_if_name":S][,"out_if_name":S]
 *    [,"in_vrf_id":N][,"out_vrf_id":N][,"in_vrf_name":S][,"out_vrf_name":S][,"mpls_vpn_rd":S]
 *    [,"application_name":S][,"post_nat_src_addr":IP][,"post_nat_dst_addr":IP][,"post_nat_src_port":N]
 *    [,"post_nat_dst_port":N][,"reverse_bytes":N][,"reverse_packets":N][,"<extra key>":V]...}
 *
 * Value rendering, as GoFlow2 does it:
 * - every field is always present (no omitempty); absent addresses are "" and empty lists are [];
 * - MACs "aa:bb:cc:dd:ee:ff" (lower case, 00:00:00:00:00:00 when unknown);
 * - `etype`: "IPv4" | "IPv6" | "ARP", and "" for any other value (GoFlow2's map lookup miss);
 * - `proto`: the IANA keyword table of GoFlow2's render.go (0 "HOPOPT" ... 145 "NSH"; note 58 is
 *   "IPv6-ICMP"), "unassigned" for 146–252, "experimental" for 253–254, "reserved" for 255;
 * - `src_net`/`dst_net`: the address masked to the prefix length, "addr/len" (netip.Prefix.String():
 *   "10.0.0.0/24", "0.0.0.0/0", "2001:db8::/32"), and "invalid Prefix" when the address is absent or the
 *   length is too long for its family;
 * - times: integer nanoseconds (0 when unknown); counters: exact integers (bigint digits above 2^53).
 * Our additions: `src_sgt`/`dst_sgt`/`flow_direction` only when not null, `switch_id` always,
 * `in_if_name`/`out_if_name` only when not empty, the VRF ids when not null and the names resolved from
 * options data (VRF names, route distinguisher, application name) when not empty, NAT (post-translation
 * addresses and ports) and RFC 5103 reverse counters only when sent, then each `extra` entry (a key that would repeat an
 * emitted field is skipped). Strings are JSON-escaped (GoFlow2 prints its strings raw, but its strings
 * never need escaping; ours may).
 */

import { ipv4Text, writeIPv4, writeOctet } from "../core/address.ts";
import type { Counter, FlowRecord } from "../core/flow.ts";
import { batchBuffers } from "../pipeline/buffer-pool.ts";

// ---------------------------------------------------------------------------------------------------------
// Name tables (GoFlow2 producer/proto/render.go)

const PROTO_NAMES: readonly string[] = [
  "HOPOPT",
  "ICMP",
  "IGMP",
  "GGP",
  "IPv4",
  "ST",
  "TCP",
  "CBT",
  "EGP",
  "IGP", // 0-9
  "BBN-RCC-MON",
  "NVP-II",
  "PUP",
  "ARGUS",
  "EMCON",
  "XNET",
  "CHAOS",
  "UDP",
  "MUX",
  "DCN-MEAS", // 10-19
  "HMP",
  "PRM",
  "XNS-IDP",
  "TRUNK-1",
  "TRUNK-2",
  "LEAF-1",
  "LEAF-2",
  "RDP",
  "IRTP",
  "ISO-TP4", // 20-29
  "NETBLT",
  "MFE-NSP",
  "MERIT-INP",
  "DCCP",
  "3PC",
  "IDPR",
  "XTP",
  "DDP",
  "IDPR-CMTP",
  "TP++", // 30-39
  "IL",
  "IPv6",
  "SDRP",
  "IPv6-Route",
  "IPv6-Frag",
  "IDRP",
  "RSVP",
  "GRE",
  "DSR",
  "BNA", // 40-49
  "ESP",
  "AH",
  "I-NLSP",
  "SWIPE",
  "NARP",
  "Min-IPv4",
  "TLSP",
  "SKIP",
  "IPv6-ICMP",
  "IPv6-NoNxt", // 50-59
  "IPv6-Opts",
  "any-host-internal-protocol",
  "CFTP",
  "any-local-network",
  "SAT-EXPAK",
  "KRYPTOLAN", // 60-65
  "RVD",
  "IPPC",
  "any-distributed-file-system",
  "SAT-MON",
  "VISA",
  "IPCV",
  "CPNX",
  "CPHB",
  "WSN", // 66-74
  "PVP",
  "BR-SAT-MON",
  "SUN-ND",
  "WB-MON",
  "WB-EXPAK",
  "ISO-IP",
  "VMTP",
  "SECURE-VMTP",
  "VINES", // 75-83
  "IPTM",
  "NSFNET-IGP",
  "DGP",
  "TCF",
  "EIGRP",
  "OSPFIGP",
  "Sprite-RPC",
  "LARP",
  "MTP",
  "AX.25", // 84-93
  "IPIP",
  "MICP",
  "SCC-SP",
  "ETHERIP",
  "ENCAP",
  "any-private-encryption-scheme",
  "GMTP",
  "IFMP", // 94-101
  "PNNI",
  "PIM",
  "ARIS",
  "SCPS",
  "QNX",
  "A/N",
  "IPComp",
  "SNP",
  "Compaq-Peer",
  "IPX-in-IP",
  "VRRP", // 102-112
  "PGM",
  "any-0-hop-protocol",
  "L2TP",
  "DDX",
  "IATP",
  "STP",
  "SRP",
  "UTI",
  "SMP",
  "SM",
  "PTP", // 113-123
  "ISIS over IPv4",
  "FIRE",
  "CRTP",
  "CRUDP",
  "SSCOPMCE",
  "IPLT",
  "SPS",
  "PIPE",
  "SCTP",
  "FC", // 124-133
  "RSVP-E2E-IGNORE",
  "Mobility Header",
  "UDPLite",
  "MPLS-in-IP",
  "manet",
  "HIP",
  "Shim6",
  "WESP", // 134-141
  "ROHC",
  "Ethernet",
  "AGGFRAG",
  "NSH", // 142-145
];

/** GoFlow2's rendering of an IP protocol number (render.go ProtoName). */
export function protoName(proto: number): string {
  if (proto >= 0 && proto < PROTO_NAMES.length) return PROTO_NAMES[proto]!;
  if (proto >= 146 && proto <= 252) return "unassigned";
  if (proto === 253 || proto === 254) return "experimental";
  if (proto === 255) return "reserved";
  return "unknown";
}

/** GoFlow2's rendering of an EtherType: a name for IPv4/IPv6/ARP, "" otherwise. */
export function etypeName(etype: number): string {
  if (etype === 0x0800) return "IPv4";
  if (etype === 0x86dd) return "IPv6";
  if (etype === 0x0806) return "ARP";
  return "";
}

// Pre-quoted so the hot path concatenates constants.
const PROTO_Q: readonly string[] = Array.from({ length: 256 }, (_, i) => `"${protoName(i)}"`);

function protoQ(proto: number): string {
  return proto >= 0 && proto < 256 && Number.isInteger(proto) ? PROTO_Q[proto]! : `"${protoName(proto)}"`;
}

function etypeQ(etype: number): string {
  if (etype === 0x0800) return '"IPv4"';
  if (etype === 0x86dd) return '"IPv6"';
  if (etype === 0x0806) return '"ARP"';
  return '""';
}

// ---------------------------------------------------------------------------------------------------------
// Scalars

const HEX2: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const ZERO_MAC = "00:00:00:00:00:00";
/** "aa:bb" for each 16-bit value, filled lazily (at most 65536 short strings). */
const HEX_PAIRS: (string | undefined)[] = new Array(65536).fill(undefined);

function hexPair(v: number): string {
  let s = HEX_PAIRS[v];
  if (s === undefined) {
    s = `${HEX2[v >>> 8]}:${HEX2[v & 0xff]}`;
    HEX_PAIRS[v] = s;
  }
  return s;
}

/** A 48-bit MAC (as an integer) rendered "aa:bb:cc:dd:ee:ff". */
export function macString(mac: number): string {
  if (mac === 0) return ZERO_MAC;
  // mac >>> 16 and mac & 0xffff take ToUint32 (exact modulo 2^32 for integers below 2^53).
  return `${hexPair(Math.floor(mac / 4294967296) & 0xffff)}:${hexPair(mac >>> 16)}:${hexPair(mac & 0xffff)}`;
}

const PAD6 = ["000000", "00000", "0000", "000", "00", "0", ""];

/**
 * Milliseconds since the epoch as integer nanoseconds, exact: integer ms get "000000" appended (the digits
 * are built from two small integers, never through a float multiplication); a fraction is rounded to the
 * nearest nanosecond of the double's exact value.
 */
export function msToNs(ms: number): string {
  if (ms === 0) return "0";
  let whole = Math.floor(ms);
  let frac = 0;
  if (whole !== ms) {
    if (!Number.isFinite(ms)) return "0";
    frac = Math.round((ms - whole) * 1e6); // ms - floor(ms) is exact in binary floating point
    if (frac >= 1e6) {
      whole += 1;
      frac -= 1e6;
    }
  }
  const f = frac === 0 ? "000000" : `${PAD6[`${frac}`.length]}${frac}`;
  if (whole === 0) return `${frac}`;
  if (whole < 0 || whole >= 1e15) return `${BigInt(whole)}${f}`;
  if (whole < 1e6) return `${whole}${f}`;
  const hi = Math.floor(whole / 1e6);
  const lo = whole - hi * 1e6;
  const los = `${lo}`;
  return `${hi}${PAD6[los.length]}${los}${f}`;
}

/** A counter as exact integer text. */
export function counterString(v: Counter): string {
  if (typeof v === "bigint") return v.toString();
  if (v < 1e21 && v > -1e21) return `${v}`;
  return Number.isFinite(v) ? BigInt(v).toString() : "0";
}

/** A JSON string literal. Plain printable ASCII is quoted as is; anything else goes through JSON.stringify. */
export function jsonString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 34 || c === 92 || c > 0x7e) return JSON.stringify(s);
  }
  return `"${s}"`;
}

// ---------------------------------------------------------------------------------------------------------
// Networks: netip.Addr.Prefix(len).String()

const INVALID_PREFIX = '"invalid Prefix"';

/** IPv4 text into 4 octets (scratch); false when not a dotted quad. */
function parseIPv4(
  s: string,
  start: number,
  end: number,
  out: Uint8Array | Uint16Array,
  at: number,
): boolean {
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || parts === 3) return false;
      out[at + parts++] = part;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return false;
    } else {
      return false;
    }
  }
  if (digits === 0 || parts !== 3) return false;
  out[at + 3] = part;
  return true;
}

/** IPv4 dotted-quad text as an unsigned 32-bit number; −1 when `s` is not one. */
export function ipv4Number(s: string): number {
  if (!parseIPv4(s, 0, s.length, v4scratch, 0)) return -1;
  const o = v4scratch;
  return ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

const v4tail = new Uint8Array(4);

/** Parses IPv6 text (with an optional dotted IPv4 tail, zone ignored) into 8 groups; false on bad input. */
function parseIPv6(s: string, out: Uint16Array): boolean {
  let end = s.indexOf("%");
  if (end < 0) end = s.length;
  const head: number[] = [];
  const tail: number[] = [];
  let cur = head;
  let sawDouble = false;
  let i = 0;
  if (s.startsWith("::")) {
    sawDouble = true;
    cur = tail;
    i = 2;
  }
  while (i < end) {
    // one group, or a dotted IPv4 tail
    let j = i;
    let group = 0;
    while (j < end && j - i < 5) {
      const d = hexDigit(s.charCodeAt(j));
      if (d < 0) break;
      group = group * 16 + d;
      j++;
    }
    if (j < end && s.charCodeAt(j) === 46) {
      if (!parseIPv4(s, i, end, v4tail, 0)) return false;
      cur.push((v4tail[0]! << 8) | v4tail[1]!, (v4tail[2]! << 8) | v4tail[3]!);
      i = end;
      break;
    }
    if (j === i || j - i > 4) return false;
    cur.push(group);
    if (j === end) {
      i = end;
      break;
    }
    if (s.charCodeAt(j) !== 58) return false;
    if (j + 1 < end && s.charCodeAt(j + 1) === 58) {
      if (sawDouble) return false;
      sawDouble = true;
      cur = tail;
      i = j + 2;
    } else {
      i = j + 1;
      if (i === end) return false;
    }
  }
  const n = head.length + tail.length;
  if (sawDouble ? n > 7 : n !== 8) return false;
  out.fill(0);
  for (let k = 0; k < head.length; k++) out[k] = head[k]!;
  for (let k = 0; k < tail.length; k++) out[8 - tail.length + k] = tail[k]!;
  return true;
}

/** Go netip's IPv6 text: RFC 5952 (longest run of ≥2 zero groups compressed), ::ffff:a.b.c.d for 4in6. */
function ipv6String(g: Uint16Array): string {
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${g[6]! >>> 8}.${g[6]! & 0xff}.${g[7]! >>> 8}.${g[7]! & 0xff}`;
  }
  let zs = -1;
  let ze = -1;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i >= 2 && j - i > ze - zs) {
      zs = i;
      ze = j;
    }
    if (j > i) i = j;
  }
  let s = "";
  for (let i = 0; i < 8; i++) {
    if (i === zs) {
      s += "::";
      i = ze - 1;
      continue;
    }
    if (s !== "" && !s.endsWith(":")) s += ":";
    s += g[i]!.toString(16);
  }
  return s;
}

const v4scratch = new Uint8Array(4);
const v6scratch = new Uint16Array(8);

function maskOctet(octet: number, bits: number): number {
  return bits >= 8 ? octet : bits <= 0 ? 0 : octet & (0xff << (8 - bits));
}

/** `"addr/len"` as GoFlow2's NetworkRenderer prints it (quoted JSON string). */
export function networkString(addr: string, len: number): string {
  if (addr === "" || !(len >= 0) || !Number.isInteger(len)) return INVALID_PREFIX;
  if (addr.indexOf(":") < 0) {
    if (!parseIPv4(addr, 0, addr.length, v4scratch, 0) || len > 32) return INVALID_PREFIX;
    if (len === 0) return '"0.0.0.0/0"';
    const o = v4scratch;
    return `"${maskOctet(o[0]!, len)}.${maskOctet(o[1]!, len - 8)}.${maskOctet(o[2]!, len - 16)}.${maskOctet(
      o[3]!,
      len - 24,
    )}/${len}"`;
  }
  if (len > 128 || !parseIPv6(addr, v6scratch)) return INVALID_PREFIX;
  if (len === 0) return '"::/0"';
  for (let i = 0; i < 8; i++) {
    const bits = len - i * 16;
    if (bits >= 16) continue;
    v6scratch[i] = bits <= 0 ? 0 : v6scratch[i]! & (0xffff << (16 - bits));
  }
  return `"${ipv6String(v6scratch)}/${len}"`;
}

// ---------------------------------------------------------------------------------------------------------
// The byte writer. Building the line as a JS string and converting it costs more than writing the bytes:
// a record is ~100 concatenated pieces and V8 flattens such a rope slowly. So the encoder writes ASCII
// straight into one growing buffer (constant keys are pre-encoded and copied, numbers are written digit by
// digit): a scratch buffer for single records, a pooled transferable buffer for a batch (beginBatch).

const ENC = new TextEncoder();
const K = (text: string): Uint8Array => ENC.encode(text);

let out = new Uint8Array(1 << 20);
let pos = 0;

function ensure(extra: number): void {
  if (pos + extra <= out.length) return;
  let size = out.length * 2;
  while (size < pos + extra) size *= 2;
  // from the batch buffer pool: a batch's bytes are returned in (and transferred with) this buffer
  const next = new Uint8Array(batchBuffers.take(size).buffer);
  next.set(out.subarray(0, pos));
  out = next;
}

function put(bytes: Uint8Array): void {
  const n = bytes.length;
  if (n > 12) {
    out.set(bytes, pos);
  } else {
    const o = out;
    const p = pos;
    for (let i = 0; i < n; i++) o[p + i] = bytes[i]!;
  }
  pos += n;
}

/** ASCII text we produce ourselves (digits, names): no escaping needed. */
function putAscii(text: string): void {
  ensure(text.length);
  const o = out;
  const p = pos;
  for (let i = 0; i < text.length; i++) o[p + i] = text.charCodeAt(i);
  pos += text.length;
}

/** A non-negative integer below 2^32 (the fast path); anything else through its exact text. */
function putUint(n: number): void {
  if (n < 10 && n >= 0) {
    out[pos++] = 48 + n;
    return;
  }
  if (n < 2147483648 && n > 0 && (n | 0) === n) {
    const len =
      n < 100
        ? 2
        : n < 1000
          ? 3
          : n < 10000
            ? 4
            : n < 100000
              ? 5
              : n < 1000000
                ? 6
                : n < 10000000
                  ? 7
                  : n < 100000000
                    ? 8
                    : n < 1000000000
                      ? 9
                      : 10;
    const o = out;
    let p = pos + len;
    pos = p;
    let v = n | 0;
    while (v >= 10) {
      const q = (v / 10) | 0;
      o[--p] = 48 + v - q * 10;
      v = q;
    }
    o[--p] = 48 + v;
    return;
  }
  putAscii(Number.isFinite(n) ? counterString(n) : "0");
}

function putCounter(v: Counter): void {
  if (typeof v === "number") putUint(v);
  else putAscii(v.toString());
}

/**
 * Integer nanoseconds from ms; integer ms (the common case) written as digits + six digits of the
 * millisecond remainder + "000000", never through a float multiplication.
 */
function putNs(ms: number): void {
  if (ms === 0) {
    out[pos++] = 48;
  } else if (ms >= 1e6 && ms < 1e15 && Math.floor(ms) === ms) {
    const hi = Math.floor(ms / 1e6);
    putUint(hi);
    let lo = (ms - hi * 1e6) | 0;
    const o = out;
    const p = pos;
    for (let i = 5; i >= 0; i--) {
      const q = (lo / 10) | 0;
      o[p + i] = 48 + lo - q * 10;
      lo = q;
    }
    for (let i = 6; i < 12; i++) o[p + i] = 48;
    pos = p + 12;
  } else {
    putAscii(msToNs(ms));
  }
}

/**
 * A JSON string: printable ASCII copied as is, anything else through JSON.stringify and UTF-8. The caller
 * has ensured room for the ASCII case (length + 2); the escaping path ensures for itself.
 */
function putString(text: string): void {
  const n = text.length;
  const o = out;
  const start = pos;
  o[start] = 34;
  let p = start + 1;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 34 || c === 92 || c > 0x7e) {
      putStringSlow(text, start);
      return;
    }
    o[p++] = c;
  }
  o[p] = 34;
  pos = p + 1;
}

function putStringSlow(text: string, start: number): void {
  const json = JSON.stringify(text);
  pos = start;
  ensure(json.length * 3);
  pos += ENC.encodeInto(json, out.subarray(pos)).written;
}

const HEXB = new Uint8Array(512);
for (let i = 0; i < 256; i++) {
  const h = HEX2[i]!;
  HEXB[2 * i] = h.charCodeAt(0);
  HEXB[2 * i + 1] = h.charCodeAt(1);
}
const ZERO_MAC_Q = K(`"${ZERO_MAC}"`);

function putMac(mac: number): void {
  if (mac === 0) {
    put(ZERO_MAC_Q);
    return;
  }
  const hi = Math.floor(mac / 4294967296) & 0xffff;
  const lo = mac >>> 0;
  const o = out;
  const h = HEXB;
  let p = pos;
  o[p] = 34;
  let b = (hi >>> 8) * 2;
  o[p + 1] = h[b]!;
  o[p + 2] = h[b + 1]!;
  o[p + 3] = 58;
  b = (hi & 0xff) * 2;
  o[p + 4] = h[b]!;
  o[p + 5] = h[b + 1]!;
  o[p + 6] = 58;
  b = (lo >>> 24) * 2;
  o[p + 7] = h[b]!;
  o[p + 8] = h[b + 1]!;
  o[p + 9] = 58;
  b = ((lo >>> 16) & 0xff) * 2;
  o[p + 10] = h[b]!;
  o[p + 11] = h[b + 1]!;
  o[p + 12] = 58;
  b = ((lo >>> 8) & 0xff) * 2;
  o[p + 13] = h[b]!;
  o[p + 14] = h[b + 1]!;
  o[p + 15] = 58;
  b = (lo & 0xff) * 2;
  o[p + 16] = h[b]!;
  o[p + 17] = h[b + 1]!;
  o[p + 18] = 34;
  p += 19;
  pos = p;
}

const NET_V4_ZERO = K('"0.0.0.0/0"');

/** `"a.b.c.d"`: an IPv4 address given as an unsigned 32-bit number, quoted (room ensured by the caller). */
function putIPv4(v: number): void {
  out[pos] = 34;
  const p = writeIPv4(out, pos + 1, v);
  out[p] = 34;
  pos = p + 1;
}

/** An IPv4 address (number) masked to `len` bits (an integer 1..32); −1 for any other length. */
function maskV4(v: number, len: number): number {
  if (!(len > 0 && len <= 32 && Number.isInteger(len))) return -1;
  return len === 32 ? v : (v & ~(0xffffffff >>> len)) >>> 0;
}

/** `sAddr`/`tAddr` of a network segment rendered from an IPv4 number (no address text equals it). */
const FROM_NUMBER = "\u0000v4";

/** The IPv4 address `addr` masked to `len` bits (an integer 1..32) as an unsigned number; −1 otherwise. */
function maskedIPv4(addr: string, len: number): number {
  if (!(len > 0 && len <= 32 && Number.isInteger(len))) return -1;
  const v = ipv4Number(addr);
  return v < 0 ? -1 : maskV4(v, len);
}

/** `"a.b.c.d/len"` of a masked IPv4 network (as putNetwork renders it). */
function putIPv4Network(masked: number, len: number): void {
  out[pos] = 34;
  let p = writeIPv4(out, pos + 1, masked);
  out[p++] = 47;
  p = writeOctet(out, p, len);
  out[p] = 34;
  pos = p + 1;
}

function putNetwork(addr: string, len: number): void {
  if (len > 0 && len <= 32 && addr.indexOf(":") < 0 && parseIPv4(addr, 0, addr.length, v4scratch, 0)) {
    const o = v4scratch;
    out[pos++] = 34;
    putUint(maskOctet(o[0]!, len));
    out[pos++] = 46;
    putUint(maskOctet(o[1]!, len - 8));
    out[pos++] = 46;
    putUint(maskOctet(o[2]!, len - 16));
    out[pos++] = 46;
    putUint(maskOctet(o[3]!, len - 24));
    out[pos++] = 47;
    putUint(len);
    out[pos++] = 34;
  } else if (
    len === 0 &&
    addr !== "" &&
    addr.indexOf(":") < 0 &&
    parseIPv4(addr, 0, addr.length, v4scratch, 0)
  ) {
    put(NET_V4_ZERO);
  } else {
    putAscii(networkString(addr, len));
  }
}

function putNumberList(list: readonly number[] | null): void {
  out[pos++] = 91;
  if (list !== null) {
    ensure(list.length * 21);
    for (let i = 0; i < list.length; i++) {
      if (i > 0) out[pos++] = 44;
      putUint(list[i]!);
    }
  }
  out[pos++] = 93;
}

function putStringList(list: readonly string[] | null): void {
  out[pos++] = 91;
  if (list !== null) {
    for (let i = 0; i < list.length; i++) {
      ensure(list[i]!.length * 6 + 4);
      if (i > 0) out[pos++] = 44;
      putString(list[i]!);
    }
  }
  ensure(1);
  out[pos++] = 93;
}

function putValue(v: number | bigint | string | boolean): void {
  switch (typeof v) {
    case "string":
      ensure(v.length + 2);
      putString(v);
      return;
    case "bigint":
      putAscii(v.toString());
      return;
    case "boolean":
      putAscii(v ? "true" : "false");
      return;
    default:
      // putUint writes integers only (a fraction below 10 would come out as its first digit)
      if (v >= 0 && Number.isInteger(v)) putUint(v);
      else putAscii(Number.isFinite(v) ? (Number.isInteger(v) ? counterString(v) : `${v}`) : "null");
  }
}

// Keys, each with its leading separator; `Z` variants carry the value 0 as well.
const TYPE_Q: Record<string, Uint8Array> = {
  NETFLOW_V5: K('{"type":"NETFLOW_V5","time_received_ns":'),
  NETFLOW_V9: K('{"type":"NETFLOW_V9","time_received_ns":'),
  IPFIX: K('{"type":"IPFIX","time_received_ns":'),
  SFLOW_5: K('{"type":"SFLOW_5","time_received_ns":'),
};
const K_SEQ = K(',"sequence_num":');
const K_RATE = K(',"sampling_rate":');
const K_SAMPLER = K(',"sampler_address":');
const K_RATE0_SAMPLER = K(',"sampling_rate":0,"sampler_address":');
const K_START = K(',"time_flow_start_ns":');
const K_END = K(',"time_flow_end_ns":');
const K_BYTES = K(',"bytes":');
const K_PACKETS = K(',"packets":');
const K_SRC = K(',"src_addr":');
const K_DST = K(',"dst_addr":');
/** `,"etype":E,"proto":P,"src_port":` for E in IPv4, IPv6, ARP, "" and every protocol byte. */
const ETYPE_PROTO: readonly (readonly Uint8Array[])[] = [0x0800, 0x86dd, 0x0806, 0].map((e) =>
  PROTO_Q.map((q) => K(`,"etype":${etypeQ(e)},"proto":${q},"src_port":`)),
);
const K_DPORT = K(',"dst_port":');
const K_IN_IF = K(',"in_if":');
const K_OUT_IF = K(',"out_if":');
const K_SRC_MAC = K(',"src_mac":');
const K_DST_MAC = K(',"dst_mac":');

/** Fields written as one block: all zero → one constant copy; otherwise key by key. */
const GROUP1 = [
  "src_vlan",
  "dst_vlan",
  "vlan_id",
  "ip_tos",
  "forwarding_status",
  "ip_ttl",
  "ip_flags",
] as const;
const GROUP2 = [
  "icmp_type",
  "icmp_code",
  "ipv6_flow_label",
  "fragment_id",
  "fragment_offset",
  "src_as",
  "dst_as",
] as const;
const G1_ZERO_TCP = K(`${GROUP1.map((k) => `,"${k}":0`).join("")},"tcp_flags":`);
const G1_KEYS = GROUP1.map((k) => K(`,"${k}":`));
const K_TCP = K(',"tcp_flags":');
const G2_ZERO_NEXT_HOP = K(`${GROUP2.map((k) => `,"${k}":0`).join("")},"next_hop":`);
const G2_KEYS = GROUP2.map((k) => K(`,"${k}":`));
const K_NEXT_HOP = K(',"next_hop":');
const K_NEXT_HOP_AS = K(',"next_hop_as":');
const K_NEXT_HOP_AS0_SRC_NET = K(',"next_hop_as":0,"src_net":');
const K_SRC_NET = K(',"src_net":');
const K_DST_NET = K(',"dst_net":');
const K_BGP_NH = K(',"bgp_next_hop":');
const TAIL_DEFAULT = K(
  ',"bgp_next_hop":"","bgp_communities":[],"as_path":[],"mpls_ttl":[],"mpls_label":[],"mpls_ip":[],' +
    '"observation_domain_id":0,"observation_point_id":0,"layer_stack":[],"layer_size":[],' +
    '"ipv6_routing_header_addresses":[],"ipv6_routing_header_seg_left":0',
);
const K_COMMUNITIES = K(',"bgp_communities":');
const K_AS_PATH = K(',"as_path":');
const K_MPLS_TTL = K(',"mpls_ttl":');
const K_MPLS_LABEL = K(',"mpls_label":');
const K_MPLS_IP = K(',"mpls_ip":');
const K_OBS_DOMAIN = K(',"observation_domain_id":');
const K_OBS_POINT = K(',"observation_point_id":');
const K_RH_ADDRESSES = K(',"layer_stack":[],"layer_size":[],"ipv6_routing_header_addresses":');
const K_RH_SEG_LEFT = K(',"ipv6_routing_header_seg_left":');
const K_SRC_SGT = K(',"src_sgt":');
const K_DST_SGT = K(',"dst_sgt":');
const K_SWITCH = K(',"switch_id":');
const K_DIRECTION = K(',"flow_direction":');
const K_IN_NAME = K(',"in_if_name":');
const K_OUT_NAME = K(',"out_if_name":');
const K_NAT_SRC = K(',"post_nat_src_addr":');
const K_NAT_DST = K(',"post_nat_dst_addr":');
const K_NAT_SRC_PORT = K(',"post_nat_src_port":');
const K_NAT_DST_PORT = K(',"post_nat_dst_port":');
const K_REV_BYTES = K(',"reverse_bytes":');
const K_REV_PACKETS = K(',"reverse_packets":');

const K_IN_VRF_ID = K(',"in_vrf_id":');
const K_OUT_VRF_ID = K(',"out_vrf_id":');
const K_IN_VRF_NAME = K(',"in_vrf_name":');
const K_OUT_VRF_NAME = K(',"out_vrf_name":');
const K_RD = K(',"mpls_vpn_rd":');
const K_APP_NAME = K(',"application_name":');

/** The options-dictionary fields (issue 18), each only when known; off the common path (no VRF, no app). */
function putDictionaries(r: FlowRecord): void {
  const inName = r.in_vrf_name;
  const outName = r.out_vrf_name;
  const rd = r.mpls_vpn_rd;
  const app = r.application_name;
  ensure(256 + 6 * (inName.length + outName.length + rd.length + app.length));
  if (r.in_vrf_id !== null) {
    put(K_IN_VRF_ID);
    putUint(r.in_vrf_id);
  }
  if (r.out_vrf_id !== null) {
    put(K_OUT_VRF_ID);
    putUint(r.out_vrf_id);
  }
  if (inName !== "") {
    put(K_IN_VRF_NAME);
    putString(inName);
  }
  if (outName !== "") {
    put(K_OUT_VRF_NAME);
    putString(outName);
  }
  if (rd !== "") {
    put(K_RD);
    putString(rd);
  }
  if (app !== "") {
    put(K_APP_NAME);
    putString(app);
  }
}

/** Field names we emit; an `extra` key equal to one of them is skipped (no duplicate keys). */
const EMITTED = new Set([
  "type",
  "time_received_ns",
  "sequence_num",
  "sampling_rate",
  "sampler_address",
  "time_flow_start_ns",
  "time_flow_end_ns",
  "bytes",
  "packets",
  "src_addr",
  "dst_addr",
  "etype",
  "proto",
  "src_port",
  "dst_port",
  "in_if",
  "out_if",
  "src_mac",
  "dst_mac",
  ...GROUP1,
  "tcp_flags",
  ...GROUP2,
  "next_hop",
  "next_hop_as",
  "src_net",
  "dst_net",
  "bgp_next_hop",
  "bgp_communities",
  "as_path",
  "mpls_ttl",
  "mpls_label",
  "mpls_ip",
  "observation_domain_id",
  "observation_point_id",
  "layer_stack",
  "layer_size",
  "ipv6_routing_header_addresses",
  "ipv6_routing_header_seg_left",
  "src_sgt",
  "dst_sgt",
  "switch_id",
  "flow_direction",
  "in_if_name",
  "out_if_name",
  "in_vrf_id",
  "out_vrf_id",
  "in_vrf_name",
  "out_vrf_name",
  "mpls_vpn_rd",
  "application_name",
  "post_nat_src_addr",
  "post_nat_dst_addr",
  "post_nat_src_port",
  "post_nat_dst_port",
  "reverse_bytes",
  "reverse_packets",
]);

function emptyList(list: readonly number[] | null): boolean {
  return list === null || list.length === 0;
}

// ---------------------------------------------------------------------------------------------------------
// Segment caches. Most of a line is constant text and values that repeat from one record to the next (the
// exporter, the datagram's receive time, interfaces, MACs, the all-defaults tail), so the record is cut into
// segments, each the bytes between two fast-changing values. A segment's key is the record fields it is
// rendered from; when they equal (===) those of the last rendered occurrence, the bytes are copied from that
// occurrence, which is still in the scratch buffer earlier in the same batch (one `copyWithin`, no
// allocation, nothing saved on a miss). Rendering is a pure function of the key values (±0 render alike),
// so a copy is byte-identical to a fresh rendering. Every entry point starts a new batch at pos 0 and
// invalidates all segments (`resetSegments`); growing the buffer keeps earlier bytes at their offsets.

function copySeg(start: number, end: number): void {
  out.copyWithin(pos, start, end);
  pos += end - start;
}

/** A: `{"type":T,"time_received_ns":N,"sequence_num":` by (type, time_received_ms). */
let aStart = -1;
let aEnd = 0;
let aType = "";
let aMs = 0;
/** B1: `,"sampling_rate":N,"sampler_address":S,"time_flow_start_ns":` by (sampling_rate, sampler_address). */
let b1Start = -1;
let b1End = 0;
let b1Rate = 0;
let b1Sampler = "";
/** B2: `N,"time_flow_end_ns":N,"bytes":` by (time_flow_start_ms, time_flow_end_ms). */
let b2Start = -1;
let b2End = 0;
let b2First = 0;
let b2Last = 0;
/** C: `,"dst_addr":S,"etype":E,"proto":P,"src_port":` by (dst_addr or dst_v4, etype, proto). */
let cStart = -1;
let cEnd = 0;
let cDst = "";
let cDst4 = -1;
let cEtype = 0;
let cProto = 0;
/** D1: `,"in_if":N,"out_if":N,"src_mac":M,"dst_mac":M,` ... `"ip_flags":N,"tcp_flags":`. */
let d1Start = -1;
let d1End = 0;
let d1InIf = 0;
let d1OutIf = 0;
let d1SrcMac = 0;
let d1DstMac = 0;
let d1SrcVlan = 0;
let d1DstVlan = 0;
let d1VlanId = 0;
let d1Tos = 0;
let d1Fwd = 0;
let d1Ttl = 0;
let d1Flags = 0;
/** D2: `,"icmp_type":N,` ... `"next_hop":S,"next_hop_as":N,"src_net":`. */
let d2Start = -1;
let d2End = 0;
let d2IcmpType = 0;
let d2IcmpCode = 0;
let d2Label = 0;
let d2FragId = 0;
let d2FragOff = 0;
let d2SrcAs = 0;
let d2DstAs = 0;
let d2NextHop = "";
let d2NextHop4 = -1;
let d2NextHopAs = 0;
/** S: `NET,"dst_net":` by (src_addr, src_net), or by the masked IPv4 network (FROM_NUMBER: from src_v4). */
let sStart = -1;
let sEnd = 0;
let sAddr = "";
let sLen = 0;
/**
 * The masked IPv4 network (as an unsigned 32-bit number) the S bytes were rendered from; −2 for an IPv4
 * number with length 0 ("0.0.0.0/0", writeNumberNetS); −1 for anything else (keyed by the text alone).
 */
let sMasked = -1;
/** T: `NET` by (dst_addr, dst_net), or by the masked IPv4 network like S. */
let tStart = -1;
let tEnd = 0;
let tAddr = "";
let tLen = 0;
let tMasked = -1;
/**
 * E: `,"bgp_next_hop":S,` ... `"switch_id":S` + the optional fields up to `out_if_name`, by those fields;
 * only while the three lists are empty (a list is not a value: its contents may change under one reference).
 */
let eStart = -1;
let eEnd = 0;
let eBgpNh = "";
let eObsDomain = 0;
let eObsPoint = 0;
let eSrcSgt: number | null = null;
let eDstSgt: number | null = null;
let eSwitch = "";
let eDirection: number | null = null;
let eInName = "";
let eOutName = "";

function resetSegments(): void {
  aStart = -1;
  b1Start = -1;
  b2Start = -1;
  cStart = -1;
  d1Start = -1;
  d2Start = -1;
  sStart = -1;
  tStart = -1;
  eStart = -1;
}

/**
 * `"a.b.c.d/len",` + `"dst_net":` (segment S) for an IPv4 source given as a number. Segment key: the masked
 * network and length, with sAddr = FROM_NUMBER; length 0 renders "0.0.0.0/0" (key −2); a length no IPv4
 * prefix has goes through the text path and is not kept as a segment.
 */
function writeNumberNetS(v: number, len: number): void {
  const masked = len === 0 ? -2 : maskV4(v, len);
  if (masked === -1) {
    putNetwork(ipv4Text(v), len);
    put(K_DST_NET);
    sStart = -1;
    return;
  }
  if (sStart >= 0 && sAddr === FROM_NUMBER && masked === sMasked && len === sLen) {
    copySeg(sStart, sEnd);
    return;
  }
  sStart = pos;
  if (masked >= 0) putIPv4Network(masked, len);
  else put(NET_V4_ZERO);
  put(K_DST_NET);
  sEnd = pos;
  sLen = len;
  sMasked = masked;
  sAddr = FROM_NUMBER;
}

/** `"a.b.c.d/len"` (segment T) for an IPv4 destination given as a number; keyed as writeNumberNetS. */
function writeNumberNetT(v: number, len: number): void {
  const masked = len === 0 ? -2 : maskV4(v, len);
  if (masked === -1) {
    putNetwork(ipv4Text(v), len);
    tStart = -1;
    return;
  }
  if (tStart >= 0 && tAddr === FROM_NUMBER && masked === tMasked && len === tLen) {
    copySeg(tStart, tEnd);
    return;
  }
  tStart = pos;
  if (masked >= 0) putIPv4Network(masked, len);
  else put(NET_V4_ZERO);
  tEnd = pos;
  tLen = len;
  tMasked = masked;
  tAddr = FROM_NUMBER;
}

/** Appends one record's JSON object to the scratch buffer. */
function writeRecord(r: FlowRecord): void {
  const sampler = r.sampler_address;
  // IPv4 addresses decoded from the wire are numbers (written digit by digit, no string); text otherwise
  const src4 = r.src_v4;
  const dst4 = r.dst_v4;
  const nextHop4 = r.next_hop_v4;
  const src = src4 >= 0 ? "" : r.src_addr_text;
  const dst = dst4 >= 0 ? "" : r.dst_addr_text;
  const nextHop = nextHop4 >= 0 ? "" : r.next_hop_text;
  const bgpNh = r.bgp_next_hop;
  const switchId = r.switch_id;
  const inName = r.in_if_name;
  const outName = r.out_if_name;
  // One bound for the whole record: every fixed-size fast path fits in 2048 bytes, a string takes at most
  // 6 bytes per UTF-16 unit (+ quotes); slow paths (bigints, lists, extras, escapes) ensure for themselves.
  ensure(
    2048 +
      6 *
        (sampler.length +
          src.length +
          dst.length +
          nextHop.length +
          bgpNh.length +
          switchId.length +
          inName.length +
          outName.length),
  );

  const type = r.type;
  const received = r.time_received_ms;
  if (aStart >= 0 && type === aType && received === aMs) {
    copySeg(aStart, aEnd);
  } else {
    aStart = pos;
    put(TYPE_Q[type] ?? K(`{"type":${jsonString(String(type))},"time_received_ns":`));
    putNs(received);
    put(K_SEQ);
    aEnd = pos;
    aType = type;
    aMs = received;
  }
  putUint(r.sequence_num);

  const rate = r.sampling_rate;
  if (b1Start >= 0 && rate === b1Rate && sampler === b1Sampler) {
    copySeg(b1Start, b1End);
  } else {
    b1Start = pos;
    if (rate === 0) {
      put(K_RATE0_SAMPLER);
    } else {
      put(K_RATE);
      putUint(rate);
      put(K_SAMPLER);
    }
    putString(sampler);
    put(K_START);
    b1End = pos;
    b1Rate = rate;
    b1Sampler = sampler;
  }

  const first = r.time_flow_start_ms;
  const last = r.time_flow_end_ms;
  if (b2Start >= 0 && first === b2First && last === b2Last) {
    copySeg(b2Start, b2End);
  } else {
    b2Start = pos;
    putNs(first);
    put(K_END);
    putNs(last);
    put(K_BYTES);
    b2End = pos;
    b2First = first;
    b2Last = last;
  }
  putCounter(r.bytes);
  put(K_PACKETS);
  putCounter(r.packets);
  put(K_SRC);
  if (src4 >= 0) putIPv4(src4);
  else putString(src);

  const etype = r.etype;
  const proto = r.proto;
  if (cStart >= 0 && dst4 === cDst4 && dst === cDst && etype === cEtype && proto === cProto) {
    copySeg(cStart, cEnd);
  } else {
    cStart = pos;
    put(K_DST);
    if (dst4 >= 0) putIPv4(dst4);
    else putString(dst);
    if (proto >= 0 && proto < 256 && (proto | 0) === proto) {
      put(ETYPE_PROTO[etype === 0x0800 ? 0 : etype === 0x86dd ? 1 : etype === 0x0806 ? 2 : 3]![proto]!);
    } else {
      putAscii(`,"etype":${etypeQ(etype)},"proto":${protoQ(proto)},"src_port":`);
    }
    cEnd = pos;
    cDst = dst;
    cDst4 = dst4;
    cEtype = etype;
    cProto = proto;
  }
  putUint(r.src_port);
  put(K_DPORT);
  putUint(r.dst_port);

  const inIf = r.in_if;
  const outIf = r.out_if;
  const srcMac = r.src_mac;
  const dstMac = r.dst_mac;
  const srcVlan = r.src_vlan;
  const dstVlan = r.dst_vlan;
  const vlanId = r.vlan_id;
  const tos = r.ip_tos;
  const fwd = r.forwarding_status;
  const ttl = r.ip_ttl;
  const flags = r.ip_flags;
  if (
    d1Start >= 0 &&
    inIf === d1InIf &&
    outIf === d1OutIf &&
    srcMac === d1SrcMac &&
    dstMac === d1DstMac &&
    srcVlan === d1SrcVlan &&
    dstVlan === d1DstVlan &&
    vlanId === d1VlanId &&
    tos === d1Tos &&
    fwd === d1Fwd &&
    ttl === d1Ttl &&
    flags === d1Flags
  ) {
    copySeg(d1Start, d1End);
  } else {
    d1Start = pos;
    put(K_IN_IF);
    putUint(inIf);
    put(K_OUT_IF);
    putUint(outIf);
    put(K_SRC_MAC);
    putMac(srcMac);
    put(K_DST_MAC);
    putMac(dstMac);
    if (
      srcVlan === 0 &&
      dstVlan === 0 &&
      vlanId === 0 &&
      tos === 0 &&
      fwd === 0 &&
      ttl === 0 &&
      flags === 0
    ) {
      put(G1_ZERO_TCP);
    } else {
      put(G1_KEYS[0]!);
      putUint(srcVlan);
      put(G1_KEYS[1]!);
      putUint(dstVlan);
      put(G1_KEYS[2]!);
      putUint(vlanId);
      put(G1_KEYS[3]!);
      putUint(tos);
      put(G1_KEYS[4]!);
      putUint(fwd);
      put(G1_KEYS[5]!);
      putUint(ttl);
      put(G1_KEYS[6]!);
      putUint(flags);
      put(K_TCP);
    }
    d1End = pos;
    d1InIf = inIf;
    d1OutIf = outIf;
    d1SrcMac = srcMac;
    d1DstMac = dstMac;
    d1SrcVlan = srcVlan;
    d1DstVlan = dstVlan;
    d1VlanId = vlanId;
    d1Tos = tos;
    d1Fwd = fwd;
    d1Ttl = ttl;
    d1Flags = flags;
  }
  putUint(r.tcp_flags);

  const icmpType = r.icmp_type;
  const icmpCode = r.icmp_code;
  const label = r.ipv6_flow_label;
  const fragId = r.fragment_id;
  const fragOff = r.fragment_offset;
  const srcAs = r.src_as;
  const dstAs = r.dst_as;
  const nextHopAs = r.next_hop_as;
  if (
    d2Start >= 0 &&
    nextHop4 === d2NextHop4 &&
    nextHop === d2NextHop &&
    nextHopAs === d2NextHopAs &&
    icmpType === d2IcmpType &&
    icmpCode === d2IcmpCode &&
    label === d2Label &&
    fragId === d2FragId &&
    fragOff === d2FragOff &&
    srcAs === d2SrcAs &&
    dstAs === d2DstAs
  ) {
    copySeg(d2Start, d2End);
  } else {
    d2Start = pos;
    if (
      icmpType === 0 &&
      icmpCode === 0 &&
      label === 0 &&
      fragId === 0 &&
      fragOff === 0 &&
      srcAs === 0 &&
      dstAs === 0
    ) {
      put(G2_ZERO_NEXT_HOP);
    } else {
      put(G2_KEYS[0]!);
      putUint(icmpType);
      put(G2_KEYS[1]!);
      putUint(icmpCode);
      put(G2_KEYS[2]!);
      putUint(label);
      put(G2_KEYS[3]!);
      putUint(fragId);
      put(G2_KEYS[4]!);
      putUint(fragOff);
      put(G2_KEYS[5]!);
      putUint(srcAs);
      put(G2_KEYS[6]!);
      putUint(dstAs);
      put(K_NEXT_HOP);
    }
    if (nextHop4 >= 0) putIPv4(nextHop4);
    else putString(nextHop);
    if (nextHopAs === 0) {
      put(K_NEXT_HOP_AS0_SRC_NET);
    } else {
      put(K_NEXT_HOP_AS);
      putUint(nextHopAs);
      put(K_SRC_NET);
    }
    d2End = pos;
    d2NextHop = nextHop;
    d2NextHop4 = nextHop4;
    d2NextHopAs = nextHopAs;
    d2IcmpType = icmpType;
    d2IcmpCode = icmpCode;
    d2Label = label;
    d2FragId = fragId;
    d2FragOff = fragOff;
    d2SrcAs = srcAs;
    d2DstAs = dstAs;
  }

  const srcNet = r.src_net;
  if (src4 >= 0) {
    writeNumberNetS(src4, srcNet);
  } else if (sStart >= 0 && src === sAddr && srcNet === sLen) {
    copySeg(sStart, sEnd);
  } else {
    // Another address of the same IPv4 network renders the same text: key on the masked address too.
    const masked = maskedIPv4(src, srcNet);
    if (sStart >= 0 && masked >= 0 && masked === sMasked && srcNet === sLen) {
      copySeg(sStart, sEnd);
    } else {
      sStart = pos;
      if (masked >= 0) putIPv4Network(masked, srcNet);
      else putNetwork(src, srcNet);
      put(K_DST_NET);
      sEnd = pos;
      sLen = srcNet;
      sMasked = masked;
    }
    sAddr = src;
  }
  const dstNet = r.dst_net;
  if (dst4 >= 0) {
    writeNumberNetT(dst4, dstNet);
  } else if (tStart >= 0 && dst === tAddr && dstNet === tLen) {
    copySeg(tStart, tEnd);
  } else {
    const masked = maskedIPv4(dst, dstNet);
    if (tStart >= 0 && masked >= 0 && masked === tMasked && dstNet === tLen) {
      copySeg(tStart, tEnd);
    } else {
      tStart = pos;
      if (masked >= 0) putIPv4Network(masked, dstNet);
      else putNetwork(dst, dstNet);
      tEnd = pos;
      tLen = dstNet;
      tMasked = masked;
    }
    tAddr = dst;
  }

  const communities = r.bgp_communities;
  const asPath = r.as_path;
  const labels = r.mpls_label;
  const obsDomain = r.observation_domain_id;
  const obsPoint = r.observation_point_id;
  const srcSgt = r.src_sgt;
  const dstSgt = r.dst_sgt;
  const direction = r.flow_direction;
  const mplsTtl = r.mpls_ttl;
  const mplsIp = r.mpls_ip;
  const rhAddresses = r.ipv6_routing_header_addresses;
  const rhSegLeft = r.ipv6_routing_header_seg_left;
  const listsEmpty =
    emptyList(communities) &&
    emptyList(asPath) &&
    emptyList(labels) &&
    emptyList(mplsTtl) &&
    (mplsIp === null || mplsIp.length === 0) &&
    (rhAddresses === null || rhAddresses.length === 0) &&
    rhSegLeft === 0;
  if (
    eStart >= 0 &&
    listsEmpty &&
    switchId === eSwitch &&
    bgpNh === eBgpNh &&
    obsDomain === eObsDomain &&
    obsPoint === eObsPoint &&
    srcSgt === eSrcSgt &&
    dstSgt === eDstSgt &&
    direction === eDirection &&
    inName === eInName &&
    outName === eOutName
  ) {
    copySeg(eStart, eEnd);
  } else {
    const start = pos;
    if (listsEmpty && bgpNh === "" && obsDomain === 0 && obsPoint === 0) {
      put(TAIL_DEFAULT);
    } else {
      put(K_BGP_NH);
      putString(bgpNh);
      put(K_COMMUNITIES);
      putNumberList(communities);
      put(K_AS_PATH);
      putNumberList(asPath);
      put(K_MPLS_TTL);
      putNumberList(mplsTtl);
      put(K_MPLS_LABEL);
      putNumberList(labels);
      put(K_MPLS_IP);
      putStringList(mplsIp);
      put(K_OBS_DOMAIN);
      putUint(obsDomain);
      put(K_OBS_POINT);
      putUint(obsPoint);
      put(K_RH_ADDRESSES);
      putStringList(rhAddresses);
      put(K_RH_SEG_LEFT);
      putUint(rhSegLeft);
    }
    if (srcSgt !== null) {
      put(K_SRC_SGT);
      putUint(srcSgt);
    }
    if (dstSgt !== null) {
      put(K_DST_SGT);
      putUint(dstSgt);
    }
    put(K_SWITCH);
    putString(switchId);
    if (direction !== null) {
      put(K_DIRECTION);
      putUint(direction);
    }
    if (inName !== "") {
      put(K_IN_NAME);
      putString(inName);
    }
    if (outName !== "") {
      put(K_OUT_NAME);
      putString(outName);
    }
    if (listsEmpty) {
      eStart = start;
      eEnd = pos;
      eSwitch = switchId;
      eBgpNh = bgpNh;
      eObsDomain = obsDomain;
      eObsPoint = obsPoint;
      eSrcSgt = srcSgt;
      eDstSgt = dstSgt;
      eDirection = direction;
      eInName = inName;
      eOutName = outName;
    }
  }

  if (r.in_vrf_id !== null || r.out_vrf_id !== null || r.application_name !== "") putDictionaries(r);
  if (
    r.post_nat_src_addr !== "" ||
    r.post_nat_dst_addr !== "" ||
    r.post_nat_src_port !== null ||
    r.post_nat_dst_port !== null ||
    r.reverse_bytes !== null ||
    r.reverse_packets !== null
  )
    writeNatReverse(r);
  const extra = r.extra;
  if (extra !== null) {
    for (const k in extra) {
      if (EMITTED.has(k)) continue;
      ensure(k.length + 32);
      out[pos++] = 44;
      putString(k);
      out[pos++] = 58;
      putValue(extra[k]!);
    }
    ensure(2);
  }
  out[pos++] = 125;
}

/** Our NAT and biflow fields, each only when the exporter sent it. */
function writeNatReverse(r: FlowRecord): void {
  ensure(256 + 6 * (r.post_nat_src_addr.length + r.post_nat_dst_addr.length));
  if (r.post_nat_src_addr !== "") {
    put(K_NAT_SRC);
    putString(r.post_nat_src_addr);
  }
  if (r.post_nat_dst_addr !== "") {
    put(K_NAT_DST);
    putString(r.post_nat_dst_addr);
  }
  if (r.post_nat_src_port !== null) {
    put(K_NAT_SRC_PORT);
    putUint(r.post_nat_src_port);
  }
  if (r.post_nat_dst_port !== null) {
    put(K_NAT_DST_PORT);
    putUint(r.post_nat_dst_port);
  }
  if (r.reverse_bytes !== null) {
    put(K_REV_BYTES);
    putCounter(r.reverse_bytes);
  }
  if (r.reverse_packets !== null) {
    put(K_REV_PACKETS);
    putCounter(r.reverse_packets);
  }
}

/** True while `pos` and the segments belong to a run of `encodeGoflow2` calls. */
let singles = false;
const SINGLES_LIMIT = 768 << 10;

function release(): void {
  if (out.length > 16 << 20) {
    out = new Uint8Array(1 << 20);
    singles = false;
  }
}

/** One flow as a GoFlow2 v2 JSON object (no trailing newline). */
export function encodeGoflow2(r: FlowRecord): string {
  // Successive single records are written one after another into the scratch buffer (so the segments of
  // the previous ones stay valid), restarting at 0 when it fills or after a batch.
  if (!singles || pos > SINGLES_LIMIT) {
    pos = 0;
    resetSegments();
    singles = true;
  }
  const start = pos;
  writeRecord(r);
  const text = Buffer.from(out.buffer, out.byteOffset + start, pos - start).toString("utf8");
  release();
  return text;
}

/**
 * Newline-terminated GoFlow2 lines: a view at offset 0 of a transferable buffer from the batch buffer pool
 * (src/pipeline/buffer-pool.ts; the buffer may be longer than the view).
 */
export function encodeGoflow2Lines(records: readonly FlowRecord[]): Uint8Array {
  const scratch = beginBatch(records.length);
  try {
    for (let i = 0; i < records.length; i++) {
      writeRecord(records[i]!);
      out[pos++] = 10;
    }
    return endBatch(records.length);
  } finally {
    out = scratch;
  }
}

/**
 * The records' JSON objects (no newlines) back to back in one transferable buffer, with `ends[i]` the end
 * offset of record i (for per-record messages, e.g. Kafka).
 */
export function encodeGoflow2Framed(records: readonly FlowRecord[]): { data: Uint8Array; ends: Uint32Array } {
  const ends = new Uint32Array(records.length);
  const scratch = beginBatch(records.length);
  try {
    for (let i = 0; i < records.length; i++) {
      writeRecord(records[i]!);
      ends[i] = pos;
    }
    return { data: endBatch(records.length), ends };
  } finally {
    out = scratch;
  }
}

/** Bytes per record of recent batches (moving average), to size a batch's buffer up front. */
let bytesPerRecord = 1100;

/**
 * A batch is written straight into a buffer from the batch buffer pool, sized from recent batches (grown
 * by `ensure` when a batch is larger), so the bytes are not copied out of the scratch buffer afterwards.
 * Returns the scratch buffer, which the caller puts back into `out` when done.
 */
function beginBatch(records: number): Uint8Array<ArrayBuffer> {
  const scratch = out;
  out = new Uint8Array(batchBuffers.take(Math.ceil(records * bytesPerRecord * 1.1) + 4096).buffer);
  pos = 0;
  resetSegments();
  singles = false;
  return scratch;
}

/** The batch's bytes: a view at offset 0 of the (pooled, transferable) buffer they were written into. */
function endBatch(records: number): Uint8Array {
  if (records > 0) bytesPerRecord = bytesPerRecord * 0.75 + (pos / records) * 0.25;
  return new Uint8Array(out.buffer, 0, pos);
}

/**
 * Address text as its network bytes, as GoFlow2's protobuf carries addresses: 4 octets for IPv4, 16 for
 * IPv6 (a fresh array); null when `s` is not an address ("" included).
 */
export function addressBytes(s: string): Uint8Array | null {
  if (s === "") return null;
  if (parseIPv4(s, 0, s.length, v4scratch, 0)) return v4scratch.slice();
  if (!parseIPv6(s, v6scratch)) return null;
  const b = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    b[2 * i] = v6scratch[i]! >>> 8;
    b[2 * i + 1] = v6scratch[i]! & 0xff;
  }
  return b;
}

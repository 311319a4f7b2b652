/**
 * A naive GoFlow2 JSON line renderer, written from the format's description (the doc comment of
 * src/encode/goflow2.ts) and nothing else: strings through JSON.stringify, numbers through BigInt, addresses
 * parsed and masked with regular expressions and BigInt. Slow and obvious on purpose: the fast encoder
 * (byte writer, segment caches) is checked against it on random records (test/encode/goflow2.test.ts).
 * Only the name tables (protoName, etypeName) come from the encoder; test/encode tests them separately.
 * Integer fields are taken to hold integers (or NaN/±Infinity, rendered 0), as FlowRecord says.
 */
import type { Counter, FlowRecord } from "../../src/core/flow.ts";
import { etypeName, protoName } from "../../src/encode/goflow2.ts";

/** Exact decimal text of a number field; non-finite values are 0. */
const num = (n: number): string =>
  Number.isFinite(n) ? (Number.isInteger(n) ? BigInt(n).toString() : String(n)) : "0";
const counter = (v: Counter): string => (typeof v === "bigint" ? v.toString() : num(v));
const str = (s: string): string => JSON.stringify(s);
const list = (l: readonly number[] | null): string => `[${(l ?? []).map(num).join(",")}]`;
const strList = (l: readonly string[] | null): string => `[${(l ?? []).map(str).join(",")}]`;

/** Milliseconds as exact integer nanoseconds (a fraction rounded to the nearest ns); non-finite is 0. */
function ns(ms: number): string {
  if (!Number.isFinite(ms)) return "0";
  const whole = Math.floor(ms);
  return (BigInt(whole) * 1000000n + BigInt(Math.round((ms - whole) * 1e6))).toString();
}

function mac(m: number): string {
  const hex = (BigInt(m) & 0xffffffffffffn).toString(16).padStart(12, "0");
  return str(hex.replace(/(..)(?!$)/g, "$1:"));
}

function v4(s: string): bigint | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (m === null || m.slice(1).some((o) => Number(o) > 255)) return null;
  return m.slice(1).reduce((a, o) => a * 256n + BigInt(o), 0n);
}

function v6(text: string): bigint | null {
  let s = text.split("%")[0]!; // a zone is ignored
  const last = s.slice(s.lastIndexOf(":") + 1);
  if (last.includes(".")) {
    // a dotted IPv4 tail: two groups
    const t = v4(last);
    if (t === null) return null;
    s = `${s.slice(0, s.length - last.length)}${(t >> 16n).toString(16)}:${(t & 0xffffn).toString(16)}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const parts = halves.map((h) => (h === "" ? [] : h.split(":")));
  const n = parts[0]!.length + (parts[1]?.length ?? 0);
  if (parts.flat().some((g) => !/^[0-9a-f]{1,4}$/i.test(g)) || (halves.length === 2 ? n > 7 : n !== 8))
    return null;
  const groups = halves.length === 2 ? [...parts[0]!, ...Array(8 - n).fill("0"), ...parts[1]!] : parts[0]!;
  return groups.reduce((a, g) => a * 65536n + BigInt(`0x${g}`), 0n);
}

/** Go netip text of a 128-bit address: ::ffff:a.b.c.d for 4in6, else the first longest zero run as "::". */
function v6Text(v: bigint): string {
  if (v >> 32n === 0xffffn) return `::ffff:${v4Text(v & 0xffffffffn)}`;
  const g = Array.from({ length: 8 }, (_, i) => ((v >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  let best = "";
  for (const run of g.join(":").matchAll(/(?:^|:)(0(?::0)+)(?=:|$)/g))
    if (run[1]!.length > best.length) best = run[1]!;
  if (best === "") return g.join(":");
  const at = `:${g.join(":")}:`.indexOf(`:${best}:`);
  const joined = g.join(":");
  return `${joined.slice(0, at).replace(/:$/, "")}::${joined.slice(at + best.length).replace(/^:/, "")}`;
}

const v4Text = (v: bigint): string => [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join(".");

/** `"addr/len"` with the address masked to len bits, or "invalid Prefix". */
function net(addr: string, len: number): string {
  const isV6 = addr.includes(":");
  const bits = isV6 ? 128 : 32;
  const a = isV6 ? v6(addr) : v4(addr);
  if (a === null || !Number.isInteger(len) || len < 0 || len > bits) return str("invalid Prefix");
  const masked = a & ~((1n << BigInt(bits - len)) - 1n) & ((1n << BigInt(bits)) - 1n);
  return str(`${isV6 ? v6Text(masked) : v4Text(masked)}/${len}`);
}

/** Every key of the line in order; an `extra` key equal to one of them is not written. */
const KEYS = [
  ...["type", "time_received_ns", "sequence_num", "sampling_rate", "sampler_address", "time_flow_start_ns"],
  ...[
    "time_flow_end_ns",
    "bytes",
    "packets",
    "src_addr",
    "dst_addr",
    "etype",
    "proto",
    "src_port",
    "dst_port",
  ],
  ...[
    "in_if",
    "out_if",
    "src_mac",
    "dst_mac",
    "src_vlan",
    "dst_vlan",
    "vlan_id",
    "ip_tos",
    "forwarding_status",
  ],
  ...["ip_ttl", "ip_flags", "tcp_flags", "icmp_type", "icmp_code", "ipv6_flow_label", "fragment_id"],
  ...["fragment_offset", "src_as", "dst_as", "next_hop", "next_hop_as", "src_net", "dst_net", "bgp_next_hop"],
  ...["bgp_communities", "as_path", "mpls_ttl", "mpls_label", "mpls_ip", "observation_domain_id"],
  ...["observation_point_id", "layer_stack", "layer_size", "ipv6_routing_header_addresses"],
  ...["ipv6_routing_header_seg_left", "src_sgt", "dst_sgt", "switch_id", "flow_direction", "in_if_name"],
  ...["out_if_name", "in_vrf_id", "out_vrf_id", "in_vrf_name", "out_vrf_name", "mpls_vpn_rd"],
  ...["application_name", "post_nat_src_addr", "post_nat_dst_addr", "post_nat_src_port", "post_nat_dst_port"],
  ...["reverse_bytes", "reverse_packets"],
];

/** The GoFlow2 JSON line of a record (no newline), the slow way. */
export function naiveGoflow2(r: FlowRecord): string {
  const v: Record<string, string | null> = {
    type: str(r.type),
    time_received_ns: ns(r.time_received_ms),
    sequence_num: num(r.sequence_num),
    sampling_rate: num(r.sampling_rate),
    sampler_address: str(r.sampler_address),
    time_flow_start_ns: ns(r.time_flow_start_ms),
    time_flow_end_ns: ns(r.time_flow_end_ms),
    bytes: counter(r.bytes),
    packets: counter(r.packets),
    src_addr: str(r.src_addr),
    dst_addr: str(r.dst_addr),
    etype: str(etypeName(r.etype)),
    proto: str(protoName(r.proto)),
    src_mac: mac(r.src_mac),
    dst_mac: mac(r.dst_mac),
    next_hop: str(r.next_hop),
    src_net: net(r.src_addr, r.src_net),
    dst_net: net(r.dst_addr, r.dst_net),
    bgp_next_hop: str(r.bgp_next_hop),
    bgp_communities: list(r.bgp_communities),
    as_path: list(r.as_path),
    mpls_ttl: list(r.mpls_ttl),
    mpls_label: list(r.mpls_label),
    mpls_ip: strList(r.mpls_ip),
    layer_stack: "[]",
    layer_size: "[]",
    ipv6_routing_header_addresses: strList(r.ipv6_routing_header_addresses),
    switch_id: str(r.switch_id),
    post_nat_src_addr: r.post_nat_src_addr === "" ? null : str(r.post_nat_src_addr),
    post_nat_dst_addr: r.post_nat_dst_addr === "" ? null : str(r.post_nat_dst_addr),
    reverse_bytes: r.reverse_bytes === null ? null : counter(r.reverse_bytes),
    reverse_packets: r.reverse_packets === null ? null : counter(r.reverse_packets),
  };
  const rec = r as unknown as Record<string, unknown>;
  for (const k of KEYS) {
    if (k in v) continue;
    const x = rec[k];
    // our optional fields: numbers when not null, names when not empty
    v[k] = x === null || x === "" ? null : typeof x === "string" ? str(x) : num(x as number);
  }
  let line = `{${KEYS.filter((k) => v[k] !== null)
    .map((k) => `${str(k)}:${v[k]}`)
    .join(",")}`;
  for (const [k, x] of Object.entries(r.extra ?? {})) {
    if (KEYS.includes(k)) continue;
    const text =
      typeof x === "number"
        ? Number.isFinite(x)
          ? num(x)
          : "null"
        : typeof x === "string"
          ? str(x)
          : String(x);
    line += `,${str(k)}:${text}`;
  }
  return `${line}}`;
}

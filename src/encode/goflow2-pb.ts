/**
 * GoFlow2's protobuf `FlowMessage` (proto/goflow2/flow.proto, netsampler/goflow2 v2 `pb/flow.proto`,
 * BSD-3-Clause) and the Kafka message frames of the Kafka sink. Hand-written: this is the hot path.
 *
 * One flow = one Kafka message whose value is the FlowMessage **length-delimited** exactly as GoFlow2's
 * `-format=bin` writes it (`protodelim.MarshalTo`: a varint of the message length, then the message), so an
 * existing GoFlow2 consumer reads our topic unchanged. Fields are written in field-number order and proto3
 * defaults (0, empty) are left out, which is what Go's `proto.Marshal` produces for the same message.
 *
 * GoFlow2 fields written (number: name, wire type): 1 type (enum: SFLOW_5 1, NETFLOW_V5 2, NETFLOW_V9 3,
 * IPFIX 4), 3 sampling_rate, 4 sequence_num, 6 src_addr (bytes: 4 octets IPv4, 16 IPv6), 7 dst_addr,
 * 9 bytes, 10 packets, 11 sampler_address, 12 next_hop, 13 next_hop_as, 14 src_as, 15 dst_as, 16 src_net,
 * 17 dst_net, 18 in_if, 19 out_if, 20 proto, 21 src_port, 22 dst_port, 23 ip_tos, 24 forwarding_status,
 * 25 ip_ttl, 26 tcp_flags, 27 src_mac, 28 dst_mac, 29 vlan_id, 30 etype, 31 icmp_type, 32 icmp_code,
 * 33 src_vlan, 34 dst_vlan, 35 fragment_id, 36 fragment_offset, 37 ipv6_flow_label, 38 ip_flags,
 * 70 observation_domain_id, 71 observation_point_id, 81 mpls_label (packed), 100 bgp_next_hop,
 * 101 bgp_communities (packed), 102 as_path (packed), 110 time_received_ns, 111 time_flow_start_ns,
 * 112 time_flow_end_ns. Not produced by our decoders (never written): 80 mpls_ttl, 82 mpls_ip,
 * 103 layer_stack, 104 layer_size, 105/106 SRv6.
 * Ours, on numbers far above GoFlow2's (≤ 112; its docs put user mappings from 1000): 2001 src_sgt,
 * 2002 dst_sgt, 2003 switch_id (string), 2004 flow_direction, 2005 in_if_name (string), 2006 out_if_name
 * (string), 2007 in_vrf_id, 2008 out_vrf_id, 2009 in_vrf_name, 2010 out_vrf_name, 2011 mpls_vpn_rd,
 * 2012 application_name (strings), 2013 post_nat_src_addr, 2014 post_nat_dst_addr (bytes, as addresses),
 * 2015 post_nat_src_port, 2016 post_nat_dst_port, 2017 reverse_bytes, 2018 reverse_packets. A GoFlow2
 * consumer keeps them as unknown fields; proto/goflow2/clarion.proto documents them. As in proto3, a 0 is
 * not written, so an SGT of 0 reads like no SGT; the `optional` ones (VRF ids, NAT ports, reverse counters)
 * are written whenever the record has them, 0 included.
 *
 * Frames (what the encoder hands the Kafka sink, and what its spool keeps): a sequence of
 *   varint keyLength, key bytes, varint valueLength, value bytes
 * one per Kafka message. The key is, by default, the exporter address as text ("192.0.2.1"): one
 * exporter's flows go to one partition, in order. With `keyFields` it is GoFlow2's hashed key: the 4 bytes
 * (big-endian) of 32-bit FNV-1 over the fields' values rendered one after another (numbers in decimal,
 * addresses as Go prints a byte slice, "[192 0 2 1]", `type` by name).
 */

import { addressBytes } from "../core/address.ts";
import type { Counter, FlowRecord, FlowType } from "../core/flow.ts";
import { Goflow2Writer } from "./goflow2.ts";

const TYPE_NUMBER: Record<FlowType, number> = { SFLOW_5: 1, NETFLOW_V5: 2, NETFLOW_V9: 3, IPFIX: 4 };

/** Our field numbers (above GoFlow2's). */
export const CLARION_FIELDS = {
  src_sgt: 2001,
  dst_sgt: 2002,
  switch_id: 2003,
  flow_direction: 2004,
  in_if_name: 2005,
  out_if_name: 2006,
  in_vrf_id: 2007,
  out_vrf_id: 2008,
  in_vrf_name: 2009,
  out_vrf_name: 2010,
  mpls_vpn_rd: 2011,
  application_name: 2012,
  post_nat_src_addr: 2013,
  post_nat_dst_addr: 2014,
  post_nat_src_port: 2015,
  post_nat_dst_port: 2016,
  reverse_bytes: 2017,
  reverse_packets: 2018,
} as const;

// ---------------------------------------------------------------------------------------------------------
// Output buffer: the appending KafkaFrameStream's own (grown on demand; its frames are copied out once per
// group), or a scratch buffer for the other writers of this module.

let out = new Uint8Array(1 << 16);
let pos = 0;
/** The scratch buffer `out` is whenever no stream is appending. */
let scratch = out;

function ensure(extra: number): void {
  if (pos + extra <= out.length) return;
  let n = out.length * 2;
  while (n < pos + extra) n *= 2;
  const next = new Uint8Array(n);
  next.set(out.subarray(0, pos));
  out = next;
}

function varint32(v: number): void {
  // v: unsigned, < 2^32
  while (v > 127) {
    out[pos++] = (v & 127) | 128;
    v >>>= 7;
  }
  out[pos++] = v;
}

function varintSize(v: number): number {
  return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : v < 268435456 ? 4 : 5;
}

/** A 64-bit varint from its two 32-bit halves. */
function varint64(hi: number, lo: number): void {
  while (hi !== 0 || lo > 127) {
    out[pos++] = (lo & 127) | 128;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  out[pos++] = lo;
}

function tag(field: number, wire: number): void {
  varint32((field << 3) | wire);
}

function fieldUint(field: number, v: number): void {
  if (!(v > 0)) return; // 0 is proto3's default (not written); NaN and negatives never occur
  const t = field << 3; // wire type 0; fields < 2048 take at most two tag bytes
  if (t < 128) out[pos++] = t;
  else {
    out[pos++] = (t & 127) | 128;
    out[pos++] = t >>> 7;
  }
  if (v < 128) out[pos++] = v;
  else if (v < 4294967296) varint32(v >>> 0);
  else varint64(Math.floor(v / 4294967296) >>> 0, v >>> 0);
}

/** A proto3 `optional` field: written whenever present, 0 included (our VRF ids, NAT ports, counters). */
function fieldPresent(field: number, v: Counter): void {
  if (v === 0 || v === 0n) {
    tag(field, 0);
    out[pos++] = 0;
  } else fieldCounter(field, v);
}

function fieldCounter(field: number, v: Counter): void {
  if (typeof v === "number") {
    fieldUint(field, v);
    return;
  }
  if (v <= 0n) return;
  const u = BigInt.asUintN(64, v);
  tag(field, 0);
  varint64(Number(u >> 32n), Number(u & 0xffffffffn));
}

// The last time written and its varint bytes: the receive time repeats for every flow of a datagram.
let nsLastMs = -1;
const nsLast = new Uint8Array(10);
let nsLastLen = 0;

/** ms since the epoch (fraction = sub-ms) as integer ns, written exactly without BigInt. */
function fieldNs(field: number, ms: number): void {
  if (!(ms > 0) || !Number.isFinite(ms)) return;
  tag(field, 0);
  if (ms === nsLastMs) {
    for (let i = 0; i < nsLastLen; i++) out[pos++] = nsLast[i]!;
    return;
  }
  let whole = Math.floor(ms);
  let frac = 0;
  if (whole !== ms) {
    frac = Math.round((ms - whole) * 1e6);
    if (frac >= 1e6) {
      whole += 1;
      frac -= 1e6;
    }
  }
  // ns = whole * 1e6 + frac = A * 2^21 + B with whole = wHi * 2^21 + wLo
  const wHi = Math.floor(whole / 2097152);
  const wLo = whole - wHi * 2097152;
  const a = wHi * 1e6; // < 2^41
  const b = wLo * 1e6 + frac; // < 2^41
  const aLo = a % 2048;
  const t = aLo * 2097152 + b; // < 2^43, exact
  const lo = t % 4294967296;
  const hi = Math.floor(a / 2048) + Math.floor(t / 4294967296);
  const start = pos;
  varint64(hi >>> 0, lo >>> 0);
  nsLastMs = ms;
  nsLastLen = pos - start;
  for (let i = 0; i < nsLastLen; i++) nsLast[i] = out[start + i]!;
}

function fieldBytes(field: number, b: Uint8Array): void {
  tag(field, 2);
  varint32(b.length);
  out.set(b, pos);
  pos += b.length;
}

function fieldV4(field: number, v: number): void {
  tag(field, 2);
  out[pos++] = 4;
  out[pos++] = v >>> 24;
  out[pos++] = (v >>> 16) & 0xff;
  out[pos++] = (v >>> 8) & 0xff;
  out[pos++] = v & 0xff;
}

// Address text → bytes, memoized (exporter and IPv6 addresses repeat); bounded, cleared when full.
const ADDR_CACHE_MAX = 8192;
const addrCache = new Map<string, Uint8Array | null>();

function textAddress(s: string): Uint8Array | null {
  let b = addrCache.get(s);
  if (b === undefined) {
    b = addressBytes(s);
    if (addrCache.size >= ADDR_CACHE_MAX) addrCache.clear();
    addrCache.set(s, b);
  }
  return b;
}

function fieldAddr(field: number, v4: number, text: string): void {
  if (v4 >= 0) {
    fieldV4(field, v4);
    return;
  }
  if (text === "") return;
  const b = textAddress(text);
  if (b !== null) fieldBytes(field, b);
}

const ENC = new TextEncoder();

// A string field's encoded bytes (tag, length, UTF-8) by field and text: switch ids and interface names
// repeat from flow to flow. Bounded, cleared when full.
const stringCache = new Map<string, Uint8Array>();

function fieldString(field: number, s: string): void {
  if (s === "") return;
  const cacheKey = field === CLARION_FIELDS.switch_id ? s : `${field}\u0000${s}`;
  let b = stringCache.get(cacheKey);
  if (b === undefined) {
    const text = ENC.encode(s);
    const start = pos;
    ensure(text.length + 16);
    tag(field, 2);
    varint32(text.length);
    out.set(text, pos);
    pos += text.length;
    b = out.slice(start, pos);
    pos = start;
    if (stringCache.size >= ADDR_CACHE_MAX) stringCache.clear();
    stringCache.set(cacheKey, b);
  }
  ensure(b.length);
  for (let i = 0; i < b.length; i++) out[pos++] = b[i]!;
}

function fieldPacked(field: number, list: readonly number[] | null): void {
  if (list === null || list.length === 0) return;
  let size = 0;
  for (const v of list) size += varintSize(v >>> 0);
  ensure(size + 16);
  tag(field, 2);
  varint32(size);
  for (const v of list) varint32(v >>> 0);
}

/** Writes one FlowMessage (without its length prefix) at `pos`. Caller ensured ~512 bytes of room. */
function writeMessage(r: FlowRecord): void {
  tag(1, 0);
  out[pos++] = TYPE_NUMBER[r.type] ?? 0;
  fieldUint(3, r.sampling_rate);
  fieldUint(4, r.sequence_num);
  fieldAddr(6, r.src_v4, r.src_addr_text);
  fieldAddr(7, r.dst_v4, r.dst_addr_text);
  fieldCounter(9, r.bytes);
  fieldCounter(10, r.packets);
  fieldAddr(11, -1, r.sampler_address);
  fieldAddr(12, r.next_hop_v4, r.next_hop_text);
  fieldUint(13, r.next_hop_as);
  fieldUint(14, r.src_as);
  fieldUint(15, r.dst_as);
  fieldUint(16, r.src_net);
  fieldUint(17, r.dst_net);
  fieldUint(18, r.in_if);
  fieldUint(19, r.out_if);
  fieldUint(20, r.proto);
  fieldUint(21, r.src_port);
  fieldUint(22, r.dst_port);
  fieldUint(23, r.ip_tos);
  fieldUint(24, r.forwarding_status);
  fieldUint(25, r.ip_ttl);
  fieldUint(26, r.tcp_flags);
  fieldUint(27, r.src_mac);
  fieldUint(28, r.dst_mac);
  fieldUint(29, r.vlan_id);
  fieldUint(30, r.etype);
  fieldUint(31, r.icmp_type);
  fieldUint(32, r.icmp_code);
  fieldUint(33, r.src_vlan);
  fieldUint(34, r.dst_vlan);
  fieldUint(35, r.fragment_id);
  fieldUint(36, r.fragment_offset);
  fieldUint(37, r.ipv6_flow_label);
  fieldUint(38, r.ip_flags);
  fieldUint(70, r.observation_domain_id);
  fieldUint(71, r.observation_point_id);
  fieldPacked(81, r.mpls_label);
  fieldAddr(100, r.bgp_next_hop_v4, r.bgp_next_hop_text);
  fieldPacked(101, r.bgp_communities);
  fieldPacked(102, r.as_path);
  fieldNs(110, r.time_received_ms);
  fieldNs(111, r.time_flow_start_ms);
  fieldNs(112, r.time_flow_end_ms);
  if (r.src_sgt !== null) fieldUint(CLARION_FIELDS.src_sgt, r.src_sgt);
  if (r.dst_sgt !== null) fieldUint(CLARION_FIELDS.dst_sgt, r.dst_sgt);
  fieldString(CLARION_FIELDS.switch_id, r.switch_id);
  if (r.flow_direction !== null) fieldUint(CLARION_FIELDS.flow_direction, r.flow_direction);
  fieldString(CLARION_FIELDS.in_if_name, r.in_if_name);
  fieldString(CLARION_FIELDS.out_if_name, r.out_if_name);
  ensure(64); // the strings above ensured only their own room
  if (r.in_vrf_id !== null) fieldPresent(CLARION_FIELDS.in_vrf_id, r.in_vrf_id);
  if (r.out_vrf_id !== null) fieldPresent(CLARION_FIELDS.out_vrf_id, r.out_vrf_id);
  fieldString(CLARION_FIELDS.in_vrf_name, r.in_vrf_name);
  fieldString(CLARION_FIELDS.out_vrf_name, r.out_vrf_name);
  fieldString(CLARION_FIELDS.mpls_vpn_rd, r.mpls_vpn_rd);
  fieldString(CLARION_FIELDS.application_name, r.application_name);
  // the rarer fields of issue 19: one check when none is present
  ensure(128);
  if (r.post_nat_src_addr !== "" || r.post_nat_dst_addr !== "") {
    fieldAddr(CLARION_FIELDS.post_nat_src_addr, -1, r.post_nat_src_addr);
    fieldAddr(CLARION_FIELDS.post_nat_dst_addr, -1, r.post_nat_dst_addr);
  }
  if (r.post_nat_src_port !== null) fieldPresent(CLARION_FIELDS.post_nat_src_port, r.post_nat_src_port);
  if (r.post_nat_dst_port !== null) fieldPresent(CLARION_FIELDS.post_nat_dst_port, r.post_nat_dst_port);
  if (r.reverse_bytes !== null) fieldPresent(CLARION_FIELDS.reverse_bytes, r.reverse_bytes);
  if (r.reverse_packets !== null) fieldPresent(CLARION_FIELDS.reverse_packets, r.reverse_packets);
}

/** One flow's FlowMessage, length-delimited as GoFlow2 writes it to Kafka (a fresh array). */
export function encodeFlowMessageDelimited(r: FlowRecord): Uint8Array {
  pos = 0;
  ensure(1024);
  pos = 5;
  writeMessage(r);
  const len = pos - 5;
  const head = varintSize(len);
  const start = 5 - head;
  pos = start;
  varint32(len);
  scratch = out; // (grown)
  return out.slice(start, start + head + len);
}

// ---------------------------------------------------------------------------------------------------------
// Keys

export type KeyFn = (r: FlowRecord) => Uint8Array;

/** Fields a key may hash (GoFlow2's hashing option, by the JSON/proto names). */
export const KEY_FIELDS = [
  "type",
  "sampler_address",
  "src_addr",
  "dst_addr",
  "next_hop",
  "src_port",
  "dst_port",
  "proto",
  "etype",
  "in_if",
  "out_if",
  "src_as",
  "dst_as",
  "src_vlan",
  "dst_vlan",
  "vlan_id",
  "observation_domain_id",
  "observation_point_id",
  "switch_id",
] as const;
export type KeyField = (typeof KEY_FIELDS)[number];

/** Go's `%v` of a byte slice: "[192 0 2 1]" ("[]" when empty). */
function goBytes(text: string): string {
  const b = text === "" ? null : textAddress(text);
  return b === null ? "[]" : `[${b.join(" ")}]`;
}

function renderKeyField(r: FlowRecord, f: KeyField): string {
  switch (f) {
    case "type":
      return r.type;
    case "sampler_address":
      return goBytes(r.sampler_address);
    case "src_addr":
      return goBytes(r.src_addr);
    case "dst_addr":
      return goBytes(r.dst_addr);
    case "next_hop":
      return goBytes(r.next_hop);
    case "switch_id":
      return r.switch_id;
    default:
      return String(r[f]);
  }
}

/** 32-bit FNV-1 (Go's hash/fnv New32) of a UTF-8 string, big-endian bytes as Go's Sum(nil). */
export function fnv1_32(text: string): Uint8Array {
  const bytes = ENC.encode(text);
  let h = 0x811c9dc5;
  for (const b of bytes) {
    h = Math.imul(h, 0x01000193) >>> 0;
    h = (h ^ b) >>> 0;
  }
  return new Uint8Array([h >>> 24, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff]);
}

/** The key function: the exporter address text by default, else GoFlow2's FNV-1 hash of `fields`. */
export function keyFunction(fields: readonly KeyField[]): KeyFn {
  if (fields.length === 0) {
    // exporter → key bytes, bounded like the address cache
    const keys = new Map<string, Uint8Array>();
    return (r) => {
      let k = keys.get(r.sampler_address);
      if (k === undefined) {
        k = ENC.encode(r.sampler_address);
        if (keys.size >= ADDR_CACHE_MAX) keys.clear();
        keys.set(r.sampler_address, k);
      }
      return k;
    };
  }
  return (r) => {
    let s = "";
    for (const f of fields) s += renderKeyField(r, f);
    return fnv1_32(s);
  };
}

// ---------------------------------------------------------------------------------------------------------
// Frames

export const KAFKA_FORMATS = ["protobuf", "json"] as const;
export type KafkaFormat = (typeof KAFKA_FORMATS)[number];

export interface FramedPart {
  /** Messages in the part. */
  records: number;
  /** Frames: varint keyLen, key, varint valueLen, value — per message. */
  data: Uint8Array;
}

/**
 * Kafka frames built one record at a time (the Kafka encoder streams: src/sinks/types.ts SinkEncoder.append):
 * `append` frames the record at once into this stream's own buffer, in frame groups of at most
 * `maxMessages` messages and about `maxBytes` bytes each (a single larger message gets a group of its own);
 * `cut` returns the groups. Nothing of a record is kept. The module's output buffer (`out`, `pos`) is this
 * stream's own while it appends, so several streams (Kafka outputs) in one thread never mix their bytes.
 */
export class KafkaFrameStream {
  readonly #key: KeyFn;
  readonly #maxMessages: number;
  readonly #maxBytes: number;
  /** JSON values: GoFlow2 lines written by a writer of this stream's, copied into the frames. */
  readonly #json: Goflow2Writer | null;
  #buf = new Uint8Array(1 << 16);
  #pos = 0;
  /** Messages in the current group, and in all groups since the last cut. */
  #count = 0;
  #records = 0;
  #parts: FramedPart[] = [];

  constructor(format: KafkaFormat, key: KeyFn, maxMessages: number, maxBytes: number) {
    this.#key = key;
    this.#maxMessages = maxMessages;
    this.#maxBytes = maxBytes;
    this.#json = format === "json" ? new Goflow2Writer() : null;
  }

  /** Messages appended since the last cut. */
  get records(): number {
    return this.#records;
  }

  /** Frames one record. When it throws, the frames are as before the call. */
  append(r: FlowRecord): void {
    out = this.#buf;
    pos = this.#pos;
    let at = pos;
    try {
      if (this.#count > 0 && (this.#count >= this.#maxMessages || pos >= this.#maxBytes)) {
        this.#parts.push({ records: this.#count, data: out.slice(0, pos) });
        pos = 0;
        at = 0;
        this.#count = 0;
      }
      const k = this.#key(r);
      ensure(k.length + 1024);
      varint32(k.length);
      out.set(k, pos);
      pos += k.length;
      const json = this.#json;
      if (json !== null) {
        if (!json.open) json.begin(this.#maxMessages);
        json.append(r);
        const len = json.lastLength;
        ensure(len + 8);
        varint32(len);
        json.copyLast(out, pos);
        pos += len;
      } else {
        // value = varint(msgLen) msg; reserve 6 bytes for both prefixes, move the message if they differ
        const m = pos;
        pos = m + 6;
        writeMessage(r);
        const msgLen = pos - m - 6;
        const valueLen = msgLen + varintSize(msgLen);
        const head = varintSize(valueLen) + varintSize(msgLen);
        if (head !== 6) out.copyWithin(m + head, m + 6, pos);
        pos = m;
        varint32(valueLen);
        varint32(msgLen);
        pos += msgLen;
      }
    } catch (err) {
      pos = at;
      throw err;
    } finally {
      this.#buf = out;
      this.#pos = pos;
      out = scratch;
    }
    this.#count++;
    this.#records++;
  }

  /** The frame groups of the records appended since the last cut (none when there were none). */
  cut(): FramedPart[] {
    const parts = this.#parts;
    if (this.#count > 0) parts.push({ records: this.#count, data: this.#buf.slice(0, this.#pos) });
    this.#parts = [];
    this.#pos = 0;
    this.#count = 0;
    this.#records = 0;
    this.#json?.drop();
    if (this.#buf.length > 16 << 20) this.#buf = new Uint8Array(1 << 20);
    return parts;
  }
}

/** `KafkaFrameStream` over a whole batch: its records' frame groups. */
export function encodeKafkaFrames(
  records: readonly FlowRecord[],
  format: KafkaFormat,
  key: KeyFn,
  maxMessages: number,
  maxBytes: number,
): FramedPart[] {
  const stream = new KafkaFrameStream(format, key, maxMessages, maxBytes);
  for (const r of records) stream.append(r);
  return stream.cut();
}

/** One decoded frame: a view of the key and of the value. */
export interface Frame {
  key: Uint8Array;
  value: Uint8Array;
}

function readVarint(b: Uint8Array, at: { p: number }): number {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 5; i++) {
    if (at.p >= b.length) throw new RangeError("truncated frame");
    const c = b[at.p++]!;
    v += (c & 127) * mul;
    if (c < 128) return v;
    mul *= 128;
  }
  throw new RangeError("varint too long");
}

/** Splits frame bytes back into messages (views). Throws RangeError on a malformed buffer. */
export function decodeFrames(data: Uint8Array): Frame[] {
  const frames: Frame[] = [];
  const at = { p: 0 };
  while (at.p < data.length) {
    const kl = readVarint(data, at);
    if (at.p + kl > data.length) throw new RangeError("truncated key");
    const key = data.subarray(at.p, at.p + kl);
    at.p += kl;
    const vl = readVarint(data, at);
    if (at.p + vl > data.length) throw new RangeError("truncated value");
    frames.push({ key, value: data.subarray(at.p, at.p + vl) });
    at.p += vl;
  }
  return frames;
}

/** Frames back into bytes (for splitting a spooled unit in two). */
export function joinFrames(frames: readonly Frame[]): Uint8Array {
  let size = 0;
  for (const f of frames)
    size += varintSize(f.key.length) + f.key.length + varintSize(f.value.length) + f.value.length;
  const b = new Uint8Array(size);
  let p = 0;
  const put = (v: number): void => {
    while (v > 127) {
      b[p++] = (v & 127) | 128;
      v >>>= 7;
    }
    b[p++] = v;
  };
  for (const f of frames) {
    put(f.key.length);
    b.set(f.key, p);
    p += f.key.length;
    put(f.value.length);
    b.set(f.value, p);
    p += f.value.length;
  }
  return b;
}

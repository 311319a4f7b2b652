/**
 * sFlow version 5 decoder (sflow.org/sflow_version_5.txt). Stateless: every datagram stands alone.
 *
 * Grammar (XDR: every integer is a big-endian u32 unless noted, opaque data is padded to 4 bytes):
 *
 *   datagram        = version(=5) agent_address sub_agent_id sequence_number uptime_ms
 *                     num_samples sample*
 *   address         = type(0 unknown | 1 IPv4 | 2 IPv6) [4 bytes | 16 bytes]
 *   sample          = data_format(enterprise<<12 | format) length(bytes) opaque[length]
 *     enterprise 0, format 1: flow_sample
 *       sequence_number source_id(type<<24 | index) sampling_rate sample_pool drops
 *       input(format<<30 | value) output(format<<30 | value) num_records flow_record*
 *     enterprise 0, format 3: flow_sample_expanded
 *       sequence_number source_id_type source_id_index sampling_rate sample_pool drops
 *       input_format input_value output_format output_value num_records flow_record*
 *     enterprise 0, format 2: counters_sample
 *       sequence_number source_id(type<<24 | index) num_records counter_record*
 *     enterprise 0, format 4: counters_sample_expanded
 *       sequence_number source_id_type source_id_index num_records counter_record*
 *     anything else: skipped by its length (stats.sflowSkippedRecords)
 *   interface format: 0 ifIndex (0x3FFFFFFF = the device itself), 1 discarded (value = reason),
 *                     2 multiple outputs (value = count, 0 = unknown); formats 1/2 only on output
 *   flow_record     = data_format length opaque[length]
 *     0:1    sampled_header   header_protocol frame_length stripped header_length header<>
 *            header_protocol 1 Ethernet, 11 IPv4, 12 IPv6, 13 MPLS; the header is a prefix of the frame
 *     0:2    sampled_ethernet length src_mac(6+2 pad) dst_mac(6+2 pad) type
 *     0:3    sampled_ipv4     length protocol src_ip(4) dst_ip(4) src_port dst_port tcp_flags tos
 *     0:4    sampled_ipv6     length protocol src_ip(16) dst_ip(16) src_port dst_port tcp_flags priority
 *     0:1001 extended_switch  src_vlan src_priority dst_vlan dst_priority
 *     0:1002 extended_router  next_hop(address) src_mask_len dst_mask_len
 *     0:1003 extended_gateway next_hop(address) as src_as src_peer_as
 *                             num_segments (type(1 set | 2 sequence) count as[count])*
 *                             num_communities community[num_communities] localpref
 *     anything else: skipped by its length (stats.sflowSkippedRecords)
 *   counter_record  = data_format length opaque[length]
 *     0:1 generic interface: ifIndex ifType ifSpeed(u64) ifDirection ifStatus(bit0 admin, bit1 oper)
 *         ifInOctets(u64) ifInUcastPkts ifInMulticastPkts ifInBroadcastPkts ifInDiscards ifInErrors
 *         ifInUnknownProtos ifOutOctets(u64) ifOutUcastPkts ifOutMulticastPkts ifOutBroadcastPkts
 *         ifOutDiscards ifOutErrors ifPromiscuousMode                                   (88 bytes)
 *     0:2 ethernet: dot3Stats AlignmentErrors FCSErrors SingleCollisionFrames MultipleCollisionFrames
 *         SQETestErrors DeferredTransmissions LateCollisions ExcessiveCollisions
 *         InternalMacTransmitErrors CarrierSenseErrors FrameTooLongs InternalMacReceiveErrors
 *         SymbolErrors                                                                   (52 bytes)
 *     anything else: skipped by its length (stats.sflowSkippedRecords)
 *
 * The sampled packet header is parsed by sflow/headers.ts (Ethernet, 802.1Q/QinQ, MPLS, IPv4, IPv6 with
 * extension headers, ports, ICMP type/code); header bytes that stop early are normal.
 *
 * Mapping: one FlowRecord per flow sample. bytes = the raw header's frame_length (else sampled_ethernet's,
 * else sampled_ipv4/6's length), packets = 1 (both × sampling_rate when scaleBySampling); in_if/out_if are
 * the ifIndex values (0 when the format is not 0); output format 1 (discarded) sets forwarding_status 128.
 * vlan_id is the outermost 802.1Q tag; QinQ adds extra.dot1qVlanId / extra.dot1qCustomerVlanId (headers.ts).
 * Extended switch: src_vlan/dst_vlan, extra.src_priority/dst_priority. Extended router: next_hop,
 * src_net/dst_net. Extended gateway: bgp_next_hop, as_path (segments flattened), next_hop_as = first AS
 * of the path, dst_as = last (the router's AS when the path is empty), src_as (the router's AS when 0),
 * bgp_communities, extra.src_peer_as/local_pref. IPv4 ip_flags = the 3 flag bits (DF 2, MF 1); IPv6
 * fragment header: ip_flags = its low 3 bits (M = 1), fragment_offset in 8-byte units as on the wire.
 *
 * Errors: a length or count that points past its container throws DecodeError; the sample's own content
 * (packet bytes) never does. Every sample, record and header walk advances by at least 4 bytes, so the
 * work is bounded by the datagram size; nothing is allocated from a length field.
 */
import { ipv4Number } from "../core/address.ts";
import type { Datagram } from "../core/datagram.ts";
import { DecodeError, type DecodeErrorCode } from "../core/errors.ts";
import { type Counter, type DecodedElement, FlowRecord, type RecordHandler } from "../core/flow.ts";
import type { DecodeContext, Decoder, DecoderOptions } from "./context.ts";
import type { SequenceTracker, Stream } from "./sequence.ts";
import { decodePacketHeader } from "./sflow/headers.ts";
import { effectiveRate, type SamplingMap, type StaticRates, staticRate } from "./state/sampling-map.ts";
import type { DecoderStats } from "./stats.ts";
import { formatMac, icmpFromDstPort, ipv4, ipv6, macInt } from "./wire.ts";

/** The decoder options sFlow reads. */
export type SflowOptions = Pick<DecoderOptions, "collectElements" | "scaleBySampling" | "switchIdFromIp"> &
  Partial<Pick<DecoderOptions, "tunnelHeader">>;

/**
 * What `decodeSflow5` needs on its own (tests, benchmarks, interop checks): the options and the counters.
 * The decoder front goes through the registry entry (`sflow5`) with its DecodeContext instead.
 */
export interface SflowContext extends SflowOptions {
  stats: DecoderStats;
}

/**
 * One counter sample: generic interface counters (record 0:1) and Ethernet counters (record 0:2) of one
 * data source, with where and when they came from. Fields of a record the sample did not carry stay 0;
 * `has_generic`/`has_ethernet` tell which were present. 64-bit counters are numbers while exact.
 */
export class InterfaceCounters {
  readonly type = "SFLOW_5" as const;
  time_received_ms = 0;
  /** sFlow agent address (the datagram's, not the UDP source). */
  sampler_address = "";
  sub_agent_id = 0;
  /** Datagram sequence number. */
  sequence_num = 0;
  /** Agent uptime (ms) when the datagram was sent. */
  uptime_ms = 0;
  /** Counter sample sequence number (per data source). */
  sample_sequence_num = 0;
  /** Data source type (0 ifIndex, 1 smonVlanDataSource, 2 entPhysicalEntry) and index. */
  source_id_type = 0;
  source_id_index = 0;
  /**
   * Counter polling interval, seconds. sFlow v5 counter samples do not carry it (it is agent
   * configuration), so it stays 0 unless a caller knows it.
   */
  sampling_interval = 0;
  has_generic = false;
  has_ethernet = false;
  // generic interface counters (0:1)
  if_index = 0;
  if_type = 0;
  if_speed: Counter = 0;
  /** 0 unknown, 1 full-duplex, 2 half-duplex, 3 in, 4 out. */
  if_direction = 0;
  /** ifStatus bit 0. */
  if_admin_status_up = false;
  /** ifStatus bit 1. */
  if_oper_status_up = false;
  if_in_octets: Counter = 0;
  if_in_ucast_pkts = 0;
  if_in_multicast_pkts = 0;
  if_in_broadcast_pkts = 0;
  if_in_discards = 0;
  if_in_errors = 0;
  if_in_unknown_protos = 0;
  if_out_octets: Counter = 0;
  if_out_ucast_pkts = 0;
  if_out_multicast_pkts = 0;
  if_out_broadcast_pkts = 0;
  if_out_discards = 0;
  if_out_errors = 0;
  if_promiscuous_mode = 0;
  // Ethernet counters (0:2), dot3StatsEntry
  dot3_stats_alignment_errors = 0;
  dot3_stats_fcs_errors = 0;
  dot3_stats_single_collision_frames = 0;
  dot3_stats_multiple_collision_frames = 0;
  dot3_stats_sqe_test_errors = 0;
  dot3_stats_deferred_transmissions = 0;
  dot3_stats_late_collisions = 0;
  dot3_stats_excessive_collisions = 0;
  dot3_stats_internal_mac_transmit_errors = 0;
  dot3_stats_carrier_sense_errors = 0;
  dot3_stats_frame_too_longs = 0;
  dot3_stats_internal_mac_receive_errors = 0;
  dot3_stats_symbol_errors = 0;
}

const PROTOCOL = "sflow5";
const TWO32 = 4294967296;
const IF_VALUE_MASK = 0x3fffffff;
/** IANA forwardingStatus "Dropped, unknown reason" for output format 1 (packet discarded). */
const FORWARDING_DROPPED = 128;

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;

function fail(code: DecodeErrorCode, message: string, dg: Datagram, offset: number): never {
  throw new DecodeError(code, message, PROTOCOL, dg.exporter, offset);
}

function u32(b: Buffer, o: number): number {
  return b[o]! * 16777216 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
}

function u64(b: Buffer, o: number): Counter {
  const hi = u32(b, o);
  const lo = u32(b, o + 4);
  if (hi < 0x200000) return hi * TWO32 + lo;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** Per-datagram values shared by its samples (one object per call, no closures). */
interface DatagramInfo {
  dg: Datagram;
  agent: string;
  subAgent: number;
  sequence: number;
  uptime: number;
  /** The static sampling map's entries for the agent + sub-agent (null: none). */
  mapped: StaticRates | null;
}

/**
 * Decode one sFlow v5 datagram; records go to `handler`. Returns the number of flow records emitted
 * (each emitted flow is counted in stats.flows). Throws only DecodeError; records emitted before it stay emitted.
 */
export function decodeSflow5(dg: Datagram, ctx: SflowContext, handler: RecordHandler): number {
  return decodeDatagram(dg, ctx, ctx.stats, handler);
}

/** The registry entry (index.ts): a 32-bit version 5. */
export const sflow5 = {
  name: "sflow5",
  flowType: "SFLOW_5",
  matches: (b: Buffer): boolean => b.length >= 4 && b[0] === 0 && b[1] === 0 && b[2] === 0 && b[3] === 5,
  decode: decodeSflow,
  sequence: sequenceSflow,
} as const satisfies Decoder;

/**
 * Two kinds of stream: the datagram `sequence_number` (per exporter, agent and sub-agent) counts datagrams,
 * and each flow sample's `sequence_number` (formats 1 and 3, per data source) counts flows (one flow per
 * sample). Counter samples are not flows and are not tracked.
 */
function sequenceSflow(dg: Datagram, track: SequenceTracker): void {
  const b = dg.payload;
  const end = b.length;
  if (end < 8) return;
  const addrType = u32(b, 4);
  let off = 8;
  let agent: string;
  if (addrType === 1) {
    if (end < 12) return;
    agent = ipv4(b, 8);
    off = 12;
  } else if (addrType === 2) {
    if (end < 24) return;
    agent = ipv6(b, 8);
    off = 24;
  } else {
    agent = dg.exporter;
  }
  if (end < off + 16) return;
  const subAgent = u32(b, off);
  const uptime = u32(b, off + 8);
  const samples = u32(b, off + 12);
  const base = `s|${dg.exporter}|${agent}|${subAgent}`;
  const s = track.get(base) ?? openSflowStream(track, base, dg.exporter, agent, subAgent, -1);
  track.advance(s, u32(b, off + 4), 1, uptime, dg.receivedAtMs);
  off += 16;
  for (let i = 0; i < samples && off + 8 <= end; i++) {
    const format = u32(b, off);
    const length = u32(b, off + 4);
    off += 8;
    if (length > end - off) return;
    if ((format === 1 && length >= 8) || (format === 3 && length >= 12)) {
      const source = format === 1 ? u32(b, off + 4) : u32(b, off + 4) * 16777216 + u32(b, off + 8);
      const key = `${base}|${source}`;
      const f = track.get(key) ?? openSflowStream(track, key, dg.exporter, agent, subAgent, source);
      track.advance(f, u32(b, off), 1, uptime, dg.receivedAtMs);
    }
    off += length;
  }
}

/** A new sFlow stream: the datagram stream of an agent (`source` −1), or one data source's flow samples. */
function openSflowStream(
  track: SequenceTracker,
  key: string,
  exporter: string,
  agent: string,
  subAgent: number,
  source: number,
): Stream {
  return track.open(key, {
    exporter,
    protocol: "sflow5",
    a: agent,
    b: subAgent,
    c: source,
    unit: source < 0 ? "datagrams" : "flows",
  });
}

/** The sFlow v5 decoder of the front: ctx.datagram, counted in ctx.stats. */
export function decodeSflow(ctx: DecodeContext, emit: RecordHandler): void {
  decodeDatagram(ctx.datagram, ctx.opts, ctx.stats, emit, ctx.samplingMap);
}

function decodeDatagram(
  dg: Datagram,
  opts: SflowOptions,
  stats: DecoderStats,
  handler: RecordHandler,
  samplingMap: SamplingMap | null = null,
): number {
  const b = dg.payload;
  const end = b.length;
  if (end < 8) fail("TRUNCATED", "datagram shorter than its header", dg, 0);
  const version = u32(b, 0);
  if (version !== 5) fail("BAD_VERSION", `sFlow version ${version}`, dg, 0);
  const addrType = u32(b, 4);
  let off = 8;
  let agent: string;
  if (addrType === 1) {
    if (end < off + 4) fail("TRUNCATED", "agent address", dg, off);
    agent = ipv4(b, off);
    off += 4;
  } else if (addrType === 2) {
    if (end < off + 16) fail("TRUNCATED", "agent address", dg, off);
    agent = ipv6(b, off);
    off += 16;
  } else if (addrType === 0) {
    agent = dg.exporter;
  } else {
    fail("BAD_RECORD", `agent address type ${addrType}`, dg, 4);
  }
  if (end < off + 16) fail("TRUNCATED", "datagram header", dg, off);
  const subAgent = u32(b, off);
  const info: DatagramInfo = {
    dg,
    agent,
    subAgent,
    sequence: u32(b, off + 4),
    uptime: u32(b, off + 8),
    mapped: samplingMap?.lookup(agent, subAgent) ?? null,
  };
  const numSamples = u32(b, off + 12);
  off += 16;
  let flows = 0;
  for (let i = 0; i < numSamples; i++) {
    if (end - off < 8) fail("TRUNCATED", `sample ${i} of ${numSamples}: header`, dg, off);
    const format = u32(b, off);
    const length = u32(b, off + 4);
    off += 8;
    if (length > end - off) fail("TRUNCATED", `sample ${i} (format ${format}) length ${length}`, dg, off - 4);
    const sEnd = off + length;
    switch (format) {
      case 1:
        if (decodeFlowSample(info, b, off, sEnd, false, opts, stats, handler)) flows++;
        break;
      case 3:
        if (decodeFlowSample(info, b, off, sEnd, true, opts, stats, handler)) flows++;
        break;
      case 2:
        decodeCounterSample(info, b, off, sEnd, false, stats, handler);
        break;
      case 4:
        decodeCounterSample(info, b, off, sEnd, true, stats, handler);
        break;
      default:
        stats.sflowSkippedRecords++;
    }
    off = sEnd;
  }
  return flows;
}

function decodeFlowSample(
  info: DatagramInfo,
  b: Buffer,
  off: number,
  sEnd: number,
  expanded: boolean,
  opts: SflowOptions,
  stats: DecoderStats,
  handler: RecordHandler,
): boolean {
  const dg = info.dg;
  const fixed = expanded ? 44 : 32;
  if (sEnd - off < fixed) fail("BAD_SAMPLE", `flow sample shorter than ${fixed} bytes`, dg, off);
  let rate = u32(b, off + (expanded ? 12 : 8));
  let inFormat: number;
  let inValue: number;
  let outFormat: number;
  let outValue: number;
  if (expanded) {
    inFormat = u32(b, off + 24);
    inValue = u32(b, off + 28);
    outFormat = u32(b, off + 32);
    outValue = u32(b, off + 36);
  } else {
    const input = u32(b, off + 20);
    const output = u32(b, off + 24);
    inFormat = input >>> 30;
    inValue = input & IF_VALUE_MASK;
    outFormat = output >>> 30;
    outValue = output & IF_VALUE_MASK;
  }
  const numRecords = u32(b, off + fixed - 4);
  if (info.mapped !== null) {
    // static sampling map: keyed by the input interface and the data source index
    const source = expanded ? u32(b, off + 8) : u32(b, off + 4) & 0xffffff;
    rate = effectiveRate(rate, staticRate(info.mapped, inFormat === 0 ? inValue : -1, source));
  }
  off += fixed;

  // one record refilled per flow when the handler copies what it keeps (RecordHandler.scratch)
  const rec = handler.scratch !== undefined ? handler.scratch.clear() : new FlowRecord();
  rec.type = "SFLOW_5";
  rec.sampling_rate = rate;
  rec.sampler_address = info.agent;
  rec.sequence_num = info.sequence;
  const t = dg.receivedAtMs;
  rec.time_received_ms = t;
  rec.time_flow_start_ms = t;
  rec.time_flow_end_ms = t;
  rec.in_if = inFormat === 0 ? inValue : 0;
  if (outFormat === 0) rec.out_if = outValue;
  else if (outFormat === 1) rec.forwarding_status = FORWARDING_DROPPED;
  if (opts.switchIdFromIp) rec.switch_id = info.agent;

  // bytes: the raw header's frame length wins over sampled_ethernet's, which wins over sampled_ip's.
  let length = 0;
  let lengthRank = 0;
  let decoded = 0; // records of a known format that described something (a raw header of 0 bytes does not)
  for (let r = 0; r < numRecords; r++) {
    if (sEnd - off < 8) fail("BAD_SAMPLE", `flow record ${r} of ${numRecords}: header`, dg, off);
    const format = u32(b, off);
    const rLen = u32(b, off + 4);
    off += 8;
    if (rLen > sEnd - off)
      fail("BAD_SAMPLE", `flow record ${r} (format ${format}) length ${rLen}`, dg, off - 4);
    const rEnd = off + rLen;
    switch (format) {
      case 1: {
        if (rLen < 16) fail("BAD_SAMPLE", "sampled header record too short", dg, off);
        const hLen = u32(b, off + 12);
        if (hLen > rLen - 16) fail("BAD_SAMPLE", `sampled header length ${hLen}`, dg, off + 12);
        length = u32(b, off + 4);
        lengthRank = 3;
        if (hLen > 0) decoded++;
        decodePacketHeader(b, off + 16, hLen, u32(b, off), rec, opts.tunnelHeader === "inner");
        break;
      }
      case 2:
        if (rLen < 24) fail("BAD_SAMPLE", "sampled ethernet record too short", dg, off);
        decoded++;
        if (lengthRank < 2) {
          length = u32(b, off);
          lengthRank = 2;
        }
        rec.src_mac = macInt(b, off + 4);
        rec.dst_mac = macInt(b, off + 12);
        rec.etype = u32(b, off + 20) & 0xffff;
        break;
      case 3:
      case 4: {
        // sampled IPv4 / IPv6: length, protocol, src, dst (4 or 16 bytes), ports, tcp flags, tos/priority
        const a = format === 3 ? 4 : 16;
        if (rLen < 16 + 2 * a + 8)
          fail("BAD_SAMPLE", `sampled IPv${format === 3 ? 4 : 6} record too short`, dg, off);
        decoded++;
        if (lengthRank < 1) {
          length = u32(b, off);
          lengthRank = 1;
        }
        rec.etype = format === 3 ? ETH_IPV4 : ETH_IPV6;
        rec.proto = u32(b, off + 4) & 0xff;
        rec.src_addr = format === 3 ? ipv4(b, off + 8) : ipv6(b, off + 8);
        rec.dst_addr = format === 3 ? ipv4(b, off + 8 + a) : ipv6(b, off + 8 + a);
        const p = off + 8 + 2 * a;
        rec.src_port = u32(b, p) & 0xffff;
        rec.dst_port = u32(b, p + 4) & 0xffff;
        rec.tcp_flags = u32(b, p + 8) & 0xffff;
        rec.ip_tos = u32(b, p + 12) & 0xff;
        break;
      }
      case 1001: {
        decoded++;
        if (rLen < 16) fail("BAD_SAMPLE", "extended switch record too short", dg, off);
        rec.src_vlan = u32(b, off) & 0xfff;
        const srcPriority = u32(b, off + 4);
        rec.dst_vlan = u32(b, off + 8) & 0xfff;
        const dstPriority = u32(b, off + 12);
        const extra = rec.extra;
        if (extra === null) rec.extra = { src_priority: srcPriority, dst_priority: dstPriority };
        else {
          extra.src_priority = srcPriority;
          extra.dst_priority = dstPriority;
        }
        break;
      }
      case 1002: {
        decoded++;
        const o = readNextHop(dg, b, off, rEnd, rec, false);
        if (rEnd - o < 8) fail("BAD_SAMPLE", "extended router record too short", dg, o);
        rec.src_net = u32(b, o);
        rec.dst_net = u32(b, o + 4);
        break;
      }
      case 1003:
        decoded++;
        decodeGateway(dg, b, off, rEnd, rec);
        break;
      default:
        stats.sflowSkippedRecords++;
    }
    off = rEnd;
  }

  if (decoded === 0) {
    // no records, only records we skip, or an empty raw header: not a flow (issue 12 item 10)
    stats.sflowMalformedSamples++;
    return false;
  }
  // No raw header to read ICMP type/code from (sampled_ipv4/6 only): the destination-port convention.
  if (lengthRank < 3) icmpFromDstPort(rec);
  if (opts.scaleBySampling && rate > 1) {
    rec.packets = rate;
    const scaled = length * rate;
    rec.bytes = scaled <= Number.MAX_SAFE_INTEGER ? scaled : BigInt(length) * BigInt(rate);
  } else {
    rec.packets = 1;
    rec.bytes = length;
  }
  if (opts.collectElements) rec.elements = buildElements(rec, inFormat, outFormat);
  stats.flows++; // counted as emitted, so flows before a later malformed sample are counted too
  handler.flow(rec);
  return true;
}

/** An `address` (type + 4/16 bytes) into next_hop (router) or bgp_next_hop (gateway); returns the offset after. */
function readNextHop(
  dg: Datagram,
  b: Buffer,
  off: number,
  rEnd: number,
  rec: FlowRecord,
  bgp: boolean,
): number {
  if (rEnd - off < 4) fail("BAD_SAMPLE", "next hop address", dg, off);
  const type = u32(b, off);
  off += 4;
  if (type === 1) {
    // IPv4 as its number (the encoders write it without a string), as the template decoders do
    if (rEnd - off < 4) fail("BAD_SAMPLE", "next hop address", dg, off);
    if (bgp) rec.bgp_next_hop_v4 = ipv4Number(b, off);
    else rec.next_hop_v4 = ipv4Number(b, off);
    return off + 4;
  }
  let addr = "";
  if (type === 2) {
    if (rEnd - off < 16) fail("BAD_SAMPLE", "next hop address", dg, off);
    addr = ipv6(b, off);
    off += 16;
  } else if (type !== 0) {
    fail("BAD_SAMPLE", `next hop address type ${type}`, dg, off - 4);
  }
  if (bgp) rec.bgp_next_hop = addr;
  else rec.next_hop = addr;
  return off;
}

function decodeGateway(dg: Datagram, b: Buffer, off: number, rEnd: number, rec: FlowRecord): void {
  off = readNextHop(dg, b, off, rEnd, rec, true);
  if (rEnd - off < 16) fail("BAD_SAMPLE", "extended gateway record too short", dg, off);
  const routerAs = u32(b, off);
  const srcAs = u32(b, off + 4);
  const srcPeerAs = u32(b, off + 8);
  const numSegments = u32(b, off + 12);
  off += 16;
  // First pass: validate and count, so the path array is sized by what the record really holds.
  let pathLen = 0;
  let o = off;
  for (let s = 0; s < numSegments; s++) {
    if (rEnd - o < 8) fail("BAD_SAMPLE", `AS path segment ${s} of ${numSegments}`, dg, o);
    const count = u32(b, o + 4);
    o += 8;
    if (count > (rEnd - o) / 4) fail("BAD_SAMPLE", `AS path segment ${s} count ${count}`, dg, o - 4);
    pathLen += count;
    o += count * 4;
  }
  if (rEnd - o < 4) fail("BAD_SAMPLE", "communities count", dg, o);
  const numCommunities = u32(b, o);
  o += 4;
  if (numCommunities > (rEnd - o) / 4) fail("BAD_SAMPLE", `communities count ${numCommunities}`, dg, o - 4);
  const commOff = o;
  o += numCommunities * 4;
  if (rEnd - o < 4) fail("BAD_SAMPLE", "local preference", dg, o);
  const localPref = u32(b, o);

  if (pathLen > 0) {
    const path = new Array<number>(pathLen);
    let k = 0;
    o = off;
    for (let s = 0; s < numSegments; s++) {
      const count = u32(b, o + 4);
      o += 8;
      for (let j = 0; j < count; j++, o += 4) path[k++] = u32(b, o);
    }
    rec.as_path = path;
    rec.next_hop_as = path[0]!;
    rec.dst_as = path[pathLen - 1]!;
  } else {
    rec.dst_as = routerAs;
  }
  rec.src_as = srcAs > 0 ? srcAs : routerAs;
  if (numCommunities > 0) {
    const communities = new Array<number>(numCommunities);
    for (let j = 0; j < numCommunities; j++) communities[j] = u32(b, commOff + j * 4);
    rec.bgp_communities = communities;
  }
  const extra = rec.extra;
  if (extra === null) rec.extra = { src_peer_as: srcPeerAs, local_pref: localPref };
  else {
    extra.src_peer_as = srcPeerAs;
    extra.local_pref = localPref;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Counter samples

function decodeCounterSample(
  info: DatagramInfo,
  b: Buffer,
  off: number,
  sEnd: number,
  expanded: boolean,
  stats: DecoderStats,
  handler: RecordHandler,
): void {
  const dg = info.dg;
  const fixed = expanded ? 16 : 12;
  if (sEnd - off < fixed) fail("BAD_SAMPLE", `counter sample shorter than ${fixed} bytes`, dg, off);
  const c = new InterfaceCounters();
  c.time_received_ms = dg.receivedAtMs;
  c.sampler_address = info.agent;
  c.sub_agent_id = info.subAgent;
  c.sequence_num = info.sequence;
  c.uptime_ms = info.uptime;
  c.sample_sequence_num = u32(b, off);
  if (expanded) {
    c.source_id_type = u32(b, off + 4);
    c.source_id_index = u32(b, off + 8);
  } else {
    const id = u32(b, off + 4);
    c.source_id_type = id >>> 24;
    c.source_id_index = id & 0xffffff;
  }
  const numRecords = u32(b, off + fixed - 4);
  off += fixed;
  for (let r = 0; r < numRecords; r++) {
    if (sEnd - off < 8) fail("BAD_SAMPLE", `counter record ${r} of ${numRecords}: header`, dg, off);
    const format = u32(b, off);
    const rLen = u32(b, off + 4);
    off += 8;
    if (rLen > sEnd - off)
      fail("BAD_SAMPLE", `counter record ${r} (format ${format}) length ${rLen}`, dg, off - 4);
    if (format === 1) {
      if (rLen < 88) fail("BAD_SAMPLE", "generic interface counters shorter than 88 bytes", dg, off);
      c.has_generic = true;
      c.if_index = u32(b, off);
      c.if_type = u32(b, off + 4);
      c.if_speed = u64(b, off + 8);
      c.if_direction = u32(b, off + 16);
      const status = u32(b, off + 20);
      c.if_admin_status_up = (status & 1) !== 0;
      c.if_oper_status_up = (status & 2) !== 0;
      c.if_in_octets = u64(b, off + 24);
      c.if_in_ucast_pkts = u32(b, off + 32);
      c.if_in_multicast_pkts = u32(b, off + 36);
      c.if_in_broadcast_pkts = u32(b, off + 40);
      c.if_in_discards = u32(b, off + 44);
      c.if_in_errors = u32(b, off + 48);
      c.if_in_unknown_protos = u32(b, off + 52);
      c.if_out_octets = u64(b, off + 56);
      c.if_out_ucast_pkts = u32(b, off + 64);
      c.if_out_multicast_pkts = u32(b, off + 68);
      c.if_out_broadcast_pkts = u32(b, off + 72);
      c.if_out_discards = u32(b, off + 76);
      c.if_out_errors = u32(b, off + 80);
      c.if_promiscuous_mode = u32(b, off + 84);
    } else if (format === 2) {
      if (rLen < 52) fail("BAD_SAMPLE", "Ethernet counters shorter than 52 bytes", dg, off);
      c.has_ethernet = true;
      c.dot3_stats_alignment_errors = u32(b, off);
      c.dot3_stats_fcs_errors = u32(b, off + 4);
      c.dot3_stats_single_collision_frames = u32(b, off + 8);
      c.dot3_stats_multiple_collision_frames = u32(b, off + 12);
      c.dot3_stats_sqe_test_errors = u32(b, off + 16);
      c.dot3_stats_deferred_transmissions = u32(b, off + 20);
      c.dot3_stats_late_collisions = u32(b, off + 24);
      c.dot3_stats_excessive_collisions = u32(b, off + 28);
      c.dot3_stats_internal_mac_transmit_errors = u32(b, off + 32);
      c.dot3_stats_carrier_sense_errors = u32(b, off + 36);
      c.dot3_stats_frame_too_longs = u32(b, off + 40);
      c.dot3_stats_internal_mac_receive_errors = u32(b, off + 44);
      c.dot3_stats_symbol_errors = u32(b, off + 48);
    } else {
      stats.sflowSkippedRecords++;
    }
    off += rLen;
  }
  if (c.has_generic || c.has_ethernet) {
    stats.counterRecords++;
    handler.counters?.(c);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Elements (only when asked for): the record's decoded values under IANA names, in sample order.

function el(list: DecodedElement[], id: number, name: string, value: number | string): void {
  list.push({ pen: 0, id, name, value });
}

const MPLS_ELEMENT_NAMES = [
  "mplsTopLabelStackSection",
  "mplsLabelStackSection2",
  "mplsLabelStackSection3",
  "mplsLabelStackSection4",
  "mplsLabelStackSection5",
  "mplsLabelStackSection6",
  "mplsLabelStackSection7",
  "mplsLabelStackSection8",
  "mplsLabelStackSection9",
  "mplsLabelStackSection10",
];

function buildElements(rec: FlowRecord, inFormat: number, outFormat: number): DecodedElement[] {
  const list: DecodedElement[] = [];
  const v6sampler = rec.sampler_address.includes(":");
  el(
    list,
    v6sampler ? 131 : 130,
    v6sampler ? "exporterIPv6Address" : "exporterIPv4Address",
    rec.sampler_address,
  );
  el(list, 34, "samplingInterval", rec.sampling_rate);
  if (inFormat === 0) el(list, 10, "ingressInterface", rec.in_if);
  if (outFormat === 0) el(list, 14, "egressInterface", rec.out_if);
  else if (outFormat === 1) el(list, 89, "forwardingStatus", rec.forwarding_status);
  el(list, 1, "octetDeltaCount", typeof rec.bytes === "bigint" ? rec.bytes.toString() : rec.bytes);
  el(list, 2, "packetDeltaCount", typeof rec.packets === "bigint" ? rec.packets.toString() : rec.packets);
  if (rec.src_mac !== 0) el(list, 56, "sourceMacAddress", formatMac(rec.src_mac));
  if (rec.dst_mac !== 0) el(list, 80, "destinationMacAddress", formatMac(rec.dst_mac));
  if (rec.vlan_id !== 0) el(list, 243, "dot1qVlanId", rec.vlan_id);
  const extra = rec.extra;
  if (extra !== null && typeof extra.dot1qCustomerVlanId === "number") {
    el(list, 245, "dot1qCustomerVlanId", extra.dot1qCustomerVlanId);
  }
  if (rec.etype !== 0) el(list, 256, "ethernetType", rec.etype);
  const labels = rec.mpls_label;
  if (labels !== null) {
    for (let i = 0; i < labels.length && i < MPLS_ELEMENT_NAMES.length; i++) {
      el(list, 70 + i, MPLS_ELEMENT_NAMES[i]!, labels[i]!);
    }
  }
  const v6 = rec.etype === ETH_IPV6;
  if (rec.src_addr !== "" || rec.dst_addr !== "") {
    el(list, 60, "ipVersion", v6 ? 6 : 4);
    if (rec.src_addr !== "") {
      el(list, v6 ? 27 : 8, v6 ? "sourceIPv6Address" : "sourceIPv4Address", rec.src_addr);
    }
    if (rec.dst_addr !== "") {
      el(list, v6 ? 28 : 12, v6 ? "destinationIPv6Address" : "destinationIPv4Address", rec.dst_addr);
    }
    el(list, 4, "protocolIdentifier", rec.proto);
    el(list, 5, "ipClassOfService", rec.ip_tos);
    if (rec.ip_ttl !== 0) el(list, 192, "ipTTL", rec.ip_ttl);
    if (v6) el(list, 31, "flowLabelIPv6", rec.ipv6_flow_label);
    if (rec.fragment_id !== 0) el(list, 54, "fragmentIdentification", rec.fragment_id);
    if (rec.fragment_offset !== 0) el(list, 88, "fragmentOffset", rec.fragment_offset);
    if (rec.ip_flags !== 0) el(list, 197, "fragmentFlags", rec.ip_flags);
    const proto = rec.proto;
    if (rec.fragment_offset === 0) {
      if (proto === 6 || proto === 17 || proto === 132 || proto === 136) {
        el(list, 7, "sourceTransportPort", rec.src_port);
        el(list, 11, "destinationTransportPort", rec.dst_port);
        if (proto === 6) el(list, 6, "tcpControlBits", rec.tcp_flags);
      } else if (proto === 1) {
        el(list, 176, "icmpTypeIPv4", rec.icmp_type);
        el(list, 177, "icmpCodeIPv4", rec.icmp_code);
      } else if (proto === 58) {
        el(list, 178, "icmpTypeIPv6", rec.icmp_type);
        el(list, 179, "icmpCodeIPv6", rec.icmp_code);
      }
    }
  }
  if (rec.src_vlan !== 0) el(list, 58, "vlanId", rec.src_vlan);
  if (rec.dst_vlan !== 0) el(list, 59, "postVlanId", rec.dst_vlan);
  if (extra !== null && typeof extra.src_priority === "number") {
    el(list, 244, "dot1qPriority", extra.src_priority);
  }
  if (rec.next_hop !== "") {
    const nh6 = rec.next_hop.includes(":");
    el(list, nh6 ? 62 : 15, nh6 ? "ipNextHopIPv6Address" : "ipNextHopIPv4Address", rec.next_hop);
  }
  if (rec.src_net !== 0) {
    el(list, v6 ? 29 : 9, v6 ? "sourceIPv6PrefixLength" : "sourceIPv4PrefixLength", rec.src_net);
  }
  if (rec.dst_net !== 0) {
    el(list, v6 ? 30 : 13, v6 ? "destinationIPv6PrefixLength" : "destinationIPv4PrefixLength", rec.dst_net);
  }
  if (rec.bgp_next_hop !== "") {
    const nh6 = rec.bgp_next_hop.includes(":");
    el(list, nh6 ? 63 : 18, nh6 ? "bgpNextHopIPv6Address" : "bgpNextHopIPv4Address", rec.bgp_next_hop);
  }
  if (rec.src_as !== 0) el(list, 16, "bgpSourceAsNumber", rec.src_as);
  if (rec.dst_as !== 0) el(list, 17, "bgpDestinationAsNumber", rec.dst_as);
  if (rec.next_hop_as !== 0) el(list, 128, "bgpNextAdjacentAsNumber", rec.next_hop_as);
  if (extra !== null && typeof extra.src_peer_as === "number" && extra.src_peer_as !== 0) {
    el(list, 129, "bgpPrevAdjacentAsNumber", extra.src_peer_as);
  }
  return list;
}

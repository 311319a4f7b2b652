/**
 * NetFlow v5 (Cisco): a 24-byte header and `count` 48-byte records.
 *
 * header:  version u16 (5) | count u16 | sysUptime u32 ms | unix_secs u32 | unix_nsecs u32 |
 *          flow_sequence u32 | engine_type u8 | engine_id u8 | sampling u16 (mode: top 2 bits, interval: low 14)
 * record:  srcaddr u32 | dstaddr u32 | nexthop u32 | input u16 | output u16 | dPkts u32 | dOctets u32 |
 *          first u32 (sysUptime ms) | last u32 | srcport u16 | dstport u16 | pad1 u8 | tcp_flags u8 |
 *          prot u8 | tos u8 | src_as u16 | dst_as u16 | src_mask u8 | dst_mask u8 | pad2 u16
 */

import { ipv4Number } from "../core/address.ts";
import type { Datagram } from "../core/datagram.ts";
import { DecodeError } from "../core/errors.ts";
import { type DecodedElement, FlowRecord, type RecordHandler } from "../core/flow.ts";
import type { DecodeContext, Decoder } from "./context.ts";
import type { SequenceTracker } from "./sequence.ts";
import { effectiveRate, staticRate } from "./state/sampling-map.ts";
import { icmpFromDstPort, ipv4 } from "./wire.ts";

export const V5_HEADER_LENGTH = 24;
export const V5_RECORD_LENGTH = 48;

const u32 = (b: Uint8Array, o: number): number =>
  b[o]! * 16777216 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);

/** The registry entry (index.ts): version 5. */
export const netflow5 = {
  name: "netflow5",
  flowType: "NETFLOW_V5",
  matches: (b: Buffer): boolean => b.length >= 2 && b[0] === 0 && b[1] === 5,
  decode: decodeNetflow5,
  sequence: sequenceNetflow5,
} as const satisfies Decoder;

/** `flow_sequence` counts flows; one stream per exporter, source port and engine type/id. */
function sequenceNetflow5(dg: Datagram, track: SequenceTracker): void {
  const b = dg.payload;
  if (b.length < V5_HEADER_LENGTH) return;
  const engineType = b[20]!;
  const engineId = b[21]!;
  const key = `5|${dg.exporter}|${dg.port}|${engineType * 256 + engineId}`;
  const s =
    track.get(key) ??
    track.open(key, {
      exporter: dg.exporter,
      protocol: "netflow5",
      a: engineType,
      b: engineId,
      c: -1,
      unit: "flows",
    });
  track.advance(s, u32(b, 16), (b[2]! << 8) | b[3]!, u32(b, 4), dg.receivedAtMs);
}

/**
 * The header's sampling interval wins; without one, the rate options data taught for the exporter (domain
 * 0). A header interval also becomes the exporter's sampling rate in `exporters()`.
 */
export function decodeNetflow5(ctx: DecodeContext, emit: RecordHandler): void {
  const dg = ctx.datagram;
  const b = dg.payload;
  if (b.length < V5_HEADER_LENGTH) {
    throw new DecodeError(
      "TRUNCATED",
      `header needs ${V5_HEADER_LENGTH} bytes, have ${b.length}`,
      "netflow5",
      dg.exporter,
      0,
    );
  }
  const count = (b[2]! << 8) | b[3]!;
  const need = V5_HEADER_LENGTH + count * V5_RECORD_LENGTH;
  // The format allows 30 records; some exporters send more. Accept any count the datagram holds.
  if (need > b.length) {
    throw new DecodeError(
      "TRUNCATED",
      `header count ${count} needs ${need} bytes, datagram has ${b.length}`,
      "netflow5",
      dg.exporter,
      2,
    );
  }
  const uptime = u32(b, 4);
  const secs = u32(b, 8);
  const nsecs = u32(b, 12);
  const sequence = u32(b, 16);
  const engineType = b[20]!;
  const engineId = b[21]!;
  const samplingWord = (b[22]! << 8) | b[23]!;
  const samplingMode = samplingWord >>> 14;
  const interval = samplingWord & 0x3fff;
  if (interval > 0) ctx.exporter.samplingRate = interval;
  const announced = interval > 0 ? interval : (ctx.state.options.get(dg.exporter, 0, 0)?.rate ?? 0);
  const mapped = ctx.samplingMap?.lookup(dg.exporter, 0) ?? null;
  // the static map's entries by interface (v5 names no sampler) are checked per record
  const byIf = mapped !== null && mapped.keyed !== null;
  let rate = mapped === null ? announced : effectiveRate(announced, mapped.base);
  const opts = ctx.opts;
  const exportMs = secs * 1000 + Math.floor(nsecs / 1e6);
  const switchId = opts.switchIdFromIp ? dg.exporter : "";
  emit.message?.({
    version: 5,
    protocol: "netflow5",
    exporter: dg.exporter,
    count,
    sequence,
    exportTimeMs: exportMs,
    domain: 0,
  });
  const scratch = emit.scratch; // one record refilled per flow (the handler copies), else one each
  for (let i = 0; i < count; i++) {
    const o = V5_HEADER_LENGTH + i * V5_RECORD_LENGTH;
    const r = scratch !== undefined ? scratch.clear() : new FlowRecord();
    r.type = "NETFLOW_V5";
    r.time_received_ms = dg.receivedAtMs;
    r.sequence_num = sequence;
    r.sampling_rate = rate;
    r.sampler_address = dg.exporter;
    r.switch_id = switchId;
    r.src_v4 = ipv4Number(b, o);
    r.dst_v4 = ipv4Number(b, o + 4);
    r.next_hop_v4 = ipv4Number(b, o + 8);
    r.in_if = (b[o + 12]! << 8) | b[o + 13]!;
    r.out_if = (b[o + 14]! << 8) | b[o + 15]!;
    if (byIf) {
      rate = effectiveRate(announced, staticRate(mapped, r.in_if, -1));
      r.sampling_rate = rate;
    }
    let packets = u32(b, o + 16);
    let bytes = u32(b, o + 20);
    if (opts.scaleBySampling && rate > 1) {
      packets *= rate;
      bytes *= rate;
    }
    r.packets = packets;
    r.bytes = bytes;
    const first = u32(b, o + 24);
    const last = u32(b, o + 28);
    // 32-bit wrap: the switched time is at most 2^32 ms before the uptime.
    r.time_flow_start_ms = exportMs - ((uptime - first) >>> 0);
    r.time_flow_end_ms = exportMs - ((uptime - last) >>> 0);
    r.src_port = (b[o + 32]! << 8) | b[o + 33]!;
    r.dst_port = (b[o + 34]! << 8) | b[o + 35]!;
    r.tcp_flags = b[o + 37]!;
    r.proto = b[o + 38]!;
    r.ip_tos = b[o + 39]!;
    r.src_as = (b[o + 40]! << 8) | b[o + 41]!;
    r.dst_as = (b[o + 42]! << 8) | b[o + 43]!;
    r.src_net = b[o + 44]!;
    r.dst_net = b[o + 45]!;
    r.etype = 0x0800;
    icmpFromDstPort(r); // v5 has no ICMP fields: type × 256 + code is in the destination port
    if (opts.collectElements) {
      r.elements = v5Elements(b, o, { engineType, engineId, samplingMode, interval });
    }
    emit.flow(r);
  }
  ctx.stats.flows += count;
}

interface V5Header {
  engineType: number;
  engineId: number;
  samplingMode: number;
  interval: number;
}

function v5Elements(b: Uint8Array, o: number, h: V5Header): DecodedElement[] {
  const u16 = (p: number) => (b[p]! << 8) | b[p + 1]!;
  const e = (id: number, name: string, value: number | string): DecodedElement => ({
    pen: 0,
    id,
    name,
    value,
  });
  return [
    e(8, "sourceIPv4Address", ipv4(b, o)),
    e(12, "destinationIPv4Address", ipv4(b, o + 4)),
    e(15, "ipNextHopIPv4Address", ipv4(b, o + 8)),
    e(10, "ingressInterface", u16(o + 12)),
    e(14, "egressInterface", u16(o + 14)),
    e(2, "packetDeltaCount", u32(b, o + 16)),
    e(1, "octetDeltaCount", u32(b, o + 20)),
    e(22, "flowStartSysUpTime", u32(b, o + 24)),
    e(21, "flowEndSysUpTime", u32(b, o + 28)),
    e(7, "sourceTransportPort", u16(o + 32)),
    e(11, "destinationTransportPort", u16(o + 34)),
    e(6, "tcpControlBits", b[o + 37]!),
    e(4, "protocolIdentifier", b[o + 38]!),
    e(5, "ipClassOfService", b[o + 39]!),
    e(16, "bgpSourceAsNumber", u16(o + 40)),
    e(17, "bgpDestinationAsNumber", u16(o + 42)),
    e(9, "sourceIPv4PrefixLength", b[o + 44]!),
    e(13, "destinationIPv4PrefixLength", b[o + 45]!),
    e(38, "engineType", h.engineType),
    e(39, "engineId", h.engineId),
    e(35, "samplingAlgorithm", h.samplingMode),
    e(34, "samplingInterval", h.interval),
  ];
}

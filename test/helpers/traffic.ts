/**
 * Synthetic traffic for real exporters to read (softflowd -r, pmacctd pcap_savefile): a pcap of many
 * unidirectional TCP/UDP/ICMP flows with known 5-tuples, packet counts, byte counts and times.
 *
 * Every flow has a unique 5-tuple, so an exporter emits exactly one record per flow (softflowd pairs the
 * two directions of a connection internally, but with one direction only it exports one record).
 * `bytes` is the sum of IP total lengths (what NetFlow/IPFIX octet counters count); `frameBytes` the sum of
 * Ethernet frame lengths (what sFlow's frame length reports, without the FCS).
 */
import { formatIPv6, ipFrame, parseAddress, writePcap } from "../../src/core/pcap.ts";

function canonical(v6: string): string {
  return formatIPv6(parseAddress(v6), 0);
}

export interface FlowSpec {
  family: 4 | 6;
  src: string;
  dst: string;
  /** 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6. */
  proto: number;
  /** 0 for ICMP. */
  srcPort: number;
  /** For ICMP: 0 (exporters put type*256+code here, see icmpType/icmpCode). */
  dstPort: number;
  icmpType: number;
  icmpCode: number;
  packets: number;
  /** Sum of IP total lengths. */
  bytes: number;
  /** Sum of Ethernet frame lengths. */
  frameBytes: number;
  /** IP TOS / traffic class. */
  tos: number;
  /** OR of the TCP flags of every packet (0 for non-TCP). */
  tcpFlags: number;
  firstMs: number;
  lastMs: number;
}

export interface TrafficOptions {
  flows: number;
  /** Make about a third of the flows IPv6. Default false. */
  ipv6?: boolean;
  seed?: number;
  /**
   * Time of the first packet, ms since the epoch. Default 2024-01-01T00:00:00Z. Exporters that stamp
   * headers with the wall clock (pmacctd v5, softflowd without -a) give meaningful flow times only when
   * this is close to now, e.g. `Date.now() - 5000`.
   */
  startMs?: number;
  /** Flows start within this many ms. Default 3000. */
  spreadMs?: number;
  /** Packets per flow at most. Default 8. */
  maxPackets?: number;
}

const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_PSH = 0x08;
const TCP_ACK = 0x10;

/** Deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeTrafficPcap(opts: TrafficOptions): { pcap: Buffer; flows: FlowSpec[] } {
  const rand = rng(opts.seed ?? 1);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const start = opts.startMs ?? Date.UTC(2024, 0, 1);
  const spread = opts.spreadMs ?? 3000;
  const maxPackets = opts.maxPackets ?? 8;
  const flows: FlowSpec[] = [];
  const packets: { timestampMs: number; frame: Buffer; seq: number }[] = [];
  let seq = 0;
  for (let i = 0; i < opts.flows; i++) {
    const family: 4 | 6 = opts.ipv6 && i % 3 === 2 ? 6 : 4;
    const kind = i % 5; // 0,1,2 TCP; 3 UDP; 4 ICMP
    const proto = kind <= 2 ? 6 : kind === 3 ? 17 : family === 6 ? 58 : 1;
    // hosts: unique per flow index so 5-tuples never collide
    // hosts: unique per flow index so 5-tuples never collide; IPv6 in canonical (RFC 5952) text
    const src =
      family === 4
        ? `10.${1 + (i % 200)}.${(i >> 3) & 0xff}.${1 + (i % 250)}`
        : canonical(`2001:db8:${(i % 50).toString(16)}::${(i + 1).toString(16)}`);
    const dst =
      family === 4 ? `192.0.2.${1 + (i % 254)}` : canonical(`2001:db8:ff::${(1 + (i % 4000)).toString(16)}`);
    const srcPort = proto === 6 || proto === 17 ? 20000 + i : 0;
    const dstPort =
      proto === 6 ? [80, 443, 22, 8080][i % 4]! : proto === 17 ? [53, 123, 514, 161][i % 4]! : 0;
    const icmpType = proto === 1 ? 8 : proto === 58 ? 128 : 0;
    const tos = [0, 0, 0x10, 0xb8, 0x28][int(0, 4)]!;
    const n = proto === 6 ? int(3, Math.max(3, maxPackets)) : int(1, maxPackets);
    const first = start + int(0, spread);
    const spec: FlowSpec = {
      family,
      src,
      dst,
      proto,
      srcPort,
      dstPort,
      icmpType,
      icmpCode: 0,
      packets: n,
      bytes: 0,
      frameBytes: 0,
      tos,
      tcpFlags: 0,
      firstMs: first,
      lastMs: first,
    };
    let t = first;
    let tcpSeq = 1000 + i * 100_000;
    for (let k = 0; k < n; k++) {
      if (k > 0) t += int(1, 200);
      const payloadLen = int(0, 1200);
      let l4: Buffer;
      if (proto === 6) {
        const flags =
          k === 0 ? TCP_SYN : k === n - 1 ? TCP_FIN | TCP_ACK : TCP_ACK | (payloadLen > 0 ? TCP_PSH : 0);
        spec.tcpFlags |= flags;
        l4 = Buffer.alloc(20 + (k === 0 ? 0 : payloadLen));
        l4.writeUInt16BE(srcPort, 0);
        l4.writeUInt16BE(dstPort, 2);
        l4.writeUInt32BE(tcpSeq >>> 0, 4);
        tcpSeq += k === 0 ? 1 : payloadLen;
        l4.writeUInt32BE(k === 0 ? 0 : 1, 8);
        l4[12] = 5 << 4;
        l4[13] = flags;
        l4.writeUInt16BE(65535, 14);
      } else if (proto === 17) {
        l4 = Buffer.alloc(8 + payloadLen);
        l4.writeUInt16BE(srcPort, 0);
        l4.writeUInt16BE(dstPort, 2);
        l4.writeUInt16BE(l4.length, 4);
      } else {
        l4 = Buffer.alloc(8 + Math.min(payloadLen, 56));
        l4[0] = icmpType;
        l4[1] = 0;
        l4.writeUInt16BE(i & 0xffff, 4);
        l4.writeUInt16BE(k, 6);
      }
      for (let b = l4.length - 1; b >= 20 && b >= l4.length - 4; b--) l4[b] = (i + k + b) & 0xff;
      const frame = ipFrame({ src, dst, protocol: proto, l4, tos, id: (i * 64 + k) & 0xffff, ttl: 64 });
      spec.bytes += frame.length - 14;
      spec.frameBytes += frame.length;
      packets.push({ timestampMs: t, frame, seq: seq++ });
    }
    spec.lastMs = t;
    flows.push(spec);
  }
  packets.sort((a, b) => a.timestampMs - b.timestampMs || a.seq - b.seq);
  return { pcap: writePcap(packets), flows };
}

/** The 5-tuple key an exporter's record should match (ports 0 for ICMP). */
export function flowKey(f: {
  src: string;
  dst: string;
  proto: number;
  srcPort: number;
  dstPort: number;
}): string {
  return `${f.proto}|${f.src}|${f.srcPort}|${f.dst}|${f.dstPort}`;
}

/**
 * Builds sFlow v5 datagrams (XDR, sflow_version_5.txt) and the sampled packets inside them, for tests and
 * benchmarks. Every builder returns a Buffer; compose them with the helpers below.
 */

export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

export function u64(v: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v));
  return b;
}

/** Variable-length opaque: length word, bytes, zero padding to 4. */
export function opaque(data: Buffer): Buffer {
  const pad = (4 - (data.length % 4)) % 4;
  return Buffer.concat([u32(data.length), data, Buffer.alloc(pad)]);
}

export function ipv4Bytes(ip: string): Buffer {
  return Buffer.from(ip.split(".").map((p) => Number(p)));
}

export function ipv6Bytes(ip: string): Buffer {
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  if (dotted) {
    const v4 = ipv4Bytes(dotted[2]!);
    ip = `${dotted[1]}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
  }
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, undefined];
  const hs = head ? head.split(":") : [];
  const ts = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const groups =
    tail === undefined ? hs : [...hs, ...new Array<string>(8 - hs.length - ts.length).fill("0"), ...ts];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => {
    b.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  });
  return b;
}

/** sFlow `address`: type 1 + 4 bytes, type 2 + 16 bytes, "" → type 0 (unknown). */
export function address(ip: string): Buffer {
  if (ip === "") return u32(0);
  if (ip.includes(":")) return Buffer.concat([u32(2), ipv6Bytes(ip)]);
  return Buffer.concat([u32(1), ipv4Bytes(ip)]);
}

export function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(":").map((h) => Number.parseInt(h, 16)));
}

export function macNumber(mac: string): number {
  return Number.parseInt(mac.replaceAll(":", ""), 16);
}

// --- datagram and samples ---------------------------------------------------------------------------------

export interface DatagramOptions {
  agent?: string;
  subAgent?: number;
  sequence?: number;
  uptime?: number;
  samples: Buffer[];
  /** Override the sample count (to lie about it). */
  count?: number;
  version?: number;
}

export function datagram(o: DatagramOptions): Buffer {
  return Buffer.concat([
    u32(o.version ?? 5),
    address(o.agent ?? "192.0.2.1"),
    u32(o.subAgent ?? 0),
    u32(o.sequence ?? 1),
    u32(o.uptime ?? 1000),
    u32(o.count ?? o.samples.length),
    ...o.samples,
  ]);
}

/** A sample or record envelope: data_format (enterprise<<12 | format), length, body. */
export function envelope(format: number, body: Buffer, enterprise = 0): Buffer {
  return Buffer.concat([u32(enterprise * 4096 + format), u32(body.length), body]);
}

export interface FlowSampleOptions {
  sequence?: number;
  sourceIdType?: number;
  sourceIdIndex?: number;
  rate?: number;
  pool?: number;
  drops?: number;
  inputFormat?: number;
  input?: number;
  outputFormat?: number;
  output?: number;
  records: Buffer[];
  count?: number;
}

/** Compact flow sample (0:1): interfaces and source id packed in one word each. */
export function flowSample(o: FlowSampleOptions): Buffer {
  const body = Buffer.concat([
    u32(o.sequence ?? 1),
    u32(((o.sourceIdType ?? 0) << 24) | (o.sourceIdIndex ?? 1)),
    u32(o.rate ?? 1),
    u32(o.pool ?? 0),
    u32(o.drops ?? 0),
    u32(((o.inputFormat ?? 0) << 30) | (o.input ?? 0)),
    u32(((o.outputFormat ?? 0) << 30) | (o.output ?? 0)),
    u32(o.count ?? o.records.length),
    ...o.records,
  ]);
  return envelope(1, body);
}

/** Expanded flow sample (0:3). */
export function expandedFlowSample(o: FlowSampleOptions): Buffer {
  const body = Buffer.concat([
    u32(o.sequence ?? 1),
    u32(o.sourceIdType ?? 0),
    u32(o.sourceIdIndex ?? 1),
    u32(o.rate ?? 1),
    u32(o.pool ?? 0),
    u32(o.drops ?? 0),
    u32(o.inputFormat ?? 0),
    u32(o.input ?? 0),
    u32(o.outputFormat ?? 0),
    u32(o.output ?? 0),
    u32(o.count ?? o.records.length),
    ...o.records,
  ]);
  return envelope(3, body);
}

export interface CounterSampleOptions {
  sequence?: number;
  sourceIdType?: number;
  sourceIdIndex?: number;
  records: Buffer[];
}

export function counterSample(o: CounterSampleOptions): Buffer {
  const body = Buffer.concat([
    u32(o.sequence ?? 1),
    u32(((o.sourceIdType ?? 0) << 24) | (o.sourceIdIndex ?? 1)),
    u32(o.records.length),
    ...o.records,
  ]);
  return envelope(2, body);
}

export function expandedCounterSample(o: CounterSampleOptions): Buffer {
  const body = Buffer.concat([
    u32(o.sequence ?? 1),
    u32(o.sourceIdType ?? 0),
    u32(o.sourceIdIndex ?? 1),
    u32(o.records.length),
    ...o.records,
  ]);
  return envelope(4, body);
}

// --- flow records -----------------------------------------------------------------------------------------

export function rawHeader(
  header: Buffer,
  o: { protocol?: number; frameLength?: number; stripped?: number } = {},
) {
  return envelope(
    1,
    Buffer.concat([
      u32(o.protocol ?? 1),
      u32(o.frameLength ?? header.length + 4),
      u32(o.stripped ?? 4),
      opaque(header),
    ]),
  );
}

export function sampledEthernet(o: { length: number; src: string; dst: string; type: number }): Buffer {
  return envelope(
    2,
    Buffer.concat([
      u32(o.length),
      macBytes(o.src),
      Buffer.alloc(2),
      macBytes(o.dst),
      Buffer.alloc(2),
      u32(o.type),
    ]),
  );
}

export interface SampledIpOptions {
  length: number;
  protocol: number;
  src: string;
  dst: string;
  srcPort?: number;
  dstPort?: number;
  tcpFlags?: number;
  tos?: number;
}

export function sampledIPv4(o: SampledIpOptions): Buffer {
  return envelope(
    3,
    Buffer.concat([
      u32(o.length),
      u32(o.protocol),
      ipv4Bytes(o.src),
      ipv4Bytes(o.dst),
      u32(o.srcPort ?? 0),
      u32(o.dstPort ?? 0),
      u32(o.tcpFlags ?? 0),
      u32(o.tos ?? 0),
    ]),
  );
}

export function sampledIPv6(o: SampledIpOptions): Buffer {
  return envelope(
    4,
    Buffer.concat([
      u32(o.length),
      u32(o.protocol),
      ipv6Bytes(o.src),
      ipv6Bytes(o.dst),
      u32(o.srcPort ?? 0),
      u32(o.dstPort ?? 0),
      u32(o.tcpFlags ?? 0),
      u32(o.tos ?? 0),
    ]),
  );
}

export function extendedSwitch(o: {
  srcVlan: number;
  srcPriority?: number;
  dstVlan: number;
  dstPriority?: number;
}): Buffer {
  return envelope(
    1001,
    Buffer.concat([u32(o.srcVlan), u32(o.srcPriority ?? 0), u32(o.dstVlan), u32(o.dstPriority ?? 0)]),
  );
}

export function extendedRouter(o: { nextHop: string; srcMask: number; dstMask: number }): Buffer {
  return envelope(1002, Buffer.concat([address(o.nextHop), u32(o.srcMask), u32(o.dstMask)]));
}

export interface GatewayOptions {
  nextHop: string;
  as: number;
  srcAs: number;
  srcPeerAs: number;
  /** AS path segments: type 1 AS_SET, 2 AS_SEQUENCE. */
  segments: { type: number; path: number[] }[];
  communities: number[];
  localPref: number;
}

export function extendedGateway(o: GatewayOptions): Buffer {
  return envelope(
    1003,
    Buffer.concat([
      address(o.nextHop),
      u32(o.as),
      u32(o.srcAs),
      u32(o.srcPeerAs),
      u32(o.segments.length),
      ...o.segments.flatMap((s) => [u32(s.type), u32(s.path.length), ...s.path.map(u32)]),
      u32(o.communities.length),
      ...o.communities.map(u32),
      u32(o.localPref),
    ]),
  );
}

// --- counter records --------------------------------------------------------------------------------------

export interface GenericCounters {
  ifIndex: number;
  ifType: number;
  ifSpeed: number | bigint;
  ifDirection: number;
  ifStatus: number;
  ifInOctets: number | bigint;
  ifInUcastPkts: number;
  ifInMulticastPkts: number;
  ifInBroadcastPkts: number;
  ifInDiscards: number;
  ifInErrors: number;
  ifInUnknownProtos: number;
  ifOutOctets: number | bigint;
  ifOutUcastPkts: number;
  ifOutMulticastPkts: number;
  ifOutBroadcastPkts: number;
  ifOutDiscards: number;
  ifOutErrors: number;
  ifPromiscuousMode: number;
}

export function genericCounters(c: GenericCounters): Buffer {
  return envelope(
    1,
    Buffer.concat([
      u32(c.ifIndex),
      u32(c.ifType),
      u64(c.ifSpeed),
      u32(c.ifDirection),
      u32(c.ifStatus),
      u64(c.ifInOctets),
      u32(c.ifInUcastPkts),
      u32(c.ifInMulticastPkts),
      u32(c.ifInBroadcastPkts),
      u32(c.ifInDiscards),
      u32(c.ifInErrors),
      u32(c.ifInUnknownProtos),
      u64(c.ifOutOctets),
      u32(c.ifOutUcastPkts),
      u32(c.ifOutMulticastPkts),
      u32(c.ifOutBroadcastPkts),
      u32(c.ifOutDiscards),
      u32(c.ifOutErrors),
      u32(c.ifPromiscuousMode),
    ]),
  );
}

/** Ethernet counters (0:2): the 13 dot3Stats values in spec order. */
export function ethernetCounters(values: number[]): Buffer {
  if (values.length !== 13) throw new Error("ethernet counters take 13 values");
  return envelope(2, Buffer.concat(values.map(u32)));
}

// --- sampled packets --------------------------------------------------------------------------------------

export interface EthOptions {
  dst?: string;
  src?: string;
  /** Tags outermost first. */
  tags?: { tpid: number; vid: number; pcp?: number }[];
  etype: number;
}

export function eth(o: EthOptions): Buffer {
  const parts = [macBytes(o.dst ?? "00:11:22:33:44:55"), macBytes(o.src ?? "66:77:88:99:aa:bb")];
  for (const t of o.tags ?? []) {
    const tag = Buffer.alloc(4);
    tag.writeUInt16BE(t.tpid, 0);
    tag.writeUInt16BE((((t.pcp ?? 0) & 7) << 13) | (t.vid & 0xfff), 2);
    parts.push(tag);
  }
  const et = Buffer.alloc(2);
  et.writeUInt16BE(o.etype);
  parts.push(et);
  return Buffer.concat(parts);
}

/** MPLS label stack entries; the last gets the bottom-of-stack bit. */
export function mpls(labels: number[], ttl = 64): Buffer {
  return Buffer.concat(
    labels.map((label, i) => u32(((label & 0xfffff) << 12) | (i === labels.length - 1 ? 0x100 : 0) | ttl)),
  );
}

export interface Ipv4Options {
  src: string;
  dst: string;
  proto: number;
  tos?: number;
  ttl?: number;
  id?: number;
  /** 3 flag bits: DF 2, MF 1. */
  flags?: number;
  fragOffset?: number;
  options?: Buffer;
  payloadLength?: number;
}

export function ipv4(o: Ipv4Options): Buffer {
  const opts = o.options ?? Buffer.alloc(0);
  const h = Buffer.alloc(20);
  h[0] = 0x40 | ((20 + opts.length) / 4);
  h[1] = o.tos ?? 0;
  h.writeUInt16BE(20 + opts.length + (o.payloadLength ?? 0), 2);
  h.writeUInt16BE(o.id ?? 0, 4);
  h.writeUInt16BE(((o.flags ?? 0) << 13) | (o.fragOffset ?? 0), 6);
  h[8] = o.ttl ?? 64;
  h[9] = o.proto;
  ipv4Bytes(o.src).copy(h, 12);
  ipv4Bytes(o.dst).copy(h, 16);
  return Buffer.concat([h, opts]);
}

export interface Ipv6Options {
  src: string;
  dst: string;
  next: number;
  trafficClass?: number;
  flowLabel?: number;
  hopLimit?: number;
  payloadLength?: number;
}

export function ipv6(o: Ipv6Options): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32BE(((6 << 28) | ((o.trafficClass ?? 0) << 20) | (o.flowLabel ?? 0)) >>> 0, 0);
  h.writeUInt16BE(o.payloadLength ?? 0, 4);
  h[6] = o.next;
  h[7] = o.hopLimit ?? 64;
  ipv6Bytes(o.src).copy(h, 8);
  ipv6Bytes(o.dst).copy(h, 24);
  return h;
}

/** A generic IPv6 extension header (hop-by-hop 0, routing 43, destination options 60) of 8·(units+1) bytes. */
export function ipv6Ext(next: number, units = 0): Buffer {
  const h = Buffer.alloc(8 * (units + 1));
  h[0] = next;
  h[1] = units;
  return h;
}

export function ipv6Fragment(next: number, offset: number, more: boolean, id: number): Buffer {
  const h = Buffer.alloc(8);
  h[0] = next;
  h.writeUInt16BE(((offset & 0x1fff) << 3) | (more ? 1 : 0), 2);
  h.writeUInt32BE(id >>> 0, 4);
  return h;
}

export function tcp(o: { sport: number; dport: number; flags: number }): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(o.sport, 0);
  h.writeUInt16BE(o.dport, 2);
  h[12] = (5 << 4) | ((o.flags >> 8) & 1);
  h[13] = o.flags & 0xff;
  return h;
}

export function udp(o: { sport: number; dport: number; length?: number }): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(o.sport, 0);
  h.writeUInt16BE(o.dport, 2);
  h.writeUInt16BE(o.length ?? 8, 4);
  return h;
}

export function icmp(type: number, code: number): Buffer {
  const h = Buffer.alloc(8);
  h[0] = type;
  h[1] = code;
  return h;
}

/** Pad a packet with payload bytes to `length` (a header snapshot is then cut from it). */
export function padTo(packet: Buffer, length: number): Buffer {
  return packet.length >= length
    ? packet
    : Buffer.concat([packet, Buffer.alloc(length - packet.length, 0xab)]);
}

// --- encapsulations (IPFIX packet sections and sFlow headers of tunnelled frames) -----------------------

/** A pseudowire control word (RFC 4385): first nibble 0, then flags, length and sequence number. */
export function controlWord(sequence = 0): Buffer {
  return u32(sequence & 0xffff);
}

/** An SRv6 segment routing header (RFC 8754, routing type 4); segments in wire order (last segment first). */
export function srh(next: number, segments: string[], segmentsLeft: number): Buffer {
  const h = Buffer.alloc(8 + 16 * segments.length);
  h[0] = next;
  h[1] = segments.length * 2;
  h[2] = 4;
  h[3] = segmentsLeft;
  h[4] = segments.length - 1;
  segments.forEach((s, i) => {
    ipv6Bytes(s).copy(h, 8 + 16 * i);
  });
  return h;
}

/** A GRE header (RFC 2784/2890), with an optional key. */
export function gre(protocolType: number, key?: number): Buffer {
  const h = Buffer.alloc(key === undefined ? 4 : 8);
  h[0] = key === undefined ? 0 : 0x20;
  h.writeUInt16BE(protocolType, 2);
  if (key !== undefined) h.writeUInt32BE(key >>> 0, 4);
  return h;
}

/** A VXLAN header (RFC 7348) with the I flag and a VNI. */
export function vxlan(vni: number): Buffer {
  const h = Buffer.alloc(8);
  h[0] = 0x08;
  h.writeUInt32BE((vni & 0xffffff) << 8, 4);
  return h;
}

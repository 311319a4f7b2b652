/** Builders for NetFlow v5 / v9 and IPFIX datagrams in tests and benchmarks. */

export type FieldSpec = [id: number, length: number] | [id: number, length: number, pen: number];

function u16(n: number): number[] {
  return [(n >>> 8) & 255, n & 255];
}
function u32(n: number): number[] {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}
function pad4(bytes: number[]): number[] {
  while (bytes.length % 4 !== 0) bytes.push(0);
  return bytes;
}

/** Unsigned big-endian of `len` bytes; numbers or bigints; strings for addresses ("a.b.c.d", IPv6) and MACs. */
export function value(v: number | bigint | string, len: number): number[] {
  if (typeof v === "string") {
    if (/^\d+\.\d+\.\d+\.\d+$/.test(v)) return v.split(".").map(Number);
    if (/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(v)) return v.split(":").map((x) => Number.parseInt(x, 16));
    if (v.includes(":")) return ipv6Bytes(v);
    const b = [...Buffer.from(v, "utf8")];
    while (b.length < len) b.push(0);
    return b.slice(0, len);
  }
  const out: number[] = [];
  let x = BigInt(v);
  for (let i = 0; i < len; i++) {
    out.unshift(Number(x & 255n));
    x >>= 8n;
  }
  return out;
}

function ipv6Bytes(s: string): number[] {
  const [head, tail] = s.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.flatMap((g) => u16(Number.parseInt(g, 16)));
}

export interface V9Options {
  sourceId?: number;
  sequence?: number;
  unixSecs?: number;
  uptimeMs?: number;
}

export function v9Template(id: number, fields: FieldSpec[]): number[] {
  return [...u16(id), ...u16(fields.length), ...fields.flatMap(([t, l]) => [...u16(t), ...u16(l)])];
}

export function v9OptionsTemplate(id: number, scopes: FieldSpec[], fields: FieldSpec[]): number[] {
  return [
    ...u16(id),
    ...u16(scopes.length * 4),
    ...u16(fields.length * 4),
    ...scopes.flatMap(([t, l]) => [...u16(t), ...u16(l)]),
    ...fields.flatMap(([t, l]) => [...u16(t), ...u16(l)]),
  ];
}

/** A FlowSet (v9) or Set (IPFIX): id, length, body padded to 4 bytes. */
export function set(id: number, body: number[]): number[] {
  const b = pad4([...body]);
  return [...u16(id), ...u16(b.length + 4), ...b];
}

export function record(fields: FieldSpec[], values: (number | bigint | string)[]): number[] {
  return fields.flatMap((f, i) => value(values[i]!, f[1]));
}

export function v9Packet(sets: number[][], o: V9Options = {}): Buffer {
  const body = sets.flat();
  const header = [
    ...u16(9),
    ...u16(sets.length),
    ...u32(o.uptimeMs ?? 100_000),
    ...u32(o.unixSecs ?? 1_700_000_000),
    ...u32(o.sequence ?? 1),
    ...u32(o.sourceId ?? 0),
  ];
  return Buffer.from([...header, ...body]);
}

export interface IpfixOptions {
  domain?: number;
  sequence?: number;
  exportTime?: number;
}

export function ipfixTemplate(id: number, fields: FieldSpec[]): number[] {
  return [...u16(id), ...u16(fields.length), ...fields.flatMap(ipfixFieldSpec)];
}

export function ipfixOptionsTemplate(id: number, scopes: FieldSpec[], fields: FieldSpec[]): number[] {
  return [
    ...u16(id),
    ...u16(scopes.length + fields.length),
    ...u16(scopes.length),
    ...[...scopes, ...fields].flatMap(ipfixFieldSpec),
  ];
}

function ipfixFieldSpec([id, len, pen]: FieldSpec): number[] {
  return pen ? [...u16(id | 0x8000), ...u16(len), ...u32(pen)] : [...u16(id), ...u16(len)];
}

export function ipfixWithdrawal(id: number): number[] {
  return [...u16(id), ...u16(0)];
}

export function ipfixPacket(sets: number[][], o: IpfixOptions = {}): Buffer {
  const body = sets.flat();
  const header = [
    ...u16(10),
    ...u16(16 + body.length),
    ...u32(o.exportTime ?? 1_700_000_000),
    ...u32(o.sequence ?? 1),
    ...u32(o.domain ?? 0),
  ];
  return Buffer.from([...header, ...body]);
}

/** A variable-length value (RFC 7011 §7): length prefix (1 byte, or 255 + 2 bytes) and bytes. */
export function varlen(bytes: number[]): number[] {
  return bytes.length < 255 ? [bytes.length, ...bytes] : [255, ...u16(bytes.length), ...bytes];
}

export interface V5Flow {
  src: string;
  dst: string;
  nextHop?: string;
  input?: number;
  output?: number;
  packets: number;
  bytes: number;
  first: number;
  last: number;
  srcPort: number;
  dstPort: number;
  tcpFlags?: number;
  proto: number;
  tos?: number;
  srcAs?: number;
  dstAs?: number;
  srcMask?: number;
  dstMask?: number;
}

export function v5Packet(
  flows: V5Flow[],
  o: { uptimeMs?: number; unixSecs?: number; unixNsecs?: number; sequence?: number; sampling?: number } = {},
): Buffer {
  const header = [
    ...u16(5),
    ...u16(flows.length),
    ...u32(o.uptimeMs ?? 100_000),
    ...u32(o.unixSecs ?? 1_700_000_000),
    ...u32(o.unixNsecs ?? 0),
    ...u32(o.sequence ?? 0),
    0,
    0,
    ...u16(o.sampling ?? 0),
  ];
  const recs = flows.flatMap((f) => [
    ...value(f.src, 4),
    ...value(f.dst, 4),
    ...value(f.nextHop ?? "0.0.0.0", 4),
    ...u16(f.input ?? 0),
    ...u16(f.output ?? 0),
    ...u32(f.packets),
    ...u32(f.bytes),
    ...u32(f.first),
    ...u32(f.last),
    ...u16(f.srcPort),
    ...u16(f.dstPort),
    0,
    f.tcpFlags ?? 0,
    f.proto,
    f.tos ?? 0,
    ...u16(f.srcAs ?? 0),
    ...u16(f.dstAs ?? 0),
    f.srcMask ?? 0,
    f.dstMask ?? 0,
    0,
    0,
  ]);
  return Buffer.from([...header, ...recs]);
}

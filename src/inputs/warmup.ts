/**
 * JIT warm-up of a decode pipeline before its sockets open (a receive worker, or a decode thread before it
 * reads its ring).
 *
 * Why: V8 runs new code in its interpreter first and optimizes what proves hot. Measured on the peer
 * bench's IPFIX traffic (BENCHMARKS.md "Session 8"), a fresh worker spends 2–4× the steady CPU per flow on
 * its first ~1,000 datagrams (~20,000 flows), so a collector started — or restarted — while exporters send
 * at full rate fills its socket buffer at once and the kernel drops datagrams before the code is warm.
 *
 * What: a throwaway pipeline — its own FlowDecoder and, for every configured output, a throwaway encoder
 * (EncoderContext.discard: the same code, nothing written; the archive builds and compresses its row
 * groups into /dev/null) — decodes synthetic NetFlow v5, v9, IPFIX (IPv4 and IPv6 templates) and sFlow v5
 * datagrams, built here, and cuts its batches at the configured size. Nothing of it survives: no decoder
 * state, no counters, no file, no batch (each is dropped; the buffers it took from the batch pool are
 * not counted as the pool's), no log line but one at debug level. The exporters' own templates still
 * compile on first use (one small function per template), but everything they call (set walking,
 * sequence tracking, records, encoders, column buffers, compression) is warm.
 *
 * Cost: ~0.1–0.3 s of CPU per pipeline at start (the log line says how long).
 */
import type { Datagram } from "../core/datagram.ts";

/** Records per data datagram, as real exporters fill a 1,500-byte MTU. */
const IPFIX_RECORDS = 16;
const V9_RECORDS = 20;
const V5_RECORDS = 30;
const SFLOW_SAMPLES = 8;

/** [element id, length] of the IPv4 template: the elements most routers export. */
const IPFIX_V4: readonly (readonly [number, number])[] = [
  [8, 4], // sourceIPv4Address
  [12, 4], // destinationIPv4Address
  [15, 4], // ipNextHopIPv4Address
  [18, 4], // bgpNextHopIPv4Address
  [7, 2], // sourceTransportPort
  [11, 2], // destinationTransportPort
  [4, 1], // protocolIdentifier
  [5, 1], // ipClassOfService
  [6, 2], // tcpControlBits
  [1, 8], // octetDeltaCount
  [2, 8], // packetDeltaCount
  [152, 8], // flowStartMilliseconds
  [153, 8], // flowEndMilliseconds
  [10, 4], // ingressInterface
  [14, 4], // egressInterface
  [16, 4], // bgpSourceAsNumber
  [17, 4], // bgpDestinationAsNumber
  [9, 1], // sourceIPv4PrefixLength
  [13, 1], // destinationIPv4PrefixLength
  [61, 1], // flowDirection
  [136, 1], // flowEndReason
  [58, 2], // vlanId
];
const IPFIX_V6: readonly (readonly [number, number])[] = [
  [27, 16], // sourceIPv6Address
  [28, 16], // destinationIPv6Address
  [62, 16], // ipNextHopIPv6Address
  [7, 2],
  [11, 2],
  [4, 1],
  [6, 2],
  [1, 8],
  [2, 8],
  [152, 8],
  [153, 8],
  [10, 4],
  [14, 4],
  [29, 1], // sourceIPv6PrefixLength
  [30, 1], // destinationIPv6PrefixLength
  [136, 1],
];
/** NetFlow v9: the IPv4 elements with 4-byte counters and uptime times (FIRST/LAST_SWITCHED). */
const V9_V4: readonly (readonly [number, number])[] = IPFIX_V4.map(([id, len]) =>
  id === 1 || id === 2
    ? ([id, 4] as const)
    : id === 152
      ? ([22, 4] as const)
      : id === 153
        ? ([21, 4] as const)
        : ([id, len] as const),
);

/** A big-endian byte writer into a growing buffer. */
class Bytes {
  #b = Buffer.allocUnsafe(2048);
  length = 0;
  #room(n: number): void {
    if (this.length + n <= this.#b.length) return;
    const next = Buffer.allocUnsafe(2 * (this.length + n));
    this.#b.copy(next, 0, 0, this.length);
    this.#b = next;
  }
  u8(v: number): this {
    this.#room(1);
    this.#b[this.length++] = v & 255;
    return this;
  }
  u16(v: number): this {
    this.#room(2);
    this.#b.writeUInt16BE(v & 0xffff, this.length);
    this.length += 2;
    return this;
  }
  u32(v: number): this {
    this.#room(4);
    this.#b.writeUInt32BE(v >>> 0, this.length);
    this.length += 4;
    return this;
  }
  /** An unsigned integer of `len` bytes (1, 2, 4 or 8; exact below 2^53). */
  uint(v: number, len: number): this {
    if (len === 8) return this.u32(Math.floor(v / 2 ** 32)).u32(v % 2 ** 32);
    return len === 4 ? this.u32(v) : len === 2 ? this.u16(v) : this.u8(v);
  }
  bytes(a: Uint8Array | readonly number[]): this {
    this.#room(a.length);
    for (let i = 0; i < a.length; i++) this.#b[this.length++] = a[i]!;
    return this;
  }
  /** Overwrites a 16-bit length at `at`. */
  len16(at: number, v: number): void {
    this.#b.writeUInt16BE(v, at);
  }
  /** A copy of the bytes written. */
  done(): Buffer {
    return Buffer.from(this.#b.subarray(0, this.length));
  }
  /** The bytes written (a view, valid until the next write). */
  get view(): Buffer {
    return this.#b.subarray(0, this.length);
  }
}

/** Value of element `id` (of `len` bytes) in synthetic record `i` at `nowMs` / uptime `upMs`. */
function value(id: number, len: number, i: number, nowMs: number, upMs: number): number | number[] {
  switch (id) {
    case 8:
      return 0x0a000000 + (i & 0xffffff); // 10.0.0.0/8
    case 12:
      return 0xc6120000 + ((i * 7) & 0x1ffff); // 198.18.0.0/15
    case 15:
    case 18:
      return 0xc0000200 + (i & 15); // 192.0.2.0/24
    case 27:
    case 28:
    case 62: {
      // 2001:db8::/32 with the record number in the low bytes
      const a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
      a[12] = id === 62 ? 0 : (i >>> 24) & 255;
      a[13] = (i >>> 16) & 255;
      a[14] = (i >>> 8) & 255;
      a[15] = id === 62 ? 1 : (i & 255) ^ (id === 28 ? 0x55 : 0);
      return a;
    }
    case 7:
      return 1024 + ((i * 13) & 0xefff);
    case 11:
      return [443, 80, 53, 22][i & 3]!;
    case 4:
      return (i & 3) === 2 ? 17 : 6;
    case 6:
      return 0x18;
    case 1:
      return 40 + (i % 1000) * 1460;
    case 2:
      return 1 + (i % 1000);
    case 152:
      return nowMs - 5000 - (i & 1023);
    case 153:
      return nowMs - 1000;
    case 22:
      return upMs - 5000 - (i & 1023);
    case 21:
      return upMs - 1000;
    case 10:
    case 14:
      return 1 + (i & 7);
    case 16:
    case 17:
      return 64496 + (i & 15);
    case 9:
    case 13:
    case 29:
    case 30:
      return 24;
    case 61:
      return i & 1;
    case 136:
      return 1 + (i & 3);
    case 58:
      return 100;
    default:
      return len === 1 ? 0 : i;
  }
}

function record(
  out: Bytes,
  fields: readonly (readonly [number, number])[],
  i: number,
  nowMs: number,
  upMs: number,
): void {
  for (const [id, len] of fields) {
    const v = value(id, len, i, nowMs, upMs);
    if (typeof v === "number") out.uint(v, len);
    else out.bytes(v);
  }
}

/** An IPFIX message: a template set then `data` data datagrams, each its own message. */
function ipfix(domain: number, data: number, nowMs: number): Buffer[] {
  const secs = Math.floor(nowMs / 1000);
  const message = (sets: (b: Bytes) => void, sequence: number): Buffer => {
    const b = new Bytes().u16(10).u16(0).u32(secs).u32(sequence).u32(domain);
    sets(b);
    b.len16(2, b.length);
    return b.done();
  };
  const set = (b: Bytes, id: number, body: (b: Bytes) => void): void => {
    const at = b.length;
    b.u16(id).u16(0);
    body(b);
    b.len16(at + 2, b.length - at);
  };
  const template = (b: Bytes, id: number, f: readonly (readonly [number, number])[]): void => {
    b.u16(id).u16(f.length);
    for (const [e, len] of f) b.u16(e).u16(len);
  };
  const out = [
    message((b) => {
      set(b, 2, (t) => {
        template(t, 256, IPFIX_V4);
        template(t, 257, IPFIX_V6);
      });
    }, 0),
  ];
  let seq = 0;
  for (let d = 0; d < data; d++) {
    const six = d % 4 === 3; // one datagram in four of IPv6 flows
    out.push(
      message((b) => {
        set(b, six ? 257 : 256, (s) => {
          for (let r = 0; r < IPFIX_RECORDS; r++) record(s, six ? IPFIX_V6 : IPFIX_V4, seq + r, nowMs, 0);
        });
      }, seq),
    );
    seq += IPFIX_RECORDS;
  }
  return out;
}

/** NetFlow v9: a template flowset, then data datagrams (uptime times). */
function v9(source: number, data: number, nowMs: number): Buffer[] {
  const upMs = 3_600_000;
  const secs = Math.floor(nowMs / 1000);
  const packet = (count: number, sequence: number, body: (b: Bytes) => void): Buffer => {
    const b = new Bytes().u16(9).u16(count).u32(upMs).u32(secs).u32(sequence).u32(source);
    body(b);
    return b.done();
  };
  const out = [
    packet(1, 0, (b) => {
      b.u16(0)
        .u16(8 + 4 * V9_V4.length)
        .u16(256)
        .u16(V9_V4.length);
      for (const [e, len] of V9_V4) b.u16(e).u16(len);
    }),
  ];
  for (let d = 0; d < data; d++) {
    out.push(
      packet(V9_RECORDS, d + 1, (b) => {
        const at = b.length;
        b.u16(256).u16(0);
        for (let r = 0; r < V9_RECORDS; r++) record(b, V9_V4, d * V9_RECORDS + r, nowMs, upMs);
        while ((b.length - at) % 4 !== 0) b.u8(0);
        b.len16(at + 2, b.length - at);
      }),
    );
  }
  return out;
}

/** NetFlow v5 datagrams. */
function v5(engine: number, data: number, nowMs: number): Buffer[] {
  const upMs = 3_600_000;
  const out: Buffer[] = [];
  for (let d = 0; d < data; d++) {
    const b = new Bytes()
      .u16(5)
      .u16(V5_RECORDS)
      .u32(upMs)
      .u32(Math.floor(nowMs / 1000))
      .u32((nowMs % 1000) * 1_000_000)
      .u32(d * V5_RECORDS)
      .u8(0)
      .u8(engine)
      .u16(0);
    for (let r = 0; r < V5_RECORDS; r++) {
      const i = d * V5_RECORDS + r;
      b.u32(value(8, 4, i, nowMs, upMs) as number)
        .u32(value(12, 4, i, nowMs, upMs) as number)
        .u32(value(15, 4, i, nowMs, upMs) as number)
        .u16(1 + (i & 7))
        .u16(2)
        .u32(1 + (i % 1000))
        .u32(40 + (i % 1000) * 1460)
        .u32(upMs - 5000)
        .u32(upMs - 1000)
        .u16(value(7, 2, i, nowMs, upMs) as number)
        .u16(value(11, 2, i, nowMs, upMs) as number)
        .u8(0)
        .u8(0x18)
        .u8(value(4, 1, i, nowMs, upMs) as number)
        .u8(0)
        .u16(64496)
        .u16(64497)
        .u8(24)
        .u8(24)
        .u16(0);
    }
    out.push(b.done());
  }
  return out;
}

/** sFlow v5 datagrams of flow samples, each a sampled Ethernet/IPv4/TCP header as switches send them. */
function sflow(agent: number, data: number): Buffer[] {
  const out: Buffer[] = [];
  for (let d = 0; d < data; d++) {
    const b = new Bytes()
      .u32(5)
      .u32(1)
      .u32(agent)
      .u32(0)
      .u32(d + 1)
      .u32(3_600_000 + d)
      .u32(SFLOW_SAMPLES);
    for (let s = 0; s < SFLOW_SAMPLES; s++) {
      const i = d * SFLOW_SAMPLES + s;
      // the sampled frame: Ethernet, IPv4 (no options), TCP; 54 bytes, padded to 56 in the record
      const frame = new Bytes()
        .bytes([0, 0x1b, 0x21, 0, 0, 1, 0, 0x1b, 0x21, 0, 0, 2])
        .u16(0x0800)
        .u8(0x45)
        .u8(0)
        .u16(1500)
        .u16(i & 0xffff)
        .u16(0x4000)
        .u8(64)
        .u8(6)
        .u16(0)
        .u32(value(8, 4, i, 0, 0) as number)
        .u32(value(12, 4, i, 0, 0) as number)
        .u16(value(7, 2, i, 0, 0) as number)
        .u16(443)
        .u32(i)
        .u32(0)
        .u8(0x50)
        .u8(0x18)
        .u16(65535)
        .u32(0);
      const header = new Bytes().u32(1).u32(1500).u32(4).u32(frame.length).bytes(frame.view);
      while (header.length % 4 !== 0) header.u8(0);
      const sample = new Bytes()
        .u32(i + 1) // sequence
        .u32(1) // source id: ifIndex 1
        .u32(1000) // sampling rate
        .u32((i + 1) * 1000) // sample pool
        .u32(0) // drops
        .u32(1) // input
        .u32(2) // output
        .u32(1) // records
        .u32(1) // raw packet header
        .u32(header.length)
        .bytes(header.view);
      b.u32(1).u32(sample.length).bytes(sample.view);
    }
    out.push(b.done());
  }
  return out;
}

/** The warm-up traffic: every protocol, from one synthetic exporter each (documentation addresses). */
export function warmUpTraffic(nowMs = Date.now()): Datagram[] {
  const dg = (payload: Buffer, exporter: string): Datagram => ({
    payload,
    exporter,
    port: 0,
    receivedAtMs: nowMs,
    listener: "",
  });
  return [
    ...ipfix(1, 40, nowMs).map((p) => dg(p, "192.0.2.1")),
    ...v9(1, 15, nowMs).map((p) => dg(p, "192.0.2.2")),
    ...v5(1, 10, nowMs).map((p) => dg(p, "192.0.2.3")),
    ...sflow(0xc0000204, 15).map((p) => dg(p, "192.0.2.4")),
  ];
}

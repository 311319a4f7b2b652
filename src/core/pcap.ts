/**
 * Capture files: read the UDP datagrams out of pcap and pcapng files, and write classic pcap.
 *
 * Grammar (all integers in the file's byte order unless noted):
 *
 * pcap      = global-header *record
 *   global-header = magic:u32 (a1b2c3d4 µs | a1b23c4d ns, either order) major:u16 minor:u16 thiszone:i32
 *                   sigfigs:u32 snaplen:u32 linktype:u32 (low 16 bits; the top bits carry FCS info)
 *   record        = ts_sec:u32 ts_frac:u32 incl_len:u32 orig_len:u32 data:incl_len
 *
 * pcapng    = 1*section
 *   section  = SHB *block
 *   block    = type:u32 total_len:u32 body trailing_total_len:u32   (total_len multiple of 4, ≥ 12)
 *   SHB      = type 0x0A0D0D0A, body: byte-order-magic:u32 (1A2B3C4D) major:u16 minor:u16 section_len:i64 opts
 *   IDB  (1) = linktype:u16 reserved:u16 snaplen:u32 opts   (if_tsresol = 9, if_tsoffset = 14)
 *   EPB  (6) = if_id:u32 ts_high:u32 ts_low:u32 cap_len:u32 orig_len:u32 data (padded to 4) opts
 *   SPB  (3) = orig_len:u32 data                 (interface 0, no timestamp, cap_len from the block length)
 *   OPB  (2) = if_id:u16 drops:u16 ts_high:u32 ts_low:u32 cap_len:u32 orig_len:u32 data opts (obsolete)
 *   any other block type is skipped.
 *   opts     = *(code:u16 len:u16 value padded to 4) [end-of-options: code 0]
 *
 * Link layers → network layer:
 *   0 NULL (4-byte AF in writer's order), 108 LOOP (AF in network order), 1 Ethernet (+ 802.1Q/802.1ad/QinQ
 *   tags), 113 Linux SLL (16-byte header), 276 Linux SLL2 (20-byte header), 101 / 12 / 14 raw IP,
 *   228 raw IPv4, 229 raw IPv6.
 * Network → UDP: IPv4 (IHL options, total length bounds the datagram past Ethernet padding) and IPv6
 * (extension headers walked to UDP). Fragmented datagrams are reassembled; fragments whose datagram never
 * completes are counted and dropped.
 */
import { isIPv4, isIPv6 } from "node:net";
import { ipv4 as formatIPv4, ipv6 as formatIPv6 } from "./address.ts";

export interface CapturedDatagram {
  /** Source address as text: IPv4 dotted, IPv6 compressed (RFC 5952), IPv4-mapped kept as ::ffff:a.b.c.d. */
  exporter: string;
  /** UDP source port. */
  port: number;
  /** UDP destination port. */
  dstPort: number;
  /** Capture time, milliseconds since the Unix epoch (fractional below the millisecond); 0 when unknown. */
  timestampMs: number;
  payload: Buffer;
}

export interface CaptureStats {
  format: "pcap" | "pcapng";
  /** Link-layer frames read. */
  frames: number;
  /** Frames that are not IPv4/IPv6 UDP (other protocols, ARP, …). */
  notUdp: number;
  /** UDP datagrams whose captured bytes are fewer than their UDP length says (snaplen cut them). */
  truncated: number;
  /** Fragments left over: their datagram never completed. */
  incompleteFragments: number;
}

export interface ReadCaptureOptions {
  /** Return what was read before a cut-short final record instead of throwing. Default false. */
  allowTruncatedFile?: boolean;
}

/** An unreadable capture: unknown format, bad header, cut short, unsupported link type. */
export class CaptureError extends Error {
  /** Byte offset in the file where the problem was found. */
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`capture file at offset ${offset}: ${message}`);
    this.name = "CaptureError";
    this.offset = offset;
  }
}

export const LINKTYPE = {
  NULL: 0,
  ETHERNET: 1,
  DLT_RAW_12: 12,
  DLT_RAW_14: 14,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

const SUPPORTED_LINKTYPES: ReadonlySet<number> = new Set(Object.values(LINKTYPE));

/** Reads every UDP datagram of a pcap or pcapng file, in file order. Throws CaptureError. */
export function readCapture(data: Buffer, options: ReadCaptureOptions = {}): CapturedDatagram[] {
  return scanCapture(data, options).datagrams;
}

/** readCapture plus counts of what was skipped. */
export function scanCapture(
  data: Buffer,
  options: ReadCaptureOptions = {},
): { datagrams: CapturedDatagram[]; stats: CaptureStats } {
  if (data.length < 4) throw new CaptureError(`file is ${data.length} bytes: too short for a capture`, 0);
  const magicBE = data.readUInt32BE(0);
  const ctx = new Extractor();
  let format: CaptureStats["format"];
  if (magicBE === 0x0a0d0d0a) {
    format = "pcapng";
    readPcapng(data, ctx, options);
  } else if ([0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1].includes(magicBE)) {
    format = "pcap";
    readPcap(data, ctx, options);
  } else {
    throw new CaptureError(
      `not a pcap or pcapng file (first bytes 0x${data.subarray(0, 4).toString("hex")}; expected a1b2c3d4, ` +
        "a1b23c4d or their byte-swapped forms for pcap, 0a0d0d0a for pcapng)",
      0,
    );
  }
  return {
    datagrams: ctx.datagrams,
    stats: {
      format,
      frames: ctx.frames,
      notUdp: ctx.notUdp,
      truncated: ctx.truncated,
      incompleteFragments: ctx.pendingFragmentCount(),
    },
  };
}

// ---------------------------------------------------------------------------------------------- pcap

function readPcap(data: Buffer, ctx: Extractor, options: ReadCaptureOptions): void {
  if (data.length < 24)
    throw new CaptureError(`pcap global header needs 24 bytes, file has ${data.length}`, 0);
  const magicLE = data.readUInt32LE(0);
  const le = magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d;
  const nano = magicLE === 0xa1b23c4d || magicLE === 0x4d3cb2a1;
  const u32 = (o: number) => (le ? data.readUInt32LE(o) : data.readUInt32BE(o));
  const linkType = u32(20) & 0xffff;
  if (!SUPPORTED_LINKTYPES.has(linkType)) {
    throw new CaptureError(
      `unsupported link type ${linkType} (supported: ${[...SUPPORTED_LINKTYPES].join(", ")})`,
      20,
    );
  }
  const fracDiv = nano ? 1e6 : 1e3;
  let off = 24;
  while (off < data.length) {
    if (off + 16 > data.length) {
      if (options.allowTruncatedFile) break;
      throw new CaptureError(`file cut short: record header needs 16 bytes, ${data.length - off} left`, off);
    }
    const sec = u32(off);
    const frac = u32(off + 4);
    const inclLen = u32(off + 8);
    if (inclLen > 0x4000000)
      throw new CaptureError(`record length ${inclLen} is implausible (corrupt file?)`, off);
    if (off + 16 + inclLen > data.length) {
      if (options.allowTruncatedFile) break;
      throw new CaptureError(
        `file cut short: record of ${inclLen} bytes, ${data.length - off - 16} left after its header`,
        off,
      );
    }
    ctx.frame(linkType, data.subarray(off + 16, off + 16 + inclLen), sec * 1000 + frac / fracDiv);
    off += 16 + inclLen;
  }
}

// -------------------------------------------------------------------------------------------- pcapng

interface PcapngInterface {
  linkType: number;
  /** Timestamp units per second (10^n or 2^n). */
  unitsPerSec: bigint;
  /** if_tsoffset, seconds. */
  offsetSec: bigint;
}

function readPcapng(data: Buffer, ctx: Extractor, options: ReadCaptureOptions): void {
  let off = 0;
  let le = true;
  let interfaces: PcapngInterface[] = [];
  const u32 = (o: number) => (le ? data.readUInt32LE(o) : data.readUInt32BE(o));
  const u16 = (o: number) => (le ? data.readUInt16LE(o) : data.readUInt16BE(o));
  while (off < data.length) {
    if (off + 12 > data.length) {
      if (options.allowTruncatedFile) break;
      throw new CaptureError(`file cut short: block header needs 12 bytes, ${data.length - off} left`, off);
    }
    let type = u32(off);
    if (data.readUInt32BE(off) === 0x0a0d0d0a) {
      // Section header: its byte-order magic decides the order for the whole section.
      type = 0x0a0d0d0a;
      const bom = data.readUInt32LE(off + 8);
      if (bom === 0x1a2b3c4d) le = true;
      else if (bom === 0x4d3c2b1a) le = false;
      else
        throw new CaptureError(
          `pcapng section header has a bad byte-order magic 0x${bom.toString(16)}`,
          off + 8,
        );
      interfaces = [];
    }
    const total = u32(off + 4);
    if (total < 12 || total % 4 !== 0) {
      throw new CaptureError(
        `pcapng block length ${total} is invalid (must be ≥ 12 and a multiple of 4)`,
        off + 4,
      );
    }
    if (off + total > data.length) {
      if (options.allowTruncatedFile) break;
      throw new CaptureError(
        `file cut short: block of type ${type} is ${total} bytes, ${data.length - off} left`,
        off,
      );
    }
    if (u32(off + total - 4) !== total) {
      throw new CaptureError(
        `pcapng block of type ${type}: trailing length differs from leading length`,
        off,
      );
    }
    const end = off + total - 4;
    switch (type) {
      case 0x0a0d0d0a: {
        const major = u16(off + 12);
        if (major !== 1) throw new CaptureError(`pcapng major version ${major} is not supported`, off + 12);
        break;
      }
      case 1: {
        if (total < 20) throw new CaptureError("pcapng interface description block too short", off);
        const iface: PcapngInterface = { linkType: u16(off + 8), unitsPerSec: 1_000_000n, offsetSec: 0n };
        forEachOption(off + 16, end, u16, (code, vo, len) => {
          if (code === 9 && len >= 1) {
            const r = data[vo]!;
            iface.unitsPerSec = r & 0x80 ? 1n << BigInt(r & 0x7f) : 10n ** BigInt(r & 0x7f);
          } else if (code === 14 && len >= 8) {
            iface.offsetSec = le ? data.readBigInt64LE(vo) : data.readBigInt64BE(vo);
          }
        });
        interfaces.push(iface);
        break;
      }
      case 6:
      case 2: {
        if (total < 32) throw new CaptureError(`pcapng packet block (type ${type}) too short`, off);
        const ifId = type === 6 ? u32(off + 8) : u16(off + 8);
        const iface = interfaces[ifId];
        if (!iface)
          throw new CaptureError(`packet block names interface ${ifId}, which was not described`, off);
        const ts = (BigInt(u32(off + 12)) << 32n) | BigInt(u32(off + 16));
        const capLen = u32(off + 20);
        if (28 + capLen > total - 4) {
          throw new CaptureError(
            `packet block captured length ${capLen} exceeds its block (${total})`,
            off + 20,
          );
        }
        ctx.frame(ifaceLinkType(iface, off), data.subarray(off + 28, off + 28 + capLen), tsToMs(ts, iface));
        break;
      }
      case 3: {
        if (total < 16) throw new CaptureError("pcapng simple packet block too short", off);
        const iface = interfaces[0];
        if (!iface) throw new CaptureError("simple packet block before any interface description", off);
        const capLen = Math.min(u32(off + 8), total - 16);
        ctx.frame(ifaceLinkType(iface, off), data.subarray(off + 12, off + 12 + capLen), 0);
        break;
      }
      default:
        break; // name resolution, statistics, custom, decryption secrets…: not ours
    }
    off += total;
  }
}

function ifaceLinkType(iface: PcapngInterface, off: number): number {
  if (!SUPPORTED_LINKTYPES.has(iface.linkType)) {
    throw new CaptureError(
      `unsupported link type ${iface.linkType} (supported: ${[...SUPPORTED_LINKTYPES].join(", ")})`,
      off,
    );
  }
  return iface.linkType;
}

function tsToMs(ts: bigint, iface: PcapngInterface): number {
  const sec = ts / iface.unitsPerSec + iface.offsetSec;
  const rem = ts % iface.unitsPerSec;
  return Number(sec) * 1000 + (Number(rem) * 1000) / Number(iface.unitsPerSec);
}

function forEachOption(
  start: number,
  end: number,
  u16: (o: number) => number,
  fn: (code: number, valueOffset: number, len: number) => void,
): void {
  let o = start;
  while (o + 4 <= end) {
    const code = u16(o);
    const len = u16(o + 2);
    if (code === 0) return;
    if (o + 4 + len > end) return; // a malformed option list: ignore the rest, the packets still read
    fn(code, o + 4, len);
    o += 4 + ((len + 3) & ~3);
  }
}

// ------------------------------------------------------------------------------ link → IP → UDP

interface FragmentBuffer {
  parts: { offset: number; data: Buffer }[];
  totalLength: number; // -1 until the last fragment is seen
  first: { src: string; timestampMs: number } | null;
}

class Extractor {
  datagrams: CapturedDatagram[] = [];
  frames = 0;
  notUdp = 0;
  truncated = 0;
  #fragments = new Map<string, FragmentBuffer>();

  pendingFragmentCount(): number {
    let n = 0;
    for (const f of this.#fragments.values()) n += f.parts.length;
    return n;
  }

  frame(linkType: number, f: Buffer, timestampMs: number): void {
    this.frames++;
    let o = 0;
    let etherType = -1; // -1: decide by the IP version nibble
    switch (linkType) {
      case LINKTYPE.ETHERNET: {
        if (f.length < 14) {
          this.#skip();
          return;
        }
        etherType = f.readUInt16BE(12);
        o = 14;
        break;
      }
      case LINKTYPE.LINUX_SLL: {
        if (f.length < 16) {
          this.#skip();
          return;
        }
        etherType = f.readUInt16BE(14);
        o = 16;
        break;
      }
      case LINKTYPE.LINUX_SLL2: {
        if (f.length < 20) {
          this.#skip();
          return;
        }
        etherType = f.readUInt16BE(0);
        o = 20;
        break;
      }
      case LINKTYPE.NULL:
      case LINKTYPE.LOOP:
        if (f.length < 4) {
          this.#skip();
          return;
        }
        o = 4; // AF_INET is 2 everywhere, AF_INET6 varies (10, 24, 28, 30): the version nibble decides
        break;
      case LINKTYPE.IPV4:
        etherType = 0x0800;
        break;
      case LINKTYPE.IPV6:
        etherType = 0x86dd;
        break;
      default: // raw IP
        break;
    }
    // VLAN tags: 802.1Q (8100), 802.1ad (88a8), old QinQ (9100, 9200)
    while (etherType === 0x8100 || etherType === 0x88a8 || etherType === 0x9100 || etherType === 0x9200) {
      if (o + 4 > f.length) {
        this.#skip();
        return;
      }
      etherType = f.readUInt16BE(o + 2);
      o += 4;
    }
    if (o >= f.length) {
      this.#skip();
      return;
    }
    if (etherType === -1) {
      const v = f[o]! >> 4;
      etherType = v === 4 ? 0x0800 : v === 6 ? 0x86dd : 0;
    }
    if (etherType === 0x0800) this.#ipv4(f, o, timestampMs);
    else if (etherType === 0x86dd) this.#ipv6(f, o, timestampMs);
    else this.#skip();
  }

  #skip(): void {
    this.notUdp++;
  }

  #ipv4(f: Buffer, o: number, timestampMs: number): void {
    if (o + 20 > f.length || f[o]! >> 4 !== 4) {
      this.#skip();
      return;
    }
    const ihl = (f[o]! & 0x0f) * 4;
    if (ihl < 20 || o + ihl > f.length) {
      this.#skip();
      return;
    }
    const totalLength = f.readUInt16BE(o + 2);
    // total length 0 happens with TSO on the capturing host: then the capture bounds the packet
    const end = totalLength === 0 ? f.length : Math.min(f.length, o + totalLength);
    const cut = totalLength !== 0 && o + totalLength > f.length;
    if (f[o + 9] !== 17) {
      this.#skip();
      return;
    }
    const src = formatIPv4(f, o + 12);
    const flagsFrag = f.readUInt16BE(o + 6);
    const moreFragments = (flagsFrag & 0x2000) !== 0;
    const fragOffset = (flagsFrag & 0x1fff) * 8;
    if (moreFragments || fragOffset !== 0) {
      if (cut) {
        this.#truncated();
        return;
      }
      const key = `4|${src}|${formatIPv4(f, o + 16)}|${f.readUInt16BE(o + 4)}`;
      const whole = this.#fragment(
        key,
        fragOffset,
        moreFragments,
        f.subarray(o + ihl, end),
        src,
        timestampMs,
      );
      if (whole) this.#udp(whole.data, 0, whole.data.length, whole.src, whole.timestampMs, false);
      return;
    }
    this.#udp(f, o + ihl, end, src, timestampMs, cut);
  }

  #ipv6(f: Buffer, o: number, timestampMs: number): void {
    if (o + 40 > f.length || f[o]! >> 4 !== 6) {
      this.#skip();
      return;
    }
    const payloadLength = f.readUInt16BE(o + 4);
    const end = payloadLength === 0 ? f.length : Math.min(f.length, o + 40 + payloadLength);
    const cut = payloadLength !== 0 && o + 40 + payloadLength > f.length;
    const src = formatIPv6(f, o + 8);
    let next = f[o + 6]!;
    let p = o + 40;
    let frag: { offset: number; more: boolean; id: number } | null = null;
    for (let hops = 0; hops < 16; hops++) {
      if (next === 17) break;
      if (next === 44) {
        if (p + 8 > end) {
          this.#skip();
          return;
        }
        const v = f.readUInt16BE(p + 2);
        frag = { offset: v & 0xfff8, more: (v & 1) === 1, id: f.readUInt32BE(p + 4) };
        next = f[p]!;
        p += 8;
        continue;
      }
      let len: number;
      if (next === 0 || next === 43 || next === 60 || next === 135 || next === 139 || next === 140) {
        if (p + 2 > end) {
          this.#skip();
          return;
        }
        len = (f[p + 1]! + 1) * 8;
      } else if (next === 51) {
        if (p + 2 > end) {
          this.#skip();
          return;
        }
        len = (f[p + 1]! + 2) * 4;
      } else {
        this.#skip();
        return;
      }
      next = f[p]!;
      p += len;
    }
    if (next !== 17 || p > end) {
      this.#skip();
      return;
    }
    if (frag && (frag.more || frag.offset !== 0)) {
      if (cut) {
        this.#truncated();
        return;
      }
      const key = `6|${src}|${formatIPv6(f, o + 24)}|${frag.id}`;
      const whole = this.#fragment(key, frag.offset, frag.more, f.subarray(p, end), src, timestampMs);
      if (whole) this.#udp(whole.data, 0, whole.data.length, whole.src, whole.timestampMs, false);
      return;
    }
    this.#udp(f, p, end, src, timestampMs, cut);
  }

  #truncated(): void {
    this.truncated++;
  }

  #udp(f: Buffer, p: number, end: number, src: string, timestampMs: number, cut: boolean): void {
    if (p + 8 > end) {
      if (cut) this.#truncated();
      else this.#skip();
      return;
    }
    const udpLength = f.readUInt16BE(p + 4);
    let stop: number;
    if (udpLength === 0)
      stop = end; // IPv6 jumbogram or TSO: the IP length bounds it
    else if (udpLength < 8) {
      this.#skip();
      return;
    } else if (p + udpLength > end) {
      this.#truncated();
      return;
    } else stop = p + udpLength;
    if (cut && udpLength === 0) {
      this.#truncated();
      return;
    }
    this.datagrams.push({
      exporter: src,
      port: f.readUInt16BE(p),
      dstPort: f.readUInt16BE(p + 2),
      timestampMs,
      payload: Buffer.from(f.subarray(p + 8, stop)), // a copy: the caller may drop the file buffer
    });
  }

  /** Adds one fragment; returns the reassembled IP payload when the datagram is complete. */
  #fragment(
    key: string,
    offset: number,
    more: boolean,
    data: Buffer,
    src: string,
    timestampMs: number,
  ): { data: Buffer; src: string; timestampMs: number } | null {
    let fb = this.#fragments.get(key);
    if (!fb) {
      fb = { parts: [], totalLength: -1, first: null };
      this.#fragments.set(key, fb);
    }
    fb.parts.push({ offset, data });
    if (!more) fb.totalLength = offset + data.length;
    if (offset === 0) fb.first = { src, timestampMs };
    if (fb.totalLength < 0 || !fb.first) return null;
    fb.parts.sort((a, b) => a.offset - b.offset);
    let covered = 0;
    for (const part of fb.parts) {
      if (part.offset > covered) return null;
      covered = Math.max(covered, part.offset + part.data.length);
    }
    if (covered < fb.totalLength) return null;
    const whole = Buffer.alloc(fb.totalLength);
    for (const part of fb.parts)
      part.data.copy(whole, part.offset, 0, Math.min(part.data.length, fb.totalLength - part.offset));
    this.#fragments.delete(key);
    return { data: whole, src: fb.first.src, timestampMs: fb.first.timestampMs };
  }
}

// ------------------------------------------------------------------------------------ addresses

/** Address text as the decoders render it (RFC 5952 for IPv6, IPv4-mapped as ::ffff:a.b.c.d). */
export { ipv4 as formatIPv4, ipv6 as formatIPv6 } from "./address.ts";

/** Parses IPv4 or IPv6 text into 4 or 16 bytes. Throws TypeError on anything else. */
export function parseAddress(text: string): Buffer {
  if (isIPv4(text)) return Buffer.from(text.split(".").map(Number));
  if (!isIPv6(text)) throw new TypeError(`not an IP address: ${text}`);
  const out = Buffer.alloc(16);
  let s = text.replace(/%.*$/, "");
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const b = v4[1]!.split(".").map(Number);
    tail.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
    s = s.slice(0, -v4[1]!.length);
    if (s.endsWith(":") && !s.endsWith("::")) s = s.slice(0, -1);
  }
  const [head, rest] = s.includes("::") ? s.split("::") : [s, undefined];
  const hs = head ? head.split(":").map((x) => Number.parseInt(x, 16)) : [];
  const rs = rest ? rest.split(":").map((x) => Number.parseInt(x, 16)) : [];
  const groups = [
    ...hs,
    ...new Array<number>(8 - hs.length - rs.length - tail.length).fill(0),
    ...rs,
    ...tail,
  ];
  if (rest === undefined && groups.length !== 8) throw new TypeError(`not an IP address: ${text}`);
  groups.forEach((x, i) => {
    out.writeUInt16BE(x, i * 2);
  });
  return out;
}

// -------------------------------------------------------------------------------------- writing

/** A classic little-endian microsecond pcap file (link type Ethernet unless told). */
export function writePcap(
  packets: { timestampMs: number; frame: Buffer }[],
  linkType: number = LINKTYPE.ETHERNET,
): Buffer {
  const parts: Buffer[] = [];
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(262144, 16);
  gh.writeUInt32LE(linkType, 20);
  parts.push(gh);
  for (const p of packets) {
    const rh = Buffer.alloc(16);
    let sec = Math.floor(p.timestampMs / 1000);
    let usec = Math.round((p.timestampMs - sec * 1000) * 1000);
    if (usec >= 1_000_000) {
      sec++;
      usec -= 1_000_000;
    }
    rh.writeUInt32LE(sec, 0);
    rh.writeUInt32LE(usec, 4);
    rh.writeUInt32LE(p.frame.length, 8);
    rh.writeUInt32LE(p.frame.length, 12);
    parts.push(rh, p.frame);
  }
  return Buffer.concat(parts);
}

/** RFC 1071 ones' complement sum over the buffers, folded and complemented. */
export function internetChecksum(...bufs: Buffer[]): number {
  let sum = 0;
  let odd: number | null = null;
  for (const b of bufs) {
    for (let i = 0; i < b.length; i++) {
      if (odd === null) odd = b[i]!;
      else {
        sum += (odd << 8) | b[i]!;
        odd = null;
      }
    }
  }
  if (odd !== null) sum += odd << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export interface IpFrameOptions {
  src: string;
  dst: string;
  /** IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, …). */
  protocol: number;
  /** Transport header + payload. Its checksum field (TCP 16, UDP 6, ICMP/ICMPv6 2) is computed here. */
  l4: Buffer;
  ttl?: number;
  tos?: number;
  /** IPv4 identification. */
  id?: number;
  /** 802.1Q tags, outermost first (the outer ones use 802.1ad 0x88a8). */
  vlans?: number[];
  srcMac?: string;
  dstMac?: string;
}

/** An Ethernet frame carrying one IPv4 or IPv6 packet (the family of `src`), all lengths and checksums right. */
export function ipFrame(opts: IpFrameOptions): Buffer {
  const src = parseAddress(opts.src);
  const dst = parseAddress(opts.dst);
  if (src.length !== dst.length) throw new TypeError("src and dst must be the same address family");
  const v6 = src.length === 16;
  const l4 = Buffer.from(opts.l4);
  const csumAt =
    opts.protocol === 6
      ? 16
      : opts.protocol === 17
        ? 6
        : opts.protocol === 1 || opts.protocol === 58
          ? 2
          : -1;
  if (csumAt >= 0 && l4.length >= csumAt + 2) {
    l4.writeUInt16BE(0, csumAt);
    let c: number;
    if (opts.protocol === 1) c = internetChecksum(l4);
    else {
      const pseudo = Buffer.alloc(v6 ? 40 : 12);
      src.copy(pseudo, 0);
      dst.copy(pseudo, src.length);
      if (v6) {
        pseudo.writeUInt32BE(l4.length, 32);
        pseudo[39] = opts.protocol;
      } else {
        pseudo[9] = opts.protocol;
        pseudo.writeUInt16BE(l4.length, 10);
      }
      c = internetChecksum(pseudo, l4);
      if (c === 0 && opts.protocol === 17) c = 0xffff;
    }
    l4.writeUInt16BE(c, csumAt);
  }
  let ip: Buffer;
  if (v6) {
    ip = Buffer.alloc(40);
    ip.writeUInt32BE((6 << 28) | ((opts.tos ?? 0) << 20), 0);
    ip.writeUInt16BE(l4.length, 4);
    ip[6] = opts.protocol;
    ip[7] = opts.ttl ?? 64;
    src.copy(ip, 8);
    dst.copy(ip, 24);
  } else {
    ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip[1] = opts.tos ?? 0;
    ip.writeUInt16BE(20 + l4.length, 2);
    ip.writeUInt16BE((opts.id ?? 0) & 0xffff, 4);
    ip.writeUInt16BE(0x4000, 6); // don't fragment
    ip[8] = opts.ttl ?? 64;
    ip[9] = opts.protocol;
    src.copy(ip, 12);
    dst.copy(ip, 16);
    ip.writeUInt16BE(internetChecksum(ip), 10);
  }
  const vlans = opts.vlans ?? [];
  const eth = Buffer.alloc(14 + vlans.length * 4);
  macBytes(opts.dstMac ?? "02:00:00:00:00:02").copy(eth, 0);
  macBytes(opts.srcMac ?? "02:00:00:00:00:01").copy(eth, 6);
  let o = 12;
  vlans.forEach((vid, i) => {
    eth.writeUInt16BE(i < vlans.length - 1 ? 0x88a8 : 0x8100, o);
    eth.writeUInt16BE(vid & 0x0fff, o + 2);
    o += 4;
  });
  eth.writeUInt16BE(v6 ? 0x86dd : 0x0800, o);
  return Buffer.concat([eth, ip, l4]);
}

function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(":").map((x) => Number.parseInt(x, 16)));
}

/** An Ethernet + IPv4/IPv6 + UDP frame with correct lengths and checksums. */
export function udpFrame(opts: {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
  vlans?: number[];
  ttl?: number;
}): Buffer {
  const l4 = Buffer.alloc(8 + opts.payload.length);
  l4.writeUInt16BE(opts.srcPort, 0);
  l4.writeUInt16BE(opts.dstPort, 2);
  l4.writeUInt16BE(l4.length, 4);
  opts.payload.copy(l4, 8);
  return ipFrame({ src: opts.src, dst: opts.dst, protocol: 17, l4, vlans: opts.vlans, ttl: opts.ttl });
}

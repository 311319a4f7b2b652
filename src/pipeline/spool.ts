/**
 * A durable, append-only, write-ahead disk spool for one remote sink (DESIGN §2: "each sink with a disk
 * spool"). Batches are appended before their first delivery attempt and released (acknowledged) once the
 * destination took them, so anything waiting on retries, an open breaker or a down backend is on disk, in
 * order, and survives a restart.
 *
 * Layout of `dir`:
 * ```
 * 0000000000000001.seg   segment files, consecutive numbers, append-only, at most `segmentBytes` each
 * 0000000000000002.seg
 * cursor.json            {"seg":n,"off":n}: first entry not yet acknowledged (written tmp + rename)
 * ```
 * Frame grammar (little endian):
 * ```
 * frame   = len:u32 crc:u32 payload            len = payload bytes, crc = CRC-32 of payload
 * payload = ver:u8(=1) createdMs:f64 records:u32 idLen:u16 id keyLen:u16 key metaLen:u32 meta
 *           dataLen:u32 data
 * ```
 * A filler frame (`ver` = 0, the rest of the payload zeros) marks bytes that were damaged and moved out;
 * readers step over it.
 *
 * Damage (a flipped byte, a torn or truncated write, a bad length or CRC) costs only the frames it hits: the
 * reader (on open, or while dispensing) scans forward byte by byte to the next offset where a frame with a
 * good CRC starts and goes on from there. The damaged bytes are copied to `quarantine/<segment>.<offset>.bad`
 * and overwritten in place by a filler frame (a damaged tail is truncated instead), so offsets and the cursor
 * stay valid, a crash during the repair only repeats it, and the next open neither counts nor quarantines
 * them again. Corrupt frames and lost bytes are counted (`corruptFrames`, `corruptBytes`: /metrics, and
 * /health is degraded while they are non-zero, that is until a restart acknowledges them) and logged with
 * the quarantine file. Acknowledged entries are skipped after a restart through
 * the cursor; the cursor is persisted at most every `cursorSyncMs` (and on close), so a crash can redeliver
 * up to that much acknowledged data; entries keep their idempotency keys, so a backend drops those.
 *
 * fsync policy (`fsync`):
 * - "interval" (default): every append is written with write(2) before `append()` resolves, so a process
 *   crash (SIGKILL, OOM kill) loses nothing appended; segments are fdatasync'ed every `fsyncIntervalMs`
 *   (1000 ms) and on roll/close, so a power loss or kernel crash loses at most that interval.
 * - "always": group commit: appends issued together share one write + fdatasync before they resolve.
 * - "never": write(2) only (the OS flushes when it likes).
 *
 * Write failures (ENOSPC, EIO, a failed fdatasync under "always"): only the appends of the failed write are
 * rejected; the segment is truncated back to its last good frame (or, when that fails, writing moves to a new
 * segment) and later appends are written normally, so the spool recovers once the disk does. A short write
 * is continued until every byte is on disk; `append()` never resolves for a partly written frame.
 *
 * Bound: when the spool holds more than `maxBytes`, the oldest segments are dropped whole (unacknowledged
 * entries in them are counted as dropped), never the one being written.
 *
 * Reading: entries still in memory (up to `memoryBytes` of not-yet-dispensed entries) are dispensed
 * without I/O; older ones (after a restart or a long outage) are read back from the segment files.
 */
import {
  closeSync,
  fdatasync,
  close as fsClose,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  unlink,
  unlinkSync,
  writeSync,
  writev,
} from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { makeDirs, openPrivateSync, PRIVATE_DIR_MODE } from "../core/fs.ts";

/** What a caller appends: one delivery unit (a request body) with its idempotency key. */
export interface SpoolEntry {
  /** Idempotency key, stable for the life of the entry (kept across restarts). */
  readonly id: string;
  /** Grouping key (exporter for Clarion, relay path for the agent). */
  readonly key: string;
  /** Small free-form metadata (e.g. JSON with content type); "" when none. */
  readonly meta: string;
  /** Flow records (or payload items) the entry holds. */
  readonly records: number;
  /** When the data was received (ms since the epoch), for age metrics. */
  readonly createdMs: number;
  readonly data: Uint8Array;
}

/** An entry as the spool hands it out: with its place in the log. */
export interface SpooledEntry extends SpoolEntry {
  readonly seg: number;
  readonly off: number;
  /** Frame size on disk. */
  readonly size: number;
}

export type FsyncPolicy = "always" | "interval" | "never";

export interface SpoolLogger {
  info(o: object | string, m?: string): void;
  warn(o: object | string, m?: string): void;
  error(o: object | string, m?: string): void;
}

/**
 * The write path's system calls, injectable so tests can make writes fail or come up short (the spool uses
 * node:fs otherwise).
 */
export interface SpoolIo {
  writev(
    fd: number,
    buffers: readonly NodeJS.ArrayBufferView[],
    cb: (err: NodeJS.ErrnoException | null, bytesWritten: number) => void,
  ): void;
  fdatasync(fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void;
  ftruncateSync(fd: number, len: number): void;
}

export interface SpoolOptions {
  dir: string;
  /** Upper bound of the spool on disk; oldest segments are dropped above it. Default 1 GiB. */
  maxBytes?: number;
  /** Segment file size; clamped to [64 KiB, maxBytes / 4]. Default 16 MiB. */
  segmentBytes?: number;
  fsync?: FsyncPolicy;
  fsyncIntervalMs?: number;
  /** Not-yet-dispensed entries kept in memory; beyond, they are read back from disk. Default 32 MiB. */
  memoryBytes?: number;
  /** How often the read cursor is persisted. Default 200 ms. */
  cursorSyncMs?: number;
  logger?: SpoolLogger;
  /** Tests: replace the write path's system calls. */
  io?: Partial<SpoolIo>;
}

export interface SpoolStats {
  /** Bytes on disk not yet acknowledged. */
  bytes: number;
  /** Entries not yet acknowledged (in flight or waiting). */
  batches: number;
  records: number;
  /** Creation time of the oldest unacknowledged entry, or 0 when empty. */
  oldestCreatedMs: number;
  appendedBatches: number;
  appendedBytes: number;
  droppedBatches: number;
  droppedRecords: number;
  droppedBytes: number;
  /** Damaged regions found (on open or while reading): each cost at least one frame; moved to quarantine. */
  corruptFrames: number;
  /** Bytes of those regions (moved to `quarantine/`, replaced by filler frames or truncated). */
  corruptBytes: number;
  /** Writes that failed (their appends were rejected; the spool rewound and keeps going). */
  writeErrors: number;
  segments: number;
}

interface SegInfo {
  seq: number;
  /** Durable bytes written. */
  bytes: number;
  entries: number;
  records: number;
  ackedEntries: number;
  ackedRecords: number;
  /** Dispensed, not acknowledged entries of this segment. */
  inflight: number;
}

/** Entries and records of the frames a scan found. */
interface FrameCount {
  entries: number;
  records: number;
}

interface Slot {
  entry: SpooledEntry;
  acked: boolean;
  dropped: boolean;
}

interface PendingWrite {
  seg: number;
  /** The frame header and the entry's data, written together. */
  bufs: readonly [Uint8Array, Uint8Array];
  /** Its place in the log, assigned at append time and reassigned when an earlier write failed. */
  entry: SpooledEntry;
  resolve: () => void;
  reject: (e: Error) => void;
}

const HEADER = 8;
const FILLER_VER = 0;
const FIXED = 1 + 8 + 4 + 2 + 2 + 4 + 4;
const SEG_RE = /^(\d{16})\.seg$/;
const MAX_GROUP = 256;

function segName(seq: number): string {
  return `${String(seq).padStart(16, "0")}.seg`;
}

function cmp(aSeg: number, aOff: number, bSeg: number, bOff: number): number {
  return aSeg !== bSeg ? aSeg - bSeg : aOff - bOff;
}

/** Encode the frame header+fields (everything but the data) and return [head, crc]. */
function encodeHead(e: SpoolEntry): Buffer {
  const id = Buffer.from(e.id, "utf8");
  const key = Buffer.from(e.key, "utf8");
  const meta = Buffer.from(e.meta, "utf8");
  if (id.length > 0xffff || key.length > 0xffff)
    throw new RangeError("spool: id or key longer than 65535 bytes");
  const payloadLen = FIXED + id.length + key.length + meta.length + e.data.byteLength;
  const head = Buffer.allocUnsafe(HEADER + FIXED + id.length + key.length + meta.length);
  let p = HEADER;
  head[p++] = 1;
  head.writeDoubleLE(e.createdMs, p);
  p += 8;
  head.writeUInt32LE(e.records >>> 0, p);
  p += 4;
  head.writeUInt16LE(id.length, p);
  p += 2;
  p += id.copy(head, p);
  head.writeUInt16LE(key.length, p);
  p += 2;
  p += key.copy(head, p);
  head.writeUInt32LE(meta.length, p);
  p += 4;
  p += meta.copy(head, p);
  head.writeUInt32LE(e.data.byteLength, p);
  const crc = crc32(e.data, crc32(head.subarray(HEADER)));
  head.writeUInt32LE(payloadLen, 0);
  head.writeUInt32LE(crc, 4);
  return head;
}

/** Parse an entry frame at `off` of `buf`; null when torn/corrupt (or a filler). Data is a view into `buf`. */
function decodeFrame(buf: Buffer, off: number, seg: number, fileOff: number): SpooledEntry | null {
  if (off + HEADER > buf.length) return null;
  const len = buf.readUInt32LE(off);
  // The version byte before the CRC: a scan for the next frame tries every offset, this rejects most at once.
  if (len < FIXED || off + HEADER + len > buf.length || buf[off + HEADER] !== 1) return null;
  const payload = buf.subarray(off + HEADER, off + HEADER + len);
  if (crc32(payload) !== buf.readUInt32LE(off + 4)) return null;
  let p = 1;
  const createdMs = payload.readDoubleLE(p);
  p += 8;
  const records = payload.readUInt32LE(p);
  p += 4;
  const idLen = payload.readUInt16LE(p);
  p += 2;
  if (p + idLen + 2 > len) return null;
  const id = payload.toString("utf8", p, p + idLen);
  p += idLen;
  const keyLen = payload.readUInt16LE(p);
  p += 2;
  if (p + keyLen + 4 > len) return null;
  const key = payload.toString("utf8", p, p + keyLen);
  p += keyLen;
  const metaLen = payload.readUInt32LE(p);
  p += 4;
  if (p + metaLen + 4 > len) return null;
  const meta = payload.toString("utf8", p, p + metaLen);
  p += metaLen;
  const dataLen = payload.readUInt32LE(p);
  p += 4;
  if (p + dataLen !== len) return null;
  return {
    id,
    key,
    meta,
    records,
    createdMs,
    data: payload.subarray(p, p + dataLen),
    seg,
    off: fileOff,
    size: HEADER + len,
  };
}

/** Size of the filler frame at `off` of `buf` (bytes moved to quarantine), or 0 when there is none. */
function fillerAt(buf: Buffer, off: number): number {
  if (off + HEADER > buf.length) return 0;
  const len = buf.readUInt32LE(off);
  if (len < 1 || off + HEADER + len > buf.length || buf[off + HEADER] !== FILLER_VER) return 0;
  const payload = buf.subarray(off + HEADER, off + HEADER + len);
  return crc32(payload) === buf.readUInt32LE(off + 4) ? HEADER + len : 0;
}

/** A filler frame of exactly `size` bytes (at least HEADER + 1). */
function makeFiller(size: number): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt32LE(size - HEADER, 0);
  b.writeUInt32LE(crc32(b.subarray(HEADER)), 4);
  return b;
}

/** The first offset at or after `from` where a valid frame (entry or filler) starts; `buf.length` if none. */
function nextFrame(buf: Buffer, from: number): number {
  for (let p = from; p + HEADER < buf.length; p++) {
    if (decodeFrame(buf, p, 0, p) !== null || fillerAt(buf, p) > 0) return p;
  }
  return buf.length;
}

/** Entry frames of a whole segment's bytes, stepping over fillers and damage. */
function countFrames(buf: Buffer): FrameCount {
  const n: FrameCount = { entries: 0, records: 0 };
  let off = 0;
  while (off < buf.length) {
    const e = decodeFrame(buf, off, 0, off);
    if (e !== null) {
      n.entries++;
      n.records += e.records;
      off += e.size;
      continue;
    }
    const f = fillerAt(buf, off);
    off = f > 0 ? off + f : nextFrame(buf, off + 1);
  }
  return n;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

export class Spool {
  readonly dir: string;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  readonly fsyncPolicy: FsyncPolicy;
  #memoryBytes: number;
  #logger: SpoolLogger | undefined;

  #segs = new Map<number, SegInfo>();
  /** Oldest segment still present. */
  #firstSeg = 1;
  /** Logical write position (includes pending writes). */
  #wSeg = 1;
  #wOff = 0;
  /** Durable end (everything before it is written). */
  #dSeg = 1;
  #dOff = 0;
  #fd = -1;
  #fdSeg = 0;
  #dirty = false;

  #pending: PendingWrite[] = [];
  #pendingBytes = 0;
  #flushing = false;
  #flushScheduled = false;

  /** Undispensed entries kept in memory, in order. */
  #mem: SpooledEntry[] = [];
  #memHead = 0;
  #memBytes = 0;

  /** Next entry to dispense. */
  #rSeg = 1;
  #rOff = 0;
  /** Dispensed entries awaiting acknowledgement, in order. */
  #slots: Slot[] = [];
  #slotHead = 0;
  #byEntry = new WeakMap<SpooledEntry, Slot>();

  /** First unacknowledged entry. */
  #cSeg = 1;
  #cOff = 0;
  #cursorDirty = false;

  #totalBytes = 0;
  #unackedEntries = 0;
  #unackedRecords = 0;
  #appendedBatches = 0;
  #appendedBytes = 0;
  #droppedBatches = 0;
  #droppedRecords = 0;
  #droppedBytes = 0;
  #corruptFrames = 0;
  #corruptBytes = 0;

  #readFd = -1;
  #readFdSeg = 0;
  #chunk: Buffer | null = null;
  #chunkSeg = 0;
  #chunkStart = 0;
  #peek: SpooledEntry | null = null;

  #waiter: { promise: Promise<void>; resolve: () => void } | null = null;
  #timers: NodeJS.Timeout[] = [];
  #closed = false;
  readonly #io: SpoolIo;
  #writeErrors = 0;
  #errorLoggedMs = 0;
  #errorsSuppressed = 0;

  private constructor(opts: SpoolOptions) {
    this.dir = opts.dir;
    this.maxBytes = Math.max(256 * 1024, opts.maxBytes ?? 1024 ** 3);
    this.segmentBytes = Math.max(
      64 * 1024,
      Math.min(opts.segmentBytes ?? 16 * 1024 ** 2, Math.floor(this.maxBytes / 4)),
    );
    this.fsyncPolicy = opts.fsync ?? "interval";
    this.#memoryBytes = opts.memoryBytes ?? 32 * 1024 ** 2;
    this.#logger = opts.logger;
    this.#io = { writev, fdatasync, ftruncateSync, ...opts.io };
  }

  /** Open (or create) a spool directory: recover segments, truncate a torn tail, restore the cursor. */
  static async open(opts: SpoolOptions): Promise<Spool> {
    const s = new Spool(opts);
    s.#recover();
    const cursorMs = opts.cursorSyncMs ?? 200;
    s.#timers.push(setInterval(() => s.#persistCursor(), cursorMs).unref());
    if (s.fsyncPolicy === "interval") {
      s.#timers.push(setInterval(() => s.#syncActive(), opts.fsyncIntervalMs ?? 1000).unref());
    }
    return s;
  }

  #recover(): void {
    makeDirs(this.dir, PRIVATE_DIR_MODE);
    const seqs = readdirSync(this.dir)
      .map((f) => SEG_RE.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    let cSeg = 0;
    let cOff = 0;
    try {
      const c = JSON.parse(readFileSync(join(this.dir, "cursor.json"), "utf8")) as {
        seg?: unknown;
        off?: unknown;
      };
      if (typeof c.seg === "number" && typeof c.off === "number") {
        cSeg = c.seg;
        cOff = c.off;
      }
    } catch {
      // no cursor yet: start at the oldest segment
    }
    const live: number[] = [];
    for (const seq of seqs) {
      if (seq < cSeg) this.#unlinkSync(seq);
      else live.push(seq);
    }
    if (live.length === 0 || live[0] !== cSeg) {
      cSeg = live[0] ?? 1;
      cOff = 0;
    }
    // A missing segment number (deleted by hand) is skipped by the readers.
    for (const seq of live) {
      const from = this.#scanSegment(seq, seq === cSeg ? cOff : 0);
      if (seq === cSeg && from !== cOff) {
        cOff = from;
        this.#cursorDirty = true;
      }
    }
    const seqsLive = [...this.#segs.keys()].sort((a, b) => a - b);
    const last = seqsLive.at(-1) ?? 0;
    this.#firstSeg = seqsLive[0] ?? 1;
    if (!this.#segs.has(cSeg)) {
      cSeg = this.#firstSeg;
      cOff = 0;
    }
    this.#cSeg = cSeg;
    this.#cOff = cOff;
    this.#rSeg = cSeg;
    this.#rOff = cOff;
    this.#wSeg = last + 1;
    this.#wOff = 0;
    this.#dSeg = last > 0 ? last : this.#wSeg;
    this.#dOff = last > 0 ? this.#segs.get(last)!.bytes : 0;
    if (last === 0) this.#firstSeg = this.#wSeg;
    this.#normalizeCursor();
    if (this.#unackedEntries > 0) {
      this.#logger?.info(
        {
          dir: this.dir,
          batches: this.#unackedEntries,
          records: this.#unackedRecords,
          bytes: this.stats().bytes,
        },
        "spool: recovered undelivered batches",
      );
    }
  }

  /**
   * Index one segment on open: count its entries (those before `fromOff` as acknowledged), step over
   * fillers, quarantine damaged bytes and go on at the next good frame. Returns `fromOff`, moved to the end
   * of a damaged region that held it.
   */
  #scanSegment(seq: number, fromOff: number): number {
    const path = join(this.dir, segName(seq));
    const buf = readFileSync(path);
    const info: SegInfo = {
      seq,
      bytes: 0,
      entries: 0,
      records: 0,
      ackedEntries: 0,
      ackedRecords: 0,
      inflight: 0,
    };
    let off = 0;
    let end = buf.length;
    while (off < buf.length) {
      const e = decodeFrame(buf, off, seq, off);
      if (e !== null) {
        info.entries++;
        info.records += e.records;
        if (off < fromOff) {
          info.ackedEntries++;
          info.ackedRecords += e.records;
        }
        off += e.size;
        continue;
      }
      const f = fillerAt(buf, off);
      if (f > 0) {
        off += f;
        continue;
      }
      const next = nextFrame(buf, off + 1);
      this.#quarantine(seq, buf.subarray(off, next), off, next === buf.length);
      if (fromOff > off && fromOff < next) fromOff = next;
      if (next === buf.length) {
        end = off;
        break;
      }
      off = next;
    }
    info.bytes = end;
    this.#segs.set(seq, info);
    this.#totalBytes += end;
    this.#unackedEntries += info.entries - info.ackedEntries;
    this.#unackedRecords += info.records - info.ackedRecords;
    return fromOff;
  }

  /**
   * Move the damaged bytes `bad` found at `off` of segment `seq` out of the way: copy them to
   * `quarantine/<segment>.<off>.bad`, then truncate the segment at `off` (`atEnd`, on open only) or overwrite
   * them in place with one filler frame, so offsets stay valid and the next open steps over them silently.
   * Counted and logged whether or not the repair succeeds (when it fails, the bytes stay where they are and
   * the next open finds them again).
   */
  #quarantine(seq: number, bad: Buffer, off: number, atEnd: boolean): void {
    this.#corruptFrames++;
    this.#corruptBytes += bad.length;
    const qdir = join(this.dir, "quarantine");
    const qfile = join(qdir, `${segName(seq)}.${off}.bad`);
    let repaired = "";
    try {
      makeDirs(qdir, PRIVATE_DIR_MODE);
      const qfd = openPrivateSync(qfile, "w");
      try {
        let done = 0;
        while (done < bad.length) done += writeSync(qfd, bad, done, bad.length - done);
        fsyncSync(qfd);
      } finally {
        closeSync(qfd);
      }
      const fd = openSync(join(this.dir, segName(seq)), "r+");
      try {
        if (atEnd) {
          ftruncateSync(fd, off);
          repaired = "truncated";
        } else if (bad.length > HEADER) {
          const filler = makeFiller(bad.length);
          let done = 0;
          while (done < filler.length) done += writeSync(fd, filler, done, filler.length - done, off + done);
          repaired = "replaced by a filler frame";
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      repaired = `not repaired (${(err as Error).message})`;
    }
    this.#logger?.warn(
      {
        dir: this.dir,
        segment: seq,
        at: off,
        corrupt_bytes: bad.length,
        quarantine: qfile,
        repair: repaired || "left in place (too short for a filler frame)",
      },
      "spool: corrupt frame skipped, going on at the next good frame",
    );
  }

  #unlinkSync(seq: number): void {
    try {
      unlinkSync(join(this.dir, segName(seq)));
    } catch {
      // already gone
    }
  }

  /**
   * Append one entry. Resolves once it is written (and fdatasync'ed under "always"); from then on it is
   * dispensable and survives a process crash.
   */
  append(entry: SpoolEntry): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("spool: closed"));
    const head = encodeHead(entry);
    const size = head.length + entry.data.byteLength;
    if (this.#wOff > 0 && this.#wOff + size > this.segmentBytes) {
      this.#wSeg++;
      this.#wOff = 0;
    }
    const spooled: SpooledEntry = {
      id: entry.id,
      key: entry.key,
      meta: entry.meta,
      records: entry.records,
      createdMs: entry.createdMs,
      data: entry.data,
      seg: this.#wSeg,
      off: this.#wOff,
      size,
    };
    this.#wOff += size;
    this.#pendingBytes += size;
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ seg: spooled.seg, bufs: [head, entry.data], entry: spooled, resolve, reject });
      if (!this.#flushScheduled && !this.#flushing) {
        this.#flushScheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #ensureWriteFd(seg: number): void {
    if (this.#fdSeg === seg && this.#fd >= 0) return;
    if (this.#fd >= 0) {
      const fd = this.#fd;
      if (this.fsyncPolicy !== "never") {
        try {
          fsyncSync(fd);
        } catch {
          // reported by the next write
        }
      }
      this.#fd = -1;
      this.#fdSeg = 0;
      closeSync(fd);
    }
    this.#fd = openPrivateSync(join(this.dir, segName(seg)), "a");
    this.#fdSeg = seg;
    if (!this.#segs.has(seg)) {
      this.#segs.set(seg, {
        seq: seg,
        bytes: 0,
        entries: 0,
        records: 0,
        ackedEntries: 0,
        ackedRecords: 0,
        inflight: 0,
      });
      if (this.fsyncPolicy !== "never") this.#syncDir();
    }
  }

  #syncDir(): void {
    try {
      const d = openSync(this.dir, "r");
      try {
        fsyncSync(d);
      } finally {
        closeSync(d);
      }
    } catch {
      // some filesystems do not allow fsync on directories
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    const first = this.#pending[0];
    if (this.#flushing || first === undefined) return;
    let n = 1;
    while (n < this.#pending.length && n < MAX_GROUP && this.#pending[n]!.seg === first.seg) n++;
    const group = this.#pending.splice(0, n);
    this.#flushing = true;
    let fd: number;
    try {
      this.#ensureWriteFd(first.seg);
      fd = this.#fd;
    } catch (err) {
      this.#fail(group, err as Error);
      return;
    }
    const bufs: Uint8Array[] = [];
    let bytes = 0;
    for (const w of group) {
      bufs.push(w.bufs[0], w.bufs[1]);
      bytes += w.entry.size;
    }
    this.#writeAll(fd, bufs, bytes, (err) => {
      if (err) {
        this.#fail(group, err);
        return;
      }
      const done = (): void => {
        this.#flushing = false;
        this.#committed(group);
        if (this.#pending.length > 0) this.#flush();
      };
      if (this.fsyncPolicy === "always") {
        this.#io.fdatasync(fd, (e2) => {
          if (e2) {
            this.#fail(group, e2);
            return;
          }
          done();
        });
      } else {
        this.#dirty = true;
        done();
      }
    });
  }

  /** writev(2) until all `left` bytes are written: a short write goes on where it stopped. */
  #writeAll(fd: number, bufs: Uint8Array[], left: number, cb: (err: Error | null) => void): void {
    this.#io.writev(fd, bufs, (err, written) => {
      if (err) {
        cb(err);
        return;
      }
      if (written >= left) {
        cb(null);
        return;
      }
      if (!(written > 0)) {
        cb(new Error(`spool: write made no progress (${left} bytes left)`));
        return;
      }
      let skip = written;
      const rest: Uint8Array[] = [];
      for (const b of bufs) {
        if (skip >= b.byteLength) {
          skip -= b.byteLength;
          continue;
        }
        rest.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
      this.#writeAll(fd, rest, left - written, cb);
    });
  }

  /**
   * A write (or its fdatasync) failed: reject that group only. The segment is cut back to its last good
   * frame so nothing is ever appended after a torn one (when it cannot be cut, writing goes on in a new
   * segment and the torn tail is truncated on the next open); the appends queued behind the group get their
   * places again from there and are written next, so one ENOSPC or EIO costs only the batches it hit.
   */
  #fail(group: PendingWrite[], err: Error): void {
    const seg = group[0]?.seg;
    if (seg === undefined) return;
    const good = this.#segs.get(seg)?.bytes ?? 0;
    let rolled = false;
    if (this.#fd >= 0 && this.#fdSeg === seg) {
      try {
        this.#io.ftruncateSync(this.#fd, good);
      } catch {
        rolled = true;
        const fd = this.#fd;
        this.#fd = -1;
        this.#fdSeg = 0;
        try {
          closeSync(fd);
        } catch {
          // already unusable
        }
      }
    }
    for (const w of group) this.#pendingBytes -= w.entry.size;
    this.#wSeg = rolled ? seg + 1 : seg;
    this.#wOff = rolled ? 0 : good;
    for (const w of this.#pending) {
      const size = w.entry.size;
      if (this.#wOff > 0 && this.#wOff + size > this.segmentBytes) {
        this.#wSeg++;
        this.#wOff = 0;
      }
      w.entry = { ...w.entry, seg: this.#wSeg, off: this.#wOff };
      w.seg = this.#wSeg;
      this.#wOff += size;
    }
    this.#flushing = false;
    this.#writeErrors++;
    const now = Date.now();
    if (now - this.#errorLoggedMs >= 10_000) {
      this.#logger?.error(
        {
          dir: this.dir,
          err: err.message,
          batches: group.length,
          segment: seg,
          rewoundTo: rolled ? "new segment" : good,
          suppressed: this.#errorsSuppressed,
        },
        "spool: write failed, batches rejected; later appends are retried",
      );
      this.#errorLoggedMs = now;
      this.#errorsSuppressed = 0;
    } else {
      this.#errorsSuppressed++;
    }
    for (const w of group) w.reject(err);
    if (this.#pending.length > 0 && !this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  #committed(group: PendingWrite[]): void {
    for (const w of group) {
      const e = w.entry;
      const seg = this.#segs.get(e.seg)!;
      seg.bytes += e.size;
      seg.entries++;
      seg.records += e.records;
      this.#totalBytes += e.size;
      this.#pendingBytes -= e.size;
      this.#unackedEntries++;
      this.#unackedRecords += e.records;
      this.#appendedBatches++;
      this.#appendedBytes += e.size;
      this.#dSeg = e.seg;
      this.#dOff = e.off + e.size;
      this.#mem.push(e);
      this.#memBytes += e.size;
    }
    // Bound memory: the oldest undispensed entries are left to be read back from disk.
    while (this.#memBytes > this.#memoryBytes && this.#memHead < this.#mem.length) {
      this.#memBytes -= this.#mem[this.#memHead]!.size;
      this.#memHead++;
    }
    this.#compactMem();
    this.#enforceMax();
    for (const w of group) w.resolve();
    this.#wake();
  }

  #compactMem(): void {
    if (this.#memHead > 1024 && this.#memHead * 2 > this.#mem.length) {
      this.#mem = this.#mem.slice(this.#memHead);
      this.#memHead = 0;
    }
  }

  #wake(): void {
    const w = this.#waiter;
    if (w) {
      this.#waiter = null;
      w.resolve();
    }
  }

  /** Resolves when new entries became dispensable (or the spool closed). */
  waitForData(): Promise<void> {
    if (this.#closed || this.#hasNext()) return Promise.resolve();
    this.#waiter ??= deferred();
    return this.#waiter.promise;
  }

  #hasNext(): boolean {
    this.#normalizeRead();
    return cmp(this.#rSeg, this.#rOff, this.#dSeg, this.#dOff) < 0;
  }

  #normalizeRead(): void {
    if (this.#rSeg < this.#firstSeg) {
      this.#rSeg = this.#firstSeg;
      this.#rOff = 0;
    }
    while (this.#rSeg < this.#dSeg) {
      const seg = this.#segs.get(this.#rSeg);
      if (seg && this.#rOff < seg.bytes) break;
      this.#rSeg++;
      this.#rOff = 0;
    }
  }

  #normalizeCursor(): void {
    if (this.#cSeg < this.#firstSeg) {
      this.#cSeg = this.#firstSeg;
      this.#cOff = 0;
    }
    while (this.#cSeg < this.#dSeg) {
      const seg = this.#segs.get(this.#cSeg);
      if (seg && this.#cOff < seg.bytes) break;
      this.#cSeg++;
      this.#cOff = 0;
    }
    // Fully acknowledged segments go.
    while (this.#firstSeg < this.#cSeg) {
      this.#removeSegment(this.#firstSeg);
      this.#firstSeg++;
    }
  }

  #removeSegment(seq: number): void {
    const seg = this.#segs.get(seq);
    if (seg) {
      this.#totalBytes -= seg.bytes;
      this.#segs.delete(seq);
    }
    if (this.#readFdSeg === seq && this.#readFd >= 0) {
      closeSync(this.#readFd);
      this.#readFd = -1;
      this.#readFdSeg = 0;
    }
    if (this.#chunkSeg === seq) this.#chunk = null;
    if (this.#fdSeg === seq && this.#fd >= 0) {
      closeSync(this.#fd);
      this.#fd = -1;
      this.#fdSeg = 0;
    }
    unlink(join(this.dir, segName(seq)), () => {});
  }

  /** The next undispensed entry, in append order, or null when none is durable yet. */
  next(): SpooledEntry | null {
    if (this.#closed || !this.#hasNext()) return null;
    let e: SpooledEntry | null = null;
    while (this.#memHead < this.#mem.length) {
      const m = this.#mem[this.#memHead]!;
      const c = cmp(m.seg, m.off, this.#rSeg, this.#rOff);
      if (c > 0) break;
      this.#memHead++;
      this.#memBytes -= m.size;
      if (c === 0) {
        e = m;
        break;
      }
    }
    if (e === null) {
      const p = this.#peek;
      e = p && p.seg === this.#rSeg && p.off === this.#rOff ? p : this.#readAt(this.#rSeg, this.#rOff);
      this.#peek = null;
    }
    if (e === null) return null;
    this.#rOff = e.off + e.size;
    this.#rSeg = e.seg;
    const slot: Slot = { entry: e, acked: false, dropped: false };
    this.#slots.push(slot);
    this.#byEntry.set(e, slot);
    const seg = this.#segs.get(e.seg);
    if (seg) seg.inflight++;
    return e;
  }

  /**
   * Read the entry at `off` of segment `segNo`, stepping over fillers and (found here, after open) damaged
   * bytes; null when the segment has no entry left, with the read position moved to its end.
   */
  #readAt(segNo: number, off: number): SpooledEntry | null {
    for (;;) {
      const seg = this.#segs.get(segNo);
      if (seg !== undefined && off >= seg.bytes) {
        this.#rSeg = segNo;
        this.#rOff = seg.bytes;
        return null;
      }
      let buf = this.#chunk;
      let rel = off - this.#chunkStart;
      if (buf === null || this.#chunkSeg !== segNo || rel < 0 || rel + HEADER > buf.length) {
        buf = this.#fill(segNo, off, 1024 * 1024);
        rel = 0;
      }
      const len = rel + HEADER <= buf.length ? buf.readUInt32LE(rel) : 0;
      if (rel + HEADER + len > buf.length) {
        buf = this.#fill(segNo, off, Math.max(1024 * 1024, HEADER + len));
        rel = 0;
      }
      const e = decodeFrame(buf, rel, segNo, off);
      if (e !== null) return e;
      const f = fillerAt(buf, rel);
      if (f > 0) {
        off += f;
        continue;
      }
      if (seg === undefined) return null;
      off = this.#repairLive(seg, off);
    }
  }

  /**
   * Damage found while reading (after open): quarantine the bytes from `off` to the next good frame, take the
   * entries they held out of the counts (so drains do not wait for them), and return where reading goes on.
   * The segment is never truncated here: it may be the one being appended to.
   */
  #repairLive(seg: SegInfo, off: number): number {
    const fd = openSync(join(this.dir, segName(seg.seq)), "r");
    const buf = Buffer.allocUnsafe(seg.bytes);
    try {
      let got = 0;
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, got);
        if (n === 0) break;
        got += n;
      }
      buf.fill(0, got);
    } finally {
      closeSync(fd);
    }
    const next = nextFrame(buf, off + 1);
    this.#quarantine(seg.seq, buf.subarray(off, next), off, false);
    this.#chunk = null;
    const left = countFrames(buf.subarray(0, off));
    const after = countFrames(buf.subarray(next));
    const lostEntries = Math.max(0, seg.entries - left.entries - after.entries);
    const lostRecords = Math.max(0, seg.records - left.records - after.records);
    seg.entries -= lostEntries;
    seg.records -= lostRecords;
    this.#unackedEntries -= lostEntries;
    this.#unackedRecords -= lostRecords;
    return next;
  }

  #fill(segNo: number, off: number, size: number): Buffer {
    if (this.#readFdSeg !== segNo || this.#readFd < 0) {
      if (this.#readFd >= 0) closeSync(this.#readFd);
      this.#readFd = openSync(join(this.dir, segName(segNo)), "r");
      this.#readFdSeg = segNo;
    }
    const seg = this.#segs.get(segNo);
    const avail = Math.max(HEADER, Math.min(size, (seg?.bytes ?? fstatSync(this.#readFd).size) - off));
    const buf = Buffer.allocUnsafe(avail);
    let got = 0;
    while (got < avail) {
      const n = readSync(this.#readFd, buf, got, avail - got, off + got);
      if (n === 0) break;
      got += n;
    }
    const b = got === avail ? buf : buf.subarray(0, got);
    this.#chunk = b;
    this.#chunkSeg = segNo;
    this.#chunkStart = off;
    return b;
  }

  /** Release a dispensed entry: the destination has it (or it was dead-lettered). */
  ack(e: SpooledEntry): void {
    const slot = this.#byEntry.get(e);
    if (!slot || slot.acked) return;
    slot.acked = true;
    this.#byEntry.delete(e);
    if (slot.dropped) return;
    const seg = this.#segs.get(e.seg);
    if (seg) {
      seg.inflight--;
      seg.ackedEntries++;
      seg.ackedRecords += e.records;
    }
    this.#unackedEntries--;
    this.#unackedRecords -= e.records;
    let moved = false;
    while (
      this.#slotHead < this.#slots.length &&
      (this.#slots[this.#slotHead]!.acked || this.#slots[this.#slotHead]!.dropped)
    ) {
      const s = this.#slots[this.#slotHead++]!;
      if (!s.dropped && cmp(s.entry.seg, s.entry.off + s.entry.size, this.#cSeg, this.#cOff) > 0) {
        this.#cSeg = s.entry.seg;
        this.#cOff = s.entry.off + s.entry.size;
        moved = true;
      }
    }
    if (this.#slotHead === this.#slots.length) {
      this.#slots = [];
      this.#slotHead = 0;
      // Nothing in flight: the cursor is the read position.
      if (cmp(this.#rSeg, this.#rOff, this.#cSeg, this.#cOff) > 0) {
        this.#cSeg = this.#rSeg;
        this.#cOff = this.#rOff;
        moved = true;
      }
    } else if (this.#slotHead > 1024 && this.#slotHead * 2 > this.#slots.length) {
      this.#slots = this.#slots.slice(this.#slotHead);
      this.#slotHead = 0;
    }
    if (moved) {
      this.#cursorDirty = true;
      this.#normalizeCursor();
    }
  }

  #enforceMax(): void {
    while (this.#totalBytes + this.#pendingBytes > this.maxBytes && this.#firstSeg < this.#dSeg) {
      const seq = this.#firstSeg;
      const seg = this.#segs.get(seq);
      if (seg) {
        let inflightEntries = 0;
        let inflightRecords = 0;
        for (let i = this.#slotHead; i < this.#slots.length; i++) {
          const s = this.#slots[i]!;
          if (s.entry.seg === seq && !s.acked && !s.dropped) {
            s.dropped = true;
            inflightEntries++;
            inflightRecords += s.entry.records;
          }
        }
        const unackedEntries = seg.entries - seg.ackedEntries;
        const unackedRecords = seg.records - seg.ackedRecords;
        const droppedEntries = unackedEntries - inflightEntries;
        const droppedRecords = unackedRecords - inflightRecords;
        const droppedBytes = seg.bytes - (seq === this.#cSeg ? this.#cOff : 0);
        this.#unackedEntries -= unackedEntries;
        this.#unackedRecords -= unackedRecords;
        this.#droppedBatches += droppedEntries;
        this.#droppedRecords += droppedRecords;
        this.#droppedBytes += droppedBytes;
        this.#logger?.warn(
          {
            dir: this.dir,
            segment: seq,
            batches: droppedEntries,
            records: droppedRecords,
            bytes: droppedBytes,
          },
          "spool full: dropped oldest segment",
        );
      }
      this.#removeSegment(seq);
      this.#firstSeg++;
      if (this.#cSeg <= seq) {
        this.#cSeg = seq + 1;
        this.#cOff = 0;
        this.#cursorDirty = true;
      }
      if (this.#rSeg <= seq) {
        this.#rSeg = seq + 1;
        this.#rOff = 0;
      }
      while (this.#memHead < this.#mem.length && this.#mem[this.#memHead]!.seg <= seq) {
        this.#memBytes -= this.#mem[this.#memHead]!.size;
        this.#memHead++;
      }
      if (this.#peek && this.#peek.seg <= seq) this.#peek = null;
    }
  }

  #persistCursor(): void {
    if (!this.#cursorDirty) return;
    this.#cursorDirty = false;
    const tmp = join(this.dir, "cursor.json.tmp");
    try {
      const fd = openPrivateSync(tmp, "w");
      try {
        writeSync(fd, `{"seg":${this.#cSeg},"off":${this.#cOff}}\n`);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, join(this.dir, "cursor.json"));
    } catch (err) {
      try {
        unlinkSync(tmp);
      } catch {
        // not created
      }
      this.#cursorDirty = true;
      if (!this.#closed)
        this.#logger?.warn({ dir: this.dir, err: (err as Error).message }, "spool: cannot persist cursor");
    }
  }

  #syncActive(): void {
    if (!this.#dirty || this.#fd < 0) return;
    this.#dirty = false;
    fdatasync(this.#fd, (err) => {
      if (err) this.#logger?.warn({ dir: this.dir, err: err.message }, "spool: fdatasync failed");
    });
  }

  /** Oldest unacknowledged entry's creation time (0 when empty). */
  oldestCreatedMs(): number {
    let oldest = 0;
    for (let i = this.#slotHead; i < this.#slots.length; i++) {
      const s = this.#slots[i]!;
      if (!s.acked && !s.dropped && (oldest === 0 || s.entry.createdMs < oldest)) oldest = s.entry.createdMs;
    }
    if (this.#hasNext()) {
      let next: SpooledEntry | null = null;
      const m = this.#mem[this.#memHead]!;
      if (m && m.seg === this.#rSeg && m.off === this.#rOff) next = m;
      else {
        const p = this.#peek;
        if (p && p.seg === this.#rSeg && p.off === this.#rOff) next = p;
        else {
          try {
            next = this.#readAt(this.#rSeg, this.#rOff);
          } catch {
            next = null;
          }
          this.#peek = next;
        }
      }
      if (next && (oldest === 0 || next.createdMs < oldest)) oldest = next.createdMs;
    }
    return oldest;
  }

  stats(): SpoolStats {
    const cseg = this.#segs.get(this.#cSeg);
    return {
      bytes: this.#totalBytes + this.#pendingBytes - (cseg ? this.#cOff : 0),
      batches: this.#unackedEntries,
      records: this.#unackedRecords,
      oldestCreatedMs: this.#unackedEntries > 0 ? this.oldestCreatedMs() : 0,
      appendedBatches: this.#appendedBatches,
      appendedBytes: this.#appendedBytes,
      droppedBatches: this.#droppedBatches,
      droppedRecords: this.#droppedRecords,
      droppedBytes: this.#droppedBytes,
      corruptFrames: this.#corruptFrames,
      corruptBytes: this.#corruptBytes,
      writeErrors: this.#writeErrors,
      segments: this.#segs.size,
    };
  }

  /** Wait for pending writes, sync, persist the cursor and release files. */
  async close(): Promise<void> {
    if (this.#closed) return;
    while (this.#pending.length > 0 || this.#flushing) {
      await new Promise((r) => setTimeout(r, 1));
      if (!this.#flushing && this.#pending.length > 0 && !this.#flushScheduled) this.#flush();
    }
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    if (this.#fd >= 0) {
      if (this.fsyncPolicy !== "never") {
        try {
          fsyncSync(this.#fd);
        } catch {
          // ignore
        }
      }
      const fd = this.#fd;
      this.#fd = -1;
      await new Promise<void>((r) => fsClose(fd, () => r()));
    }
    if (this.#readFd >= 0) {
      closeSync(this.#readFd);
      this.#readFd = -1;
    }
    this.#cursorDirty = true;
    this.#persistCursor();
    this.#wake();
  }
}

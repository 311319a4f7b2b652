/**
 * A datagram ring in a SharedArrayBuffer: one producer (a receive worker) and one consumer (one of its
 * decode threads, src/inputs/spread.ts). The producer copies each datagram in with its exporter, source
 * port, listener, receive time and receive index; a full ring refuses it (the caller counts the drop). No
 * lock: the producer alone moves `head`, the consumer alone moves `tail` (Atomics). Wake-ups are batched:
 * the consumer sleeps on `wake` (Atomics.waitAsync) only after it found the ring empty and said so in
 * `sleeping`; the producer notifies only then, so a busy consumer costs the producer no notify at all.
 *
 * A record is stored in one piece, after the last one or at the start, so an empty ring always takes a
 * datagram of up to half its size (the default 8 MiB is 128 times the largest UDP payload).
 *
 * Record layout (8-byte aligned): u32 total length | u32 payload length | u8 kind | u8 listener index |
 * u8 exporter length | u8 0 | u16 port | u16 0 | f64 receive time ms | f64 receive index | exporter (ASCII)
 * | payload. A u32 0xffffffff where a record would start means "continue at offset 0".
 */
import type { Datagram } from "../core/datagram.ts";

const HEAD = 0;
const TAIL = 1;
const SLEEPING = 2;
const WAKE = 3;
/** Control words at the start of the buffer (one cache line). */
const CONTROL_BYTES = 64;
const HEADER = 32;
const WRAP = 0xffffffff;

/** A datagram decoded as usual (0), or a copy for the decoder's state only (1). */
export const RING_NORMAL = 0;
export const RING_STATE_ONLY = 1;
export type RingKind = typeof RING_NORMAL | typeof RING_STATE_ONLY;

export const DEFAULT_RING_BYTES = 8 * 1024 * 1024;
/** Smallest ring: one largest datagram fits (with its header and exporter). */
export const MIN_RING_BYTES = 1024;

/** The shared buffer of a ring of `bytes` data bytes (rounded up to 8). */
export function createRingBuffer(bytes: number): SharedArrayBuffer {
  const cap = Math.max(MIN_RING_BYTES, Math.ceil(bytes / 8) * 8);
  return new SharedArrayBuffer(CONTROL_BYTES + cap);
}

export class RingWriter {
  readonly #ctrl: Int32Array;
  readonly #data: Uint8Array;
  readonly #view: DataView;
  readonly #cap: number;
  #head = 0;

  constructor(sab: SharedArrayBuffer) {
    this.#ctrl = new Int32Array(sab, 0, 4);
    this.#data = new Uint8Array(sab, CONTROL_BYTES);
    this.#view = new DataView(sab, CONTROL_BYTES);
    this.#cap = this.#data.length;
    this.#head = Atomics.load(this.#ctrl, HEAD);
  }

  /** Copies the datagram in; false (nothing written) when the ring has no room for it. */
  write(dg: Datagram, listener: number, index: number, kind: RingKind): boolean {
    const ex = dg.exporter;
    const exLen = ex.length > 255 ? 0 : ex.length;
    const plen = dg.payload.length;
    const need = (HEADER + exLen + plen + 7) & ~7;
    const cap = this.#cap;
    const tail = Atomics.load(this.#ctrl, TAIL);
    let at = this.#head;
    if (at >= tail) {
      if (cap - at < need || (at + need === cap && tail === 0)) {
        // not at the end: from the start, up to (not onto) the tail
        if (need >= tail) return false;
        if (cap - at >= 4) this.#view.setUint32(at, WRAP);
        at = 0;
      }
    } else if (tail - at <= need) return false;
    const v = this.#view;
    v.setUint32(at, need);
    v.setUint32(at + 4, plen);
    v.setUint8(at + 8, kind);
    v.setUint8(at + 9, listener);
    v.setUint8(at + 10, exLen);
    v.setUint16(at + 12, dg.port);
    v.setFloat64(at + 16, dg.receivedAtMs);
    v.setFloat64(at + 24, index);
    const d = this.#data;
    let o = at + HEADER;
    for (let i = 0; i < exLen; i++) d[o++] = ex.charCodeAt(i);
    d.set(dg.payload, o);
    let head = at + need;
    if (head === cap) head = 0;
    this.#head = head;
    Atomics.store(this.#ctrl, HEAD, head);
    if (Atomics.load(this.#ctrl, SLEEPING) === 1) {
      Atomics.store(this.#ctrl, SLEEPING, 0);
      Atomics.add(this.#ctrl, WAKE, 1);
      Atomics.notify(this.#ctrl, WAKE);
    }
    return true;
  }
}

/** One datagram read from the ring; valid until the next `read` (its payload is a view into the ring). */
export interface RingEntry {
  dg: Datagram;
  kind: RingKind;
  index: number;
}

export class RingReader {
  readonly #sab: SharedArrayBuffer;
  readonly #ctrl: Int32Array;
  readonly #view: DataView;
  readonly #cap: number;
  readonly #listeners: readonly string[];
  #tail = 0;
  /** The entry being read: its bytes are released at the next `read`. */
  #pending = -1;
  readonly #exporters = new Map<string, string>();

  constructor(sab: SharedArrayBuffer, listeners: readonly string[]) {
    this.#sab = sab;
    this.#ctrl = new Int32Array(sab, 0, 4);
    this.#view = new DataView(sab, CONTROL_BYTES);
    this.#cap = sab.byteLength - CONTROL_BYTES;
    this.#listeners = listeners;
    this.#tail = Atomics.load(this.#ctrl, TAIL);
  }

  /** The next datagram, or null when the ring is empty (the previous entry's bytes are released). */
  read(): RingEntry | null {
    if (this.#pending >= 0) {
      this.#tail = this.#pending;
      Atomics.store(this.#ctrl, TAIL, this.#pending);
      this.#pending = -1;
    }
    const head = Atomics.load(this.#ctrl, HEAD);
    let at = this.#tail;
    if (at === head) return null;
    const v = this.#view;
    if (this.#cap - at < 4 || v.getUint32(at) === WRAP) {
      at = 0;
      if (at === head) return null;
    }
    const total = v.getUint32(at);
    const plen = v.getUint32(at + 4);
    const kind = v.getUint8(at + 8) as RingKind;
    const listener = this.#listeners[v.getUint8(at + 9)] ?? "";
    const exLen = v.getUint8(at + 10);
    const port = v.getUint16(at + 12);
    const receivedAtMs = v.getFloat64(at + 16);
    const index = v.getFloat64(at + 24);
    const exStart = CONTROL_BYTES + at + HEADER;
    const key = Buffer.from(this.#sab, exStart, exLen).toString("latin1");
    let exporter = this.#exporters.get(key);
    if (exporter === undefined) {
      exporter = key;
      if (this.#exporters.size < 10_000) this.#exporters.set(key, key);
    }
    const payload = Buffer.from(this.#sab, exStart + exLen, plen);
    let next = at + total;
    if (next === this.#cap) next = 0;
    this.#pending = next;
    return { dg: { payload, exporter, port, receivedAtMs, listener }, kind, index };
  }

  /**
   * Resolves when the producer writes after this call (or at once if it already did): sets `sleeping`
   * and waits on `wake`.
   */
  wait(): Promise<void> {
    const ctrl = this.#ctrl;
    if (this.#pending >= 0) {
      this.#tail = this.#pending;
      Atomics.store(ctrl, TAIL, this.#pending);
      this.#pending = -1;
    }
    const wake = Atomics.load(ctrl, WAKE);
    Atomics.store(ctrl, SLEEPING, 1);
    if (Atomics.load(ctrl, HEAD) !== this.#tail) {
      Atomics.store(ctrl, SLEEPING, 0);
      return Promise.resolve();
    }
    const r = Atomics.waitAsync(ctrl, WAKE, wake);
    return r.async ? r.value.then(() => {}) : Promise.resolve();
  }

  /** Wakes a consumer waiting in `wait` (from the producer's side, e.g. to stop it). */
  static wake(sab: SharedArrayBuffer): void {
    const ctrl = new Int32Array(sab, 0, 4);
    Atomics.store(ctrl, SLEEPING, 0);
    Atomics.add(ctrl, WAKE, 1);
    Atomics.notify(ctrl, WAKE);
  }
}

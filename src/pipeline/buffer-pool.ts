/**
 * Buffer recycling for encoded batches: everything about it lives in this module (the pool, which buffers
 * a worker may transfer, which ones the main thread sends back); the rest of the code only calls
 * `batchBuffers.take` (or `own`), `transferables` and `recyclables`.
 *
 * Ownership rule: a batch buffer belongs to exactly one thread at a time and nobody keeps a view of a buffer
 * after handing it on. The receive worker owns it from `take` until it posts the batch (the buffer is
 * transferred); the main thread owns it until the last sink that holds the batch has written it (a sink
 * with `releasesBatches`), then transfers it back to the worker that made it (`UdpInput.recycle`), whose
 * pool owns it again (`give`). A buffer that cannot travel that way is simply left to the collector.
 *
 * Why: reused transferable buffers for encoded batches. A receive worker encodes each batch into a buffer it
 * transfers to the main thread; without reuse every batch (megabytes of JSON lines or SQLite rows) is a
 * fresh allocation that the main thread frees after writing it: new pages to fault in on every batch, and
 * external memory that pushes V8 into extra collections. Instead, once a sink has written a batch and holds
 * no reference to it (`Sink.releasesBatches`), the main thread transfers its buffers back to the worker
 * that made them (`UdpInput.recycle`), and the worker's encoders take them from this pool.
 *
 * `take(n)` returns a view of exactly n bytes at offset 0 of a pooled (or new) ArrayBuffer that may be
 * larger; only the view's bytes are meaningful. Buffers are owned by the pool's thread until transferred.
 * Outside a worker nothing is given back and `take` simply allocates.
 */
import { isMarkedAsUntransferable } from "node:worker_threads";

/** New buffers are rounded up to this granularity (so a slightly larger batch can reuse them). */
const GRANULE = 64 * 1024;

export interface BufferPoolStats {
  /** `take` served from the pool / by a new allocation. */
  hits: number;
  misses: number;
  /** Buffers given back; of those, buffers let go (detached, or evicted when the pool was full). */
  returned: number;
  discarded: number;
  /** Free buffers and their bytes. */
  free: number;
  freeBytes: number;
}

export class BufferPool {
  readonly maxBuffers: number;
  readonly maxBytes: number;
  #free: ArrayBuffer[] = [];
  /** Buffers this pool made or was given: they may be transferred even when a view covers only part. */
  #owned = new WeakSet<ArrayBuffer>();
  #freeBytes = 0;
  #stats = { hits: 0, misses: 0, returned: 0, discarded: 0 };

  /** At most `maxBuffers` free buffers totalling at most `maxBytes` are kept. */
  constructor(maxBuffers = 16, maxBytes = 256 * 1024 * 1024) {
    this.maxBuffers = maxBuffers;
    this.maxBytes = maxBytes;
  }

  /** A view of `bytes` bytes at offset 0 of the smallest free buffer that fits, or of a new one. */
  take(bytes: number): Uint8Array<ArrayBuffer> {
    let best = -1;
    for (let i = 0; i < this.#free.length; i++) {
      const len = this.#free[i]!.byteLength;
      if (len >= bytes && (best < 0 || len < this.#free[best]!.byteLength)) best = i;
    }
    if (best >= 0) {
      const buf = this.#free[best]!;
      this.#free[best] = this.#free[this.#free.length - 1]!;
      this.#free.pop();
      this.#freeBytes -= buf.byteLength;
      this.#stats.hits++;
      return new Uint8Array(buf, 0, bytes);
    }
    this.#stats.misses++;
    const size = Math.max(GRANULE, Math.ceil((bytes * 1.25) / GRANULE) * GRANULE);
    const buf = new ArrayBuffer(size);
    this.#owned.add(buf);
    return new Uint8Array(buf, 0, bytes);
  }

  /** Takes a buffer back. When full, the smallest buffers go first (large batches need large buffers). */
  give(buf: ArrayBuffer): void {
    this.#stats.returned++;
    if (buf.byteLength === 0) {
      this.#stats.discarded++; // detached (transferred elsewhere) or empty
      return;
    }
    this.#owned.add(buf);
    this.#free.push(buf);
    this.#freeBytes += buf.byteLength;
    while (this.#free.length > this.maxBuffers || this.#freeBytes > this.maxBytes) {
      let smallest = 0;
      for (let i = 1; i < this.#free.length; i++)
        if (this.#free[i]!.byteLength < this.#free[smallest]!.byteLength) smallest = i;
      this.#freeBytes -= this.#free[smallest]!.byteLength;
      this.#free.splice(smallest, 1);
      this.#stats.discarded++;
    }
  }

  /**
   * A new buffer of at least `bytes` for a writer that fills it before it takes a batch buffer (the GoFlow2
   * writer's streamed lines: it hands this one over at the cut and takes the next from the pool then, so
   * the takes happen when they did for a batch encoded at once). Owned like a taken one, not counted.
   */
  own(bytes: number): Uint8Array<ArrayBuffer> {
    const buf = new ArrayBuffer(Math.max(GRANULE, Math.ceil((bytes * 1.25) / GRANULE) * GRANULE));
    this.#owned.add(buf);
    return new Uint8Array(buf);
  }

  /** True for a buffer this pool handed out or took back (a whole buffer of ours, safe to transfer). */
  owns(buf: ArrayBufferLike): boolean {
    return buf instanceof ArrayBuffer && this.#owned.has(buf);
  }

  /**
   * Runs `fn` without counting its takes: the JIT warm-up's throwaway batches (src/inputs/warmup.ts) are
   * dropped, never given back, and are none of the service's batches.
   */
  uncounted<T>(fn: () => T): T {
    const { hits, misses } = this.#stats;
    try {
      return fn();
    } finally {
      this.#stats.hits = hits;
      this.#stats.misses = misses;
    }
  }

  get stats(): BufferPoolStats {
    return { ...this.#stats, free: this.#free.length, freeBytes: this.#freeBytes };
  }
}

/** This thread's pool for encoded batches (each worker thread has its own module instance). */
export const batchBuffers = new BufferPool();

/** The parts of an encoded batch (src/sinks/types.ts EncodedBatch), as far as buffers are concerned. */
export interface BufferedBatch {
  readonly parts: readonly { readonly data: Uint8Array }[];
}

/**
 * Worker side: the buffers of a batch that can be transferred with it (not copied). Only whole,
 * transferable ArrayBuffers (a view into Node's Buffer pool must be copied instead), or a buffer of this
 * thread's pool, which the view need not cover to the end.
 */
export function transferables(batch: BufferedBatch): ArrayBuffer[] {
  const list: ArrayBuffer[] = [];
  for (const p of batch.parts) {
    const buf = p.data.buffer;
    if (
      buf instanceof ArrayBuffer &&
      p.data.byteOffset === 0 &&
      (p.data.byteLength === buf.byteLength || batchBuffers.owns(buf)) &&
      !isMarkedAsUntransferable(buf) &&
      !list.includes(buf)
    ) {
      list.push(buf);
    }
  }
  return list;
}

/**
 * Main-thread side: the buffers of a written batch to transfer back to the worker that encoded it (each
 * once; detached ones, of length 0, are left out). After the transfer they are detached here.
 */
export function recyclables(batch: BufferedBatch): ArrayBuffer[] {
  const buffers: ArrayBuffer[] = [];
  for (const p of batch.parts) {
    const b = p.data.buffer;
    if (b instanceof ArrayBuffer && p.data.byteOffset === 0 && b.byteLength > 0 && !buffers.includes(b))
      buffers.push(b);
  }
  return buffers;
}

/**
 * One bounded queue per sink (DESIGN §2). `offer` never waits: when the queue holds `capacity` batches
 * the oldest queued batch is dropped (fresh flows matter more to an operator than stale ones, and the
 * disk spool of remote sinks applies the same rule) and counted under reason "queue_full". A single
 * writer loop feeds `sink.write()` one batch at a time, in order; a rejected write drops that batch under
 * "write_error" (sinks retry internally before rejecting; durable sinks spool instead of rejecting).
 * Between batches the writer yields one turn of the event loop, so a sink that writes synchronously
 * cannot hold the main thread for its whole backlog.
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import type { EncodedBatch, Sink } from "../sinks/types.ts";

export const DROP_REASONS = ["queue_full", "write_error", "closed"] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export interface SinkQueueEvents {
  /** A batch was written; `seconds` is how long `sink.write()` took. */
  written?(batch: EncodedBatch, seconds: number): void;
  dropped?(batch: EncodedBatch, reason: DropReason, err?: unknown): void;
  /** A batch was written by a sink that `releasesBatches`: its bytes may be reused (and detached). */
  release?(batch: EncodedBatch): void;
}

export interface SinkQueueStats {
  name: string;
  length: number;
  capacity: number;
  pendingRecords: number;
  writtenBatches: number;
  writtenRecords: number;
  droppedBatches: Record<DropReason, number>;
  droppedRecords: Record<DropReason, number>;
  /** ms since the epoch of the last drop, 0 if none. */
  lastDropMs: number;
  lastErrorMs: number;
}

function zero(): Record<DropReason, number> {
  return { queue_full: 0, write_error: 0, closed: 0 };
}

export class SinkQueue {
  readonly sink: Sink;
  readonly capacity: number;
  readonly #events: SinkQueueEvents;
  #items: EncodedBatch[] = [];
  #pendingRecords = 0;
  #writing = false;
  #closed = false;
  #idleWaiters: Array<() => void> = [];
  readonly #stats: SinkQueueStats;

  constructor(sink: Sink, capacity: number, events: SinkQueueEvents = {}) {
    if (!(capacity >= 1)) throw new RangeError(`queue capacity must be at least 1, got ${capacity}`);
    this.sink = sink;
    this.capacity = capacity;
    this.#events = events;
    this.#stats = {
      name: sink.name,
      length: 0,
      capacity,
      pendingRecords: 0,
      writtenBatches: 0,
      writtenRecords: 0,
      droppedBatches: zero(),
      droppedRecords: zero(),
      lastDropMs: 0,
      lastErrorMs: 0,
    };
  }

  get name(): string {
    return this.sink.name;
  }

  /** Batches queued, not counting the one being written. */
  get length(): number {
    return this.#items.length;
  }

  /** Records queued or being written. */
  get pendingRecords(): number {
    return this.#pendingRecords;
  }

  get stats(): SinkQueueStats {
    return {
      ...this.#stats,
      length: this.#items.length,
      pendingRecords: this.#pendingRecords,
      droppedBatches: { ...this.#stats.droppedBatches },
      droppedRecords: { ...this.#stats.droppedRecords },
    };
  }

  /** Queues a batch without waiting. Returns false when the batch (or an older one) had to be dropped. */
  offer(batch: EncodedBatch): boolean {
    if (this.#closed) {
      this.#drop(batch, "closed");
      return false;
    }
    let ok = true;
    if (this.#items.length >= this.capacity) {
      const oldest = this.#items.shift()!;
      this.#pendingRecords -= oldest.records;
      this.#drop(oldest, "queue_full");
      ok = false;
    }
    this.#items.push(batch);
    this.#pendingRecords += batch.records;
    this.#pump();
    return ok;
  }

  /** Resolves when every batch offered so far has been written (or dropped). */
  drain(): Promise<void> {
    if (!this.#writing && this.#items.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Refuses new batches, drains what is queued, then closes the sink. `Sink.close()` flushes by contract,
   * so no separate `flush()` first: for an HTTP sink that would wait for its backend twice.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.drain();
    await this.sink.close();
  }

  #drop(batch: EncodedBatch, reason: DropReason, err?: unknown): void {
    this.#stats.droppedBatches[reason]++;
    this.#stats.droppedRecords[reason] += batch.records;
    this.#stats.lastDropMs = Date.now();
    if (reason === "write_error") this.#stats.lastErrorMs = this.#stats.lastDropMs;
    this.#events.dropped?.(batch, reason, err);
  }

  #pump(): void {
    if (this.#writing || this.#items.length === 0) return;
    this.#writing = true;
    void this.#run();
  }

  async #run(): Promise<void> {
    for (;;) {
      const batch = this.#items.shift();
      if (batch === undefined) break;
      const t0 = performance.now();
      try {
        await this.sink.write(batch);
        this.#stats.writtenBatches++;
        this.#stats.writtenRecords += batch.records;
        this.#events.written?.(batch, (performance.now() - t0) / 1000);
        if (this.sink.releasesBatches === true) this.#events.release?.(batch);
      } catch (err) {
        this.#drop(batch, "write_error", err);
      } finally {
        this.#pendingRecords -= batch.records;
      }
      // A synchronous sink (SQLite) resolves at once: without a turn of the event loop here its whole
      // backlog would be written in one go while the other sinks' I/O completions and the workers'
      // batches wait (that starved the jsonl file sink into dropping when both were configured).
      if (this.#items.length > 0) await nextTurn();
    }
    this.#writing = false;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}

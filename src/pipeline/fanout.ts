/**
 * Routes encoded batches from the receive workers to their sink's queue (by EncodedBatch.sink, the
 * output URI) and owns the queues' lifecycle. Never waits.
 */
import type { EncodedBatch } from "../sinks/types.ts";
import type { SinkQueue, SinkQueueStats } from "./queue.ts";

export class Fanout {
  readonly #queues = new Map<string, SinkQueue>();
  #unrouted = 0;
  #unroutedRecords = 0;

  constructor(queues: Iterable<SinkQueue>) {
    for (const q of queues) this.#queues.set(q.name, q);
  }

  /** Batches whose sink name matched no queue (a bug if ever non-zero). */
  get unrouted(): number {
    return this.#unrouted;
  }

  /** Flow records in unrouted batches. */
  get unroutedRecords(): number {
    return this.#unroutedRecords;
  }

  get queues(): readonly SinkQueue[] {
    return [...this.#queues.values()];
  }

  offer(batch: EncodedBatch): boolean {
    const q = this.#queues.get(batch.sink);
    if (!q) {
      this.#unrouted++;
      this.#unroutedRecords += batch.records;
      return false;
    }
    return q.offer(batch);
  }

  /** Records waiting in all queues. */
  get pendingRecords(): number {
    let n = 0;
    for (const q of this.#queues.values()) n += q.pendingRecords;
    return n;
  }

  stats(): SinkQueueStats[] {
    return this.queues.map((q) => q.stats);
  }

  /** Drains and closes every queue and sink; failures are collected, not short-circuited. */
  async close(): Promise<Error[]> {
    const results = await Promise.allSettled(this.queues.map((q) => q.close()));
    return results.flatMap((r) =>
      r.status === "rejected" ? [r.reason instanceof Error ? r.reason : new Error(String(r.reason))] : [],
    );
  }
}

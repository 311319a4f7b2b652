/**
 * Size-or-age batching: items accumulate until `size` are counted or the oldest has waited `intervalMs`,
 * whichever comes first; then `onBatch` gets the array of held items (ownership passes to it) and the
 * count. An item is held (`add`) or only counted (`tally`: a streaming consumer took it already, so the
 * batch is a cut point, not a list). Synchronous and allocation-light: the receive path calls `add` or
 * `tally` per record and never waits.
 */
export interface BatcherOptions<T> {
  size: number;
  intervalMs: number;
  /** `items`: the held items (none when all were tallied); `count`: held + tallied, at least 1. */
  onBatch: (items: T[], count: number) => void;
}

export class Batcher<T> {
  readonly #size: number;
  readonly #intervalMs: number;
  readonly #onBatch: (items: T[], count: number) => void;
  #items: T[] = [];
  #count = 0;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(opts: BatcherOptions<T>) {
    if (!(opts.size >= 1)) throw new RangeError(`batch size must be at least 1, got ${opts.size}`);
    this.#size = opts.size;
    this.#intervalMs = opts.intervalMs;
    this.#onBatch = opts.onBatch;
  }

  /** Items counted in the current batch (held or tallied). */
  get length(): number {
    return this.#count;
  }

  add(item: T): void {
    if (this.#closed) throw new Error("batcher is closed");
    this.#items.push(item);
    this.#counted();
  }

  /** Counts one item into the current batch without holding it. */
  tally(): void {
    if (this.#closed) throw new Error("batcher is closed");
    this.#counted();
  }

  #counted(): void {
    if (++this.#count >= this.#size) {
      this.flush();
    } else if (this.#timer === null) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.flush();
      }, this.#intervalMs);
      this.#timer.unref();
    }
  }

  /** Hands the current batch over now (no-op when empty). */
  flush(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#count === 0) return;
    const items = this.#items;
    const count = this.#count;
    this.#items = [];
    this.#count = 0;
    this.#onBatch(items, count);
  }

  /** Flushes and refuses further items. */
  close(): void {
    this.flush();
    this.#closed = true;
  }

  /** Drops the current batch unflushed and refuses further items (a throwaway batcher: the JIT warm-up). */
  discard(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#items = [];
    this.#count = 0;
    this.#closed = true;
  }
}

/**
 * Size-or-age batching: items accumulate until `size` are held or the oldest has waited `intervalMs`,
 * whichever comes first; then `onBatch` gets the array (ownership passes to it). Synchronous and
 * allocation-light: the receive path calls `add` per record and never waits.
 */
export interface BatcherOptions<T> {
  size: number;
  intervalMs: number;
  onBatch: (items: T[]) => void;
}

export class Batcher<T> {
  readonly #size: number;
  readonly #intervalMs: number;
  readonly #onBatch: (items: T[]) => void;
  #items: T[] = [];
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(opts: BatcherOptions<T>) {
    if (!(opts.size >= 1)) throw new RangeError(`batch size must be at least 1, got ${opts.size}`);
    this.#size = opts.size;
    this.#intervalMs = opts.intervalMs;
    this.#onBatch = opts.onBatch;
  }

  /** Items waiting in the current batch. */
  get length(): number {
    return this.#items.length;
  }

  add(item: T): void {
    if (this.#closed) throw new Error("batcher is closed");
    this.#items.push(item);
    if (this.#items.length >= this.#size) {
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
    if (this.#items.length === 0) return;
    const items = this.#items;
    this.#items = [];
    this.#onBatch(items);
  }

  /** Flushes and refuses further items. */
  close(): void {
    this.flush();
    this.#closed = true;
  }
}

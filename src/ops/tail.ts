/**
 * The live tail's hub (main thread): receives the `tail:` batches the receive workers encode
 * (src/sinks/tail.ts), filters each flow per reader with the filter language's JavaScript predicate
 * (src/query/filter.ts) and writes it to the reader's HTTP response as one JSON line.
 *
 * Bounded: at most MAX_TAIL_READERS readers; a reader whose response holds more than `highWaterBytes`
 * unsent bytes (a slow reader, a stalled terminal) gets no more flows until it drains: those flows are
 * dropped *for that reader* and counted, and the reader is told `{"event":"dropped","count":N}` (the
 * running total) as soon as its buffer has room again. The collector's own pipeline never waits on a
 * reader. Flows the workers skipped (over MAX_TAIL_RECORDS a batch) count as dropped for every reader.
 *
 * Stream format (application/x-ndjson): first `{"event":"start","filter":…}`, then flows (objects with the
 * `flows` column names, see TailRow), `{"event":"dropped","count":N}` lines, and `{"event":"ping"}` every
 * 15 s of silence so a reader can tell a quiet collector from a dead connection.
 */
import type { OutputConfig } from "../config/options.ts";
import { compileFilter, type FlowRow } from "../query/filter.ts";
import { TAIL_URI } from "../sinks/tail.ts";
import type { EncodedBatch } from "../sinks/types.ts";

export const MAX_TAIL_READERS = 8;
const PING_MS = 15_000;

/** What the hub needs of a response (node's ServerResponse fits). */
export interface TailWritable {
  readonly writableLength: number;
  write(chunk: string): boolean;
  end(): void;
  once(event: "drain" | "close", fn: () => void): unknown;
}

interface Reader {
  out: TailWritable;
  predicate: ((row: FlowRow) => boolean) | null;
  dropped: number;
  reported: number;
  sent: number;
  lastWrite: number;
  waitingDrain: boolean;
}

export interface TailStats {
  readers: number;
  sent: number;
  dropped: number;
}

export class TailHub {
  /** Shared with the workers' tail encoders: number of readers (0 = encode nothing). */
  readonly #active = new Int32Array(new SharedArrayBuffer(4));
  readonly #readers = new Set<Reader>();
  readonly #highWater: number;
  readonly #ping: NodeJS.Timeout;
  #sent = 0;
  #dropped = 0;

  constructor(opts: { highWaterBytes?: number } = {}) {
    this.#highWater = opts.highWaterBytes ?? 256 * 1024;
    this.#ping = setInterval(() => this.#pingIdle(), PING_MS);
    this.#ping.unref();
  }

  /** The output to add to the receive workers' outputs. */
  get output(): OutputConfig {
    return { uri: TAIL_URI, options: { active: this.#active } } as OutputConfig;
  }

  /** True for the batches this hub takes (route them here, not to the sinks). */
  owns(batch: EncodedBatch): boolean {
    return batch.sink === TAIL_URI;
  }

  get stats(): TailStats {
    return { readers: this.#readers.size, sent: this.#sent, dropped: this.#dropped };
  }

  /**
   * Adds a reader. Throws FilterError for a bad filter; returns null when MAX_TAIL_READERS already read.
   * The reader is removed when `out` emits close; `detach` removes it too.
   */
  subscribe(out: TailWritable, filter: string | undefined): { detach: () => void } | null {
    const compiled = compileFilter(filter);
    if (this.#readers.size >= MAX_TAIL_READERS) return null;
    const reader: Reader = {
      out,
      predicate: compiled ? compiled.predicate : null,
      dropped: 0,
      reported: 0,
      sent: 0,
      lastWrite: Date.now(),
      waitingDrain: false,
    };
    this.#readers.add(reader);
    Atomics.store(this.#active, 0, this.#readers.size);
    const detach = (): void => {
      if (this.#readers.delete(reader)) Atomics.store(this.#active, 0, this.#readers.size);
    };
    out.once("close", detach);
    this.#write(reader, `${JSON.stringify({ event: "start", filter: filter ?? null })}\n`);
    return { detach };
  }

  /** Takes one tail batch from a worker. */
  offer(batch: EncodedBatch): void {
    if (this.#readers.size === 0) return;
    for (const part of batch.parts) {
      const text = Buffer.from(part.data.buffer, part.data.byteOffset, part.data.byteLength).toString("utf8");
      let start = 0;
      let skipped = 0;
      const rows: Array<{ line: string; row: FlowRow }> = [];
      while (start < text.length) {
        let end = text.indexOf("\n", start);
        if (end < 0) end = text.length;
        const line = text.slice(start, end);
        start = end + 1;
        if (line === "") continue;
        const row = JSON.parse(line) as Record<string, unknown>;
        if (typeof row.skipped === "number") skipped += row.skipped;
        else rows.push({ line, row });
      }
      for (const r of this.#readers) {
        if (skipped > 0) {
          r.dropped += skipped;
          this.#dropped += skipped;
        }
        let chunk = "";
        let n = 0;
        for (const { line, row } of rows)
          if (r.predicate === null || r.predicate(row)) {
            chunk += `${line}\n`;
            n++;
          }
        if (n === 0) {
          this.#reportDrops(r);
          continue;
        }
        if (r.out.writableLength > this.#highWater) {
          r.dropped += n;
          this.#dropped += n;
          this.#awaitDrain(r);
          continue;
        }
        this.#reportDrops(r);
        this.#write(r, chunk);
        r.sent += n;
        this.#sent += n;
      }
    }
  }

  /** Ends every reader's stream (at shutdown, before the ops server closes). */
  close(): void {
    clearInterval(this.#ping);
    for (const r of this.#readers) r.out.end();
    this.#readers.clear();
    Atomics.store(this.#active, 0, 0);
  }

  #write(r: Reader, text: string): void {
    r.lastWrite = Date.now();
    r.out.write(text);
  }

  #reportDrops(r: Reader): void {
    if (r.dropped === r.reported || r.out.writableLength > this.#highWater) return;
    r.reported = r.dropped;
    this.#write(r, `${JSON.stringify({ event: "dropped", count: r.dropped })}\n`);
  }

  #awaitDrain(r: Reader): void {
    if (r.waitingDrain) return;
    r.waitingDrain = true;
    r.out.once("drain", () => {
      r.waitingDrain = false;
      if (this.#readers.has(r)) this.#reportDrops(r);
    });
  }

  #pingIdle(): void {
    const now = Date.now();
    for (const r of this.#readers)
      if (now - r.lastWrite >= PING_MS && r.out.writableLength <= this.#highWater)
        this.#write(r, `${JSON.stringify({ event: "ping" })}\n`);
  }
}

/**
 * `jsonl:-` (stdout) and `jsonl:PATH` (append to a file): GoFlow2 JSON lines (src/encode/goflow2.ts).
 *
 * - The encoder runs in the receive workers: it writes each record's line as the record is decoded
 *   (streaming, `append`) and hands over one buffer of newline-terminated lines per batch (`cut`).
 * - The file is opened for appending at creation (parent directories created); an unwritable path fails
 *   creation with an Error naming it. `reopen()` (SIGHUP) closes and reopens the same path, for logrotate.
 * - Writes are serialized; a file write is awaited before the next, stdout waits for 'drain' when its
 *   buffer is full (backpressure reaches the pipeline's queue, never the receive path).
 * - A closed stdout pipe (EPIPE, e.g. `| head`) never crashes the process: it is logged once, later
 *   batches are dropped and counted (`stats.dropped`; their writes reject, so the pipeline counts them
 *   as write errors), and `failure()` reports it to /health for as long as the process runs.
 * - flush() waits until everything accepted reached the file (fdatasync) or the pipe; close() flushes too.
 * Options: `directIo` (boolean, default false): append to the file with O_DIRECT (src/sinks/direct-file.ts),
 * bypassing the page cache; where the filesystem does not take O_DIRECT, a warning and buffered appends.
 * Timed rotation (like nfcapd -t): a file name with time fields (`%Y %m %d %H %M %S`, `%%` for a percent
 * sign; local time), e.g. `jsonl:/var/log/flows/%Y%m%d-%H%M.jsonl`, names one file per period of
 * `rotateInterval` (seconds, or an age such as "5m", "1h"; default 5 minutes; periods aligned to the epoch,
 * so 5m gives files at :00, :05, …). The sink switches files at the first write of a new period, or within
 * a second of the period's end when nothing arrives, syncing and closing the old one: a file whose period
 * ended is complete and can be shipped and deleted. Time fields are allowed in the file name only.
 */

import { type FileHandle, open } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { Writable } from "node:stream";
import { ConfigError } from "../core/errors.ts";
import type { FlowRecord } from "../core/flow.ts";
import { JSONL_FILE_MODE, makeDirs } from "../core/fs.ts";
import { encodeCountersLines } from "../encode/counters.ts";
import { Goflow2Writer } from "../encode/goflow2.ts";
import type { InterfaceCounters } from "../protocols/sflow5.ts";
import { DirectAppender } from "./direct-file.ts";
import type { EncodedBatch, Sink, SinkContext, SinkDefinition, SinkEncoder } from "./types.ts";

/** What a `jsonl:` URI names: standard output or a file path. */
export type JsonlTarget = { kind: "stdout" } | { kind: "file"; path: string };

export interface JsonlOptions {
  /** Append to the file with O_DIRECT (no page cache); ignored for stdout. */
  directIo: boolean;
  /** Period of timed rotation, ms (used when the path has time fields). */
  rotateIntervalMs: number;
  /** Clock (tests). */
  now?: () => number;
}

const DEFAULT_ROTATE_MS = 300_000;
const AGE_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseJsonlOptions(options: Readonly<Record<string, unknown>>): JsonlOptions {
  const v = options.directIo;
  if (v !== undefined && typeof v !== "boolean")
    throw new ConfigError("directIo", `expected true or false, got ${JSON.stringify(v)}`);
  let rotateIntervalMs = DEFAULT_ROTATE_MS;
  const r = options.rotateInterval;
  if (r !== undefined) {
    const m = typeof r === "string" ? /^(\d+)\s*([smhd]?)$/i.exec(r.trim()) : null;
    const ms =
      typeof r === "number"
        ? r * 1000
        : m
          ? Number(m[1]) * (AGE_MS[(m[2] || "s").toLowerCase()] ?? 1000)
          : Number.NaN;
    if (!Number.isInteger(ms) || ms < 1000 || ms > 7 * 86_400_000)
      throw new ConfigError(
        "rotateInterval",
        `expected seconds or an age such as 300, "5m" or "1h" (1 s to 7 d), got ${JSON.stringify(r)}`,
      );
    rotateIntervalMs = ms;
  }
  return { directIo: v === true, rotateIntervalMs };
}

const TIME_FIELD = /%[YmdHMS%]/;

/** True when the path names files by time (timed rotation). */
export function isTimedPath(path: string): boolean {
  return TIME_FIELD.test(path);
}

/** The path with its time fields filled for `ms` (local time). */
export function formatTimedPath(pattern: string, ms: number): string {
  const d = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, "0");
  return pattern.replace(/%([YmdHMS%])/g, (_m, f: string) => {
    switch (f) {
      case "Y":
        return String(d.getFullYear());
      case "m":
        return two(d.getMonth() + 1);
      case "d":
        return two(d.getDate());
      case "H":
        return two(d.getHours());
      case "M":
        return two(d.getMinutes());
      case "S":
        return two(d.getSeconds());
      default:
        return "%";
    }
  });
}

export function parseJsonlUri(uri: string): JsonlTarget {
  if (!uri.startsWith("jsonl:")) throw new ConfigError("sink", `not a jsonl: URI: ${uri}`);
  let rest = uri.slice("jsonl:".length);
  if (rest.startsWith("//")) rest = rest.slice(2);
  if (rest === "") throw new ConfigError("sink", `${uri}: give a path, or "-" for standard output`);
  if (rest === "-") return { kind: "stdout" };
  const slash = rest.lastIndexOf("/");
  const dir = rest.slice(0, slash + 1);
  if (dir.includes("%"))
    throw new ConfigError("sink", `${uri}: time fields (%Y, %m, ...) are allowed in the file name only`);
  const name = rest.slice(slash + 1);
  const bad = /%[^YmdHMS%]|%$/.exec(name.replace(/%%/g, ""));
  if (bad)
    throw new ConfigError("sink", `${uri}: unknown time field "${bad[0]}" (known: %Y %m %d %H %M %S %%)`);
  return { kind: "file", path: rest };
}

/** Records the first streamed batch's buffer is sized for (the default --batch-size). */
const DEFAULT_EXPECTED = 1000;

/**
 * GoFlow2 lines, one part per batch (also usable by other line-oriented sinks). Streaming: each appended
 * record's line is written at once (Goflow2Writer.begin/append/end: into the writer's own buffer, sized
 * for as many records as the last batch held, the first for `DEFAULT_EXPECTED`; copied into a pooled
 * transferable buffer at the cut).
 */
export function createGoflow2LinesEncoder(sinkName: string): SinkEncoder {
  const writer = new Goflow2Writer();
  let records = 0;
  let oldestMs = 0;
  let expected = DEFAULT_EXPECTED;
  const enc = {
    append(r: FlowRecord): void {
      if (!writer.open) writer.begin(expected);
      writer.append(r);
      const t = r.time_received_ms;
      if (records === 0 || t < oldestMs) oldestMs = t;
      records++;
    },
    cut(): EncodedBatch {
      const batch: EncodedBatch = {
        sink: sinkName,
        records,
        parts: [],
        oldestMs: records > 0 ? oldestMs : 0,
      };
      if (writer.open) {
        const data = writer.end();
        if (records > 0) batch.parts.push({ key: "", records, data });
      }
      if (records > 0) expected = records;
      records = 0;
      return batch;
    },
    encode(batch: readonly FlowRecord[]): EncodedBatch {
      if (writer.open) throw new Error(`${sinkName}: encode() while a batch is open`);
      if (batch.length === 0) return { sink: sinkName, records: 0, parts: [], oldestMs: 0 };
      writer.begin(batch.length);
      try {
        for (const r of batch) enc.append(r);
      } catch (err) {
        enc.cut(); // the batch is lost for this output, as a whole (the caller counts it)
        throw err;
      }
      return enc.cut();
    },
  };
  return enc;
}

export interface JsonlStats {
  /** Records and bytes written. */
  records: number;
  bytes: number;
  /** Records dropped because stdout was closed (EPIPE). */
  dropped: number;
  /** Write errors (each rejected a batch). */
  errors: number;
}

type Logger = SinkContext["logger"];

/** Writes encoded batches to a stream (stdout) or an append-mode file. */
export class JsonlSink implements Sink {
  readonly name: string;
  readonly stats: JsonlStats = { records: 0, bytes: 0, dropped: 0, errors: 0 };
  #logger: Logger;
  #path: string | null;
  #file: FileHandle | null;
  /** The O_DIRECT appender when `directIo` is on and the filesystem takes it (then #file stays null). */
  #direct: DirectAppender | null = null;
  /** `directIo` as configured: every (re)open tries O_DIRECT first. */
  #wantDirect = false;
  #stream: Writable | null;
  #broken = false;
  #chain: Promise<void> = Promise.resolve();
  #closed = false;
  /** Timed rotation: the path pattern, its period, the start of the open file's period, the clock. */
  #pattern: string | null = null;
  #periodMs = DEFAULT_ROTATE_MS;
  #periodStart = 0;
  #now: () => number = Date.now;
  #rotateTimer: NodeJS.Timeout | null = null;

  private constructor(
    name: string,
    logger: Logger,
    path: string | null,
    file: FileHandle | null,
    stream: Writable | null,
  ) {
    this.name = name;
    this.#logger = logger;
    this.#path = path;
    this.#file = file;
    this.#stream = stream;
    if (stream !== null) stream.on("error", (err: NodeJS.ErrnoException) => this.#onStreamError(err));
  }

  /** A sink appending to `path` (parent directories created). Rejects, naming the path, when unwritable. */
  static async openFile(
    name: string,
    path: string,
    logger: Logger,
    opts: JsonlOptions = { directIo: false, rotateIntervalMs: DEFAULT_ROTATE_MS },
  ): Promise<JsonlSink> {
    const sink = new JsonlSink(name, logger, path, null, null);
    sink.#wantDirect = opts.directIo;
    if (isTimedPath(path)) {
      sink.#pattern = path;
      sink.#periodMs = opts.rotateIntervalMs;
      sink.#now = opts.now ?? Date.now;
      sink.#periodStart = sink.#period();
      sink.#path = formatTimedPath(path, sink.#periodStart);
      // Close a finished period's file even when no flow arrives.
      sink.#rotateTimer = setInterval(
        () => {
          if (sink.#period() !== sink.#periodStart) void sink.#enqueue(() => sink.#rotate()).catch(() => {});
        },
        Math.min(1000, opts.rotateIntervalMs),
      );
      sink.#rotateTimer.unref();
    }
    await sink.#open();
    return sink;
  }

  /** The file currently written (with timed rotation: the current period's). */
  get path(): string | null {
    return this.#path;
  }

  #period(): number {
    const t = this.#now();
    return t - (((t % this.#periodMs) + this.#periodMs) % this.#periodMs);
  }

  /** Timed rotation: when the period changed, sync and close the file and open the new period's. */
  async #rotate(): Promise<void> {
    if (this.#pattern === null || this.#closed) return;
    const start = this.#period();
    if (start === this.#periodStart) return;
    await this.#closeFiles(true);
    this.#periodStart = start;
    this.#path = formatTimedPath(this.#pattern, start);
    await this.#open();
    this.#logger.info({ sink: this.name, path: this.#path }, "jsonl: rotated to a new file");
  }

  async #closeFiles(sync: boolean): Promise<void> {
    const old = this.#file;
    this.#file = null;
    if (old !== null) {
      if (sync) await old.datasync().catch(() => {});
      await old.close().catch(() => {});
    }
    const oldDirect = this.#direct;
    this.#direct = null;
    if (oldDirect !== null) {
      if (sync) await oldDirect.datasync().catch(() => {});
      await oldDirect.close();
    }
  }

  /** True when appends bypass the page cache (O_DIRECT). */
  get directIo(): boolean {
    return this.#direct !== null;
  }

  /** Opens the file: O_DIRECT when asked for and possible, else buffered append. */
  async #open(): Promise<void> {
    const path = this.#path!;
    if (this.#wantDirect) {
      this.#direct = await opening(path, () => DirectAppender.open(path));
      if (this.#direct !== null) return;
      this.#logger.warn(
        { sink: this.name, path },
        "jsonl: the filesystem does not take O_DIRECT (directIo); appending through the page cache",
      );
    }
    this.#file = await opening(path, () => open(path, "a", JSONL_FILE_MODE));
  }

  /** A sink writing to a stream (standard output, or any Writable in tests). */
  static fromStream(name: string, stream: Writable, logger: Logger): JsonlSink {
    return new JsonlSink(name, logger, null, null, stream);
  }

  /**
   * A file write has finished with the bytes when it resolves; a stream may still hold them queued, so
   * only the file sink lets the pipeline reuse a batch's buffers.
   */
  get releasesBatches(): boolean {
    return this.#stream === null;
  }

  /** True once the output pipe was found closed; later batches are dropped and counted. */
  get broken(): boolean {
    return this.#broken;
  }

  failure(): string | null {
    return this.#broken ? "output closed (broken pipe): its flows are dropped" : null;
  }

  write(batch: EncodedBatch): Promise<void> {
    return this.#enqueue(() => this.#write(batch));
  }

  flush(): Promise<void> {
    return this.#enqueue(() => this.#flush());
  }

  /** sFlow counters as their own line type (src/encode/counters.ts), in order with the flow batches. */
  writeCounters(records: readonly InterfaceCounters[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    const data = encodeCountersLines(records);
    return this.#enqueue(() =>
      this.#write({ sink: this.name, records: 0, parts: [{ key: "", records: 0, data }], oldestMs: 0 }),
    );
  }

  reopen(): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#path === null || this.#closed) return;
      const old = this.#file;
      this.#file = null;
      if (old !== null) await old.close().catch(() => {});
      const oldDirect = this.#direct;
      this.#direct = null;
      if (oldDirect !== null) await oldDirect.close();
      try {
        await this.#open();
      } catch (err) {
        // Writes retry the open; until then they reject (and the pipeline spools).
        this.#logger.error({ sink: this.name, err }, "jsonl: reopen failed");
        throw err;
      }
    });
  }

  close(): Promise<void> {
    if (this.#rotateTimer !== null) clearInterval(this.#rotateTimer);
    return this.#enqueue(async () => {
      if (this.#closed) return;
      await this.#flush();
      this.#closed = true;
      if (this.#file !== null) {
        await this.#file.close();
        this.#file = null;
      }
      if (this.#direct !== null) {
        await this.#direct.close();
        this.#direct = null;
      }
    });
  }

  #enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.#chain.then(task);
    this.#chain = run.catch(() => {});
    return run;
  }

  async #write(batch: EncodedBatch): Promise<void> {
    if (this.#closed) throw new Error(`${this.name}: write after close`);
    if (this.#stream !== null) {
      await this.#writeStream(this.#stream, batch);
      return;
    }
    try {
      if (this.#pattern !== null) await this.#rotate();
      if (this.#file === null && this.#direct === null) await this.#open();
      const direct = this.#direct;
      if (direct !== null) {
        for (const part of batch.parts) {
          await direct.append(part.data);
          this.stats.bytes += part.data.length;
        }
        this.stats.records += batch.records;
        return;
      }
      const file = this.#file!;
      for (const part of batch.parts) {
        let off = 0;
        while (off < part.data.length) {
          const { bytesWritten } = await file.write(part.data, off, part.data.length - off, null);
          off += bytesWritten;
        }
        this.stats.bytes += part.data.length;
      }
      this.stats.records += batch.records;
    } catch (err) {
      this.stats.errors++;
      throw err;
    }
  }

  async #writeStream(stream: Writable, batch: EncodedBatch): Promise<void> {
    let lost = 0;
    for (const part of batch.parts) {
      if (this.#broken || stream.destroyed) {
        this.#markBroken(null);
        this.stats.dropped += part.records;
        lost += part.records;
        continue;
      }
      const ok = stream.write(part.data);
      this.stats.bytes += part.data.length;
      this.stats.records += part.records;
      if (!ok) await waitDrain(stream);
    }
    if (lost > 0) throw new Error(`${this.name}: output closed (broken pipe); ${lost} flows dropped`);
  }

  async #flush(): Promise<void> {
    if (this.#stream !== null) {
      const stream = this.#stream;
      if (this.#broken || stream.destroyed) return;
      // The callback of an empty write runs once everything written before it was handed to the OS.
      await new Promise<void>((resolve) => stream.write(new Uint8Array(0), () => resolve()));
      return;
    }
    if (this.#file !== null) await this.#file.datasync();
    if (this.#direct !== null) await this.#direct.datasync();
  }

  #onStreamError(err: NodeJS.ErrnoException): void {
    if (err.code === "EPIPE" || err.code === "ERR_STREAM_DESTROYED" || err.code === "ECONNRESET") {
      this.#markBroken(err);
      return;
    }
    this.stats.errors++;
    this.#markBroken(err);
  }

  #markBroken(err: NodeJS.ErrnoException | null): void {
    if (this.#broken) return;
    this.#broken = true;
    this.#logger.error(
      { sink: this.name, code: err?.code ?? "CLOSED", err: err?.message },
      "jsonl: output closed (broken pipe); further flows to it are dropped",
    );
  }
}

function waitDrain(stream: Writable): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      stream.off("drain", done);
      stream.off("close", done);
      stream.off("error", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
    stream.on("error", done);
  });
}

/** Creates the parent directories, then runs `openIt`; an error names the path. */
async function opening<T>(path: string, openIt: () => Promise<T>): Promise<T> {
  try {
    makeDirs(dirname(path));
    return await openIt();
  } catch (err) {
    throw new Error(`jsonl sink: cannot open ${path} for appending: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/**
 * Standard output: `process.stdout` itself, never an fs stream on fd 1. Node makes fd 1 non-blocking as
 * soon as anything touches `process.stdout` (creating a worker thread does), and an fs write to a full
 * non-blocking pipe fails with EAGAIN instead of waiting: a slow reader then cost every flow as a write
 * error (seen as an intermittent test failure). On a blocking fd 1 the same fs write would park a thread
 * of the libuv pool until the reader came back. `process.stdout` is a libuv stream on a pipe (writes wait
 * for the pipe to drain, `write()` returns false: backpressure that fills the pipeline's queue) and
 * synchronous on a file or terminal.
 */
function stdoutStream(): Writable {
  return process.stdout;
}

export const jsonlSink: SinkDefinition = {
  schemes: ["jsonl"],
  optionKeys: ["directIo", "rotateInterval"],
  path(uri: string, _dataDir: string, cwd: string): string | null {
    const t = parseJsonlUri(uri);
    return t.kind === "file" ? resolve(cwd, t.path) : null;
  },
  createEncoder(uri: string, options: Readonly<Record<string, unknown>>): SinkEncoder {
    parseJsonlUri(uri);
    parseJsonlOptions(options);
    return createGoflow2LinesEncoder(uri);
  },
  async create(uri: string, ctx: SinkContext): Promise<Sink> {
    const target = parseJsonlUri(uri);
    const options = parseJsonlOptions(ctx.options);
    if (target.kind === "stdout") return JsonlSink.fromStream(uri, stdoutStream(), ctx.logger);
    return JsonlSink.openFile(uri, resolve(target.path), ctx.logger, options);
  },
};

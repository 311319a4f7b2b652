/**
 * The native UDP input, main-thread side: starts N receive workers (src/inputs/worker.ts), each binding
 * its own SO_REUSEPORT socket on every listener port, so the kernel spreads exporters over workers by
 * source address and port and one exporter's templates and data meet in one worker. Collects the workers'
 * batches (handed to `onBatch`) and stats, answers template and state queries over all workers, restarts
 * a worker that dies (with the decoder states last saved; the records its batcher held are counted as
 * lost through `onWorkerExit`), and reads the kernel's drop counters for our sockets. Refuses to start
 * when another process already holds one of the ports (`assertPortFree`).
 */

import { createSocket, type Socket } from "node:dgram";
import { lookup } from "node:dns/promises";
import { readdir, readFile, readlink } from "node:fs/promises";
import { isIP } from "node:net";
import { Worker } from "node:worker_threads";
import type { Logger } from "../core/log.ts";
import { recyclables } from "../pipeline/buffer-pool.ts";
import { compareTemplates, type TemplateInfo, type TemplateQuery } from "../protocols/decoder.ts";
import type { InterfaceCounters } from "../protocols/sflow5.ts";
import type { EncodedBatch } from "../sinks/types.ts";
import type {
  ListenerSpec,
  ListenerStatus,
  MainToWorker,
  WorkerInit,
  WorkerStats,
  WorkerToMain,
} from "./worker.ts";

export type { ListenerStatus, WorkerStats } from "./worker.ts";

export interface UdpInputOptions {
  /** Listener ports; duplicates are merged; 0 picks a free port (shared by all workers). */
  ports: Array<{ port: number; role: string }>;
  bindHost: string;
  workers: number;
  /** Everything a worker needs except its index, listeners, bind address and state. */
  worker: Omit<WorkerInit, "kind" | "index" | "generation" | "listeners" | "bindHost" | "state">;
  state: object[];
  logger: Logger;
  onBatch(batch: EncodedBatch): void;
  /** sFlow interface counters decoded by a worker. */
  onCounters?(records: InterfaceCounters[]): void;
  onStats?(stats: WorkerStats): void;
  /**
   * A worker exited unexpectedly; `lostRecords` is what its batcher held at its last stats report (the
   * records decoded since then are not known and not counted).
   */
  onWorkerExit?(worker: number, lostRecords: number): void;
  /** Restart a worker that exits unexpectedly (default true). */
  restart?: boolean;
}

export interface ListenerInfo extends ListenerStatus {
  roles: string[];
  /** Requested SO_RCVBUF (0: system default). */
  requestedBufferBytes: number;
}

interface Slot {
  index: number;
  worker: Worker | null;
  listening: boolean;
  stopping: boolean;
  restarts: number[];
  stats: WorkerStats | null;
  /** The worker's decoder state as last reported (a state request or its final state), or null. */
  state: object | null;
  /** Incremented at each spawn; sent to the worker and echoed in its stats (a restart resets counters). */
  generation: number;
  /** Called when the worker reports "stopped" (every batch it posted has been handled). */
  onStopped: (() => void) | null;
}

type StateOrTemplates = Extract<MainToWorker, { t: "request" }>["what"];

const WORKER_URL = new URL(import.meta.url.endsWith(".ts") ? "./worker.ts" : "./worker.js", import.meta.url);

/** Resolves BIND_HOST to an address (a host name is looked up once, at start). */
export async function resolveBindHost(host: string): Promise<string> {
  if (isIP(host)) return host;
  const r = await lookup(host);
  return r.address;
}

function probe(host: string): Promise<Socket> {
  const s = createSocket({ type: host.includes(":") ? "udp6" : "udp4", reusePort: true, ipv6Only: false });
  return new Promise((resolve, reject) => {
    s.once("error", reject);
    s.bind({ port: 0, address: host }, () => {
      s.off("error", reject);
      resolve(s);
    });
  });
}

/**
 * Fails with EADDRINUSE (an Error whose message names the port and whose `port` and `roles` say which)
 * when another process already holds UDP `port` on `host` or a wildcard covering it: a socket bound without
 * SO_REUSEPORT cannot share the port with any other, so this bind fails whatever the holder's options.
 * Without this check a second collector would share the port through SO_REUSEPORT and each would store a
 * fraction of the traffic (issue 11 §4). Our own workers bind after it and share the port between them.
 */
export async function assertPortFree(host: string, port: number, roles: readonly string[]): Promise<void> {
  const s = createSocket({ type: host.includes(":") ? "udp6" : "udp4", ipv6Only: false });
  await new Promise<void>((resolve, reject) => {
    s.once("error", (err: NodeJS.ErrnoException) => {
      s.close();
      if (err.code !== "EADDRINUSE") {
        reject(err);
        return;
      }
      reject(
        Object.assign(
          new Error(
            `UDP port ${port} (${roles.join(", ")}) on ${host} is already in use by another process (another collector?); stop it or choose another port`,
          ),
          { code: "EADDRINUSE", port, roles: [...roles] },
        ),
      );
    });
    s.bind({ port, address: host, exclusive: true }, () => s.close(() => resolve()));
  });
}

export class UdpInput {
  readonly #opts: UdpInputOptions;
  readonly #log: Logger;
  readonly #slots: Slot[] = [];
  #specs: ListenerSpec[] = [];
  #roles = new Map<string, string[]>();
  #bindHost = "";
  #listeners: ListenerInfo[] = [];
  #nextId = 1;
  #pending = new Map<
    number,
    { what: StateOrTemplates; remaining: number; results: unknown[]; resolve(v: unknown[]): void }
  >();
  #stopping = false;

  private constructor(opts: UdpInputOptions) {
    this.#opts = opts;
    this.#log = opts.logger;
  }

  /** Starts the workers and resolves once every worker listens on every port; rejects if one cannot. */
  static async start(opts: UdpInputOptions): Promise<UdpInput> {
    const input = new UdpInput(opts);
    await input.#start();
    return input;
  }

  get listeners(): readonly ListenerInfo[] {
    return this.#listeners;
  }

  /**
   * Hands a written batch's buffers back to the worker that encoded them (transferred: they are detached
   * here afterwards), for its encoders to reuse. Only for batches no sink references any more; a batch
   * whose worker is gone is left to the garbage collector.
   */
  recycle(batch: EncodedBatch): void {
    const w = batch.origin === undefined ? null : (this.#slots[batch.origin]?.worker ?? null);
    if (w === null) return;
    const buffers = recyclables(batch);
    if (buffers.length === 0) return;
    try {
      w.postMessage({ t: "recycle", buffers } satisfies MainToWorker, buffers);
    } catch (err) {
      // e.g. a buffer that cannot be transferred: it stays here and is collected
      this.#log.debug({ err }, "batch buffers not recycled");
    }
  }

  /** Workers currently alive and listening. */
  get workersListening(): number {
    return this.#slots.filter((s) => s.listening).length;
  }

  async #start(): Promise<void> {
    const o = this.#opts;
    this.#bindHost = await resolveBindHost(o.bindHost);
    const probes: Socket[] = [];
    try {
      const byPort = new Map<number, string[]>();
      for (const { port, role } of o.ports) {
        if (port === 0) {
          const s = await probe(this.#bindHost);
          probes.push(s);
          byPort.set(s.address().port, [role]);
        } else {
          byPort.set(port, [...(byPort.get(port) ?? []), role]);
        }
      }
      const probed = new Set(probes.map((p) => p.address().port));
      for (const [port, roles] of byPort)
        if (!probed.has(port)) await assertPortFree(this.#bindHost, port, roles);
      this.#specs = [...byPort.keys()].map((port) => ({ name: `udp:${port}`, port }));
      this.#roles = new Map([...byPort].map(([port, roles]) => [`udp:${port}`, roles]));
      for (let i = 0; i < o.workers; i++) {
        this.#slots.push({
          index: i,
          worker: null,
          listening: false,
          stopping: false,
          restarts: [],
          stats: null,
          state: null,
          generation: 0,
          onStopped: null,
        });
      }
      const first = await Promise.allSettled(this.#slots.map((s) => this.#spawn(s)));
      const failed = first.find((r) => r.status === "rejected");
      if (failed) {
        await this.stop();
        throw (failed as PromiseRejectedResult).reason;
      }
      this.#listeners = (first[0] as PromiseFulfilledResult<ListenerStatus[]>).value.map((l) => ({
        ...l,
        roles: this.#roles.get(l.name) ?? [],
        requestedBufferBytes: o.worker.udpRcvbuf,
      }));
      const capped = receiveBufferShortfall(o.worker.udpRcvbuf, this.#listeners);
      if (capped !== null) {
        const rmemMax = await readRmemMax();
        this.#log.warn(
          {
            requested: o.worker.udpRcvbuf,
            granted: capped.granted,
            listeners: capped.listeners,
            ...(rmemMax !== null ? { rmemMax } : {}),
            remedy: `sysctl -w net.core.rmem_max=${o.worker.udpRcvbuf}`,
          },
          `UDP receive buffer smaller than asked: the kernel granted ${capped.granted} bytes for ${o.worker.udpRcvbuf} requested${rmemMax !== null ? ` (net.core.rmem_max = ${rmemMax})` : ""}, so a burst may overflow it; raise the limit with \`sysctl -w net.core.rmem_max=${o.worker.udpRcvbuf}\` (persist it in /etc/sysctl.d/) and restart`,
        );
      }
    } finally {
      for (const p of probes) p.close();
    }
  }

  /**
   * The decoder states a (re)spawned worker loads: every worker's latest known state, since after a
   * restart the kernel may hash any exporter to the new socket. The states loaded at process start come
   * first (later states override them) unless every worker has reported a newer one.
   */
  #latestStates(): object[] {
    const latest = this.#slots.flatMap((s) => (s.state ? [s.state] : []));
    return latest.length === this.#slots.length ? latest : [...this.#opts.state, ...latest];
  }

  #spawn(slot: Slot): Promise<ListenerStatus[]> {
    const o = this.#opts;
    slot.generation++;
    const init: WorkerInit = {
      ...o.worker,
      kind: "clarion-udp-worker",
      index: slot.index,
      generation: slot.generation,
      listeners: this.#specs,
      bindHost: this.#bindHost,
      state: this.#latestStates(),
    };
    const w = new Worker(WORKER_URL, { workerData: init, stderr: false, stdout: false });
    slot.worker = w;
    slot.listening = false;
    return new Promise((resolve, reject) => {
      let settled = false;
      w.on("message", (m: WorkerToMain) => {
        switch (m.t) {
          case "listening":
            slot.listening = true;
            if (!settled) {
              settled = true;
              resolve(m.listeners);
            }
            break;
          case "fatal": {
            const err = Object.assign(new Error(`receive worker ${slot.index}: ${m.message}`), {
              code: m.code,
            });
            this.#log.error({ worker: slot.index, code: m.code, err: m.message }, "receive worker failed");
            if (!settled) {
              settled = true;
              reject(err);
            }
            break;
          }
          case "batch":
            m.batch.origin = slot.index;
            o.onBatch(m.batch);
            break;
          case "counters":
            o.onCounters?.(m.records);
            break;
          case "stats":
            slot.stats = m.stats;
            o.onStats?.(m.stats);
            break;
          case "reply": {
            const p = this.#pending.get(m.id);
            if (p?.what === "state" && m.data !== null && typeof m.data === "object") slot.state = m.data;
            if (p) {
              p.results.push(m.data);
              if (--p.remaining === 0) {
                this.#pending.delete(m.id);
                p.resolve(p.results);
              }
            }
            break;
          }
          case "state":
            if (m.state) slot.state = m.state;
            break;
          case "stopped":
            slot.listening = false;
            slot.onStopped?.();
            break;
        }
      });
      w.on("error", (err) => {
        this.#log.error({ err, worker: slot.index }, "receive worker crashed");
        if (!settled) {
          settled = true;
          reject(err);
        }
      });
      w.on("exit", (code) => {
        slot.listening = false;
        slot.worker = null;
        if (!settled) {
          settled = true;
          reject(new Error(`receive worker ${slot.index} exited with code ${code} before listening`));
          return;
        }
        if (slot.stopping || this.#stopping) return;
        // The batcher's records died with the worker; count what it last reported holding.
        const lost = slot.stats?.recordsPending ?? 0;
        slot.stats = null;
        this.#log.error(
          { worker: slot.index, code, lostRecords: lost },
          "receive worker exited unexpectedly",
        );
        o.onWorkerExit?.(slot.index, lost);
        this.#restart(slot);
      });
    });
  }

  #restart(slot: Slot): void {
    if (this.#opts.restart === false) return;
    const now = Date.now();
    slot.restarts = slot.restarts.filter((t) => now - t < 60_000);
    if (slot.restarts.length >= 5) {
      this.#log.error({ worker: slot.index }, "receive worker keeps failing; not restarting it");
      return;
    }
    slot.restarts.push(now);
    setTimeout(() => {
      if (this.#stopping) return;
      this.#spawn(slot).then(
        () => this.#log.info({ worker: slot.index }, "receive worker restarted"),
        (err: unknown) => this.#log.error({ err, worker: slot.index }, "receive worker restart failed"),
      );
    }, 1000).unref();
  }

  #ask(what: StateOrTemplates, query?: TemplateQuery, timeoutMs = 2000): Promise<unknown[]> {
    const live = this.#slots.filter((s) => s.worker && s.listening);
    if (live.length === 0) return Promise.resolve([]);
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const entry = { what, remaining: live.length, results: [] as unknown[], resolve };
      this.#pending.set(id, entry);
      for (const s of live) s.worker!.postMessage({ t: "request", id, what, query } satisfies MainToWorker);
      setTimeout(() => {
        if (this.#pending.delete(id)) resolve(entry.results);
      }, timeoutMs).unref();
    });
  }

  /**
   * One page of the templates of all workers (FlowDecoder.templatePage order). With one worker the page is
   * its page; with several, each answers its first offset + limit and the merge is cut to the page.
   */
  async templates(query: TemplateQuery): Promise<{ total: number; templates: TemplateInfo[] }> {
    const single = this.#slots.filter((s) => s.worker && s.listening).length <= 1;
    const ask = single ? query : { ...query, offset: 0, limit: query.offset + query.limit };
    const pages = (await this.#ask("templates", ask)).filter(
      (p): p is { total: number; templates: TemplateInfo[] } => p !== null && typeof p === "object",
    );
    const total = pages.reduce((n, p) => n + p.total, 0);
    if (single) return { total, templates: pages[0]?.templates ?? [] };
    const list = pages.flatMap((p) => p.templates).sort((a, b) => compareTemplates(a, a, b, b));
    return { total, templates: list.slice(query.offset, query.offset + query.limit) };
  }

  /**
   * Every worker's decoder state (for the state file): fresh from the live workers; for a worker that is
   * down or did not answer in time, the last state it reported. Also what a restarted worker loads.
   */
  async states(): Promise<object[]> {
    await this.#ask("state");
    return this.#slots.flatMap((s) => (s.state ? [s.state] : []));
  }

  /**
   * Terminates one worker as a crash would: it is counted and restarted like any unexpected exit. For
   * tests of that path.
   */
  async terminateWorker(index: number): Promise<void> {
    await this.#slots[index]?.worker?.terminate();
  }

  /**
   * Stops receiving: every worker closes its sockets, flushes its batcher (the last batches reach
   * `onBatch` before this resolves) and reports its final state. Returns every worker's final state (the
   * last known one for a worker that was down).
   */
  async stop(timeoutMs = 10_000): Promise<object[]> {
    this.#stopping = true;
    await Promise.all(
      this.#slots.map(async (slot) => {
        const w = slot.worker;
        if (!w) return;
        slot.stopping = true;
        const exited = new Promise<void>((r) => w.once("exit", () => r()));
        // "stopped" comes after the worker's last batches: once seen, all of them went to onBatch.
        const stopped = new Promise<void>((r) => {
          slot.onStopped = r;
        });
        w.postMessage({ t: "stop" } satisfies MainToWorker);
        const timer = setTimeout(() => {
          this.#log.error({ worker: slot.index }, "receive worker did not stop in time; terminating it");
          void w.terminate();
        }, timeoutMs);
        await Promise.race([stopped, exited]);
        await exited;
        clearTimeout(timer);
      }),
    );
    return this.#slots.flatMap((s) => (s.state ? [s.state] : []));
  }
}

/**
 * Whether the kernel granted less receive buffer than `requested` (0: the system default, never short):
 * Linux reports twice the size it accepted (half is bookkeeping), so a full grant reads 2 × requested
 * there; elsewhere the size itself. Returns the smallest grant and the listeners short of the request.
 * (Node has no SO_RCVBUFFORCE, which would let root exceed net.core.rmem_max without a native addon.)
 */
export function receiveBufferShortfall(
  requested: number,
  listeners: ReadonlyArray<{ name: string; receiveBufferBytes: number }>,
  platform: string = process.platform,
): { granted: number; listeners: string[] } | null {
  if (requested <= 0) return null;
  const full = platform === "linux" ? 2 * requested : requested;
  const short = listeners.filter((l) => l.receiveBufferBytes < full);
  if (short.length === 0) return null;
  return {
    granted: Math.min(...short.map((l) => l.receiveBufferBytes)),
    listeners: short.map((l) => l.name),
  };
}

/** net.core.rmem_max (Linux), or null where it cannot be read. */
async function readRmemMax(): Promise<number | null> {
  try {
    const n = Number((await readFile("/proc/sys/net/core/rmem_max", "utf8")).trim());
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

/** One UDP socket's line in /proc/net/udp{,6}, as far as we use it. */
export interface ProcUdpEntry {
  port: number;
  inode: number;
  rxQueue: number;
  drops: number;
}

/** Parses /proc/net/udp or /proc/net/udp6 text. */
export function parseProcNetUdp(text: string): ProcUdpEntry[] {
  const out: ProcUdpEntry[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 13) continue;
    const local = f[1]!;
    const port = Number.parseInt(local.slice(local.lastIndexOf(":") + 1), 16);
    const rx = f[4]!.split(":")[1] ?? "0";
    out.push({ port, inode: Number(f[9]), rxQueue: Number.parseInt(rx, 16), drops: Number(f[12]) });
  }
  return out;
}

/** Inodes of the sockets this process holds open (workers are threads: same fd table). */
async function ownSocketInodes(): Promise<Set<number>> {
  const inodes = new Set<number>();
  let fds: string[];
  try {
    fds = await readdir("/proc/self/fd");
  } catch {
    return inodes;
  }
  await Promise.all(
    fds.map(async (fd) => {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/self/fd/${fd}`));
        if (m) inodes.add(Number(m[1]));
      } catch {
        // closed meanwhile
      }
    }),
  );
  return inodes;
}

export interface KernelUdpCounters {
  /** Datagrams the kernel dropped (receive buffer full...) summed over our sockets on that port. */
  drops: number;
  /** Bytes waiting in our sockets' receive queues. */
  rxQueueBytes: number;
}

/**
 * Kernel counters of our UDP sockets by local port (Linux; an empty map elsewhere). Sockets are ours when
 * their inode is among this process's file descriptors; other processes' sockets on the port are ignored.
 */
export async function readKernelUdpCounters(
  ports: readonly number[],
): Promise<Map<number, KernelUdpCounters>> {
  const result = new Map<number, KernelUdpCounters>();
  const wanted = new Set(ports);
  const inodes = await ownSocketInodes();
  for (const file of ["/proc/net/udp", "/proc/net/udp6"]) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch {
      continue;
    }
    for (const e of parseProcNetUdp(text)) {
      if (!wanted.has(e.port)) continue;
      if (inodes.size > 0 && !inodes.has(e.inode)) continue;
      const c = result.get(e.port) ?? { drops: 0, rxQueueBytes: 0 };
      c.drops += e.drops;
      c.rxQueueBytes += e.rxQueue;
      result.set(e.port, c);
    }
  }
  return result;
}

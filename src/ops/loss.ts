/**
 * Loss monitor (issue 11 §2, DESIGN §2 "No loss unseen"): every way data is lost, by reason, turned from
 * the cumulative counters of their sources (receive workers, the kernel's socket counters, sink queues,
 * remote sinks) into
 * - cumulative totals per reason (JSON /metrics `dropped_by_reason`, Prometheus `clarion_collector_loss_total`),
 * - what happened in the last `recentMs` (default 5 min), for /health's reasons,
 * - a warning log line per reason at most once per `warnIntervalMs` (default 1 min) saying what was lost,
 *   where, and the remedy; losses in between are summed into the next line.
 *
 * A source's counter that falls (a restarted worker, a reopened socket) starts a new baseline: its new
 * value counts as new loss, as in src/ops/metrics.ts.
 */

/** Every loss reason, with its unit. */
export const LOSS_REASONS = {
  /** The kernel dropped datagrams: our socket's receive buffer was full (/proc/net/udp*). */
  kernel_drops: "datagrams",
  /** Export sequence numbers show flows (v5, IPFIX records, sFlow samples) that never arrived. */
  sequence_gap_flows: "flows",
  /** Export sequence numbers show datagrams (v9, sFlow) that never arrived. */
  sequence_gap_datagrams: "datagrams",
  /** Data sets dropped because their template never arrived. */
  missing_template: "data sets",
  /** A sink's queue was full: its oldest batch dropped. */
  queue_full: "flows",
  /** A sink failed to write a batch (disk, closed pipe...). */
  write_error: "flows",
  /** Batches offered to a sink already closed (at shutdown). */
  closed: "flows",
  /** A remote sink's disk spool was full: its oldest batches dropped. */
  spool_full: "flows",
  /** A remote destination rejected requests (4xx): set aside in the dead-letter file, not delivered. */
  dead_lettered: "flows",
  /** Records held by a receive worker's batcher when it died. */
  worker_exit: "flows",
  /** Records in a batch for no configured sink (a bug). */
  unrouted: "flows",
  /** A sink's encoder failed on a batch: that batch is lost for that sink. */
  encode_error: "batches",
  /** --decode-threads: a receive worker's ring to a decode thread was full; the datagram dropped. */
  decode_ring_full: "datagrams",
} as const;
export type LossReason = keyof typeof LOSS_REASONS;

const REMEDY: Record<LossReason, string> = {
  kernel_drops:
    "the socket's receive buffer overflowed: raise net.core.rmem_max and --udp-rcvbuf, or add --workers",
  sequence_gap_flows:
    "lost between the exporter and the collector: check the network path, the exporter's export buffer and rate, and kernel_drops on this host",
  sequence_gap_datagrams:
    "lost between the exporter and the collector: check the network path, the exporter's export buffer and rate, and kernel_drops on this host",
  missing_template:
    "the exporter's templates do not reach this collector: have it send templates more often (template refresh/timeout) to this port",
  queue_full: "the output is slower than the input: check its destination, or raise --queue-size",
  write_error:
    "the output cannot write: check its destination (disk space, permissions, a reader that went away)",
  closed: "batches arrived after the output closed (shutdown)",
  spool_full: "the backend has been failing for long: fix it, or raise --spool-max-bytes",
  dead_lettered: "the backend rejected requests (4xx): see the dead-letter file and the backend's logs",
  worker_exit: "a receive worker crashed: see its error in the log",
  unrouted: "a bug: please report it",
  encode_error: "an encoder failed (a bug): see the error log",
  decode_ring_full:
    "the decode threads cannot keep up with the receive worker: add cores, --workers or --decode-threads, or lighten the outputs",
};

const WHAT: Record<LossReason, string> = {
  kernel_drops: "datagrams dropped by the kernel before the collector read them",
  sequence_gap_flows: "flows missing in the exporters' sequence numbers",
  sequence_gap_datagrams: "datagrams missing in the exporters' sequence numbers",
  missing_template: "data sets dropped because their template never arrived",
  queue_full: "flows dropped: output queue full",
  write_error: "flows dropped: output write failed",
  closed: "flows dropped: output closed",
  spool_full: "flows dropped: spool full",
  dead_lettered: "flows rejected by the backend (dead-lettered)",
  worker_exit: "flows lost with a crashed receive worker",
  unrouted: "flows in a batch for no output",
  encode_error: "batches (or single records) an encoder failed on",
  decode_ring_full: "datagrams dropped: decode thread ring full",
};

interface Event {
  atMs: number;
  reason: LossReason;
  where: string;
  amount: number;
}

interface Pending {
  amount: number;
  where: Map<string, number>;
}

export interface LossMonitorOptions {
  logger: { warn(obj: object, msg: string): void };
  recentMs?: number;
  warnIntervalMs?: number;
  now?: () => number;
}

export interface RecentLoss {
  reason: LossReason;
  unit: string;
  amount: number;
  /** Where, most loss first (at most 5). */
  where: string[];
  lastMs: number;
}

/** Baselines kept (reason × where × source); beyond, the oldest is forgotten (bounded memory). */
const MAX_BASELINES = 200_000;
/** Events kept for the recent window (bounded; the oldest go first). */
const MAX_EVENTS = 10_000;

export class LossMonitor {
  readonly #log: LossMonitorOptions["logger"];
  readonly #recentMs: number;
  readonly #warnMs: number;
  readonly #now: () => number;
  readonly #last = new Map<string, number>();
  readonly #totals = new Map<LossReason, number>();
  #events: Event[] = [];
  readonly #pending = new Map<LossReason, Pending>();
  readonly #lastWarn = new Map<LossReason, number>();

  constructor(opts: LossMonitorOptions) {
    this.#log = opts.logger;
    this.#recentMs = opts.recentMs ?? 5 * 60_000;
    this.#warnMs = opts.warnIntervalMs ?? 60_000;
    this.#now = opts.now ?? Date.now;
  }

  get recentMs(): number {
    return this.#recentMs;
  }

  /**
   * The cumulative `value` of one source's counter of `reason` at `where` (an exporter, a listener, a
   * sink), shown as `label` (default `where`). `source` tells apart counters that reset on their own (a
   * worker and its generation). A value that falls starts again from 0 (the new value is new loss), or with
   * `rebase` is only a new baseline (e.g. a sum over sockets of which one closed).
   */
  observe(
    reason: LossReason,
    where: string,
    value: number,
    o: { source?: string; rebase?: boolean; label?: string } = {},
  ): void {
    const key = `${reason}|${where}|${o.source ?? ""}`;
    const last = this.#last.get(key) ?? 0;
    if (value === last) return;
    if (this.#last.size >= MAX_BASELINES && !this.#last.has(key)) {
      const oldest = this.#last.keys().next().value; // bounded: the oldest source's baseline goes
      if (oldest !== undefined) this.#last.delete(oldest);
    }
    this.#last.set(key, value);
    const delta = value > last ? value - last : o.rebase ? 0 : value;
    if (delta > 0) this.add(reason, o.label ?? where, delta);
  }

  /** `amount` lost for `reason` at `where`, now. */
  add(reason: LossReason, where: string, amount: number): void {
    if (!(amount > 0)) return;
    const now = this.#now();
    this.#totals.set(reason, (this.#totals.get(reason) ?? 0) + amount);
    this.#events.push({ atMs: now, reason, where, amount });
    if (this.#events.length > MAX_EVENTS) this.#events = this.#events.slice(-MAX_EVENTS / 2);
    let p = this.#pending.get(reason);
    if (p === undefined) {
      p = { amount: 0, where: new Map() };
      this.#pending.set(reason, p);
    }
    p.amount += amount;
    if (p.where.size < 1000 || p.where.has(where)) p.where.set(where, (p.where.get(where) ?? 0) + amount);
    this.flush();
  }

  /** Logs the pending loss of every reason whose last warning is older than the interval. */
  flush(): void {
    const now = this.#now();
    for (const [reason, p] of this.#pending) {
      const last = this.#lastWarn.get(reason);
      if (last !== undefined && now - last < this.#warnMs) continue;
      this.#pending.delete(reason);
      this.#lastWarn.set(reason, now);
      const unit = LOSS_REASONS[reason];
      const where = top(p.where, 5);
      const more = p.where.size > where.length ? ` and ${p.where.size - where.length} more` : "";
      this.#log.warn(
        {
          reason,
          lost: p.amount,
          unit,
          where,
          ...(last !== undefined ? { sinceMs: now - last } : {}),
          remedy: REMEDY[reason],
        },
        `loss: ${p.amount} ${WHAT[reason]} (${where.join(", ")}${more}); remedy: ${REMEDY[reason]}`,
      );
    }
  }

  /** Cumulative loss by reason (every reason, 0 when none). */
  totals(): Record<LossReason, number> {
    const out = {} as Record<LossReason, number>;
    for (const r of Object.keys(LOSS_REASONS) as LossReason[]) out[r] = this.#totals.get(r) ?? 0;
    return out;
  }

  /** Loss within the recent window, by reason. */
  recent(): RecentLoss[] {
    const since = this.#now() - this.#recentMs;
    if (this.#events.length > 0 && this.#events[0]!.atMs < since)
      this.#events = this.#events.filter((e) => e.atMs >= since);
    const by = new Map<LossReason, { amount: number; where: Map<string, number>; lastMs: number }>();
    for (const e of this.#events) {
      let x = by.get(e.reason);
      if (x === undefined) {
        x = { amount: 0, where: new Map(), lastMs: 0 };
        by.set(e.reason, x);
      }
      x.amount += e.amount;
      x.where.set(e.where, (x.where.get(e.where) ?? 0) + e.amount);
      x.lastMs = Math.max(x.lastMs, e.atMs);
    }
    return [...by].map(([reason, x]) => ({
      reason,
      unit: LOSS_REASONS[reason],
      amount: x.amount,
      where: top(x.where, 5),
      lastMs: x.lastMs,
    }));
  }

  /** /health's reason line for a recent loss. */
  static describe(r: RecentLoss, recentMs: number): string {
    return `loss in the last ${Math.round(recentMs / 60_000)} min (${r.reason}): ${r.amount} ${WHAT[r.reason]} (${r.where.join(", ")})`;
  }
}

function top(m: Map<string, number>, n: number): string[] {
  return [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([w]) => w);
}

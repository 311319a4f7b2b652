/**
 * Export sequence tracking (issue 11 §2, DESIGN §2 "No loss unseen"): counts what exporters sent that never
 * reached the decoder — lost in the network, in the kernel's socket buffer, or by the exporter itself — from
 * the sequence numbers in the export headers, per exporter and observation domain.
 *
 * What each protocol's sequence counts (so the unit of a gap):
 * - NetFlow v5 `flow_sequence` (header offset 16): flows seen before this datagram → missing **flows**;
 *   expected next = sequence + count. Stream: exporter, source port, engine type/id.
 * - NetFlow v9 `package_sequence` (offset 12, RFC 3954 §5.1): export packets → missing **datagrams**
 *   (a v9 datagram carries an unknown number of flows). Stream: exporter, port, source id.
 * - IPFIX sequence (offset 8, RFC 7011 §3.1): data records sent before this message → missing **flows**
 *   (data records, options records included); expected next = sequence + records in the message. A message
 *   whose record count is not known exactly (data held for a missing template, held data released, more
 *   than one message in the datagram) only resynchronizes. Stream: exporter, port, observation domain.
 * - sFlow v5 datagram `sequence_number` → missing **datagrams**, stream: exporter, agent, sub-agent; and
 *   each flow sample's `sequence_number` (formats 1 and 3) → missing **flows** (one flow per sample),
 *   stream: exporter, agent, sub-agent, source id.
 *
 * Telling an exporter restart from a gap: a restart is counted as a reset, never as loss, when the header's
 * uptime went backwards (v5, v9, sFlow), or the sequence jumped forward by more than `maxGap` or backwards
 * by more than `lateWindow` units. A sequence a little behind the expected one is a late (reordered or
 * duplicated) datagram: counted as `late`; the gap it may fill stays counted (counters only grow).
 *
 * Bounded: at most `maxStreams` streams are tracked; a new stream beyond that evicts the oldest created
 * (counted in `evicted`). The tracker knows no wire format: each registry entry's `sequence()` (netflow5.ts,
 * netflow9.ts, ipfix.ts, sflow5.ts) reads its own header after its decoder accepted the datagram and calls
 * `get()` (or `open()`) then `advance()` here, once per stream the datagram carries.
 */
import type { ProtocolName } from "../core/errors.ts";

export const SEQUENCE_UNITS = ["flows", "datagrams"] as const;
export type SequenceUnit = (typeof SEQUENCE_UNITS)[number];

export interface SequenceOptions {
  /** Streams tracked at most (default 10,000). */
  maxStreams: number;
  /** A forward jump larger than this many units is a reset, not a gap (default 1,000,000). */
  maxGap: number;
  /** A sequence at most this many units behind the expected one is late, not a reset (default 10,000). */
  lateWindow: number;
  /** Streams listed per exporter in `stats()` (the ones with most loss first; default 16). */
  streamsPerExporter: number;
}

export const DEFAULT_SEQUENCE_OPTIONS: Readonly<SequenceOptions> = {
  maxStreams: 10_000,
  maxGap: 1_000_000,
  lateWindow: 10_000,
  streamsPerExporter: 16,
};

/** Who a stream is: its exporter, protocol and scope within the exporter, and the unit of its sequence. */
export interface StreamIdentity {
  exporter: string;
  protocol: ProtocolName;
  /**
   * Its scope within the exporter, as raw values (the text is built only for stats): v5 engine type `a` /
   * id `b`; v9/IPFIX domain `a`; sFlow agent `a`, sub-agent `b`, data source `c` (-1: the datagram stream).
   */
  a: number | string;
  b: number;
  c: number;
  unit: SequenceUnit;
}

/** One sequence stream: the counter of one exporter's domain (or sFlow agent / data source). */
export interface Stream extends StreamIdentity {
  /** Next sequence expected, or -1 when unknown (resynchronize on the next datagram). */
  expected: number;
  /** Header uptime of the last datagram (ms), -1 when the protocol has none. */
  uptime: number;
  missing: number;
  resets: number;
  late: number;
  lastSequence: number;
  lastGapMs: number;
  /** `advance` of the last datagram: -1 when unknown, -2 before the first. */
  lastAdvance: number;
  /**
   * The exporter numbers each datagram after its own records (the sequence counts them too) rather than
   * before them as RFC 7011 §3.1 says of IPFIX: softflowd's IPFIX. Learned from the stream (`advance`).
   */
  after: boolean;
}

export interface SequenceStreamStats {
  protocol: ProtocolName;
  scope: string;
  unit: SequenceUnit;
  missing: number;
  resets: number;
  late: number;
  last_sequence: number;
  /** ms since the epoch of the last gap, 0 if none. */
  last_gap_ms: number;
}

export interface SequenceExporterStats {
  exporter: string;
  /** Flows (v5 flows, IPFIX data records, sFlow flow samples) the sequence numbers show missing. */
  missingFlows: number;
  /** Datagrams (v9 export packets, sFlow datagrams) the sequence numbers show missing. */
  missingDatagrams: number;
  resets: number;
  late: number;
  /** The streams of this exporter with the most loss (at most `streamsPerExporter`). */
  streams: SequenceStreamStats[];
}

export interface SequenceTotals {
  missingFlows: number;
  missingDatagrams: number;
  resets: number;
  late: number;
  streams: number;
  evicted: number;
}

const TWO32 = 4294967296;
/** A datagram whose uptime is at most this much behind the last one may be late rather than a restart. */
const LATE_UPTIME_MS = 10_000;
/** The exporter name under which sequence totals of exporters beyond the bound are summed. */
const OTHER = "other";

interface ExporterTotals {
  missingFlows: number;
  missingDatagrams: number;
  resets: number;
  late: number;
}

/** "engine 0/1", "domain 5", "agent 10.0.0.1/0", "agent 10.0.0.1/0 source 3": a stream for people. */
function scopeText(s: Stream): string {
  if (s.protocol === "netflow5") return `engine ${s.a}/${s.b}`;
  if (s.protocol === "sflow5") return `agent ${s.a}/${s.b}${s.c >= 0 ? ` source ${s.c}` : ""}`;
  return `domain ${s.a}`;
}

export class SequenceTracker {
  readonly #opts: SequenceOptions;
  readonly #streams = new Map<string, Stream>();
  /** Cumulative per exporter (never decreases, unlike the sum over streams, which eviction shrinks). */
  readonly #exporters = new Map<string, ExporterTotals>();
  readonly totals: SequenceTotals = {
    missingFlows: 0,
    missingDatagrams: 0,
    resets: 0,
    late: 0,
    streams: 0,
    evicted: 0,
  };

  constructor(opts: Partial<SequenceOptions> = {}) {
    this.#opts = { ...DEFAULT_SEQUENCE_OPTIONS, ...opts };
  }

  /** The stream under `key`, if tracked. */
  get(key: string): Stream | undefined {
    return this.#streams.get(key);
  }

  /**
   * A new stream under `key` (a protocol prefix, the exporter, the source port and the protocol's scope
   * fields: unique per stream) with the identity in `id`; at most `maxStreams` are kept, a new one beyond
   * evicting the oldest created. Callers try `get` first: `track.get(key) ?? track.open(key, {...})`
   * builds the identity only for a stream not seen before.
   */
  open(key: string, id: StreamIdentity): Stream {
    if (this.#streams.size >= this.#opts.maxStreams) {
      const oldest = this.#streams.keys().next().value;
      if (oldest !== undefined) this.#streams.delete(oldest);
      this.totals.evicted++;
    }
    const s: Stream = {
      exporter: id.exporter,
      protocol: id.protocol,
      a: id.a,
      b: id.b,
      c: id.c,
      unit: id.unit,
      expected: -1,
      uptime: -1,
      missing: 0,
      resets: 0,
      late: 0,
      lastSequence: 0,
      lastGapMs: 0,
      lastAdvance: -2,
      after: false,
    };
    this.#streams.set(key, s);
    this.totals.streams = this.#streams.size;
    return s;
  }

  /**
   * One datagram (or sFlow flow sample) of stream `s` with sequence `seq`. `advance`: units it accounts
   * for (next expected = seq + advance), -1 when unknown (resynchronize on the next one). `uptime`: the
   * header's uptime in ms, -1 when the protocol has none.
   */
  advance(s: Stream, seq: number, advance: number, uptime: number, nowMs: number): void {
    const raw = seq;
    if (advance > 0) {
      // Which way the exporter numbers (Stream.after). A stream whose first datagram's sequence equals its
      // own count numbers after it (one that numbers before starts at 0). Later, a datagram that misses the
      // expected sequence but fits the other way exactly (its sequence minus its count is the previous
      // datagram's, or, numbering after, the previous one's plus that one's count) switches the stream, and
      // is not counted as a gap. With equal counts both ways agree, so only varying counts ever switch.
      const before = (seq - advance + TWO32) % TWO32; // records before this datagram, numbering after
      if (s.lastAdvance === -2) s.after = seq === advance;
      else if (s.expected >= 0 && s.lastAdvance >= 0 && advance !== s.lastAdvance) {
        if (!s.after && seq !== s.expected && before === s.lastSequence) {
          s.after = true;
          s.expected = before;
        } else if (s.after && before !== s.expected && seq === (s.lastSequence + s.lastAdvance) % TWO32) {
          s.after = false;
          s.expected = seq;
        }
      }
      if (s.after) seq = before;
    }
    const t = this.totals;
    const exporter = s.exporter;
    const unit = s.unit;
    // Uptime gone backwards (not a 32-bit wrap): a restarted exporter, unless the datagram is merely late
    // (its sequence a little behind and its uptime at most LATE_UPTIME_MS behind).
    const back =
      uptime >= 0 && s.uptime >= 0 && uptime < s.uptime && s.uptime - uptime < TWO32 / 2
        ? s.uptime - uptime
        : 0;
    if (s.expected >= 0 && seq !== s.expected) {
      const ahead = (seq - s.expected + TWO32) % TWO32;
      const late = ahead >= TWO32 / 2 && TWO32 - ahead <= this.#opts.lateWindow;
      if (late && back <= LATE_UPTIME_MS) {
        // late or duplicated: the stream's expectation stays where it is
        s.late++;
        t.late++;
        this.#exporterTotals(exporter).late++;
        return;
      }
      if (back === 0 && ahead < TWO32 / 2 && ahead <= this.#opts.maxGap) {
        s.missing += ahead;
        s.lastGapMs = nowMs;
        if (unit === "flows") t.missingFlows += ahead;
        else t.missingDatagrams += ahead;
        this.#exporter(exporter, unit, ahead, 0);
      } else {
        s.resets++;
        t.resets++;
        this.#exporter(exporter, unit, 0, 1);
      }
    } else if (back > LATE_UPTIME_MS || (back > 0 && s.expected < 0)) {
      s.resets++;
      t.resets++;
      this.#exporter(exporter, unit, 0, 1);
    }
    s.uptime = uptime;
    s.lastSequence = raw;
    s.lastAdvance = advance;
    s.expected = advance >= 0 ? (seq + advance) % TWO32 : -1;
  }

  #exporterTotals(exporter: string): ExporterTotals {
    let e = this.#exporters.get(exporter);
    if (e === undefined) {
      const name = this.#exporters.size >= this.#opts.maxStreams ? OTHER : exporter;
      e = this.#exporters.get(name);
      if (e === undefined) {
        e = { missingFlows: 0, missingDatagrams: 0, resets: 0, late: 0 };
        this.#exporters.set(name, e);
      }
    }
    return e;
  }

  #exporter(exporter: string, unit: SequenceUnit, missing: number, resets: number): void {
    const e = this.#exporterTotals(exporter);
    if (unit === "flows") e.missingFlows += missing;
    else e.missingDatagrams += missing;
    e.resets += resets;
  }

  /**
   * Per exporter with a gap, reset or late datagram: cumulative totals, and the streams with most loss
   * (at most `streamsPerExporter`, of those still tracked).
   */
  stats(): SequenceExporterStats[] {
    const streams = new Map<string, Stream[]>();
    for (const s of this.#streams.values()) {
      if (s.missing === 0 && s.resets === 0 && s.late === 0) continue;
      const list = streams.get(s.exporter);
      if (list) list.push(s);
      else streams.set(s.exporter, [s]);
    }
    const out: SequenceExporterStats[] = [];
    for (const [exporter, e] of this.#exporters) {
      const list = streams.get(exporter) ?? [];
      list.sort((a, b) => b.missing - a.missing || b.resets - a.resets);
      out.push({
        exporter,
        ...e,
        streams: list.slice(0, this.#opts.streamsPerExporter).map((s) => ({
          protocol: s.protocol,
          scope: scopeText(s),
          unit: s.unit,
          missing: s.missing,
          resets: s.resets,
          late: s.late,
          last_sequence: s.lastSequence,
          last_gap_ms: s.lastGapMs,
        })),
      });
    }
    return out;
  }
}

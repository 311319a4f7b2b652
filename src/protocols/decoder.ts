/**
 * The decoder front (DESIGN §2): detects the protocol of a datagram by its version field, counts it per
 * exporter, and hands it to the protocol's decoder with the one DecodeContext (context.ts) that carries
 * the options, the counters and the per-exporter state (state/: templates, options data, held sets).
 * Synchronous; throws only DecodeError (after counting it).
 */
import type { Datagram } from "../core/datagram.ts";
import { DecodeError, type ProtocolName } from "../core/errors.ts";
import type { RecordHandler } from "../core/flow.ts";
import { DEFAULT_DECODER_OPTIONS, DecodeContext, type DecoderOptions } from "./context.ts";
import { DECODERS, PROTOCOL_NAMES } from "./index.ts";
import { SequenceTracker } from "./sequence.ts";
import { HeldBudget } from "./state/held.ts";
import { type HeldSetKey, MissingTemplates } from "./state/missing-templates.ts";
import { OptionStore, type SamplerInfo } from "./state/options.ts";
import { type DecoderState, loadState, saveState } from "./state/persist.ts";
import { type Session, Sessions } from "./state/sessions.ts";
import { TemplateStore } from "./state/templates.ts";
import { type DecoderStats, type ExporterStats, MAX_SAMPLERS_SHOWN } from "./stats.ts";
import type { Template } from "./template.ts";

export { DEFAULT_DECODER_OPTIONS, type DecoderOptions } from "./context.ts";
export type { DecoderState } from "./state/persist.ts";
export type { DecoderStats, ExporterStats } from "./stats.ts";

/** The handler of a state-only copy: it emits nothing. */
const NO_FLOWS: RecordHandler = { flow: () => {} };

/** Sets `into` to exactly the entries of `from` (in place: other objects hold `into`). */
function restore(into: Record<string, number | undefined>, from: Record<string, number | undefined>): void {
  for (const k of Object.keys(into)) if (!(k in from)) delete into[k];
  Object.assign(into, from);
}

export function emptyStats(): DecoderStats {
  const byProtocol = {} as Record<ProtocolName, number>;
  for (const name of PROTOCOL_NAMES) byProtocol[name] = 0;
  return {
    datagrams: 0,
    bytes: 0,
    byProtocol,
    flows: 0,
    optionsRecords: 0,
    counterRecords: 0,
    errors: {},
    templatesLearned: 0,
    templatesWithdrawn: 0,
    templatesExpired: 0,
    templatesRefused: {},
    templatesEvicted: 0,
    templateFallbacks: 0,
    optionEntriesRefused: 0,
    heldSets: 0,
    heldDecoded: 0,
    missingTemplateDrops: 0,
    unknownElements: 0,
    sflowSkippedRecords: 0,
    sflowMalformedSamples: 0,
  };
}

export interface TemplateInfo {
  exporter: string;
  port: number;
  version: 9 | 10;
  domain: number;
  id: number;
  options: boolean;
  scopeCount: number;
  fields: { pen: number; id: number; name: string; length: number }[];
  learnedMs: number;
  refreshedMs: number;
  lastUsedMs: number;
}

export interface FlowDecoderApi {
  readonly stats: DecoderStats;
  decode(dg: Datagram, handler: RecordHandler): void;
  tick(nowMs: number, handler: RecordHandler): void;
  exporters(): ExporterStats[];
}

/** Which templates `templatePage` returns. */
export interface TemplateQuery {
  exporter?: string;
  offset: number;
  limit: number;
}

/** The order of /templates: exporter (as text), port, version, domain, id. */
export function compareTemplates(
  a: { exporter: string; port: number },
  at: { version: number; domain: number; id: number },
  b: { exporter: string; port: number },
  bt: { version: number; domain: number; id: number },
): number {
  return (
    (a.exporter < b.exporter ? -1 : a.exporter > b.exporter ? 1 : 0) ||
    a.port - b.port ||
    at.version - bt.version ||
    at.domain - bt.domain ||
    at.id - bt.id
  );
}

function templateInfo(s: Session, t: Template): TemplateInfo {
  return {
    exporter: s.exporter,
    port: s.port,
    version: t.version,
    domain: t.domain,
    id: t.id,
    options: t.options,
    scopeCount: t.scopeCount,
    fields: t.fields.map((f) => ({ pen: f.pen, id: f.id, name: f.name, length: f.length })),
    learnedMs: t.learnedMs,
    refreshedMs: t.refreshedMs,
    lastUsedMs: t.lastUsedMs,
  };
}

/** The exporter name under which datagrams beyond `maxExporters` distinct sources are counted. */
export const OTHER = "other";

function newExporter(name: string): ExporterStats {
  return {
    exporter: name,
    datagrams: 0,
    bytes: 0,
    flows: 0,
    errors: 0,
    samplingRate: 0,
    lastSeenMs: 0,
    protocols: {},
    templatesRefused: 0,
    templatesEvicted: 0,
    dictionaries: { samplers: 0, interfaces: 0, vrfs: 0, rds: 0, applications: 0 },
    samplers: [],
  };
}

export class FlowDecoder implements FlowDecoderApi {
  readonly stats: DecoderStats = emptyStats();
  readonly #opts: DecoderOptions;
  readonly #exporters = new Map<string, ExporterStats>();
  /** The one context, reused for every datagram. */
  readonly #ctx: DecodeContext;
  /** Export sequence gaps and resets per exporter and domain (issue 11, src/protocols/sequence.ts). */
  readonly sequences = new SequenceTracker();
  /** False: `decode` leaves sequence tracking to its caller (the decode threads' receive worker). */
  readonly #track: boolean;
  /**
   * The last datagram `decode` accepted: its registry index (DECODERS), its data records and whether that
   * is its own exact count — what `sequence()` gets; `decoder` is -1 after a datagram that threw.
   */
  readonly last = { decoder: -1, records: 0, exact: true };

  constructor(opts: Partial<DecoderOptions> = {}, track = true) {
    this.#opts = { ...DEFAULT_DECODER_OPTIONS, ...opts };
    this.#track = track;
    const sessions = new Sessions(
      this.#opts.templateScope !== "exporter",
      new HeldBudget(this.#opts.holdMaxBytes),
    );
    const missing = new MissingTemplates();
    const state = {
      sessions,
      templates: new TemplateStore(
        sessions,
        this.stats,
        this.#opts,
        (name) => this.#exporters.get(name),
        missing,
      ),
      options: new OptionStore(this.#opts.samplingKeyByPort),
      missing,
    };
    this.#ctx = new DecodeContext(this.#opts, this.stats, state, newExporter(""));
  }

  get options(): Readonly<DecoderOptions> {
    return this.#opts;
  }

  /** Data sets dropped for a missing template, per exporter and template id (issue 11). */
  get missingTemplates(): MissingTemplates {
    return this.#ctx.state.missing;
  }

  decode(dg: Datagram, handler: RecordHandler): void {
    const b = dg.payload;
    const st = this.stats;
    st.datagrams++;
    st.bytes += b.length;
    let ex = this.#exporters.get(dg.exporter);
    if (ex === undefined && this.#exporters.size >= this.#opts.maxExporters) ex = this.#exporters.get(OTHER);
    if (ex === undefined) {
      ex = newExporter(this.#exporters.size >= this.#opts.maxExporters ? OTHER : dg.exporter);
      this.#exporters.set(ex.exporter, ex);
    }
    ex.datagrams++;
    ex.bytes += b.length;
    ex.lastSeenMs = dg.receivedAtMs;
    const ctx = this.#ctx;
    ctx.datagram = dg;
    ctx.exporter = ex;
    const flowsBefore = st.flows;
    const optionsBefore = st.optionsRecords;
    const heldBefore = st.heldSets + st.heldDecoded + st.missingTemplateDrops;
    let protocol: ProtocolName = "unknown";
    const last = this.last;
    last.decoder = -1;
    try {
      let decoder: (typeof DECODERS)[number] | undefined;
      let index = -1;
      for (let i = 0; i < DECODERS.length; i++) {
        if (DECODERS[i]!.matches(b)) {
          decoder = DECODERS[i]!;
          index = i;
          break;
        }
      }
      if (decoder === undefined) {
        st.byProtocol.unknown++;
        throw new DecodeError(
          "BAD_VERSION",
          b.length < 2
            ? "datagram shorter than a version field"
            : `version ${(b[0]! << 8) | b[1]!} is not NetFlow v5/v9, IPFIX or sFlow v5`,
          "unknown",
          dg.exporter,
          0,
        );
      }
      protocol = decoder.name;
      st.byProtocol[protocol]++;
      decoder.decode(ctx, handler);
      // Sequence tracking: this datagram's data records, exact unless held data was added or released.
      const records = st.flows - flowsBefore + st.optionsRecords - optionsBefore;
      const exact = st.heldSets + st.heldDecoded + st.missingTemplateDrops === heldBefore;
      if (this.#track) decoder.sequence(dg, this.sequences, records, exact);
      last.decoder = index;
      last.records = records;
      last.exact = exact;
    } catch (e) {
      ex.errors++;
      if (e instanceof DecodeError) {
        st.errors[e.code] = (st.errors[e.code] ?? 0) + 1;
        throw e;
      }
      // Anything else is a bug in a decoder: report it under its own code with its message, never crash.
      st.errors.INTERNAL = (st.errors.INTERNAL ?? 0) + 1;
      throw new DecodeError(
        "INTERNAL",
        `internal decoder error: ${(e as Error)?.message ?? e}`,
        protocol,
        dg.exporter,
        0,
      );
    } finally {
      ex.flows += st.flows - flowsBefore;
      ex.protocols[protocol] = (ex.protocols[protocol] ?? 0) + 1;
    }
  }

  /**
   * A copy of a datagram another decoder instance decodes as usual (decode threads, src/inputs/spread.ts):
   * its templates, withdrawals and options data change this decoder's state, nothing else — no flow is
   * emitted, no data held, no counter changed, no error thrown. Held data its templates release is decoded
   * with `handler` and counted as usual (it is this decoder's own data).
   */
  decodeStateOnly(dg: Datagram, handler: RecordHandler): void {
    const st = this.stats;
    const saved = { ...st, byProtocol: { ...st.byProtocol }, errors: { ...st.errors } };
    const refused = { ...st.templatesRefused };
    const ex = this.#exporterOf(dg.exporter);
    const exSaved = ex === undefined ? undefined : { ...ex, protocols: { ...ex.protocols } };
    const ctx = this.#ctx;
    // What releasing held data counts (it is this decoder's own data) survives the restore below.
    const kept: Record<string, number> = {};
    const keptErrors: Record<string, number> = {};
    const counts = st as unknown as Record<string, unknown>;
    ctx.releaseHeld = (run) => {
      const before = { ...counts };
      const errorsBefore: Record<string, number | undefined> = { ...st.errors };
      try {
        run(handler);
      } catch (e) {
        const code = e instanceof DecodeError ? e.code : "INTERNAL";
        keptErrors[code] = (keptErrors[code] ?? 0) + 1;
      }
      for (const [k, v] of Object.entries(counts))
        if (typeof v === "number") kept[k] = (kept[k] ?? 0) + v - (before[k] as number);
      for (const [k, v] of Object.entries(st.errors))
        keptErrors[k] = (keptErrors[k] ?? 0) + (v ?? 0) - (errorsBefore[k] ?? 0);
    };
    ctx.stateOnly = true;
    try {
      this.decode(dg, NO_FLOWS);
    } catch {
      // counted by the copy that is decoded as usual
    } finally {
      ctx.stateOnly = false;
      ctx.releaseHeld = null;
      restore(st.byProtocol, saved.byProtocol);
      restore(st.errors, saved.errors);
      restore(st.templatesRefused, refused);
      Object.assign(st, {
        ...saved,
        byProtocol: st.byProtocol,
        errors: st.errors,
        templatesRefused: st.templatesRefused,
      });
      if (exSaved === undefined) {
        const made = this.#exporterOf(dg.exporter);
        if (made !== undefined) this.#exporters.delete(made.exporter);
      } else {
        const protocols = ex!.protocols;
        restore(protocols, exSaved.protocols);
        const { samplingRate, dictionaries, samplers } = ex!;
        Object.assign(ex!, exSaved, { protocols, samplingRate, dictionaries, samplers });
      }
    }
    for (const [k, v] of Object.entries(kept)) if (v !== 0) counts[k] = (counts[k] as number) + v;
    const errors = st.errors as Record<string, number>;
    for (const [k, v] of Object.entries(keptErrors)) if (v !== 0) errors[k] = (errors[k] ?? 0) + v;
    // held data is this exporter's (its own port's, or another port's of the same address)
    const owner = this.#exporterOf(dg.exporter);
    if (owner !== undefined && kept.flows !== undefined) owner.flows += kept.flows;
  }

  /** The counters `decode` uses for datagrams of `exporter`, if it has any yet. */
  #exporterOf(exporter: string): ExporterStats | undefined {
    const ex = this.#exporters.get(exporter);
    if (ex === undefined && this.#exporters.size >= this.#opts.maxExporters)
      return this.#exporters.get(OTHER);
    return ex;
  }

  /** Expire templates and held data; held sets whose time is up are counted as missing-template drops. */
  tick(nowMs: number, handler: RecordHandler): void {
    void handler;
    this.#ctx.state.templates.expire(nowMs, this.#opts.templateTimeoutMs, this.#opts.holdMaxMs);
  }

  exporters(): ExporterStats[] {
    const sizes = new Map<string, ExporterStats["dictionaries"]>();
    const samplers = new Map<string, SamplerInfo[]>();
    for (const o of this.#ctx.state.options.values()) {
      if (o.samplers.size > 0) {
        let rows = samplers.get(o.exporter);
        if (rows === undefined) {
          rows = [];
          samplers.set(o.exporter, rows);
        }
        for (const row of o.samplers.values()) {
          if (rows.length >= MAX_SAMPLERS_SHOWN) break;
          rows.push({ ...row, parameters: { ...row.parameters } });
        }
      }
      let d = sizes.get(o.exporter);
      if (d === undefined) {
        d = { samplers: 0, interfaces: 0, vrfs: 0, rds: 0, applications: 0 };
        sizes.set(o.exporter, d);
      }
      d.samplers += o.bySampler.size + o.bySequence.size;
      d.interfaces += o.ifNames.size;
      d.vrfs += o.vrfNames.size;
      d.rds += o.rds.size;
      d.applications += o.appNames.size;
    }
    return [...this.#exporters.values()].map((e) => ({
      ...e,
      protocols: { ...e.protocols },
      dictionaries: sizes.get(e.exporter) ?? { ...e.dictionaries },
      samplers: samplers.get(e.exporter) ?? [],
    }));
  }

  templates(): TemplateInfo[] {
    const out: TemplateInfo[] = [];
    for (const s of this.#ctx.state.sessions.values())
      for (const t of s.templates.values()) out.push(templateInfo(s, t));
    return out;
  }

  /** Every held data set's exporter, version, domain and template id. */
  *heldSets(): Generator<HeldSetKey> {
    for (const s of this.#ctx.state.sessions.values())
      for (const hs of s.held.values())
        yield { exporter: s.exporter, version: hs.h.version, domain: hs.h.domain, id: hs.setId };
  }

  /**
   * One page of the templates, ordered by exporter, port, version, domain and id, optionally of one
   * exporter: `offset` skipped, at most `limit` returned, `total` the number that match. Only the page's
   * templates are rendered, so a large store costs one sort of references, not one object per template.
   */
  templatePage(q: TemplateQuery): { total: number; templates: TemplateInfo[] } {
    const refs: { s: Session; t: Template }[] = [];
    for (const s of this.#ctx.state.sessions.values()) {
      if (q.exporter !== undefined && s.exporter !== q.exporter) continue;
      for (const t of s.templates.values()) refs.push({ s, t });
    }
    refs.sort((a, b) => compareTemplates(a.s, a.t, b.s, b.t));
    const page = refs.slice(q.offset, q.offset + q.limit);
    return { total: refs.length, templates: page.map((r) => templateInfo(r.s, r.t)) };
  }

  /** How many templates are held (without rendering them). */
  templateCount(): number {
    let n = 0;
    for (const s of this.#ctx.state.sessions.values()) n += s.templates.size;
    return n;
  }

  /** Held data sets waiting for a template, over all sessions. */
  heldCount(): number {
    let n = 0;
    for (const s of this.#ctx.state.sessions.values()) n += s.held.length;
    return n;
  }

  saveState(): DecoderState {
    const { templates, options } = this.#ctx.state;
    return saveState(templates, options, this.#opts.now());
  }

  /** Restore saved state; templates past their expiry are skipped. Throws on a file that is not ours. */
  loadState(state: unknown): { templates: number; sampling: number } {
    const { templates, options } = this.#ctx.state;
    return loadState(state, templates, options, this.#opts.now(), this.#opts.templateTimeoutMs);
  }
}

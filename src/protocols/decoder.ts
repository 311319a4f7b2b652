/**
 * The decoder front (DESIGN §2): detects the protocol of a datagram by its version field and keeps the
 * per-exporter state — templates (NetFlow v9, IPFIX), sampling rates and interface names from options
 * data, data held while its template is missing. Synchronous; throws only DecodeError (after counting it).
 *
 * Keying (DESIGN §4): templates by transport session (exporter IP and source port) + observation domain +
 * template id, per version; sampling rates and interface names by exporter IP + domain (without the port,
 * since devices send options from another port). Both are configurable.
 */
import type { Datagram } from "../core/datagram.ts";
import { DecodeError, type DecodeErrorCode, type ProtocolName } from "../core/errors.ts";
import { type DecodedElement, FlowRecord, type OptionsRecord, type RecordHandler } from "../core/flow.ts";
import { decodeIpfix } from "./ipfix.ts";
import { decodeNetflow5, type V5Context } from "./netflow5.ts";
import { decodeNetflow9, type MessageHeader, type SetConsumer, v9ScopeField } from "./netflow9.ts";
import { decodeSflow5, type SflowContext } from "./sflow5.ts";
import {
  compileRecordDecoder,
  F,
  makeField,
  RecordOverrun,
  recordLengths,
  renderField,
  Scratch,
  type Template,
  type TemplateField,
  walkRecord,
} from "./template.ts";
import type { ElementValue } from "./wire.ts";

export interface DecoderOptions {
  /** Template expiry when neither refreshed nor used, ms (default 30 min). */
  templateTimeoutMs: number;
  /** Data sets held while their template is missing: at most this many per exporter session... */
  holdMaxSets: number;
  /** ...for at most this long, ms... */
  holdMaxMs: number;
  /**
   * ...and at most this many bytes over all sessions (default 4 MiB). Held sets are copies: without a byte
   * bound, garbage behind valid v9/IPFIX headers from many source ports held up to 256 × 64 KB per session
   * (issue 12 item 9: +330 MB in a minute). Beyond it a set is not held: counted as a missing-template drop.
   */
  holdMaxBytes: number;
  /** Template key includes the exporter's source port (RFC 7011 §8). Default true. */
  templateKeyByPort: boolean;
  /** Sampling-rate key includes the source port. Default false (GoFlow2 #206). */
  samplingKeyByPort: boolean;
  /** Multiply bytes/packets by the sampling rate. Default false. */
  scaleBySampling: boolean;
  /** Fill FlowRecord.elements / OptionsRecord.elements with every decoded element. Default false. */
  collectElements: boolean;
  /** switch_id: the exporter IP when true (default), else "". */
  switchIdFromIp: boolean;
  /**
   * Exporters tracked one by one in `exporters()`; datagrams from further addresses (scanners, spoofed
   * sources) are counted together under "other", so per-exporter state stays bounded.
   */
  maxExporters: number;
  /** Clock, ms since the epoch (tests). */
  now: () => number;
}

export const DEFAULT_DECODER_OPTIONS: Readonly<DecoderOptions> = {
  templateTimeoutMs: 30 * 60_000,
  holdMaxSets: 256,
  holdMaxMs: 5_000,
  holdMaxBytes: 4 * 1024 * 1024,
  maxExporters: 10_000,
  templateKeyByPort: true,
  samplingKeyByPort: false,
  scaleBySampling: false,
  collectElements: false,
  switchIdFromIp: true,
  now: Date.now,
};

export interface ExporterStats {
  exporter: string;
  datagrams: number;
  bytes: number;
  flows: number;
  errors: number;
  samplingRate: number;
  lastSeenMs: number;
  protocols: Partial<Record<ProtocolName, number>>;
}

export interface DecoderStats {
  datagrams: number;
  bytes: number;
  byProtocol: Record<ProtocolName, number>;
  flows: number;
  optionsRecords: number;
  counterRecords: number;
  errors: Partial<Record<DecodeErrorCode, number>>;
  templatesLearned: number;
  templatesWithdrawn: number;
  templatesExpired: number;
  /** Data sets held waiting for their template; decoded later; dropped when the hold expired/overflowed. */
  heldSets: number;
  heldDecoded: number;
  missingTemplateDrops: number;
  /** Template fields whose element we have no definition for (kept as hex under `<pen>.<id>`). */
  unknownElements: number;
  /** sFlow: flow/counter records of formats we skip, counter samples skipped. */
  sflowSkippedRecords: number;
}

export function emptyStats(): DecoderStats {
  return {
    datagrams: 0,
    bytes: 0,
    byProtocol: { netflow5: 0, netflow9: 0, ipfix: 0, sflow5: 0, unknown: 0 },
    flows: 0,
    optionsRecords: 0,
    counterRecords: 0,
    errors: {},
    templatesLearned: 0,
    templatesWithdrawn: 0,
    templatesExpired: 0,
    heldSets: 0,
    heldDecoded: 0,
    missingTemplateDrops: 0,
    unknownElements: 0,
    sflowSkippedRecords: 0,
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

/** What `saveState()` returns and `loadState()` takes (JSON-safe). */
export interface DecoderState {
  format: "clarion-collector-decoder-state";
  version: 1;
  savedAtMs: number;
  templates: {
    exporter: string;
    port: number;
    version: 9 | 10;
    domain: number;
    id: number;
    options: boolean;
    scopeCount: number;
    fields: [number, number, number][];
    learnedMs: number;
    refreshedMs: number;
  }[];
  sampling: {
    exporter: string;
    port: number;
    domain: number;
    rate: number;
    bySampler: [number, number][];
    ifNames: [number, string][];
    sysInitMs: number;
  }[];
}

export interface FlowDecoderApi {
  readonly stats: DecoderStats;
  decode(dg: Datagram, handler: RecordHandler): void;
  tick(nowMs: number, handler: RecordHandler): void;
  exporters(): ExporterStats[];
}

/** Per exporter + domain: what options data taught us. */
class OptionState {
  readonly exporter: string;
  readonly port: number;
  readonly domain: number;
  /** Rate learned without a sampler/selector id (applies to every flow of the domain). */
  rate = 0;
  /** The last rate learned in any way: the fallback for flows naming no known sampler. */
  anyRate = 0;
  readonly bySampler = new Map<number, number>();
  readonly ifNames = new Map<number, string>();
  sysInitMs = 0;
  constructor(exporter: string, port: number, domain: number) {
    this.exporter = exporter;
    this.port = port;
    this.domain = domain;
  }
}

interface HeldSet {
  key: number;
  setId: number;
  data: Buffer;
  h: MessageHeader;
  receivedMs: number;
  heldAtMs: number;
}

/** One transport session (exporter + port, or exporter alone) of one version. */
class Session {
  readonly exporter: string;
  readonly port: number;
  readonly version: 9 | 10;
  /** domain * 65536 + template id → template */
  readonly templates = new Map<number, Template>();
  held: HeldSet[] = [];
  constructor(exporter: string, port: number, version: 9 | 10) {
    this.exporter = exporter;
    this.port = port;
    this.version = version;
  }
}

const tkey = (domain: number, id: number): number => domain * 65536 + id;

/** The exporter name under which datagrams beyond `maxExporters` distinct sources are counted. */
export const OTHER = "other";

function sameLayout(a: readonly TemplateField[], b: readonly TemplateField[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.pen !== y.pen || x.id !== y.id || x.length !== y.length) return false;
  }
  return true;
}

export class FlowDecoder implements FlowDecoderApi, SetConsumer {
  readonly stats: DecoderStats = emptyStats();
  readonly #opts: DecoderOptions;
  readonly #sessions = new Map<string, Session>();
  /** Bytes of held data sets over all sessions (bounded by holdMaxBytes). */
  #heldBytes = 0;
  readonly #optionStates = new Map<string, OptionState>();
  readonly #exporters = new Map<string, ExporterStats>();
  readonly #scratch = new Scratch();
  /** Context of the datagram being decoded (set by decode(), read by the set callbacks). */
  #dg: Datagram | null = null;
  #handler: RecordHandler | null = null;
  #exporterStats: ExporterStats | null = null;
  readonly #v5ctx: V5Context;
  readonly #sflowCtx: SflowContext;

  constructor(opts: Partial<DecoderOptions> = {}) {
    this.#opts = { ...DEFAULT_DECODER_OPTIONS, ...opts };
    this.#sflowCtx = {
      stats: this.stats,
      collectElements: this.#opts.collectElements,
      scaleBySampling: this.#opts.scaleBySampling,
      switchIdFromIp: this.#opts.switchIdFromIp,
    };
    this.#v5ctx = {
      collectElements: this.#opts.collectElements,
      scaleBySampling: this.#opts.scaleBySampling,
      switchIdFromIp: this.#opts.switchIdFromIp,
      samplingRate: (exporter: string): number =>
        this.#optionStates.get(this.#optionKey(exporter, 0, 0))?.rate ?? 0,
      onHeaderSampling: (_exporter: string, rate: number): void => {
        if (rate > 0 && this.#exporterStats) this.#exporterStats.samplingRate = rate;
      },
    };
  }

  get options(): Readonly<DecoderOptions> {
    return this.#opts;
  }

  decode(dg: Datagram, handler: RecordHandler): void {
    const b = dg.payload;
    const st = this.stats;
    st.datagrams++;
    st.bytes += b.length;
    let ex = this.#exporters.get(dg.exporter);
    if (ex === undefined && this.#exporters.size >= this.#opts.maxExporters) ex = this.#exporters.get(OTHER);
    if (ex === undefined) {
      const name = this.#exporters.size >= this.#opts.maxExporters ? OTHER : dg.exporter;
      ex = {
        exporter: name,
        datagrams: 0,
        bytes: 0,
        flows: 0,
        errors: 0,
        samplingRate: 0,
        lastSeenMs: 0,
        protocols: {},
      };
      this.#exporters.set(name, ex);
    }
    ex.datagrams++;
    ex.bytes += b.length;
    ex.lastSeenMs = dg.receivedAtMs;
    this.#dg = dg;
    this.#handler = handler;
    this.#exporterStats = ex;
    const flowsBefore = st.flows;
    let protocol: ProtocolName = "unknown";
    try {
      const v16 = b.length >= 2 ? (b[0]! << 8) | b[1]! : -1;
      if (v16 === 5) {
        protocol = "netflow5";
        st.byProtocol.netflow5++;
        const n = decodeNetflow5(dg, this.#v5ctx, handler);
        st.flows += n;
      } else if (v16 === 9) {
        protocol = "netflow9";
        st.byProtocol.netflow9++;
        decodeNetflow9(dg, this, handler);
      } else if (v16 === 10) {
        protocol = "ipfix";
        st.byProtocol.ipfix++;
        decodeIpfix(dg, this, handler);
      } else if (v16 === 0 && b.length >= 4 && b[2] === 0 && b[3] === 5) {
        protocol = "sflow5";
        st.byProtocol.sflow5++;
        decodeSflow5(dg, this.#sflowCtx, handler); // counts its flows in st.flows as it emits them
      } else {
        st.byProtocol.unknown++;
        throw new DecodeError(
          "BAD_VERSION",
          b.length < 2
            ? "datagram shorter than a version field"
            : `version ${v16} is not NetFlow v5/v9, IPFIX or sFlow v5`,
          "unknown",
          dg.exporter,
          0,
        );
      }
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
      this.#dg = null;
      this.#handler = null;
      this.#exporterStats = null;
    }
  }

  #optionKey(exporter: string, port: number, domain: number): string {
    return this.#opts.samplingKeyByPort ? `${exporter}|${port}|${domain}` : `${exporter}|${domain}`;
  }

  #optionState(exporter: string, port: number, domain: number, create: boolean): OptionState | undefined {
    const key = this.#optionKey(exporter, port, domain);
    let s = this.#optionStates.get(key);
    if (s === undefined && create) {
      s = new OptionState(exporter, this.#opts.samplingKeyByPort ? port : 0, domain);
      this.#optionStates.set(key, s);
    }
    return s;
  }

  #session(version: 9 | 10, exporter: string, port: number, create: boolean): Session | undefined {
    const p = this.#opts.templateKeyByPort ? port : 0;
    const key = `${version}|${exporter}|${p}`;
    let s = this.#sessions.get(key);
    if (s === undefined && create) {
      s = new Session(exporter, p, version);
      this.#sessions.set(key, s);
    }
    return s;
  }

  // ---- SetConsumer (called by the v9 / IPFIX parsers while decode() runs) ----

  template(
    h: MessageHeader,
    id: number,
    fields: TemplateField[],
    options: boolean,
    scopeCount: number,
  ): void {
    const dg = this.#dg!;
    this.#learn(h.version, dg.exporter, dg.port, h.domain, id, fields, options, scopeCount, dg.receivedAtMs);
    // Release data that waited for this template.
    const session = this.#session(h.version, dg.exporter, dg.port, false);
    if (session && session.held.length > 0) this.#releaseHeld(session, tkey(h.domain, id));
  }

  #learn(
    version: 9 | 10,
    exporter: string,
    port: number,
    domain: number,
    id: number,
    fields: TemplateField[],
    options: boolean,
    scopeCount: number,
    nowMs: number,
  ): Template {
    const session = this.#session(version, exporter, port, true)!;
    const key = tkey(domain, id);
    const old = session.templates.get(key);
    if (old && old.options === options && old.scopeCount === scopeCount && sameLayout(old.fields, fields)) {
      old.refreshedMs = nowMs;
      return old;
    }
    for (const f of fields) if (f.type === undefined) this.stats.unknownElements++;
    const lengths = recordLengths(fields);
    const t: Template = {
      version,
      id,
      domain,
      options,
      scopeCount,
      fields,
      fixedLength: lengths.fixed,
      minLength: lengths.min,
      decode: options ? null : compileRecordDecoder(fields),
      learnedMs: nowMs,
      refreshedMs: nowMs,
      lastUsedMs: nowMs,
    };
    session.templates.set(key, t);
    this.stats.templatesLearned++;
    return t;
  }

  withdraw(h: MessageHeader, id: number, setId: number): void {
    const dg = this.#dg!;
    const session = this.#session(h.version, dg.exporter, dg.port, false);
    if (!session) return;
    if (id === setId) {
      // all templates (set 2) or all options templates (set 3) of the domain
      for (const [key, t] of session.templates) {
        if (t.domain === h.domain && t.options === (setId === 3)) {
          session.templates.delete(key);
          this.stats.templatesWithdrawn++;
        }
      }
    } else if (session.templates.delete(tkey(h.domain, id))) {
      this.stats.templatesWithdrawn++;
    }
  }

  data(
    h: MessageHeader,
    setId: number,
    b: Uint8Array,
    start: number,
    end: number,
    handler: RecordHandler,
  ): void {
    const dg = this.#dg!;
    const session = this.#session(h.version, dg.exporter, dg.port, false);
    const key = tkey(h.domain, setId);
    const t = session?.templates.get(key);
    if (t === undefined) {
      this.#hold(h, setId, b, start, end, dg);
      return;
    }
    this.#decodeSet(t, h, b, start, end, dg.exporter, dg.port, dg.receivedAtMs, handler);
  }

  #hold(h: MessageHeader, setId: number, b: Uint8Array, start: number, end: number, dg: Datagram): void {
    const session = this.#session(h.version, dg.exporter, dg.port, true)!;
    const st = this.stats;
    if (session.held.length >= this.#opts.holdMaxSets) {
      // bounded: the oldest held set makes room and is counted as a missing-template drop
      this.#heldBytes -= session.held.shift()?.data.length ?? 0;
      st.missingTemplateDrops++;
    }
    if (
      this.#opts.holdMaxSets <= 0 ||
      this.#opts.holdMaxMs <= 0 ||
      this.#heldBytes + (end - start) > this.#opts.holdMaxBytes
    ) {
      st.missingTemplateDrops++;
      return;
    }
    this.#heldBytes += end - start;
    session.held.push({
      key: tkey(h.domain, setId),
      setId,
      data: Buffer.from(b.subarray(start, end)), // a copy: the datagram's buffer is not ours to keep
      h: { ...h },
      receivedMs: dg.receivedAtMs,
      heldAtMs: this.#opts.now(),
    });
    st.heldSets++;
  }

  #releaseHeld(session: Session, key: number): void {
    const handler = this.#handler;
    const t = session.templates.get(key);
    if (!t || !handler) return;
    const keep: HeldSet[] = [];
    const ready: HeldSet[] = [];
    for (const hs of session.held) (hs.key === key ? ready : keep).push(hs);
    if (ready.length === 0) return;
    session.held = keep;
    for (const hs of ready) this.#heldBytes -= hs.data.length;
    for (const hs of ready) {
      this.stats.heldDecoded++;
      this.#decodeSet(
        t,
        hs.h,
        hs.data,
        0,
        hs.data.length,
        session.exporter,
        session.port,
        hs.receivedMs,
        handler,
      );
    }
  }

  #decodeSet(
    t: Template,
    h: MessageHeader,
    b: Uint8Array,
    start: number,
    end: number,
    exporter: string,
    port: number,
    receivedMs: number,
    handler: RecordHandler,
  ): void {
    t.lastUsedMs = receivedMs;
    if (t.minLength === 0) return; // a template of zero-length fields describes no bytes: nothing to read
    const protocol = h.version === 9 ? "netflow9" : "ipfix";
    if (t.options) {
      this.#decodeOptionsSet(t, h, b, start, end, exporter, port, receivedMs, handler, protocol);
      return;
    }
    const decode = t.decode!;
    const opts = this.#opts;
    const s = this.#scratch;
    const st = this.stats;
    const type = h.version === 9 ? "NETFLOW_V9" : "IPFIX";
    const switchId = opts.switchIdFromIp ? exporter : "";
    const os = this.#optionState(exporter, port, h.domain, false);
    const fixed = t.fixedLength;
    let o = start;
    let n = 0;
    while (o + t.minLength <= end) {
      const r = new FlowRecord();
      r.type = type;
      r.time_received_ms = receivedMs;
      r.sequence_num = h.sequence;
      r.sampler_address = exporter;
      r.switch_id = switchId;
      r.observation_domain_id = h.domain;
      r.template_id = t.id;
      const recStart = o;
      if (fixed >= 0) {
        o = decode(b, o, end, r, s);
      } else {
        try {
          o = decode(b, o, end, r, s);
        } catch (e) {
          if (!(e instanceof RecordOverrun)) throw e;
          if (allZero(b, recStart, end)) break; // padding
          throw new DecodeError(
            "BAD_RECORD",
            `record of template ${t.id} overruns its set (variable-length field)`,
            protocol,
            exporter,
            e.offset,
          );
        }
      }
      this.#finish(r, s, h, os);
      if (opts.collectElements) r.elements = this.#elements(t, b, recStart, end);
      n++;
      handler.flow(r);
    }
    st.flows += n;
  }

  #finish(r: FlowRecord, s: Scratch, h: MessageHeader, os: OptionState | undefined): void {
    const m = s.m;
    if (m !== 0) {
      // Times, most precise absolute form first (DESIGN §4).
      if (m & (F.S_MS | F.S_S | F.S_NTP | F.S_DUS | F.S_UP))
        r.time_flow_start_ms = this.#time(m, s, h, os, true);
      if (m & (F.E_MS | F.E_S | F.E_NTP | F.E_DUS | F.E_UP))
        r.time_flow_end_ms = this.#time(m, s, h, os, false);
      if (r.etype === 0) {
        if (m & F.IPV) r.etype = s.ipv === 6 ? 0x86dd : s.ipv === 4 ? 0x0800 : 0;
        else if (m & F.V6) r.etype = 0x86dd;
        else if (m & F.V4) r.etype = 0x0800;
      }
    }
    if (os !== undefined) {
      let rate = os.rate || os.anyRate;
      if (m & F.SAMPLER) rate = os.bySampler.get(s.sampler) ?? rate;
      r.sampling_rate = rate;
      if (os.ifNames.size > 0) {
        r.in_if_name = os.ifNames.get(r.in_if) ?? "";
        r.out_if_name = os.ifNames.get(r.out_if) ?? "";
      }
      if (this.#opts.scaleBySampling && rate > 1) {
        r.bytes = scale(r.bytes, rate);
        r.packets = scale(r.packets, rate);
      }
    }
  }

  #time(m: number, s: Scratch, h: MessageHeader, os: OptionState | undefined, start: boolean): number {
    if (start) {
      if (m & F.S_MS) return s.sMs;
      if (m & F.S_NTP) return s.sNtp;
      if (m & F.S_S) return s.sS * 1000;
      if (m & F.S_DUS) return h.exportMs - s.sDus / 1000;
      return this.#uptimeTime(s.sUp, m, s, h, os);
    }
    if (m & F.E_MS) return s.eMs;
    if (m & F.E_NTP) return s.eNtp;
    if (m & F.E_S) return s.eS * 1000;
    if (m & F.E_DUS) return h.exportMs - s.eDus / 1000;
    return this.#uptimeTime(s.eUp, m, s, h, os);
  }

  /** sysUptime-relative times: v9 against the header (32-bit wrap); IPFIX against systemInitTimeMilliseconds. */
  #uptimeTime(value: number, m: number, s: Scratch, h: MessageHeader, os: OptionState | undefined): number {
    if (h.uptimeMs >= 0) return h.exportMs - ((h.uptimeMs - value) >>> 0);
    const init = m & F.INIT ? s.init : (os?.sysInitMs ?? 0);
    return init > 0 ? init + value : 0;
  }

  #elements(t: Template, b: Uint8Array, o: number, end: number): DecodedElement[] {
    const out: DecodedElement[] = [];
    walkRecord(t.fields, b, o, end, (f, _i, p, len) => {
      out.push({ pen: f.pen, id: f.id, name: f.name, value: jsonSafe(renderField(f, b, p, len)) });
    });
    return out;
  }

  #decodeOptionsSet(
    t: Template,
    h: MessageHeader,
    b: Uint8Array,
    start: number,
    end: number,
    exporter: string,
    port: number,
    receivedMs: number,
    handler: RecordHandler,
    protocol: "netflow9" | "ipfix",
  ): void {
    let o = start;
    const collect = this.#opts.collectElements;
    while (o + t.minLength <= end) {
      const scope: Record<string, ElementValue> = {};
      const values: Record<string, ElementValue> = {};
      const elements: DecodedElement[] | null = collect ? [] : null;
      const numeric = new Map<number, number>(); // IANA id (or v9 scope type + 100000) → value
      const recStart = o;
      const next = walkRecord(t.fields, b, o, end, (f, i, p, len) => {
        const v = renderField(f, b, p, len);
        const isScope = i < t.scopeCount;
        (isScope ? scope : values)[f.name] = v;
        elements?.push({ pen: f.pen, id: f.id, name: f.name, value: jsonSafe(v) });
        if (f.pen === 0 && len >= 1 && len <= 8) {
          const key = isScope && h.version === 9 ? 100000 + f.id : f.id;
          const n = typeof v === "bigint" ? Number(v) : typeof v === "number" ? v : Number.NaN;
          if (!Number.isNaN(n)) numeric.set(key, n);
        }
      });
      if (next < 0) {
        if (allZero(b, recStart, end)) break;
        throw new DecodeError(
          "BAD_RECORD",
          `options record of template ${t.id} overruns its set`,
          protocol,
          exporter,
          o,
        );
      }
      o = next;
      this.#applyOptions(h, exporter, port, numeric, scope, values);
      this.stats.optionsRecords++;
      const rec: OptionsRecord = {
        type: h.version === 9 ? "NETFLOW_V9" : "IPFIX",
        exporter,
        time_received_ms: receivedMs,
        observation_domain_id: h.domain,
        template_id: t.id,
        scope,
        values,
        elements,
      };
      handler.options?.(rec);
    }
  }

  /** Sampling rates (IEs 34/35, 50, 305/306), interface names (82/83), systemInitTimeMilliseconds (160). */
  #applyOptions(
    h: MessageHeader,
    exporter: string,
    port: number,
    n: Map<number, number>,
    scope: Record<string, ElementValue>,
    values: Record<string, ElementValue>,
  ): void {
    let rate = 0;
    if (n.has(305)) {
      const interval = n.get(305)!;
      const space = n.get(306) ?? 0;
      if (interval > 0) rate = (interval + space) / interval;
    } else if (n.has(34)) {
      rate = n.get(34)!;
    } else if (n.has(50)) {
      rate = n.get(50)!;
    }
    const ifName =
      pickString(values, scope, "interfaceName") ?? pickString(values, scope, "interfaceDescription");
    const sysInit = n.get(160) ?? 0;
    if (rate <= 0 && ifName === undefined && sysInit <= 0) return;
    const os = this.#optionState(exporter, port, h.domain, true)!;
    if (rate > 0) {
      const sampler = n.get(48) ?? n.get(302); // samplerId, selectorId
      if (sampler !== undefined) os.bySampler.set(sampler, rate);
      else os.rate = rate;
      os.anyRate = rate;
      const ex = this.#exporters.get(exporter);
      if (ex) ex.samplingRate = rate;
    }
    if (ifName !== undefined) {
      const idx = n.get(10) ?? n.get(14) ?? n.get(100000 + 2) ?? n.get(252) ?? n.get(253);
      if (idx !== undefined) os.ifNames.set(idx, ifName);
    }
    if (sysInit > 0) os.sysInitMs = sysInit;
  }

  /** Expire templates and held data; held sets whose time is up are counted as missing-template drops. */
  tick(nowMs: number, handler: RecordHandler): void {
    void handler;
    const timeout = this.#opts.templateTimeoutMs;
    for (const [skey, session] of this.#sessions) {
      for (const [key, t] of session.templates) {
        if (nowMs - Math.max(t.refreshedMs, t.lastUsedMs) > timeout) {
          session.templates.delete(key);
          this.stats.templatesExpired++;
        }
      }
      if (session.held.length > 0) {
        const keep = session.held.filter((hs) => nowMs - hs.heldAtMs <= this.#opts.holdMaxMs);
        this.stats.missingTemplateDrops += session.held.length - keep.length;
        for (const hs of session.held) this.#heldBytes -= hs.data.length;
        for (const hs of keep) this.#heldBytes += hs.data.length;
        session.held = keep;
      }
      if (session.templates.size === 0 && session.held.length === 0) this.#sessions.delete(skey);
    }
  }

  exporters(): ExporterStats[] {
    return [...this.#exporters.values()].map((e) => ({ ...e, protocols: { ...e.protocols } }));
  }

  templates(): TemplateInfo[] {
    const out: TemplateInfo[] = [];
    for (const s of this.#sessions.values()) {
      for (const t of s.templates.values()) {
        out.push({
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
        });
      }
    }
    return out;
  }

  /** Held data sets waiting for a template, over all sessions. */
  heldCount(): number {
    let n = 0;
    for (const s of this.#sessions.values()) n += s.held.length;
    return n;
  }

  saveState(): DecoderState {
    const templates: DecoderState["templates"] = [];
    for (const s of this.#sessions.values()) {
      for (const t of s.templates.values()) {
        templates.push({
          exporter: s.exporter,
          port: s.port,
          version: t.version,
          domain: t.domain,
          id: t.id,
          options: t.options,
          scopeCount: t.scopeCount,
          fields: t.fields.map((f) => [f.pen, f.id, f.length]),
          learnedMs: t.learnedMs,
          refreshedMs: Math.max(t.refreshedMs, t.lastUsedMs),
        });
      }
    }
    const sampling: DecoderState["sampling"] = [];
    for (const o of this.#optionStates.values()) {
      sampling.push({
        exporter: o.exporter,
        port: o.port,
        domain: o.domain,
        rate: o.rate,
        bySampler: [...o.bySampler],
        ifNames: [...o.ifNames],
        sysInitMs: o.sysInitMs,
      });
    }
    return {
      format: "clarion-collector-decoder-state",
      version: 1,
      savedAtMs: this.#opts.now(),
      templates,
      sampling,
    };
  }

  /** Restore saved state; templates past their expiry are skipped. Throws on a file that is not ours. */
  loadState(state: unknown): { templates: number; sampling: number } {
    const st = state as Partial<DecoderState> | null;
    if (st?.format !== "clarion-collector-decoder-state" || st.version !== 1) {
      throw new Error("not a clarion-collector decoder state (format/version mismatch)");
    }
    const now = this.#opts.now();
    let nt = 0;
    for (const t of st.templates ?? []) {
      if (now - t.refreshedMs > this.#opts.templateTimeoutMs) continue;
      const v9 = t.version === 9;
      const fields = t.fields.map(([pen, id, len], i) =>
        v9 && t.options && i < t.scopeCount ? v9ScopeField(id, len) : makeField(pen, id, len, v9),
      );
      const tpl = this.#learn(
        t.version,
        t.exporter,
        t.port,
        t.domain,
        t.id,
        fields,
        t.options,
        t.scopeCount,
        t.learnedMs,
      );
      tpl.refreshedMs = t.refreshedMs;
      tpl.lastUsedMs = t.refreshedMs;
      nt++;
    }
    let ns = 0;
    for (const s of st.sampling ?? []) {
      const o = this.#optionState(s.exporter, s.port, s.domain, true)!;
      o.rate = s.rate;
      for (const [k, v] of s.bySampler) o.bySampler.set(k, v);
      o.anyRate = s.rate || (s.bySampler[0]?.[1] ?? 0);
      for (const [k, v] of s.ifNames) o.ifNames.set(k, v);
      o.sysInitMs = s.sysInitMs;
      ns++;
    }
    return { templates: nt, sampling: ns };
  }
}

function allZero(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}

function scale(v: number | bigint, rate: number): number | bigint {
  if (typeof v === "bigint") return v * BigInt(Math.round(rate));
  const r = v * rate;
  return Number.isSafeInteger(r) || !Number.isInteger(rate) ? r : BigInt(v) * BigInt(rate);
}

function pickString(
  a: Record<string, ElementValue>,
  b: Record<string, ElementValue>,
  name: string,
): string | undefined {
  const v = a[name] ?? b[name];
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** Element values for JSON: bigint → decimal string. */
function jsonSafe(v: ElementValue): number | string | boolean {
  return typeof v === "bigint" ? v.toString() : v;
}

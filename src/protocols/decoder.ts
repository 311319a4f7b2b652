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
import { DecodeError, type ProtocolName } from "../core/errors.ts";
import { type DecodedElement, FlowRecord, type OptionsRecord, type RecordHandler } from "../core/flow.ts";
import { decodeIpfix } from "./ipfix.ts";
import { decodeNetflow5, type V5Context } from "./netflow5.ts";
import { decodeNetflow9, type MessageHeader, type SetConsumer } from "./netflow9.ts";
import { decodeSflow5, type SflowContext } from "./sflow5.ts";
import { type OptionState, OptionStore } from "./state/options.ts";
import { type DecoderState, loadState, saveState } from "./state/persist.ts";
import { type Session, Sessions, templateKey } from "./state/sessions.ts";
import { TemplateStore } from "./state/templates.ts";
import { type DecoderStats, type ExporterStats, emptyStats } from "./stats.ts";
import {
  F,
  RecordOverrun,
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
  /** ...for at most this long, ms. */
  holdMaxMs: number;
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
  maxExporters: 10_000,
  templateKeyByPort: true,
  samplingKeyByPort: false,
  scaleBySampling: false,
  collectElements: false,
  switchIdFromIp: true,
  now: Date.now,
};

export type { DecoderState } from "./state/persist.ts";
export { type DecoderStats, type ExporterStats, emptyStats } from "./stats.ts";

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

/** The exporter name under which datagrams beyond `maxExporters` distinct sources are counted. */
export const OTHER = "other";

export class FlowDecoder implements FlowDecoderApi, SetConsumer {
  readonly stats: DecoderStats = emptyStats();
  readonly #opts: DecoderOptions;
  readonly #sessions: Sessions;
  readonly #templates: TemplateStore;
  readonly #optionStates: OptionStore;
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
    this.#sessions = new Sessions(this.#opts.templateKeyByPort);
    this.#templates = new TemplateStore(this.#sessions, this.stats);
    this.#optionStates = new OptionStore(this.#opts.samplingKeyByPort);
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
      samplingRate: (exporter: string): number => this.#optionStates.get(exporter, 0, 0)?.rate ?? 0,
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

  // ---- SetConsumer (called by the v9 / IPFIX parsers while decode() runs) ----

  template(
    h: MessageHeader,
    id: number,
    fields: TemplateField[],
    options: boolean,
    scopeCount: number,
  ): void {
    const dg = this.#dg!;
    const session = this.#sessions.open(h.version, dg.exporter, dg.port);
    this.#templates.learn(session, h.domain, id, fields, options, scopeCount, dg.receivedAtMs);
    // Release data that waited for this template.
    if (session.held.length > 0) this.#releaseHeld(session, templateKey(h.domain, id));
  }

  withdraw(h: MessageHeader, id: number, setId: number): void {
    const dg = this.#dg!;
    const session = this.#sessions.get(h.version, dg.exporter, dg.port);
    if (session) this.#templates.withdraw(session, h.domain, id, setId);
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
    const session = this.#sessions.get(h.version, dg.exporter, dg.port);
    const t = this.#templates.get(session, h.domain, setId);
    if (t === undefined) {
      this.#hold(h, setId, b, start, end, dg);
      return;
    }
    this.#decodeSet(t, h, b, start, end, dg.exporter, dg.port, dg.receivedAtMs, handler);
  }

  #hold(h: MessageHeader, setId: number, b: Uint8Array, start: number, end: number, dg: Datagram): void {
    const session = this.#sessions.open(h.version, dg.exporter, dg.port);
    const st = this.stats;
    const dropped = session.held.hold(
      {
        key: templateKey(h.domain, setId),
        setId,
        data: Buffer.from(b.subarray(start, end)), // a copy: the datagram's buffer is not ours to keep
        h: { ...h },
        receivedMs: dg.receivedAtMs,
        heldAtMs: this.#opts.now(),
      },
      this.#opts.holdMaxSets,
      this.#opts.holdMaxMs,
    );
    st.missingTemplateDrops += dropped;
    if (this.#opts.holdMaxSets > 0 && this.#opts.holdMaxMs > 0) st.heldSets++;
  }

  #releaseHeld(session: Session, key: number): void {
    const handler = this.#handler;
    const t = session.templates.get(key);
    if (!t || !handler) return;
    for (const hs of session.held.take(key)) {
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
    const os = this.#optionStates.get(exporter, port, h.domain);
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
    const os = this.#optionStates.open(exporter, port, h.domain);
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
    this.#templates.expire(nowMs, this.#opts.templateTimeoutMs, this.#opts.holdMaxMs);
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
    return saveState(this.#templates, this.#optionStates, this.#opts.now());
  }

  /** Restore saved state; templates past their expiry are skipped. Throws on a file that is not ours. */
  loadState(state: unknown): { templates: number; sampling: number } {
    return loadState(
      state,
      this.#templates,
      this.#optionStates,
      this.#opts.now(),
      this.#opts.templateTimeoutMs,
    );
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

/**
 * NetFlow v9 and IPFIX sets, after their parsers (netflow9.ts, ipfix.ts) found them: templates learned and
 * withdrawn in the template store, data sets decoded by their template's compiled record decoder (or held
 * until the template arrives), time normalisation, and options data turned into sampling rates (per sampler,
 * selector, PSAMP selection sequence or domain, with the sampler table /exporters shows), interface names,
 * the VRF / RD / application dictionaries and the exporter's init time (state/options.ts). Each flow gets
 * the most specific rate (its own 34/50, its selection sequence's, its sampler's, the domain's), then the
 * static sampling map's entry for its exporter, domain, in_if and sampler (state/sampling-map.ts).
 *
 * Keying (DESIGN §4): templates by transport session (exporter IP and source port) + observation domain +
 * template id, per version; sampling rates and interface names by exporter IP + domain (without the port,
 * since devices send options from another port). Both are configurable (state/sessions.ts, options.ts).
 * With templateScope "fallback" (default), a session that has no template of its own in the domain
 * decodes a data set with the most recent template of that id from another source port of the address
 * when the set is whole records of it, and such sets held before that template came are released with it.
 *
 * A state-only copy (DecodeContext.stateOnly, --decode-threads) learns templates and decodes options data
 * only: other data sets are skipped, nothing is held, and the data a template releases is decoded through
 * `ctx.releaseHeld` (FlowDecoder.decodeStateOnly: the real handler, counters kept).
 */
import { DecodeError } from "../../core/errors.ts";
import { type DecodedElement, FlowRecord, type OptionsRecord, type RecordHandler } from "../../core/flow.ts";
import type { DecodeContext } from "../context.ts";
import {
  MAX_SAMPLER_ROWS,
  MAX_SEQUENCE_SELECTORS,
  type OptionState,
  type SamplerInfo,
  sequenceRate,
  setBounded,
} from "../state/options.ts";
import { announcedRate, SELECTOR, samplingParameters } from "../state/sampling.ts";
import { effectiveRate, type StaticRates, staticRate } from "../state/sampling-map.ts";
import { type Session, templateKey } from "../state/sessions.ts";
import {
  F,
  RecordOverrun,
  renderField,
  type Scratch,
  type Template,
  type TemplateField,
  walkRecord,
} from "../template.ts";
import { type ElementValue, icmpFromDstPort } from "../wire.ts";
import type { MessageHeader } from "./header.ts";

/** A template (set 2/0) or options template (set 3/1) record: learn it, then decode the data that waited. */
export function learnTemplate(
  ctx: DecodeContext,
  h: MessageHeader,
  id: number,
  fields: TemplateField[],
  options: boolean,
  scopeCount: number,
  emit: RecordHandler,
): void {
  const dg = ctx.datagram;
  const session = ctx.state.templates.openSession(h.version, dg.exporter, dg.port);
  if (session === undefined) return;
  const learned = ctx.state.templates.learn(
    session,
    h.domain,
    id,
    fields,
    options,
    scopeCount,
    dg.receivedAtMs,
  );
  if (learned === null) return;
  const key = templateKey(h.domain, id);
  const t = learned.template;
  if (ctx.releaseHeld !== null) ctx.releaseHeld((e) => release(ctx, session, h, key, t, dg.exporter, e));
  else release(ctx, session, h, key, t, dg.exporter, emit);
}

/** The data held for a template just learned: its own session's, and other ports' in fallback scope. */
function release(
  ctx: DecodeContext,
  session: Session,
  h: MessageHeader,
  key: number,
  t: Template,
  exporter: string,
  emit: RecordHandler,
): void {
  if (session.held.length > 0) releaseHeld(ctx, session, key, emit);
  // fallback: data that other ports of the exporter (without templates of their own) held for this id
  if (ctx.opts.templateScope === "fallback") {
    for (const other of ctx.state.sessions.ofExporter(h.version, exporter)) {
      if (other === session || other.held.length === 0 || hasDomainTemplates(other, h.domain)) continue;
      for (const hs of other.held.take(key, (x) => fits(t, x.data, 0, x.data.length))) {
        ctx.stats.heldDecoded++;
        ctx.stats.templateFallbacks++;
        decodeSet(ctx, session, t, hs.h, hs.data, 0, hs.data.length, hs.receivedMs, emit);
      }
    }
  }
}

/** A withdrawal (field count 0): one template, or all of a kind when `id` equals `setId`. */
export function withdrawTemplate(ctx: DecodeContext, h: MessageHeader, id: number, setId: number): void {
  const dg = ctx.datagram;
  const session = ctx.state.sessions.get(h.version, dg.exporter, dg.port);
  if (session) ctx.state.templates.withdraw(session, h.domain, id, setId);
}

/** A data set (id ≥ 256) in bytes start..end of `b`: decoded now, or held until its template comes. */
export function dataSet(
  ctx: DecodeContext,
  h: MessageHeader,
  setId: number,
  b: Uint8Array,
  start: number,
  end: number,
  emit: RecordHandler,
): void {
  const dg = ctx.datagram;
  const session = ctx.state.sessions.get(h.version, dg.exporter, dg.port);
  const t = ctx.state.templates.get(session, h.domain, setId);
  if (session !== undefined && t !== undefined) {
    if (!ctx.stateOnly || t.options) decodeSet(ctx, session, t, h, b, start, end, dg.receivedAtMs, emit);
    return;
  }
  if (ctx.opts.templateScope === "fallback" && !hasDomainTemplates(session, h.domain)) {
    const other = ctx.state.sessions.fromOtherPort(h.version, dg.exporter, dg.port, h.domain, setId);
    if (other !== undefined && fits(other.template, b, start, end)) {
      ctx.stats.templateFallbacks++;
      if (!ctx.stateOnly || other.template.options)
        decodeSet(ctx, other.session, other.template, h, b, start, end, dg.receivedAtMs, emit);
      return;
    }
  }
  if (!ctx.stateOnly) hold(ctx, h, setId, b, start, end);
}

/**
 * A session with templates of its own in the domain is its own exporter (two exporters on one host, each
 * with its ids): it never borrows another port's template.
 */
function hasDomainTemplates(session: Session | undefined, domain: number): boolean {
  if (session === undefined) return false;
  for (const t of session.templates.values()) if (t.domain === domain) return true;
  return false;
}

/** Whether the set's bytes are whole records of `t` (plus padding shorter than 4 bytes or all zero). */
function fits(t: Template, b: Uint8Array, start: number, end: number): boolean {
  const len = end - start;
  if (t.minLength === 0 || len < t.minLength) return false;
  if (t.fixedLength > 0) return len % t.fixedLength < 4;
  let o = start;
  while (o + t.minLength <= end) {
    const next = walkRecord(t.fields, b, o, end, () => {});
    if (next < 0) return allZero(b, o, end);
    o = next;
  }
  return end - o < 4 || allZero(b, o, end);
}

function hold(
  ctx: DecodeContext,
  h: MessageHeader,
  setId: number,
  b: Uint8Array,
  start: number,
  end: number,
): void {
  const dg = ctx.datagram;
  const opts = ctx.opts;
  const session = ctx.state.templates.openSession(h.version, dg.exporter, dg.port);
  if (session === undefined) {
    ctx.stats.missingTemplateDrops++; // no session to hold it in (too many sessions): counted there too
    return;
  }
  ctx.stats.missingTemplateDrops += session.held.hold(
    {
      key: templateKey(h.domain, setId),
      setId,
      data: Buffer.from(b.subarray(start, end)), // a copy: the datagram's buffer is not ours to keep
      h: { ...h },
      receivedMs: dg.receivedAtMs,
      heldAtMs: opts.now(),
    },
    opts.holdMaxSets,
    opts.holdMaxMs,
    (d) => ctx.state.missing.dropped(dg.exporter, d.h.version, d.h.domain, d.setId),
  );
  if (opts.holdMaxSets > 0 && opts.holdMaxMs > 0) ctx.stats.heldSets++;
}

function releaseHeld(ctx: DecodeContext, session: Session, key: number, emit: RecordHandler): void {
  const t = session.templates.get(key);
  if (t === undefined) return;
  for (const hs of session.held.take(key)) {
    ctx.stats.heldDecoded++;
    decodeSet(ctx, session, t, hs.h, hs.data, 0, hs.data.length, hs.receivedMs, emit);
  }
}

/**
 * Decodes the records of one data set with its template. `session` is where the set came from (for the
 * options state and the exporter name); `receivedMs` is when (a held set keeps its own time).
 */
function decodeSet(
  ctx: DecodeContext,
  session: Session,
  t: Template,
  h: MessageHeader,
  b: Uint8Array,
  start: number,
  end: number,
  receivedMs: number,
  emit: RecordHandler,
): void {
  const exporter = session.exporter;
  t.lastUsedMs = receivedMs;
  if (t.minLength === 0) return; // a template of zero-length fields describes no bytes: nothing to read
  const protocol = h.version === 9 ? "netflow9" : "ipfix";
  if (t.options) {
    decodeOptionsSet(ctx, session, t, h, b, start, end, receivedMs, emit);
    return;
  }
  const decode = t.decode!;
  const opts = ctx.opts;
  const s = ctx.scratch;
  const st = ctx.stats;
  const type = h.version === 9 ? "NETFLOW_V9" : "IPFIX";
  const switchId = opts.switchIdFromIp ? exporter : "";
  const os = ctx.state.options.get(exporter, session.port, h.domain);
  const mapped = ctx.samplingMap?.lookup(exporter, h.domain) ?? null;
  const fixed = t.fixedLength;
  const icmpFromPort = !t.hasIcmp;
  const ownAppName = t.hasAppName === true;
  const scratch = emit.scratch; // one record refilled per flow (the handler copies), else one each
  let o = start;
  let n = 0;
  while (o + t.minLength <= end) {
    const r = scratch !== undefined ? scratch.clear() : new FlowRecord();
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
    finish(r, s, h, os, mapped, opts.scaleBySampling);
    if (ownAppName) appName(r);
    if (icmpFromPort) icmpFromDstPort(r);
    if (opts.collectElements) r.elements = elements(t, b, recStart, end);
    n++;
    emit.flow(r);
  }
  st.flows += n;
}

function finish(
  r: FlowRecord,
  s: Scratch,
  h: MessageHeader,
  os: OptionState | undefined,
  mapped: StaticRates | null,
  scaleBySampling: boolean,
): void {
  const m = s.m;
  if (m !== 0) {
    // Times, most precise absolute form first (DESIGN §4).
    if (m & (F.S_MS | F.S_S | F.S_NTP | F.S_DUS | F.S_UP)) r.time_flow_start_ms = time(m, s, h, os, true);
    if (m & (F.E_MS | F.E_S | F.E_NTP | F.E_DUS | F.E_UP)) r.time_flow_end_ms = time(m, s, h, os, false);
    if (r.etype === 0) {
      if (m & F.IPV) r.etype = s.ipv === 6 ? 0x86dd : s.ipv === 4 ? 0x0800 : 0;
      else if (m & F.V6) r.etype = 0x86dd;
      else if (m & F.V4) r.etype = 0x0800;
    }
  }
  let rate = 0;
  if (os !== undefined) {
    rate = os.rate || os.anyRate;
    if (m & F.SAMPLER) rate = os.bySampler.get(s.sampler) ?? rate;
    if (m & F.SEQUENCE) rate = sequenceRate(os, s.sequence) || rate; // the whole chain of selectors
    if (os.ifNames.size > 0) {
      r.in_if_name = os.ifNames.get(r.in_if) ?? "";
      r.out_if_name = os.ifNames.get(r.out_if) ?? "";
    }
    if (os.dictionaries) dictionaries(r, os);
  }
  if (m & F.RATE && s.rate > 0) rate = s.rate; // the record's own rate is the most specific
  if (mapped !== null)
    rate = effectiveRate(rate, staticRate(mapped, r.in_if, m & F.SAMPLER ? s.sampler : -1));
  r.sampling_rate = rate;
  if (scaleBySampling && rate > 1) {
    r.bytes = scale(r.bytes, rate);
    r.packets = scale(r.packets, rate);
  }
}

/** VRF names and route distinguishers by the flow's VRF ids, the application name by its applicationId. */
function dictionaries(r: FlowRecord, os: OptionState): void {
  const inVrf = r.in_vrf_id;
  const outVrf = r.out_vrf_id;
  if (inVrf !== null) r.in_vrf_name = os.vrfNames.get(inVrf) ?? "";
  if (outVrf !== null) r.out_vrf_name = os.vrfNames.get(outVrf) ?? "";
  const rd =
    (inVrf !== null ? os.rds.get(inVrf) : undefined) ?? (outVrf !== null ? os.rds.get(outVrf) : undefined);
  if (rd !== undefined) r.mpls_vpn_rd = rd;
  const app = r.extra?.applicationId;
  if (typeof app === "string" && os.appNames.size > 0) r.application_name = os.appNames.get(app) ?? "";
}

/** A flow record's own applicationName (96, kept in the extras too) is its application_name, before the dictionary's. */
function appName(r: FlowRecord): void {
  const own = r.extra?.applicationName;
  if (typeof own === "string" && own !== "") r.application_name = own;
}

function time(m: number, s: Scratch, h: MessageHeader, os: OptionState | undefined, start: boolean): number {
  if (start) {
    if (m & F.S_MS) return s.sMs;
    if (m & F.S_NTP) return s.sNtp;
    if (m & F.S_S) return s.sS * 1000;
    if (m & F.S_DUS) return h.exportMs - s.sDus / 1000;
    return uptimeTime(s.sUp, m, s, h, os);
  }
  if (m & F.E_MS) return s.eMs;
  if (m & F.E_NTP) return s.eNtp;
  if (m & F.E_S) return s.eS * 1000;
  if (m & F.E_DUS) return h.exportMs - s.eDus / 1000;
  return uptimeTime(s.eUp, m, s, h, os);
}

/** sysUptime-relative times: v9 against the header (32-bit wrap); IPFIX against systemInitTimeMilliseconds. */
function uptimeTime(
  value: number,
  m: number,
  s: Scratch,
  h: MessageHeader,
  os: OptionState | undefined,
): number {
  if (h.uptimeMs >= 0) return h.exportMs - ((h.uptimeMs - value) >>> 0);
  const init = m & F.INIT ? s.init : (os?.sysInitMs ?? 0);
  return init > 0 ? init + value : 0;
}

function elements(t: Template, b: Uint8Array, o: number, end: number): DecodedElement[] {
  const out: DecodedElement[] = [];
  walkRecord(t.fields, b, o, end, (f, _i, p, len) => {
    out.push({ pen: f.pen, id: f.id, name: f.name, value: jsonSafe(renderField(f, b, p, len)) });
  });
  return out;
}

function decodeOptionsSet(
  ctx: DecodeContext,
  session: Session,
  t: Template,
  h: MessageHeader,
  b: Uint8Array,
  start: number,
  end: number,
  receivedMs: number,
  emit: RecordHandler,
): void {
  const exporter = session.exporter;
  const protocol = h.version === 9 ? "netflow9" : "ipfix";
  let o = start;
  const collect = ctx.opts.collectElements;
  while (o + t.minLength <= end) {
    const scope: Record<string, ElementValue> = {};
    const values: Record<string, ElementValue> = {};
    const elements: DecodedElement[] | null = collect ? [] : null;
    const numeric = new Map<number, number>(); // IANA id (or v9 scope type + 100000) → value
    const selectors: number[] = []; // every selectorId (302): a selection sequence lists several
    const recStart = o;
    const next = walkRecord(t.fields, b, o, end, (f, i, p, len) => {
      const v = renderField(f, b, p, len);
      const isScope = i < t.scopeCount;
      (isScope ? scope : values)[f.name] = v;
      elements?.push({ pen: f.pen, id: f.id, name: f.name, value: jsonSafe(v) });
      if (f.pen === 0 && len >= 1 && len <= 8) {
        const key = isScope && h.version === 9 ? 100000 + f.id : f.id;
        const n = typeof v === "bigint" ? Number(v) : typeof v === "number" ? v : Number.NaN;
        if (!Number.isNaN(n)) {
          numeric.set(key, n);
          if (key === 302 && selectors.length < MAX_SEQUENCE_SELECTORS) selectors.push(n);
        }
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
    applyOptions(ctx, session, h, numeric, selectors, scope, values);
    ctx.stats.optionsRecords++;
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
    emit.options?.(rec);
  }
}

/**
 * Sampling rates (state/sampling.ts: RFC 5477 selectors, 34/35, 48–50) and the sampler table, interface
 * names (82/83), systemInitTimeMilliseconds (160), the dictionaries.
 *
 * Sampling is keyed by samplerId (48), else a single selectorId (302), else selectionSequenceId (301),
 * else the domain. A record naming a sequence and its selectors (RFC 5476 §6.5.1, Selection Sequence
 * Report) links them: the sequence's rate is then its selectors' rates multiplied (options.ts
 * sequenceRate), whichever comes first.
 */
function applyOptions(
  ctx: DecodeContext,
  session: Session,
  h: MessageHeader,
  n: Map<number, number>,
  selectors: readonly number[],
  scope: Record<string, ElementValue>,
  values: Record<string, ElementValue>,
): void {
  const params = samplingParameters(n);
  const samplerName = pickString(values, scope, "samplerName") ?? pickString(values, scope, "selectorName");
  const samplerId = n.get(48);
  const sequence = n.get(301);
  const selector = samplerId === undefined && selectors.length === 1 ? selectors[0] : undefined;
  const samplerKey =
    samplerId !== undefined
      ? `sampler:${samplerId}`
      : selector !== undefined
        ? `selector:${selector}`
        : sequence !== undefined
          ? `sequence:${sequence}`
          : "domain:0";
  const known = params === null ? undefined : ctx.state.options.get(session.exporter, session.port, h.domain);
  const before = known?.samplers.get(samplerKey);
  // a statistics report (318/319 without 304) of a time-based selector we know: its counts give the rate
  if (params !== null && !n.has(304) && before?.parameters.selectorAlgorithm === SELECTOR.SYSTEMATIC_TIME)
    n.set(304, SELECTOR.SYSTEMATIC_TIME);
  const rate = announcedRate(n);
  const links = sequence !== undefined && selectors.length > 0;
  const ifName =
    pickString(values, scope, "interfaceName") ?? pickString(values, scope, "interfaceDescription");
  const sysInit = n.get(160) ?? 0;
  // Dictionaries (issue 18): keyed by a VRF id (234/235) or an applicationId (95).
  const vrf = n.get(234) ?? n.get(235);
  const vrfName = vrf === undefined ? undefined : pickString(values, scope, "VRFname");
  const rd =
    vrf === undefined
      ? undefined
      : rdText(values.mplsVpnRouteDistinguisher ?? scope.mplsVpnRouteDistinguisher);
  const appId = values.applicationId ?? scope.applicationId;
  const appName = typeof appId === "string" ? pickString(values, scope, "applicationName") : undefined;
  if (
    rate <= 0 &&
    ifName === undefined &&
    sysInit <= 0 &&
    vrfName === undefined &&
    rd === undefined &&
    appName === undefined &&
    params === null &&
    !links &&
    samplerName === undefined
  )
    return;
  const os = ctx.state.options.open(session.exporter, session.port, h.domain);
  if (os === undefined) {
    ctx.stats.optionEntriesRefused++;
    return;
  }
  let refused = 0;
  if (rate > 0) {
    const sampler = samplerId ?? selector ?? (sequence === undefined ? n.get(302) : undefined);
    if (sampler !== undefined) {
      if (!setBounded(os, os.bySampler, sampler, rate)) refused++;
    } else if (sequence !== undefined) {
      if (!setBounded(os, os.bySequence, sequence, rate)) refused++;
    } else os.rate = rate;
    os.anyRate = rate;
    if (ctx.exporter.exporter === session.exporter) ctx.exporter.samplingRate = rate;
  }
  if (links && !setBounded(os, os.sequenceSelectors, sequence, [...selectors])) refused++;
  if (params !== null || samplerName !== undefined) {
    const row = samplerRow(os, samplerKey, h.domain);
    if (row === undefined) refused++;
    else {
      if (params !== null) Object.assign(row.parameters, params);
      if (rate > 0) row.rate = rate;
      if (samplerName !== undefined) row.name = samplerName.slice(0, 256);
    }
  }
  if (links) {
    const row = samplerRow(os, `sequence:${sequence}`, h.domain);
    if (row === undefined) refused++;
    else row.selectors = [...selectors];
  }
  if (ifName !== undefined) {
    const idx = n.get(10) ?? n.get(14) ?? n.get(100000 + 2) ?? n.get(252) ?? n.get(253);
    if (idx !== undefined && !setBounded(os, os.ifNames, idx, ifName)) refused++;
  }
  if (vrf !== undefined) {
    if (vrfName !== undefined && !setBounded(os, os.vrfNames, vrf, vrfName)) refused++;
    if (rd !== undefined && !setBounded(os, os.rds, vrf, rd)) refused++;
  }
  if (appName !== undefined && !setBounded(os, os.appNames, appId as string, appName)) refused++;
  os.dictionaries = os.vrfNames.size > 0 || os.rds.size > 0 || os.appNames.size > 0;
  ctx.stats.optionEntriesRefused += refused;
  if (sysInit > 0) os.sysInitMs = sysInit;
}

/** The sampler table's row for `kind:id`, created when new; undefined when the table is full. */
function samplerRow(os: OptionState, key: string, domain: number): SamplerInfo | undefined {
  let row = os.samplers.get(key);
  if (row !== undefined) return row;
  if (os.samplers.size >= MAX_SAMPLER_ROWS) return undefined;
  const [kind, id] = key.split(":") as [SamplerInfo["kind"], string];
  row = { kind, id: Number(id), domain, rate: 0, parameters: {} };
  return setBounded(os, os.samplers, key, row) ? row : undefined;
}

/**
 * An 8-byte route distinguisher (rendered as 16 hex digits) as RFC 4364 text `type:administrator:assigned`:
 * type 0 (2-byte ASN : 4-byte number), 1 (IPv4 address : 2-byte number), 2 (4-byte ASN : 2-byte number).
 * undefined for anything else (another length or type).
 */
export function rdText(v: ElementValue | undefined): string | undefined {
  if (typeof v !== "string" || !/^[0-9a-f]{16}$/i.test(v)) return undefined;
  const b = Buffer.from(v, "hex");
  const type = b.readUInt16BE(0);
  if (type === 0) return `0:${b.readUInt16BE(2)}:${b.readUInt32BE(4)}`;
  if (type === 1) return `1:${b[2]}.${b[3]}.${b[4]}.${b[5]}:${b.readUInt16BE(6)}`;
  if (type === 2) return `2:${b.readUInt32BE(2)}:${b.readUInt16BE(6)}`;
  return undefined;
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

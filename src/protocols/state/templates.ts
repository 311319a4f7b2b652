/**
 * The template store (NetFlow v9 and IPFIX): learn, withdraw and expire templates in their transport
 * sessions. A template is compiled into its record decoder when it is learned (template.ts); a refresh with
 * the same layout keeps the compiled one.
 *
 * Bounded (issue 12: any UDP sender can send templates): fields per template, templates per session and
 * sessions are capped (a template or session beyond a cap is refused), and the bytes all templates take
 * (an estimate: TEMPLATE_BYTES + FIELD_BYTES per field) stay under a budget by evicting the least recently
 * used templates. Every refusal and eviction is counted in the decoder stats (by reason) and per exporter.
 */
import type { DecoderOptions } from "../context.ts";
import { K } from "../fields.ts";
import type { DecoderStats, ExporterStats, TemplateRefusal } from "../stats.ts";
import { compileRecordDecoder, recordLengths, type Template, type TemplateField } from "../template.ts";
import { MissingTemplates } from "./missing-templates.ts";
import { type Session, type Sessions, templateKey } from "./sessions.ts";

/** What learning a template did: a new id, a new layout for a known id, or a refresh of the same. */
export type LearnOutcome = "added" | "updated" | "unchanged";

/**
 * Estimated V8 heap bytes of a template (object, field list, map entries, its share of the session) and of
 * each of its fields, measured with `node --expose-gc bench/template-memory.bench.ts --fields N` (Node 24,
 * 1,000 exporters × 10 NetFlow v9 templates): 701 B at 2 fields, 2,207 B at 20, 8,747 B at 100. The process
 * RSS grows by about twice the heap (V8's reservations), which the README says next to the budget.
 */
export const TEMPLATE_BYTES = 600;
export const FIELD_BYTES = 85;

const templateBytes = (fields: number): number => TEMPLATE_BYTES + FIELD_BYTES * fields;

function sameLayout(a: readonly TemplateField[], b: readonly TemplateField[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.pen !== y.pen || x.id !== y.id || x.length !== y.length) return false;
  }
  return true;
}

export interface LearnedTemplate {
  template: Template;
  outcome: LearnOutcome;
}

type Limits = Pick<
  DecoderOptions,
  "templateMaxFields" | "templateMaxPerSession" | "templateMaxSessions" | "templateMaxBytes"
>;

export class TemplateStore {
  readonly sessions: Sessions;
  readonly #stats: DecoderStats;
  readonly #limits: Limits;
  readonly #exporter: (name: string) => ExporterStats | undefined;
  readonly #missing: MissingTemplates;
  /** Estimated bytes of every template held. */
  #bytes = 0;

  /**
   * `exporter` finds an exporter's counters (for refusals and evictions), when it is tracked; `missing`
   * counts held sets dropped on expiry per exporter and template id.
   */
  constructor(
    sessions: Sessions,
    stats: DecoderStats,
    limits: Limits,
    exporter: (name: string) => ExporterStats | undefined = () => undefined,
    missing: MissingTemplates = new MissingTemplates(),
  ) {
    this.sessions = sessions;
    this.#stats = stats;
    this.#limits = limits;
    this.#exporter = exporter;
    this.#missing = missing;
  }

  /** Estimated bytes of all templates (what templateMaxBytes bounds). */
  get bytes(): number {
    return this.#bytes;
  }

  /** The template of a data set, if its session knows it. */
  get(session: Session | undefined, domain: number, id: number): Template | undefined {
    return session?.templates.get(templateKey(domain, id));
  }

  /** The session, opened when there is none; undefined (counted) when templateMaxSessions are open. */
  openSession(version: 9 | 10, exporter: string, port: number): Session | undefined {
    const s = this.sessions.get(version, exporter, port);
    if (s !== undefined) return s;
    if (this.sessions.size >= this.#limits.templateMaxSessions) {
      this.#refuse(exporter, "too_many_sessions");
      return undefined;
    }
    return this.sessions.open(version, exporter, port);
  }

  /** Learns a template; null when a bound refused it (counted). */
  learn(
    session: Session,
    domain: number,
    id: number,
    fields: TemplateField[],
    options: boolean,
    scopeCount: number,
    nowMs: number,
  ): LearnedTemplate | null {
    const key = templateKey(domain, id);
    const old = session.templates.get(key);
    if (old && old.options === options && old.scopeCount === scopeCount && sameLayout(old.fields, fields)) {
      old.refreshedMs = nowMs;
      return { template: old, outcome: "unchanged" };
    }
    const limits = this.#limits;
    if (fields.length > limits.templateMaxFields) {
      this.#refuse(session.exporter, "too_many_fields");
      return null;
    }
    if (old === undefined && session.templates.size >= limits.templateMaxPerSession) {
      this.#refuse(session.exporter, "session_full");
      return null;
    }
    for (const f of fields) if (f.type === undefined) this.#stats.unknownElements++;
    const lengths = recordLengths(fields);
    const t: Template = {
      version: session.version,
      id,
      domain,
      options,
      scopeCount,
      fields,
      fixedLength: lengths.fixed,
      minLength: lengths.min,
      hasIcmp: fields.some(
        (f) => f.kind === K.ICMP_TYPECODE || f.kind === K.ICMP_TYPE || f.kind === K.ICMP_CODE,
      ),
      hasAppName: fields.some((f) => f.pen === 0 && f.id === 96),
      decode: options ? null : compileRecordDecoder(fields),
      learnedMs: nowMs,
      refreshedMs: nowMs,
      lastUsedMs: nowMs,
    };
    session.templates.set(key, t);
    this.#bytes += templateBytes(fields.length) - (old === undefined ? 0 : templateBytes(old.fields.length));
    this.#stats.templatesLearned++;
    if (this.#bytes > limits.templateMaxBytes) this.#evict(t);
    return { template: t, outcome: old === undefined ? "added" : "updated" };
  }

  /**
   * Withdraws one template, or (id equal to the set id: 2 templates, 3 options templates) every template
   * of that kind in the domain.
   */
  withdraw(session: Session, domain: number, id: number, setId: number): void {
    if (id === setId) {
      for (const [key, t] of session.templates) {
        if (t.domain === domain && t.options === (setId === 3)) this.#remove(session, key, t);
      }
      return;
    }
    const key = templateKey(domain, id);
    const t = session.templates.get(key);
    if (t !== undefined) this.#remove(session, key, t);
  }

  #remove(session: Session, key: number, t: Template): void {
    session.templates.delete(key);
    this.#bytes -= templateBytes(t.fields.length);
    this.#stats.templatesWithdrawn++;
  }

  /**
   * Expires templates neither refreshed nor used for `timeoutMs` and held sets older than `holdMaxMs`
   * (counted as missing-template drops); closes sessions left empty.
   */
  expire(nowMs: number, timeoutMs: number, holdMaxMs: number): void {
    const st = this.#stats;
    for (const session of this.sessions.values()) {
      for (const [key, t] of session.templates) {
        if (nowMs - Math.max(t.refreshedMs, t.lastUsedMs) > timeoutMs) {
          session.templates.delete(key);
          this.#bytes -= templateBytes(t.fields.length);
          st.templatesExpired++;
        }
      }
      st.missingTemplateDrops += session.held.expire(nowMs, holdMaxMs, (d) =>
        this.#missing.dropped(session.exporter, d.h.version, d.h.domain, d.setId),
      );
      if (session.templates.size === 0 && session.held.length === 0) this.sessions.close(session);
    }
  }

  #refuse(exporter: string, reason: TemplateRefusal): void {
    const r = this.#stats.templatesRefused;
    r[reason] = (r[reason] ?? 0) + 1;
    const ex = this.#exporter(exporter);
    if (ex !== undefined) ex.templatesRefused++;
  }

  /**
   * Over the budget: evicts the least recently used templates (refreshed or used longest ago) down to 90 %
   * of it, never `keep` (the one just learned). One pass over all templates, so a burst of learning does not
   * pay it per template.
   */
  #evict(keep: Template): void {
    const all: { at: number; session: Session; key: number; t: Template }[] = [];
    for (const session of this.sessions.values())
      for (const [key, t] of session.templates)
        if (t !== keep) all.push({ at: Math.max(t.refreshedMs, t.lastUsedMs), session, key, t });
    all.sort((a, b) => a.at - b.at);
    const target = this.#limits.templateMaxBytes * 0.9;
    for (const e of all) {
      if (this.#bytes <= target) break;
      e.session.templates.delete(e.key);
      this.#bytes -= templateBytes(e.t.fields.length);
      this.#stats.templatesEvicted++;
      const ex = this.#exporter(e.session.exporter);
      if (ex !== undefined) ex.templatesEvicted++;
    }
  }
}

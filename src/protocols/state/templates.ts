/**
 * The template store (NetFlow v9 and IPFIX): learn, withdraw and expire templates in their transport
 * sessions. A template is compiled into its record decoder when it is learned (template.ts); a refresh with
 * the same layout keeps the compiled one.
 */

import { K } from "../fields.ts";
import type { DecoderStats } from "../stats.ts";
import { compileRecordDecoder, recordLengths, type Template, type TemplateField } from "../template.ts";
import { MissingTemplates } from "./missing-templates.ts";
import { type Session, type Sessions, templateKey } from "./sessions.ts";

/** What learning a template did: a new id, a new layout for a known id, or a refresh of the same. */
export type LearnOutcome = "added" | "updated" | "unchanged";

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

export class TemplateStore {
  readonly sessions: Sessions;
  readonly #stats: DecoderStats;
  readonly #missing: MissingTemplates;

  constructor(sessions: Sessions, stats: DecoderStats, missing: MissingTemplates = new MissingTemplates()) {
    this.sessions = sessions;
    this.#stats = stats;
    this.#missing = missing;
  }

  /** The template of a data set, if its session knows it. */
  get(session: Session | undefined, domain: number, id: number): Template | undefined {
    return session?.templates.get(templateKey(domain, id));
  }

  learn(
    session: Session,
    domain: number,
    id: number,
    fields: TemplateField[],
    options: boolean,
    scopeCount: number,
    nowMs: number,
  ): LearnedTemplate {
    const key = templateKey(domain, id);
    const old = session.templates.get(key);
    if (old && old.options === options && old.scopeCount === scopeCount && sameLayout(old.fields, fields)) {
      old.refreshedMs = nowMs;
      return { template: old, outcome: "unchanged" };
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
      decode: options ? null : compileRecordDecoder(fields),
      learnedMs: nowMs,
      refreshedMs: nowMs,
      lastUsedMs: nowMs,
    };
    session.templates.set(key, t);
    this.#stats.templatesLearned++;
    return { template: t, outcome: old === undefined ? "added" : "updated" };
  }

  /**
   * Withdraws one template, or (id equal to the set id: 2 templates, 3 options templates) every template
   * of that kind in the domain.
   */
  withdraw(session: Session, domain: number, id: number, setId: number): void {
    if (id === setId) {
      for (const [key, t] of session.templates) {
        if (t.domain === domain && t.options === (setId === 3)) {
          session.templates.delete(key);
          this.#stats.templatesWithdrawn++;
        }
      }
    } else if (session.templates.delete(templateKey(domain, id))) {
      this.#stats.templatesWithdrawn++;
    }
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
          st.templatesExpired++;
        }
      }
      st.missingTemplateDrops += session.held.expire(nowMs, holdMaxMs, (d) =>
        this.#missing.dropped(session.exporter, d.h.version, d.h.domain, d.setId),
      );
      if (session.templates.size === 0 && session.held.length === 0) this.sessions.close(session);
    }
  }
}

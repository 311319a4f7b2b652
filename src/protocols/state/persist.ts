/**
 * The decoder state file (`templates.json` under the data dir): templates and what options data taught,
 * so a restart decodes at once. JSON-safe; the format below is the file format (keep it compatible).
 */
import { makeField, v9ScopeField } from "../template.ts";
import type { OptionStore } from "./options.ts";
import type { TemplateStore } from "./templates.ts";

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

export function saveState(templates: TemplateStore, options: OptionStore, nowMs: number): DecoderState {
  const out: DecoderState["templates"] = [];
  for (const s of templates.sessions.values()) {
    for (const t of s.templates.values()) {
      out.push({
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
  for (const o of options.values()) {
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
    savedAtMs: nowMs,
    templates: out,
    sampling,
  };
}

/** Restores saved state; templates past their expiry are skipped. Throws on a file that is not ours. */
export function loadState(
  state: unknown,
  templates: TemplateStore,
  options: OptionStore,
  nowMs: number,
  templateTimeoutMs: number,
): { templates: number; sampling: number } {
  const st = state as Partial<DecoderState> | null;
  if (st?.format !== "clarion-collector-decoder-state" || st.version !== 1) {
    throw new Error("not a clarion-collector decoder state (format/version mismatch)");
  }
  let nt = 0;
  for (const t of st.templates ?? []) {
    if (nowMs - t.refreshedMs > templateTimeoutMs) continue;
    const v9 = t.version === 9;
    const fields = t.fields.map(([pen, id, len], i) =>
      v9 && t.options && i < t.scopeCount ? v9ScopeField(id, len) : makeField(pen, id, len, v9),
    );
    const session = templates.openSession(t.version, t.exporter, t.port);
    const learned =
      session && templates.learn(session, t.domain, t.id, fields, t.options, t.scopeCount, t.learnedMs);
    if (!learned) continue; // refused by a bound (counted)
    learned.template.refreshedMs = t.refreshedMs;
    learned.template.lastUsedMs = t.refreshedMs;
    nt++;
  }
  let ns = 0;
  for (const s of st.sampling ?? []) {
    const o = options.open(s.exporter, s.port, s.domain);
    o.rate = s.rate;
    for (const [k, v] of s.bySampler) o.bySampler.set(k, v);
    o.anyRate = s.rate || (s.bySampler[0]?.[1] ?? 0);
    for (const [k, v] of s.ifNames) o.ifNames.set(k, v);
    o.sysInitMs = s.sysInitMs;
    ns++;
  }
  return { templates: nt, sampling: ns };
}

/**
 * The decoder state file (`templates.json` under the data dir): templates and what options data taught,
 * so a restart decodes at once. JSON-safe; the format below is the file format (keep it compatible).
 * `decoderStateSchema` validates one decoder's state as read back (issue 12 item 6: a damaged or hostile
 * file must not crash startup nor load silently): every number is a finite integer in its wire range,
 * every list is bounded.
 */
import { z } from "zod";
import { makeField, v9ScopeField } from "../template.ts";
import {
  MAX_SAMPLER_ROWS,
  MAX_SEQUENCE_SELECTORS,
  type OptionStore,
  type SamplerInfo,
  setBounded,
} from "./options.ts";
import type { TemplateStore } from "./templates.ts";

const u16 = z.number().int().min(0).max(0xffff);
const u32 = z.number().int().min(0).max(0xffffffff);
const ms = z.number().finite().min(0);
const exporter = z.string().min(1).max(64);

const savedTemplate = z
  .object({
    exporter,
    port: u16,
    version: z.union([z.literal(9), z.literal(10)]),
    domain: u32,
    id: z.number().int().min(256).max(0xffff),
    options: z.boolean(),
    scopeCount: u16,
    fields: z
      .array(z.tuple([u32, u16, u16]))
      .min(1)
      .max(0xffff),
    learnedMs: ms,
    refreshedMs: ms,
  })
  .refine((t) => t.scopeCount <= t.fields.length, { message: "scopeCount is larger than the field count" });

const savedSampling = z.object({
  exporter,
  port: u16,
  domain: u32,
  rate: z.number().finite().min(0),
  bySampler: z.array(z.tuple([u32, z.number().finite().min(0)])).max(0xffff),
  ifNames: z.array(z.tuple([u32, z.string().max(1024)])).max(0xffff),
  sysInitMs: ms,
  // issue 18 dictionaries (absent in files written before them)
  vrfNames: z
    .array(z.tuple([u32, z.string().max(1024)]))
    .max(0xffff)
    .optional(),
  rds: z
    .array(z.tuple([u32, z.string().max(64)]))
    .max(0xffff)
    .optional(),
  appNames: z
    .array(z.tuple([z.string().max(512), z.string().max(1024)]))
    .max(0xffff)
    .optional(),
  // PSAMP selection sequences and the sampler table (absent in older files)
  bySequence: z
    .array(z.tuple([u32, z.number().finite().min(0)]))
    .max(0xffff)
    .optional(),
  sequenceSelectors: z
    .array(z.tuple([u32, z.array(u32).max(MAX_SEQUENCE_SELECTORS)]))
    .max(0xffff)
    .optional(),
  samplers: z
    .array(
      z.object({
        kind: z.enum(["sampler", "selector", "sequence", "domain"]),
        id: u32,
        domain: u32,
        rate: z.number().finite().min(0),
        parameters: z
          .record(z.string().max(64), z.number().finite())
          .refine((p) => Object.keys(p).length <= 32),
        name: z.string().max(256).optional(),
        selectors: z.array(u32).max(MAX_SEQUENCE_SELECTORS).optional(),
      }),
    )
    .max(MAX_SAMPLER_ROWS)
    .optional(),
});

/** One decoder's saved state, as `loadState` accepts it. */
export const decoderStateSchema = z.object({
  format: z.literal("clarion-collector-decoder-state"),
  version: z.literal(1),
  savedAtMs: ms,
  templates: z.array(savedTemplate).max(10_000_000),
  sampling: z.array(savedSampling).max(10_000_000),
});

/** The first problems zod found, as one line for a log. */
export function describeIssues(e: z.ZodError, max = 3): string {
  return e.issues
    .slice(0, max)
    .map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`)
    .join("; ");
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
    vrfNames?: [number, string][];
    rds?: [number, string][];
    appNames?: [string, string][];
    bySequence?: [number, number][];
    sequenceSelectors?: [number, number[]][];
    samplers?: SamplerInfo[];
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
      vrfNames: [...o.vrfNames],
      rds: [...o.rds],
      appNames: [...o.appNames],
      bySequence: [...o.bySequence],
      sequenceSelectors: [...o.sequenceSelectors],
      samplers: [...o.samplers.values()],
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
  const parsed = decoderStateSchema.safeParse(state);
  if (!parsed.success)
    throw new Error(`not a clarion-collector decoder state: ${describeIssues(parsed.error)}`);
  const st = parsed.data;
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
    if (o === undefined) continue; // beyond the store's bound
    o.rate = s.rate;
    for (const [k, v] of s.bySampler) setBounded(o, o.bySampler, k, v);
    o.anyRate = s.rate || (s.bySampler[0]?.[1] ?? 0);
    for (const [k, v] of s.ifNames) setBounded(o, o.ifNames, k, v);
    o.sysInitMs = s.sysInitMs;
    for (const [k, v] of s.vrfNames ?? []) setBounded(o, o.vrfNames, k, v);
    for (const [k, v] of s.rds ?? []) setBounded(o, o.rds, k, v);
    for (const [k, v] of s.appNames ?? []) setBounded(o, o.appNames, k, v);
    for (const [k, v] of s.bySequence ?? []) setBounded(o, o.bySequence, k, v);
    for (const [k, v] of s.sequenceSelectors ?? []) setBounded(o, o.sequenceSelectors, k, v);
    for (const row of s.samplers ?? []) setBounded(o, o.samplers, `${row.kind}:${row.id}`, row);
    o.dictionaries = o.vrfNames.size > 0 || o.rds.size > 0 || o.appNames.size > 0;
    ns++;
  }
  return { templates: nt, sampling: ns };
}

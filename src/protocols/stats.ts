/**
 * The decoder's counters: totals (`DecoderStats`, one per FlowDecoder) and per-exporter counts
 * (`ExporterStats`). Plain objects, so a worker can post them to the main thread as they are. `emptyStats()`
 * is in decoder.ts (its protocol keys come from the registry).
 */
import type { DecodeErrorCode, ProtocolName } from "../core/errors.ts";
import type { SamplerInfo } from "./state/options.ts";

export interface ExporterStats {
  exporter: string;
  datagrams: number;
  bytes: number;
  flows: number;
  errors: number;
  samplingRate: number;
  lastSeenMs: number;
  protocols: Partial<Record<ProtocolName, number>>;
  /** Templates of this exporter refused by the template-state bounds, and evicted to stay in the budget. */
  templatesRefused: number;
  templatesEvicted: number;
  /** Entries options data taught, over the exporter's domains (filled by FlowDecoder.exporters()). */
  dictionaries: OptionDictionarySizes;
  /** The exporter's sampler table over its domains, at most MAX_SAMPLERS_SHOWN rows (FlowDecoder.exporters()). */
  samplers: SamplerInfo[];
}

/** Rows of an exporter's sampler table /exporters shows (dictionaries.samplers counts them all). */
export const MAX_SAMPLERS_SHOWN = 256;

/**
 * Adds one decoder's view of an exporter into `byExporter` (several receive workers, or a worker's decode
 * threads, each see part of an exporter's traffic): counts are summed; dictionary sizes and the samplers
 * are each decoder's copy of what the exporter announced, so the largest is kept; the sampling rate is the
 * one of the most recently seen.
 */
export function mergeExporterStats(byExporter: Map<string, ExporterStats>, e: ExporterStats): void {
  const m = byExporter.get(e.exporter);
  if (m === undefined) {
    byExporter.set(e.exporter, {
      ...e,
      protocols: { ...e.protocols },
      dictionaries: { ...e.dictionaries },
      samplers: [...e.samplers],
    });
    return;
  }
  if (m.samplers.length < e.samplers.length) m.samplers = [...e.samplers];
  m.datagrams += e.datagrams;
  m.bytes += e.bytes;
  m.flows += e.flows;
  m.errors += e.errors;
  m.templatesRefused += e.templatesRefused;
  m.templatesEvicted += e.templatesEvicted;
  for (const k of Object.keys(m.dictionaries) as (keyof ExporterStats["dictionaries"])[])
    m.dictionaries[k] = Math.max(m.dictionaries[k], e.dictionaries[k]);
  if (e.lastSeenMs > m.lastSeenMs) {
    m.lastSeenMs = e.lastSeenMs;
    if (e.samplingRate) m.samplingRate = e.samplingRate;
  }
  for (const [p, n] of Object.entries(e.protocols)) {
    const k = p as keyof ExporterStats["protocols"];
    m.protocols[k] = (m.protocols[k] ?? 0) + (n ?? 0);
  }
}

/** Sizes of an exporter's options-data maps (issue 18), summed over its observation domains. */
export interface OptionDictionarySizes {
  /** Rates by samplerId / selectorId / selectionSequenceId. */
  samplers: number;
  interfaces: number;
  vrfs: number;
  rds: number;
  applications: number;
}

/** Why a template was refused (DecoderOptions template bounds). */
export const TEMPLATE_REFUSALS = ["too_many_fields", "session_full", "too_many_sessions"] as const;
export type TemplateRefusal = (typeof TEMPLATE_REFUSALS)[number];

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
  /** Templates refused by the bounds, by reason; templates evicted (least recently used) over the budget. */
  templatesRefused: Partial<Record<TemplateRefusal, number>>;
  templatesEvicted: number;
  /** Data sets decoded with the template of another source port of their exporter (templateScope fallback). */
  templateFallbacks: number;
  /** Options-data entries (sampler rates, interface/VRF/application names, RDs) refused by the map bound. */
  optionEntriesRefused: number;
  /** Data sets held waiting for their template; decoded later; dropped when the hold expired/overflowed. */
  heldSets: number;
  heldDecoded: number;
  missingTemplateDrops: number;
  /** Template fields whose element we have no definition for (kept as hex under `<pen>.<id>`). */
  unknownElements: number;
  /** sFlow: flow/counter records of formats we skip, counter samples skipped. */
  sflowSkippedRecords: number;
  /**
   * sFlow flow samples with nothing to describe a flow (zero records, only records of formats we skip, or
   * a raw header of 0 bytes): counted and skipped, not turned into an empty flow.
   */
  sflowMalformedSamples: number;
}

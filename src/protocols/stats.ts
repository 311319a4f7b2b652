/**
 * The decoder's counters: totals (`DecoderStats`, one per FlowDecoder) and per-exporter counts
 * (`ExporterStats`). Plain objects, so a worker can post them to the main thread as they are.
 */
import type { DecodeErrorCode, ProtocolName } from "../core/errors.ts";

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

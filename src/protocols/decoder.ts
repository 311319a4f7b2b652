/**
 * The decoder front: detects the protocol of a datagram by its version field and keeps per-exporter
 * state (templates, sampling rates, held data). Synchronous; throws only DecodeError.
 * (Skeleton: the implementation lands with the NetFlow/IPFIX decoders.)
 */
import type { Datagram } from "../core/datagram.ts";
import type { DecodeErrorCode, ProtocolName } from "../core/errors.ts";
import type { RecordHandler } from "../core/flow.ts";

export interface DecoderOptions {
  /** Template expiry when neither refreshed nor used, ms (default 30 min). */
  templateTimeoutMs: number;
  /** Data sets held while their template is missing: at most this many per exporter... */
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
}

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
  /** Records whose template we never saw and that could not be held at all. */
  unknownElements: number;
  /** sFlow: flow/counter records of formats we skip, counter samples skipped. */
  sflowSkippedRecords: number;
}

export interface FlowDecoderApi {
  readonly stats: DecoderStats;
  decode(dg: Datagram, handler: RecordHandler): void;
  tick(nowMs: number, handler: RecordHandler): void;
  exporters(): ExporterStats[];
}

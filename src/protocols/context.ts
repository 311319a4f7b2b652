/**
 * The one contract between the decoder front (decoder.ts) and the protocol decoders: a `Decoder` entry
 * in the registry (index.ts) gets a `DecodeContext` and a RecordHandler (`emit`). The context is created
 * once per FlowDecoder and reused for every datagram (no allocation per datagram): the front sets
 * `datagram` and `exporter` before each call. Everything a decoder reads or changes is reachable from it —
 * options, counters, per-exporter state — so no decoder keeps a hidden field of its own.
 */
import type { Datagram } from "../core/datagram.ts";
import type { RecordHandler } from "../core/flow.ts";
import type { SequenceTracker } from "./sequence.ts";
import type { MissingTemplates } from "./state/missing-templates.ts";
import type { OptionStore } from "./state/options.ts";
import { SamplingMap, type SamplingMapEntry } from "./state/sampling-map.ts";
import type { Sessions } from "./state/sessions.ts";
import type { TemplateStore } from "./state/templates.ts";
import type { DecoderStats, ExporterStats } from "./stats.ts";
import { Scratch } from "./template.ts";

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
  /**
   * Template keying (DESIGN §4, issue 11 §3): "session" keys templates by exporter address + source port
   * (RFC 7011 §8) only; "exporter" by address alone (pmacct, nfcapd); "fallback" (default) keys by session
   * and, when a session that has no template of its own in the domain gets data for an unknown id, uses the
   * most recent template with that id from another source port of the same address and domain, if the set
   * fits its records (routers whose line cards export from several ports, e.g. Cisco IOS XR).
   */
  templateScope: TemplateScope;
  /** Sampling-rate key includes the source port. Default false (GoFlow2 #206). */
  samplingKeyByPort: boolean;
  /**
   * Static sampling rates by exporter prefix (+ domain), state/sampling-map.ts: used where none is
   * announced, or always for an `override` entry. Default none.
   */
  samplingMap: readonly SamplingMapEntry[];
  /** Multiply bytes/packets by the sampling rate. Default false. */
  scaleBySampling: boolean;
  /** Fill FlowRecord.elements / OptionsRecord.elements with every decoded element. Default false. */
  collectElements: boolean;
  /**
   * Tunnelled sampled packets (sFlow raw headers, IPFIX packet sections): "outer" (default) describes the
   * outer headers, "inner" the decapsulated inner packet (sflow/headers.ts).
   */
  tunnelHeader: "outer" | "inner";
  /** switch_id: the exporter IP when true (default), else "". */
  switchIdFromIp: boolean;
  /**
   * Exporters tracked one by one in `exporters()`; datagrams from further addresses (scanners, spoofed
   * sources) are counted together under "other", so per-exporter state stays bounded.
   */
  maxExporters: number;
  /**
   * Template-state bounds (issue 12): fields per template (far above real exporters, which stay under a few
   * hundred; the wire allows 16 k), templates per transport session, sessions, and an estimate of the bytes
   * all templates take, above which the least recently used are evicted. Refusals and evictions are counted
   * in stats and per exporter.
   */
  templateMaxFields: number;
  templateMaxPerSession: number;
  templateMaxSessions: number;
  templateMaxBytes: number;
  /** Clock, ms since the epoch (tests). */
  now: () => number;
}

export const TEMPLATE_SCOPES = ["session", "exporter", "fallback"] as const;
export type TemplateScope = (typeof TEMPLATE_SCOPES)[number];

export const DEFAULT_DECODER_OPTIONS: Readonly<DecoderOptions> = {
  templateTimeoutMs: 30 * 60_000,
  holdMaxSets: 256,
  holdMaxMs: 5_000,
  holdMaxBytes: 4 * 1024 * 1024,
  maxExporters: 10_000,
  templateScope: "fallback",
  samplingKeyByPort: false,
  samplingMap: [],
  scaleBySampling: false,
  collectElements: false,
  switchIdFromIp: true,
  templateMaxFields: 1024,
  templateMaxPerSession: 1024,
  templateMaxSessions: 50_000,
  templateMaxBytes: 256 * 1024 * 1024,
  tunnelHeader: "outer",
  now: Date.now,
};

/** Per-exporter state of one FlowDecoder (src/protocols/state/). */
export interface StateStores {
  readonly sessions: Sessions;
  readonly templates: TemplateStore;
  readonly options: OptionStore;
  /** Data sets lost (or still held) for want of a template, per exporter and template id (issue 11). */
  readonly missing: MissingTemplates;
}

const NO_DATAGRAM: Datagram = {
  payload: Buffer.alloc(0),
  exporter: "",
  port: 0,
  receivedAtMs: 0,
  listener: "",
};

export class DecodeContext {
  readonly opts: Readonly<DecoderOptions>;
  readonly stats: DecoderStats;
  readonly state: StateStores;
  /** Scratch values of the compiled record decoders (template.ts), reused record after record. */
  readonly scratch = new Scratch();
  /** The static sampling map, null when none is configured. */
  readonly samplingMap: SamplingMap | null;
  /** The datagram being decoded. */
  datagram: Datagram = NO_DATAGRAM;
  /** Its exporter's counters (the shared "other" entry beyond maxExporters). */
  exporter: ExporterStats;
  /**
   * A "state only" copy of a datagram (FlowDecoder.decodeStateOnly, spread over decode threads): templates
   * and options data are learned, other data sets are skipped (neither decoded nor held), and the held data
   * a template releases is decoded through `releaseHeld`, which gives it the real handler and keeps its
   * counters when the copy's are undone.
   */
  stateOnly = false;
  releaseHeld: ((run: (emit: RecordHandler) => void) => void) | null = null;

  constructor(
    opts: Readonly<DecoderOptions>,
    stats: DecoderStats,
    state: StateStores,
    exporter: ExporterStats,
  ) {
    this.opts = opts;
    this.stats = stats;
    this.state = state;
    this.exporter = exporter;
    this.samplingMap = opts.samplingMap.length > 0 ? new SamplingMap(opts.samplingMap) : null;
    this.scratch.innerTunnel = opts.tunnelHeader === "inner";
  }
}

/** One protocol: an entry of the registry (index.ts). */
export interface Decoder {
  /** Protocol name (DecodeError.protocol, stats.byProtocol, ExporterStats.protocols). */
  readonly name: string;
  /** FlowRecord.type of its flows. */
  readonly flowType: string;
  /** True when the datagram's version field says it is this protocol. */
  matches(b: Buffer): boolean;
  /**
   * Decodes ctx.datagram, counting its flows in ctx.stats.flows as it emits them. Throws only DecodeError;
   * records emitted before it stay emitted.
   */
  decode(ctx: DecodeContext, emit: RecordHandler): void;
  /**
   * After `decode` accepted the datagram: its export sequence numbers into `track` (sequence.ts), read from
   * its own header. `records`: the data records decode counted (options records included); `exact`: false
   * when that is not the datagram's own count (held data was added or released).
   */
  sequence(dg: Datagram, track: SequenceTracker, records: number, exact: boolean): void;
}

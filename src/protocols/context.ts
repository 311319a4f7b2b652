/**
 * The one contract between the decoder front (decoder.ts) and the protocol decoders: a `Decoder` entry
 * in the registry (index.ts) gets a `DecodeContext` and a RecordHandler (`emit`). The context is created
 * once per FlowDecoder and reused for every datagram (no allocation per datagram): the front sets
 * `datagram` and `exporter` before each call. Everything a decoder reads or changes is reachable from it —
 * options, counters, per-exporter state — so no decoder keeps a hidden field of its own.
 */
import type { Datagram } from "../core/datagram.ts";
import type { RecordHandler } from "../core/flow.ts";
import type { OptionStore } from "./state/options.ts";
import type { Sessions } from "./state/sessions.ts";
import type { TemplateStore } from "./state/templates.ts";
import type { DecoderStats, ExporterStats } from "./stats.ts";
import { Scratch } from "./template.ts";

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
  tunnelHeader: "outer",
  now: Date.now,
};

/** Per-exporter state of one FlowDecoder (src/protocols/state/). */
export interface StateStores {
  readonly sessions: Sessions;
  readonly templates: TemplateStore;
  readonly options: OptionStore;
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
  /** The datagram being decoded. */
  datagram: Datagram = NO_DATAGRAM;
  /** Its exporter's counters (the shared "other" entry beyond maxExporters). */
  exporter: ExporterStats;

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
}

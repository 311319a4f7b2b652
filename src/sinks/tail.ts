/**
 * `tail:` — the internal output that feeds the live tail (`GET /tail` on the ops port, src/ops/tail.ts).
 * Not for users: the collector adds it to the receive workers' outputs itself, and `create()` refuses it
 * as a configured `--output`.
 *
 * The encoder runs in every receive worker. While nobody tails (the shared `active` flag, an Int32Array
 * over a SharedArrayBuffer the main thread sets to the number of readers, is 0) it encodes nothing and
 * returns an empty batch, and says so through `idle()` (one Atomics.load per record) so that a worker
 * whose other outputs take records one by one (parquet) holds no batch of records for it. While someone tails, it writes
 * at most MAX_TAIL_RECORDS a batch as JSON lines whose keys are the SQLite `flows` column names (so the
 * filter language means the same thing live and stored); records beyond that are counted in the first
 * line `{"skipped":N}` and shown to the readers as dropped.
 */
import { ConfigError } from "../core/errors.ts";
import type { FlowRecord } from "../core/flow.ts";
import type { EncodedBatch, Sink, SinkDefinition, SinkEncoder } from "./types.ts";

export const TAIL_URI = "tail:";
/** Records a worker encodes for the tail per batch (bounds the work a burst costs while tailing). */
export const MAX_TAIL_RECORDS = 2000;

/** One tailed flow: the `flows` columns the tail shows and filters on. */
export interface TailRow {
  time_received: number;
  exporter: string;
  type: string;
  sampling_rate: number;
  src_ip: string | null;
  dst_ip: string | null;
  src_port: number;
  dst_port: number;
  protocol: number;
  etype: number;
  bytes: number;
  packets: number;
  tcp_flags: number;
  in_if: number;
  out_if: number;
  src_as: number;
  dst_as: number;
  src_sgt: number | null;
  dst_sgt: number | null;
  ip_tos: number;
  vlan_id: number;
  icmp_type: number;
  icmp_code: number;
  in_vrf_id: number | null;
  out_vrf_id: number | null;
  in_vrf_name: string | null;
  out_vrf_name: string | null;
  application_name: string | null;
}

export function tailRow(r: FlowRecord): TailRow {
  return {
    time_received: Math.floor(r.time_received_ms),
    exporter: r.sampler_address,
    type: r.type,
    sampling_rate: r.sampling_rate,
    src_ip: r.src_addr || null,
    dst_ip: r.dst_addr || null,
    src_port: r.src_port,
    dst_port: r.dst_port,
    protocol: r.proto,
    etype: r.etype,
    bytes: Number(r.bytes),
    packets: Number(r.packets),
    tcp_flags: r.tcp_flags,
    in_if: r.in_if,
    out_if: r.out_if,
    src_as: r.src_as,
    dst_as: r.dst_as,
    src_sgt: r.src_sgt,
    dst_sgt: r.dst_sgt,
    ip_tos: r.ip_tos,
    vlan_id: r.vlan_id,
    icmp_type: r.icmp_type,
    icmp_code: r.icmp_code,
    in_vrf_id: r.in_vrf_id,
    out_vrf_id: r.out_vrf_id,
    in_vrf_name: r.in_vrf_name || null,
    out_vrf_name: r.out_vrf_name || null,
    application_name: r.application_name || null,
  };
}

const utf8 = new TextEncoder();

export function createTailEncoder(uri: string, options: Readonly<Record<string, unknown>>): SinkEncoder {
  const active = options.active instanceof Int32Array ? options.active : null;
  return {
    idle: () => active === null || Atomics.load(active, 0) === 0,
    encode(records: readonly FlowRecord[]): EncodedBatch {
      if (active === null || Atomics.load(active, 0) === 0 || records.length === 0)
        return { sink: uri, records: 0, parts: [], oldestMs: 0 };
      const n = Math.min(records.length, MAX_TAIL_RECORDS);
      const skipped = records.length - n;
      let text = skipped > 0 ? `{"skipped":${skipped}}\n` : "";
      for (let i = 0; i < n; i++) text += `${JSON.stringify(tailRow(records[i]!))}\n`;
      return {
        sink: uri,
        records: n,
        parts: [{ key: "", records: n, data: utf8.encode(text) }],
        oldestMs: records[0]!.time_received_ms,
      };
    },
  };
}

export const tailSink: SinkDefinition = {
  schemes: ["tail"],
  createEncoder: createTailEncoder,
  create(uri: string): Promise<Sink> {
    return Promise.reject(
      new ConfigError(
        "--output",
        `"${uri}" is internal (the live tail); use \`clarion-collector tail\` instead`,
      ),
    );
  },
  optionKeys: ["active"],
};

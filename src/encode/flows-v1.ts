/**
 * flows.v1: the telemetry API's flow format (DESIGN §3), as the nf2ingest mapper of GoFlow2 output sent it.
 *
 * Record (one JSON object):
 * ```
 * {"ts":<int s>,"src_ip":"..","dst_ip":"..","src_port":n,"dst_port":n,"proto":n,"bytes":n,"packets":n
 *  [,"ingress_if":n][,"egress_if":n]}
 * ```
 * - `ts`: whole seconds from flow start (the mapper floors time_flow_start_ns / 1e9); receive time when the
 *   exporter sent no start time.
 * - `proto`: IP protocol number. `ingress_if`/`egress_if` only when non-zero (as the mapper did).
 * - counters are exact (bigint above 2^53).
 * - records without both addresses are skipped (the API requires both and rejects a whole request for one
 *   invalid address), as the mapper did; the encoder counts them (`skipped` on the batch) and the sink
 *   reports them (src/sinks/http.ts, `skippedNoAddress`).
 * - no VRF, application, NAT or reverse-counter keys (issues 18, 19): the format has no place for them (the
 *   record is the fixed schema above); they are in the JSON lines, SQLite, Parquet and the Kafka protobuf.
 * Body: `{"collector_id":"..","format":"flows.v1","records":[...]}`, line-framed (src/encode/json-batch.ts).
 */
import type { FlowRecord } from "../core/flow.ts";
import { assembleBody, jsonCounter, jsonString } from "./json-batch.ts";

export const FLOWS_V1_FORMAT = "flows.v1";

/** One flows.v1 record as a one-line JSON object, or null when it has no addresses. */
export function flowsV1Record(r: FlowRecord): string | null {
  const src = r.src_addr; // read once: an IPv4 address decoded as a number is rendered on every read
  const dst = r.dst_addr;
  if (src === "" || dst === "") return null;
  const startMs = r.time_flow_start_ms > 0 ? r.time_flow_start_ms : r.time_received_ms;
  let s = `{"ts":${Math.floor(startMs / 1000)},"src_ip":${jsonString(src)},"dst_ip":${jsonString(dst)},"src_port":${r.src_port},"dst_port":${r.dst_port},"proto":${r.proto},"bytes":${jsonCounter(r.bytes)},"packets":${jsonCounter(r.packets)}`;
  if (r.in_if) s += `,"ingress_if":${r.in_if}`;
  if (r.out_if) s += `,"egress_if":${r.out_if}`;
  return `${s}}`;
}

/** The header line of a flows.v1 body for this collector. */
export function flowsV1Header(collectorId: string): string {
  return `{"collector_id":${jsonString(collectorId)},"format":"${FLOWS_V1_FORMAT}","records":[`;
}

/** A complete flows.v1 request body from one-line records. */
export function flowsV1Body(collectorId: string, records: readonly string[]): string {
  return assembleBody(flowsV1Header(collectorId), records);
}

/**
 * Clarion backend format (DESIGN §3): POST {backend}/api/netflow/netflow, one request per exporter batch.
 *
 * Body: `{"switch_id":"<exporter>","records":[ record, ... ]}` (line-framed, src/encode/json-batch.ts).
 * Record, with the keys of the Clarion Python collector's NetFlowRecord.to_dict():
 * ```
 * {"src_ip":"..","dst_ip":"..","src_port":n,"dst_port":n,"protocol":n,"bytes":n,"packets":n,
 *  "flow_start":<int s>,"flow_end":<int s>,"switch_id":"..","src_sgt":n|null,"dst_sgt":n|null,
 *  "src_mac":"aa:bb:cc:dd:ee:ff"|null,"dst_mac":..|null,"vlan_id":n|null}
 * ```
 * - flow_start/flow_end are integer Unix seconds: the backend's pydantic model declares them `int`
 *   ("Unix timestamp"), so fractional seconds would be rejected; receive time when the exporter sent none
 *   (the Python collector used "now").
 * - switch_id: the exporter address (SWITCH_ID_FROM_IP, default) or the record's configured switch_id.
 * - counters are exact (bigint above 2^53); addresses "" render as "" (the backend declares them str).
 * - no VRF, application, NAT or reverse-counter keys (issues 18, 19): the record keeps the Python
 *   collector's keys, and the backend's NetFlowRecord model has no place for them (it reads src_ip …
 *   flow_end, switch_id); they are in the JSON lines, SQLite, Parquet and the Kafka protobuf.
 */
import { macString } from "../core/address.ts";
import type { FlowRecord } from "../core/flow.ts";
import { assembleBody, jsonCounter, jsonString } from "./json-batch.ts";

/** A 48-bit MAC integer as `"aa:bb:cc:dd:ee:ff"`, or `null` for 0 (absent). */
export function macJson(mac: number): string {
  return mac ? `"${macString(mac)}"` : "null";
}

/** The switch id of a record: exporter address when `fromIp`, else its configured switch_id. */
export function clarionSwitchId(r: FlowRecord, fromIp: boolean): string {
  return fromIp || r.switch_id === "" ? r.sampler_address : r.switch_id;
}

/** One Clarion record as a one-line JSON object. */
export function clarionRecord(r: FlowRecord, switchIdJson: string): string {
  const start = r.time_flow_start_ms > 0 ? r.time_flow_start_ms : r.time_received_ms;
  const end = r.time_flow_end_ms > 0 ? r.time_flow_end_ms : start;
  const vlan = r.vlan_id || r.src_vlan;
  return `{"src_ip":${jsonString(r.src_addr)},"dst_ip":${jsonString(r.dst_addr)},"src_port":${r.src_port},"dst_port":${r.dst_port},"protocol":${r.proto},"bytes":${jsonCounter(r.bytes)},"packets":${jsonCounter(r.packets)},"flow_start":${Math.floor(start / 1000)},"flow_end":${Math.floor(end / 1000)},"switch_id":${switchIdJson},"src_sgt":${r.src_sgt ?? "null"},"dst_sgt":${r.dst_sgt ?? "null"},"src_mac":${macJson(r.src_mac)},"dst_mac":${macJson(r.dst_mac)},"vlan_id":${vlan || "null"}}`;
}

/** The header line of a Clarion body for one switch. */
export function clarionHeader(switchId: string): string {
  return `{"switch_id":${jsonString(switchId)},"records":[`;
}

/** A complete Clarion request body. */
export function clarionBody(switchId: string, records: readonly string[]): string {
  return assembleBody(clarionHeader(switchId), records);
}

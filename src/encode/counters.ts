/**
 * sFlow interface counter samples as one JSON line each: `"type":"SFLOW_5_COUNTERS"` (so GoFlow2-style
 * consumers that filter on `type` pass them by), the receive time in integer ns like the flow lines, then
 * every counter field by its sFlow name. 64-bit counters above 2^53 are exact JSON integers.
 */
import type { InterfaceCounters } from "../protocols/sflow5.ts";
import { msToNs } from "./goflow2.ts";

export const COUNTERS_TYPE = "SFLOW_5_COUNTERS";

export function encodeCountersJson(c: InterfaceCounters): string {
  let s = `{"type":"${COUNTERS_TYPE}","time_received_ns":${msToNs(c.time_received_ms)}`;
  for (const [k, v] of Object.entries(c)) {
    if (k === "type" || k === "time_received_ms") continue;
    if (typeof v === "string") s += `,${JSON.stringify(k)}:${JSON.stringify(v)}`;
    else if (typeof v === "bigint" || typeof v === "number" || typeof v === "boolean")
      s += `,${JSON.stringify(k)}:${v}`;
  }
  return `${s}}`;
}

export function encodeCountersLines(records: readonly InterfaceCounters[]): Uint8Array {
  let s = "";
  for (const c of records) s += `${encodeCountersJson(c)}\n`;
  return Buffer.from(s, "utf8");
}

/**
 * The decoder registry: one line per protocol. The decoder front (decoder.ts) tries each entry's
 * `matches` in this order; the protocol names (DecodeError.protocol, stats.byProtocol, metrics labels) and
 * the flow types (FlowRecord.type) are derived from it. Adding a protocol is one file plus one line here.
 */
import { ipfix } from "./ipfix.ts";
import { netflow5 } from "./netflow5.ts";
import { netflow9 } from "./netflow9.ts";
import { sflow5 } from "./sflow5.ts";

export const DECODERS = [netflow5, netflow9, ipfix, sflow5] as const;

/** A protocol of the registry, or "unknown" for a datagram none of them matches. */
export type ProtocolName = (typeof DECODERS)[number]["name"] | "unknown";
/** FlowRecord.type values. */
export type FlowType = (typeof DECODERS)[number]["flowType"];

export const PROTOCOL_NAMES: readonly ProtocolName[] = [...DECODERS.map((d) => d.name), "unknown"];
export const FLOW_TYPES: readonly FlowType[] = DECODERS.map((d) => d.flowType);

/**
 * The sink registry: one line per sink. `findSink` picks the definition for a configured URI by its scheme
 * (the text before the first colon).
 */
import { ConfigError } from "../core/errors.ts";
import { clarionHttpSink, flowsV1HttpSink } from "./http.ts";
import { jsonlSink } from "./jsonl.ts";
import { kafkaSink } from "./kafka.ts";
import { parquetSink } from "./parquet.ts";
import { sqliteSink } from "./sqlite/sink.ts";
import { tailSink } from "./tail.ts";
import type { SinkDefinition } from "./types.ts";

export const SINKS: readonly SinkDefinition[] = [
  jsonlSink,
  sqliteSink,
  clarionHttpSink,
  flowsV1HttpSink,
  kafkaSink,
  tailSink,
  parquetSink,
];

/** The definition whose schemes include the URI's scheme; throws listing the known schemes otherwise. */
export function findSink(uri: string): SinkDefinition {
  const colon = uri.indexOf(":");
  const scheme = colon > 0 ? uri.slice(0, colon).toLowerCase() : "";
  for (const def of SINKS) if (def.schemes.includes(scheme)) return def;
  const known = SINKS.flatMap((d) => d.schemes.map((s) => `${s}:`)).join(", ");
  throw new ConfigError(
    "sink",
    `${scheme === "" ? `no scheme in sink URI "${uri}"` : `unknown sink scheme "${scheme}:" in "${uri}"`}; known: ${known}`,
  );
}

/**
 * Line-framed JSON request bodies shared by the HTTP encodings (flows.v1, Clarion).
 *
 * Grammar (a valid JSON document whose line breaks are framing; JSON strings never hold a raw newline):
 * ```
 * body    = header "\n" record *( ",\n" record ) "\n" footer
 * header  = "{" ...members... "\"records\":["      (one line)
 * footer  = "]}"
 * record  = one JSON object on one line
 * ```
 * The body is sent as is (no copy at send time), and a 413 can split it in half at the record level without
 * knowing the encoding: `splitBody` keeps the header and footer and divides the record lines.
 */
import { gunzipSync } from "node:zlib";

/** A JSON string literal; hand-built for the common case (no quote, backslash, control or surrogate). */
export function jsonString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return `"${s}"`;
}

/** Exact decimal for a counter: numbers are integral, bigints render without loss. */
export function jsonCounter(v: number | bigint): string {
  return typeof v === "bigint" ? v.toString() : Number.isFinite(v) ? String(v) : "0";
}

/** Assemble a body from its header line (ending with `[`) and one-line records. */
export function assembleBody(header: string, records: readonly string[]): string {
  return `${header}\n${records.join(",\n")}\n]}`;
}

const NL = 0x0a;

/** True when the bytes are a gzip stream (magic 1f 8b); JSON bodies start with `{`. */
export function isGzip(data: Uint8Array): boolean {
  return data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b;
}

/** The plain body (gunzipped when needed). */
export function plainBody(data: Uint8Array): Buffer {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return isGzip(buf) ? gunzipSync(buf) : buf;
}

/**
 * Split a line-framed body into two bodies of half the records each (first half gets the smaller count).
 * Returns null when the body holds fewer than two records or is not line-framed. Output is uncompressed.
 */
export function splitBody(data: Uint8Array): [Buffer, Buffer, number, number] | null {
  const body = plainBody(data);
  const first = body.indexOf(NL);
  const last = body.lastIndexOf(NL);
  if (first < 0 || last <= first) return null;
  const header = body.subarray(0, first + 1); // includes "\n"
  const footer = body.subarray(last); // "\n]}"
  const starts: number[] = [];
  let i = first + 1;
  while (i < last) {
    starts.push(i);
    const nl = body.indexOf(NL, i);
    if (nl < 0 || nl > last) break;
    i = nl + 1;
  }
  const n = starts.length;
  if (n < 2) return null;
  const half = n >> 1;
  const mid = starts[half]!;
  // Records of the first half end just before the ",\n" preceding starts[half].
  const firstRecords = body.subarray(starts[0], mid - 2);
  const secondRecords = body.subarray(mid, last);
  return [
    Buffer.concat([header, firstRecords, footer]),
    Buffer.concat([header, secondRecords, footer]),
    half,
    n - half,
  ];
}

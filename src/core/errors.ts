/**
 * The one error the decoders throw: malformed input. Anything else escaping a decoder is a bug.
 * Codes are a closed list so metrics and logs can count them by name.
 */
export const DECODE_ERROR_CODES = [
  "TRUNCATED", // a length field points past the end of the datagram
  "BAD_VERSION", // the version field names no protocol we decode
  "BAD_LENGTH", // a header length is inconsistent (shorter than its own header, longer than the datagram)
  "BAD_TEMPLATE", // a template or options template record is malformed
  "BAD_SET_ID", // a set/FlowSet id that is reserved or otherwise invalid
  "BAD_RECORD", // a data record is malformed (bad variable-length encoding, bad value for its type)
  "BAD_SAMPLE", // an sFlow sample or record is malformed
  "UNSUPPORTED", // well formed, but a protocol or feature we do not decode
  "INTERNAL", // a bug in a decoder (an exception that is not a DecodeError), reported instead of crashing
] as const;

export type DecodeErrorCode = (typeof DECODE_ERROR_CODES)[number];

// The protocol names come from the decoder registry (a type-only import: no runtime dependency).
import type { ProtocolName } from "../protocols/index.ts";

export type { ProtocolName };

export class DecodeError extends Error {
  readonly code: DecodeErrorCode;
  readonly protocol: ProtocolName;
  readonly exporter: string;
  readonly offset: number;

  constructor(
    code: DecodeErrorCode,
    message: string,
    protocol: ProtocolName,
    exporter: string,
    offset: number,
  ) {
    super(`${protocol} from ${exporter || "?"} at offset ${offset}: ${code}: ${message}`);
    this.name = "DecodeError";
    this.code = code;
    this.protocol = protocol;
    this.exporter = exporter;
    this.offset = offset;
  }
}

/** Raised by configuration parsing: names the key (flag, variable or file key) and the value. */
export class ConfigError extends Error {
  readonly key: string;
  constructor(key: string, message: string) {
    super(`${key}: ${message}`);
    this.name = "ConfigError";
    this.key = key;
  }
}

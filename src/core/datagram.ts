/** One UDP payload as received, with where and when it came from. */
export interface Datagram {
  /** The UDP payload. Decoders read it synchronously and keep no reference after returning. */
  payload: Buffer;
  /** Exporter (source) IP address as text, IPv4 dotted or IPv6 compressed; IPv4-mapped IPv6 is unmapped. */
  exporter: string;
  /** Exporter source UDP port (0 when unknown, e.g. --raw files). */
  port: number;
  /** Wall-clock receive time, milliseconds since the Unix epoch. */
  receivedAtMs: number;
  /** Name of the listener that took it (e.g. "udp:2055"); "" when not from a socket. */
  listener: string;
}

/** Strip the IPv4-mapped prefix so one exporter has one name whatever socket family saw it. */
export function normalizeAddress(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

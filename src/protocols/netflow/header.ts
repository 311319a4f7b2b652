/** The message header fields of NetFlow v9 and IPFIX that their sets are decoded with. */
export interface MessageHeader {
  version: 9 | 10;
  domain: number;
  exportMs: number;
  /** sysUptime in ms (v9); -1 for IPFIX. */
  uptimeMs: number;
  sequence: number;
}

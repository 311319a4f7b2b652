/**
 * The benchmark traffic shared by bench:decode and bench:ingest: a 20-field IPv4 template (IPFIX with
 * millisecond times, NetFlow v9 with uptime times) and the values of record i.
 */
import type { FieldSpec } from "../test/helpers/netflow-builder.ts";

const BASE: FieldSpec[] = [
  [8, 4],
  [12, 4],
  [7, 2],
  [11, 2],
  [4, 1],
  [1, 8],
  [2, 8],
  [10, 4],
  [14, 4],
  [6, 1],
  [5, 1],
  [16, 4],
  [17, 4],
  [9, 1],
  [13, 1],
  [15, 4],
  [61, 1],
  [58, 2],
];
export const IPFIX_FIELDS: FieldSpec[] = [...BASE, [152, 8], [153, 8]];
export const V9_FIELDS: FieldSpec[] = [...BASE, [22, 4], [21, 4]];

/** Values of record i (addresses, ports and counters vary with i; wraps for large i). */
export function values(i: number, start: number, end: number): (number | string)[] {
  return [
    `10.${(i >> 8) & 255}.${i & 255}.1`,
    `192.168.${i & 255}.${(i * 7) & 255}`,
    1024 + (i & 0xefff),
    443,
    6,
    1500 * ((i & 1023) + 1),
    (i & 1023) + 1,
    1,
    2,
    0x18,
    0,
    65000,
    65001,
    24,
    16,
    "10.0.0.254",
    0,
    100,
    start,
    end,
  ];
}

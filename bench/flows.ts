/**
 * The benchmark traffic shared by bench:decode and bench:ingest: a 20-field IPv4 template (IPFIX with
 * millisecond times, NetFlow v9 with uptime times) and the values of record i; NetFlow v5; and sFlow v5
 * (`sflow`: compact flow samples of an Ethernet/IPv4/TCP raw header with the switch and router records,
 * as hsflowd and switches send them).
 */
import {
  type FieldSpec,
  ipfixPacket,
  ipfixTemplate,
  record,
  set,
  v5Packet,
  v9Packet,
  v9Template,
} from "../test/helpers/netflow-builder.ts";
import {
  datagram,
  eth,
  extendedRouter,
  extendedSwitch,
  flowSample,
  ipv4,
  rawHeader,
  tcp,
} from "../test/helpers/sflow-builder.ts";

export type Protocol = "ipfix" | "v9" | "v5" | "sflow";

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

/** Records per data datagram. */
export const RECORDS = { ipfix: 25, v9: 25, v5: 30, sflow: 10 } as const;

/** Datagrams for one exporter: templates first (sent again every loop of the capture), then data. */
export function exporterDatagrams(
  p: Protocol,
  exporter: number,
  data: number,
): { payload: Buffer; flows: number }[] {
  const out: { payload: Buffer; flows: number }[] = [];
  const n = RECORDS[p];
  const now = Math.floor(Date.now() / 1000);
  if (p === "ipfix")
    out.push({
      payload: ipfixPacket([set(2, ipfixTemplate(256, IPFIX_FIELDS))], { exportTime: now }),
      flows: 0,
    });
  if (p === "v9")
    out.push({ payload: v9Packet([set(0, v9Template(256, V9_FIELDS))], { unixSecs: now }), flows: 0 });
  for (let d = 0; d < data; d++) {
    const base = (exporter * data + d) * n;
    if (p === "ipfix") {
      const body: number[] = [];
      for (let i = 0; i < n; i++)
        body.push(...record(IPFIX_FIELDS, values(base + i, now * 1000 - 5000, now * 1000 - 1000)));
      out.push({ payload: ipfixPacket([set(256, body)], { exportTime: now, sequence: d * n }), flows: n });
    } else if (p === "v9") {
      const body: number[] = [];
      for (let i = 0; i < n; i++) body.push(...record(V9_FIELDS, values(base + i, 95_000, 99_000)));
      out.push({ payload: v9Packet([set(256, body)], { unixSecs: now, sequence: d }), flows: n });
    } else if (p === "sflow") {
      const samples = Array.from({ length: n }, (_, i) => {
        const [src, dst, sport] = values(base + i, 0, 0) as [string, string, number];
        const header = Buffer.concat([
          eth({ etype: 0x0800 }),
          ipv4({ src, dst, proto: 6, ttl: 64 }),
          tcp({ sport, dport: 443, flags: 0x18 }),
        ]);
        return flowSample({
          sequence: d * n + i + 1,
          rate: 1000,
          pool: (d * n + i + 1) * 1000,
          input: 1,
          output: 2,
          records: [
            rawHeader(header, { frameLength: 1500 }),
            extendedSwitch({ srcVlan: 100, dstVlan: 100 }),
            extendedRouter({ nextHop: "10.0.0.254", srcMask: 24, dstMask: 16 }),
          ],
        });
      });
      out.push({
        payload: datagram({ agent: `10.9.0.${exporter + 1}`, sequence: d + 1, uptime: 100_000 + d, samples }),
        flows: n,
      });
    } else {
      const flows = Array.from({ length: n }, (_, i) => ({
        src: `10.${((base + i) >> 16) & 255}.${((base + i) >> 8) & 255}.${(base + i) & 255}`,
        dst: `192.168.1.${i}`,
        packets: i + 1,
        bytes: 1500 * (i + 1),
        first: 90_000,
        last: 99_000,
        srcPort: 1024 + i,
        dstPort: 80,
        proto: 6,
      }));
      out.push({ payload: v5Packet(flows, { unixSecs: now, sequence: d * n }), flows: n });
    }
  }
  return out;
}

/** A datagram of the bench traffic with the exporter address it comes from. */
export interface BenchDatagram {
  payload: Buffer;
  exporter: string;
}

/**
 * The bench traffic as one sequence: 16 exporters (10.9.0.1–16), 64 data datagrams each after their
 * template, interleaved exporter by exporter as the ingest bench's sender sends them.
 */
export function benchDatagrams(p: Protocol): BenchDatagram[] {
  const per = Array.from({ length: 16 }, (_, e) => exporterDatagrams(p, e, 64));
  const out: BenchDatagram[] = [];
  for (let r = 0; r < 65; r++)
    for (let e = 0; e < 16; e++) {
      const d = per[e]![r];
      if (d) out.push({ payload: d.payload, exporter: `10.9.0.${e + 1}` });
    }
  return out;
}

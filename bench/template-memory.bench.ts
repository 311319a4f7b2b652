/**
 * What a learned template really costs in memory, to keep the template budget's estimate honest
 * (src/protocols/state/templates.ts TEMPLATE_BYTES + FIELD_BYTES per field, bounded by templateMaxBytes).
 *
 * One FlowDecoder in this process learns `--exporters` × `--templates` NetFlow v9 templates of `--fields`
 * fields; the bench prints the V8 heap and RSS growth per template next to the estimate.
 *
 * Run: node --expose-gc bench/template-memory.bench.ts [--exporters 1000] [--templates 10] [--fields 20]
 */

import { FlowDecoder } from "../src/protocols/decoder.ts";
import { FIELD_BYTES, TEMPLATE_BYTES } from "../src/protocols/state/templates.ts";

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const EXPORTERS = arg("exporters", 1000);
const TEMPLATES = arg("templates", 10);
const FIELDS = arg("fields", 20);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc");

const u16 = (v: number) => [(v >>> 8) & 255, v & 255];
const u32 = (v: number) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
const IDS = [1, 2, 4, 5, 6, 7, 8, 10, 11, 12, 14, 15, 16, 17, 21, 22, 9, 13, 61, 89];

function templatePacket(): Buffer {
  const body: number[] = [];
  for (let t = 0; t < TEMPLATES; t++) {
    body.push(...u16(256 + t), ...u16(FIELDS));
    for (let i = 0; i < FIELDS; i++) {
      const id = IDS[i % IDS.length]!;
      body.push(...u16(id), ...u16(id === 8 || id === 12 || id === 15 ? 4 : 2));
    }
  }
  const set = [...u16(0), ...u16(body.length + 4), ...body];
  return Buffer.from([
    ...u16(9),
    ...u16(TEMPLATES),
    ...u32(1000),
    ...u32(1_700_000_000),
    ...u32(1),
    ...u32(0),
    ...set,
  ]);
}

const payload = templatePacket();
const decoder = new FlowDecoder({});
const handler = { flow: () => {}, counters: () => {} };
gc();
const before = process.memoryUsage();
for (let e = 0; e < EXPORTERS; e++) {
  const exporter = `10.${(e >> 16) & 255}.${(e >> 8) & 255}.${e & 255}`;
  decoder.decode({ payload, exporter, port: 2055, receivedAtMs: Date.now(), listener: "udp:2055" }, handler);
}
gc();
const after = process.memoryUsage();
const n = decoder.stats.templatesLearned;
console.log(
  JSON.stringify({
    exporters: EXPORTERS,
    templates: n,
    fields: FIELDS,
    heapBytesPerTemplate: Math.round((after.heapUsed - before.heapUsed) / n),
    rssBytesPerTemplate: Math.round((after.rss - before.rss) / n),
    estimateBytesPerTemplate: TEMPLATE_BYTES + FIELD_BYTES * FIELDS,
  }),
);

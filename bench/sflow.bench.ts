/**
 * sFlow v5 decoder throughput: one realistic datagram (8 flow samples, each a 128-byte Ethernet/IPv4/TCP
 * header + extended switch, as a switch ASIC sends them) decoded in a loop for ~2 s with a no-op handler.
 *
 *   node bench/sflow.bench.ts
 */
import { fileURLToPath } from "node:url";
import type { Datagram } from "../src/core/datagram.ts";
import type { FlowRecord } from "../src/core/flow.ts";
import { emptyStats } from "../src/protocols/decoder.ts";
import { decodeSflow5, type SflowContext } from "../src/protocols/sflow5.ts";
import {
  datagram,
  eth,
  extendedSwitch,
  flowSample,
  ipv4,
  padTo,
  rawHeader,
  tcp,
} from "../test/helpers/sflow-builder.ts";

const SAMPLES_PER_DATAGRAM = 8;

function buildDatagram(): Buffer {
  const samples: Buffer[] = [];
  for (let i = 0; i < SAMPLES_PER_DATAGRAM; i++) {
    const packet = padTo(
      Buffer.concat([
        eth({ tags: [{ tpid: 0x8100, vid: 100 + i }], etype: 0x0800 }),
        ipv4({ src: `10.0.${i}.1`, dst: `192.168.${i}.2`, proto: 6, ttl: 60, id: 1000 + i, flags: 2 }),
        tcp({ sport: 40000 + i, dport: 443, flags: 0x18 }),
      ]),
      128,
    );
    samples.push(
      flowSample({
        sequence: i,
        rate: 1024,
        input: 10 + i,
        output: 20 + i,
        records: [
          rawHeader(packet, { frameLength: 1514 }),
          extendedSwitch({ srcVlan: 100 + i, dstVlan: 200 + i }),
        ],
      }),
    );
  }
  return datagram({ agent: "192.0.2.1", sequence: 1, samples });
}

export function benchSflow(durationMs = 2000): { samplesPerSec: number; datagramsPerSec: number } {
  const dg: Datagram = {
    payload: buildDatagram(),
    exporter: "192.0.2.1",
    port: 6343,
    receivedAtMs: Date.now(),
    listener: "bench",
  };
  const ctx: SflowContext = {
    stats: emptyStats(),
    collectElements: false,
    scaleBySampling: false,
    switchIdFromIp: true,
  };
  let seen = 0;
  let sink = 0;
  const handler = {
    flow(r: FlowRecord): void {
      seen++;
      sink ^= r.src_port;
    },
  };
  // warm-up: let the JIT settle before timing
  for (let i = 0; i < 20_000; i++) decodeSflow5(dg, ctx, handler);
  seen = 0;
  let datagrams = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    for (let i = 0; i < 1000; i++) decodeSflow5(dg, ctx, handler);
    datagrams += 1000;
    elapsed = performance.now() - start;
  } while (elapsed < durationMs);
  if (seen !== datagrams * SAMPLES_PER_DATAGRAM)
    throw new Error(`expected ${datagrams * 8} flows, saw ${seen}`);
  if (sink === -1) console.log(sink); // keep the handler's work observable
  const seconds = elapsed / 1000;
  return { samplesPerSec: seen / seconds, datagramsPerSec: datagrams / seconds };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const r = benchSflow();
  console.log(
    `sflow5 decode: ${Math.round(r.samplesPerSec).toLocaleString("en")} flow samples/s, ` +
      `${Math.round(r.datagramsPerSec).toLocaleString("en")} datagrams/s ` +
      `(${SAMPLES_PER_DATAGRAM} samples × 128-byte Eth/802.1Q/IPv4/TCP header + extended switch)`,
  );
}

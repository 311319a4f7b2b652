/**
 * GoFlow2 JSON encoder throughput: records/s on one core for a typical IPv4 record, with the line-buffer
 * variant (what the jsonl/kafka encoders run). Run: node bench/encode.bench.ts
 */
import { FlowRecord } from "../src/core/flow.ts";
import { encodeGoflow2, Goflow2Writer } from "../src/encode/goflow2.ts";

export function typicalRecord(i = 0): FlowRecord {
  const r = new FlowRecord();
  r.type = "IPFIX";
  r.time_received_ms = 1767324720787 + i;
  r.sequence_num = 65361 + i;
  r.sampling_rate = 0;
  r.sampler_address = "192.168.88.1";
  r.time_flow_start_ms = 1767324720000;
  r.time_flow_end_ms = 1767324720000;
  r.bytes = 143 + (i & 1023);
  r.packets = 1 + (i & 15);
  r.src_addr = `192.168.89.${i & 255}`;
  r.dst_addr = "192.168.88.30";
  r.etype = 0x0800;
  r.proto = 17;
  r.src_port = 53;
  r.dst_port = 55743;
  r.in_if = 11;
  r.out_if = 12;
  r.src_mac = 0x426164555342;
  r.dst_mac = 0x486f73745043;
  r.src_net = 24;
  r.dst_net = 24;
  r.next_hop = "0.0.0.0";
  r.switch_id = "192.168.88.1";
  return r;
}

/** Encodes `seconds` worth of 1000-record batches into lines; returns records/s. */
export function benchEncode(seconds = 2): number {
  const batch = Array.from({ length: 1000 }, (_, i) => typicalRecord(i));
  const writer = new Goflow2Writer();
  let bytes = 0;
  for (let i = 0; i < 200; i++) bytes += writer.lines(batch).length; // warm up
  let n = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  while (performance.now() < deadline) {
    bytes += writer.lines(batch).length;
    n += batch.length;
  }
  const rate = n / ((performance.now() - start) / 1000);
  if (bytes < 0) console.log(bytes);
  return rate;
}

/** Strings only (no UTF-8 buffer), for comparison. */
export function benchEncodeStrings(seconds = 1): number {
  const batch = Array.from({ length: 1000 }, (_, i) => typicalRecord(i));
  const writer = new Goflow2Writer();
  let len = 0;
  let n = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  while (performance.now() < deadline) {
    for (const r of batch) len += writer.line(r).length;
    n += batch.length;
  }
  if (len < 0) console.log(len);
  return n / ((performance.now() - start) / 1000);
}

if (import.meta.main) {
  const lines = benchEncode();
  const strings = benchEncodeStrings();
  const line = encodeGoflow2(typicalRecord());
  console.log(`goflow2 lines (1000-record buffers): ${Math.round(lines).toLocaleString("en")} records/s`);
  console.log(`goflow2 strings only:               ${Math.round(strings).toLocaleString("en")} records/s`);
  console.log(`line size: ${line.length + 1} bytes`);
}

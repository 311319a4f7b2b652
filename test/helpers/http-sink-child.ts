/**
 * Child process for the SIGKILL test (test/sinks/http.test.ts): runs an HTTP sink on a data directory.
 * env CHILD_CONFIG = {"uri", "dataDir", "options", "write": [from, count, batch] | null}
 * Writes the flows (ids from..from+count-1) in batches, prints "WRITTEN" once every write() resolved, then
 * prints "DRAINED" when the spool is empty. Runs until killed.
 */
import { FlowRecord } from "../../src/core/flow.ts";
import { createHttpEncoder, createHttpSink } from "../../src/sinks/http.ts";

const cfg = JSON.parse(process.env.CHILD_CONFIG ?? "{}") as {
  uri: string;
  dataDir: string;
  options: Record<string, unknown>;
  write: [number, number, number] | null;
};
const logger = { info() {}, warn() {}, error() {} };
const sink = await createHttpSink(cfg.uri, { dataDir: cfg.dataDir, logger, options: cfg.options });
const enc = createHttpEncoder(cfg.uri, cfg.options);
if (cfg.write) {
  const [from, count, batch] = cfg.write;
  for (let i = from; i < from + count; i += batch) {
    const recs: FlowRecord[] = [];
    for (let j = i; j < Math.min(from + count, i + batch); j++) {
      const r = new FlowRecord();
      r.src_addr = "10.0.0.1";
      r.dst_addr = "10.0.0.2";
      r.bytes = j;
      r.packets = 1;
      r.sampler_address = "192.0.2.1";
      r.time_received_ms = Date.now();
      recs.push(r);
    }
    await sink.write(enc.encode(recs));
  }
  process.stdout.write("WRITTEN\n");
}
const t = setInterval(() => {
  if (sink.stats().spoolBatches === 0) {
    process.stdout.write("DRAINED\n");
    clearInterval(t);
  }
}, 10);
setInterval(() => {}, 1000);

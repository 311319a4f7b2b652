import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, describe, it } from "node:test";
import { FlowRecord } from "../../src/core/flow.ts";
import { encodeGoflow2 } from "../../src/encode/goflow2.ts";
import { findSink } from "../../src/sinks/index.ts";
import { JsonlSink } from "../../src/sinks/jsonl.ts";

const dir = mkdtempSync(join(tmpdir(), "clarion-jsonl-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const quiet = { info() {}, warn() {}, error() {} };

function record(i: number): FlowRecord {
  const r = new FlowRecord();
  r.time_received_ms = 1700000000000 + i;
  r.sampler_address = "192.0.2.1";
  r.src_addr = "10.0.0.1";
  r.dst_addr = "10.0.0.2";
  r.etype = 0x0800;
  r.proto = 17;
  r.src_port = i;
  r.switch_id = "192.0.2.1";
  return r;
}

describe("jsonl sink", () => {
  it("appends GoFlow2 lines to a file, creating its directory, and reopens after a rename", async () => {
    const path = join(dir, "sub", "dir", "flows.jsonl");
    const uri = `jsonl:${path}`;
    const def = findSink(uri);
    const enc = def.createEncoder(uri, {});
    const sink = await def.create(uri, { dataDir: dir, logger: quiet, options: {} });
    const batch = enc.encode([record(1), record(2)]);
    assert.equal(batch.records, 2);
    assert.equal(batch.oldestMs, 1700000000001);
    await sink.write(batch);
    await sink.flush();
    assert.equal(readFileSync(path, "utf8"), `${encodeGoflow2(record(1))}\n${encodeGoflow2(record(2))}\n`);
    // logrotate: rename, then SIGHUP → reopen the same path
    renameSync(path, `${path}.1`);
    await sink.write(enc.encode([record(3)]));
    await sink.reopen!();
    await sink.write(enc.encode([record(4)]));
    await sink.close();
    assert.equal(readFileSync(`${path}.1`, "utf8").split("\n").length, 4);
    assert.equal(readFileSync(path, "utf8"), `${encodeGoflow2(record(4))}\n`);
  });

  it("creates its file 0640 (flow data: not world-readable), even under umask 000", async () => {
    const old = process.umask(0);
    try {
      const path = join(dir, "mode.jsonl");
      const uri = `jsonl:${path}`;
      const def = findSink(uri);
      const sink = await def.create(uri, { dataDir: dir, logger: quiet, options: {} });
      await sink.write(def.createEncoder(uri, {}).encode([record(1)]));
      await sink.close();
      assert.equal(statSync(path).mode & 0o777, 0o640);
    } finally {
      process.umask(old);
    }
  });

  it("fails fast naming an unwritable path", async () => {
    const file = join(dir, "plain-file");
    writeFileSync(file, "");
    const uri = `jsonl:${file}/x.jsonl`;
    await assert.rejects(
      findSink(uri).create(uri, { dataDir: dir, logger: quiet, options: {} }),
      /plain-file\/x\.jsonl/,
    );
    assert.throws(() => findSink("jsonl:").createEncoder("jsonl:", {}), /path/);
  });

  it("honours backpressure on a stream", async () => {
    const stream = new PassThrough({ highWaterMark: 16 });
    const sink = JsonlSink.fromStream("jsonl:-", stream, quiet);
    const enc = findSink("jsonl:-").createEncoder("jsonl:-", {});
    let done = false;
    const p = sink.write(enc.encode([record(1)])).then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(done, false, "waits for drain while nobody reads");
    let got = "";
    stream.on("data", (c: Buffer) => {
      got += c.toString();
    });
    await p;
    await sink.flush();
    assert.equal(got, `${encodeGoflow2(record(1))}\n`);
  });

  it("survives a closed stdout pipe (EPIPE): logs once, counts, keeps running", () => {
    const script = `
      import { FlowRecord } from ${JSON.stringify(new URL("../../src/core/flow.ts", import.meta.url).href)};
      import { jsonlSink } from ${JSON.stringify(new URL("../../src/sinks/jsonl.ts", import.meta.url).href)};
      let logged = 0;
      const logger = { info() {}, warn() {}, error() { logged++; } };
      const sink = await jsonlSink.create("jsonl:-", { dataDir: ".", logger, options: {} });
      const enc = jsonlSink.createEncoder("jsonl:-", {});
      const recs = Array.from({ length: 200 }, () => new FlowRecord());
      let rejected = 0;
      for (let i = 0; i < 300; i++) await sink.write(enc.encode(recs)).catch(() => rejected++);
      await sink.flush();
      await sink.close();
      process.stderr.write(JSON.stringify({ logged, broken: sink.broken, dropped: sink.stats.dropped, rejected, failure: sink.failure() }) + "\\n");
    `;
    const node = process.execPath;
    const r = spawnSync(
      "sh",
      ["-c", `"${node}" --input-type=module -e '${script.replace(/'/g, "'\\''")}' | head -c 1 >/dev/null`],
      {
        encoding: "utf8",
        timeout: 60_000,
      },
    );
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stderr.trim().split("\n").pop()!) as {
      logged: number;
      broken: boolean;
      dropped: number;
      rejected: number;
      failure: string | null;
    };
    assert.equal(result.broken, true);
    assert.ok(result.rejected > 0, "writes of dropped batches reject (counted as write errors)");
    assert.match(result.failure ?? "", /broken pipe/);
    assert.equal(result.logged, 1);
    assert.ok(result.dropped > 0);
  });
});

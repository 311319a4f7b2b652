/**
 * The JIT warm-up (src/inputs/warmup.ts, worker.ts warmUpPipeline): its synthetic traffic must decode
 * cleanly in every protocol (else it would warm nothing, silently), and the throwaway pipeline must leave
 * nothing behind: no archive file or directory, no batch buffer taken, nothing posted.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { FlowRecord } from "../../src/core/flow.ts";
import { createLogger } from "../../src/core/log.ts";
import { warmUpTraffic } from "../../src/inputs/warmup.ts";
import { warmUpPipeline } from "../../src/inputs/worker.ts";
import { Batcher } from "../../src/pipeline/batcher.ts";
import { batchBuffers } from "../../src/pipeline/buffer-pool.ts";
import { FlowDecoder } from "../../src/protocols/decoder.ts";
import { findSink } from "../../src/sinks/index.ts";

describe("warm-up traffic", () => {
  it("decodes without an error into flows of every protocol, IPv4 and IPv6", () => {
    const decoder = new FlowDecoder();
    const byType = new Map<string, number>();
    let v6 = 0;
    let bgp = 0;
    let ends = 0;
    for (const dg of warmUpTraffic(1_760_000_000_000)) {
      decoder.decode(dg, {
        flow: (r: FlowRecord) => {
          byType.set(r.type, (byType.get(r.type) ?? 0) + 1);
          if (r.src_addr.includes(":")) v6++;
          if (r.bgp_next_hop !== "") bgp++;
          if (r.extra !== null && "flowEndReason" in r.extra) ends++;
          assert.ok(r.bytes > 0 && r.packets > 0, `${r.type}: counters`);
          assert.notEqual(r.src_addr, "");
          assert.notEqual(r.dst_addr, "");
        },
      });
    }
    const s = decoder.stats;
    assert.deepEqual(s.errors, {});
    assert.equal(decoder.missingTemplates.stats(decoder.heldSets()).length, 0);
    assert.deepEqual(Object.fromEntries(byType), {
      IPFIX: 40 * 16,
      NETFLOW_V9: 15 * 20,
      NETFLOW_V5: 10 * 30,
      SFLOW_5: 15 * 8,
    });
    assert.equal(v6, 10 * 16, "one IPFIX data datagram in four carries IPv6 flows");
    assert.equal(bgp, 30 * 16 + 15 * 20, "IPv4 IPFIX and v9 flows carry a BGP next hop");
    assert.equal(ends, 40 * 16 + 15 * 20, "IPFIX and v9 flows carry flowEndReason");
  });
});

describe("warmUpPipeline", () => {
  it("runs every output's encoder and leaves no file behind, its batch buffers uncounted", () => {
    const dir = mkdtempSync(join(tmpdir(), "clarion-warmup-"));
    try {
      const archive = join(dir, "archive");
      const before = batchBuffers.stats;
      warmUpPipeline(
        {
          index: 0,
          outputs: [
            { uri: `parquet:${archive}`, options: {} },
            { uri: `jsonl:${join(dir, "f.jsonl")}`, options: {} },
            { uri: `sqlite:${join(dir, "f.db")}`, options: {} },
          ] as never,
          batchSize: 100,
          batchIntervalMs: 10,
          decoder: {},
          state: [],
        },
        createLogger({ level: "silent" }),
      );
      assert.deepEqual(readdirSync(dir), [], "no archive directory, no file");
      assert.equal(existsSync(archive), false);
      const after = batchBuffers.stats;
      assert.equal(after.hits, before.hits);
      assert.equal(after.misses, before.misses);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("discarding", () => {
  it("Batcher.discard drops the open batch: no flush now, none when the interval passes", async () => {
    const flushed: number[][] = [];
    const b = new Batcher<number>({ size: 10, intervalMs: 5, onBatch: (items) => flushed.push(items) });
    b.add(1);
    b.add(2);
    b.discard();
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(flushed, []);
    assert.throws(() => b.add(3), /closed/);
  });

  it("a parquet encoder with EncoderContext.discard compresses row groups into nothing", () => {
    const dir = mkdtempSync(join(tmpdir(), "clarion-warmup-pq-"));
    try {
      const uri = `parquet:${join(dir, "a")}`;
      const enc = findSink(uri).createEncoder(uri, {}, { worker: 0, discard: true });
      const decoder = new FlowDecoder();
      let flows = 0;
      for (let pass = 0; pass < 4; pass++)
        for (const dg of warmUpTraffic())
          decoder.decode(dg, {
            flow: (r) => {
              flows++;
              enc.add!(r);
            },
          });
      assert.ok(flows > 4096, "more than one (discard-sized) row group");
      assert.deepEqual(enc.poll!(true), []);
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

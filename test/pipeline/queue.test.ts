import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Fanout } from "../../src/pipeline/fanout.ts";
import { SinkQueue } from "../../src/pipeline/queue.ts";
import type { EncodedBatch, Sink } from "../../src/sinks/types.ts";

function batch(sink: string, records: number, tag = ""): EncodedBatch {
  return {
    sink,
    records,
    parts: [{ key: tag, records, data: new Uint8Array(records) }],
    oldestMs: Date.now(),
  };
}

/** A sink whose writes wait until released; records what it wrote. */
class GateSink implements Sink {
  readonly name: string;
  written: string[] = [];
  flushed = 0;
  closed = false;
  failNext = false;
  #gate: Promise<void> = Promise.resolve();
  #open: () => void = () => {};
  constructor(name: string) {
    this.name = name;
  }
  hold(): void {
    this.#gate = new Promise((r) => {
      this.#open = r;
    });
  }
  release(): void {
    this.#open();
  }
  async write(b: EncodedBatch): Promise<void> {
    await this.#gate;
    if (this.failNext) {
      this.failNext = false;
      throw new Error("boom");
    }
    this.written.push(b.parts[0]!.key);
  }
  async flush(): Promise<void> {
    this.flushed++;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

describe("SinkQueue", () => {
  it("writes batches in order and drains", async () => {
    const s = new GateSink("a");
    const q = new SinkQueue(s, 4);
    for (const t of ["1", "2", "3"]) assert.equal(q.offer(batch("a", 2, t)), true);
    await q.drain();
    assert.deepEqual(s.written, ["1", "2", "3"]);
    assert.equal(q.stats.writtenRecords, 6);
    assert.equal(q.pendingRecords, 0);
  });

  it("never waits: when full it drops the oldest queued batch and counts it", async () => {
    const s = new GateSink("a");
    s.hold();
    const dropped: string[] = [];
    const q = new SinkQueue(s, 2, { dropped: (b, reason) => dropped.push(`${b.parts[0]!.key}:${reason}`) });
    q.offer(batch("a", 1, "1")); // taken by the writer at once
    q.offer(batch("a", 1, "2"));
    q.offer(batch("a", 1, "3"));
    assert.equal(q.length, 2);
    assert.equal(q.offer(batch("a", 1, "4")), false);
    assert.deepEqual(dropped, ["2:queue_full"]);
    assert.equal(q.stats.droppedBatches.queue_full, 1);
    assert.equal(q.stats.droppedRecords.queue_full, 1);
    s.release();
    await q.drain();
    assert.deepEqual(s.written, ["1", "3", "4"]);
  });

  it("counts a failed write as write_error and goes on", async () => {
    const s = new GateSink("a");
    s.failNext = true;
    const q = new SinkQueue(s, 4);
    q.offer(batch("a", 5, "1"));
    q.offer(batch("a", 5, "2"));
    await q.drain();
    assert.deepEqual(s.written, ["2"]);
    assert.equal(q.stats.droppedRecords.write_error, 5);
    assert.ok(q.stats.lastErrorMs > 0);
  });

  it("releases a batch after a successful write, only for sinks that release their batches", async () => {
    for (const releases of [true, false, undefined]) {
      const s = new GateSink("a") as GateSink & { releasesBatches?: boolean };
      if (releases !== undefined) s.releasesBatches = releases;
      s.failNext = true;
      const released: string[] = [];
      const q = new SinkQueue(s, 4, { release: (b) => released.push(b.parts[0]!.key) });
      q.offer(batch("a", 1, "1")); // fails: the sink may still hold it, never released
      q.offer(batch("a", 1, "2"));
      await q.drain();
      assert.deepEqual(released, releases === true ? ["2"] : [], `releasesBatches ${releases}`);
    }
  });

  it("close drains and closes the sink (which flushes itself), then refuses batches", async () => {
    const s = new GateSink("a");
    s.hold();
    const q = new SinkQueue(s, 4);
    q.offer(batch("a", 1, "1"));
    q.offer(batch("a", 1, "2"));
    const closing = q.close();
    s.release();
    await closing;
    assert.deepEqual(s.written, ["1", "2"]);
    assert.equal(s.flushed, 0); // Sink.close() flushes: no second wait for the destination
    assert.equal(s.closed, true);
    assert.equal(q.offer(batch("a", 1, "3")), false);
    assert.equal(q.stats.droppedBatches.closed, 1);
  });
});

describe("Fanout", () => {
  it("routes by sink name and counts unrouted batches", async () => {
    const a = new GateSink("a");
    const b = new GateSink("b");
    const f = new Fanout([new SinkQueue(a, 2), new SinkQueue(b, 2)]);
    f.offer(batch("a", 1, "x"));
    f.offer(batch("b", 1, "y"));
    assert.equal(f.offer(batch("c", 1, "z")), false);
    assert.equal(f.unrouted, 1);
    assert.equal(f.unroutedRecords, 1);
    const errors = await f.close();
    assert.deepEqual(errors, []);
    assert.deepEqual(a.written, ["x"]);
    assert.deepEqual(b.written, ["y"]);
    assert.ok(a.closed && b.closed);
  });
});

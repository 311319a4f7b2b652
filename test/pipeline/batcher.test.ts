import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Batcher } from "../../src/pipeline/batcher.ts";

describe("Batcher", () => {
  it("hands over a batch when it reaches its size", () => {
    const out: number[][] = [];
    const b = new Batcher<number>({ size: 3, intervalMs: 60_000, onBatch: (x) => out.push(x) });
    for (let i = 0; i < 7; i++) b.add(i);
    assert.deepEqual(out, [
      [0, 1, 2],
      [3, 4, 5],
    ]);
    assert.equal(b.length, 1);
    b.close();
    assert.deepEqual(out[2], [6]);
    assert.throws(() => b.add(9));
  });

  it("hands over a partial batch when the interval passes", async () => {
    const out: number[][] = [];
    const b = new Batcher<number>({ size: 100, intervalMs: 30, onBatch: (x) => out.push(x) });
    b.add(1);
    b.add(2);
    assert.equal(out.length, 0);
    for (let i = 0; i < 50 && out.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(out, [[1, 2]]);
    b.close();
  });

  it("flush on empty does nothing and a size batch cancels the timer", async () => {
    const out: number[][] = [];
    const b = new Batcher<number>({ size: 2, intervalMs: 20, onBatch: (x) => out.push(x) });
    b.flush();
    b.add(1);
    b.add(2);
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(out, [[1, 2]]);
  });
});

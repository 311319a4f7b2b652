import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MessageChannel } from "node:worker_threads";
import { BufferPool, batchBuffers, recyclables, transferables } from "../../src/pipeline/buffer-pool.ts";

describe("BufferPool", () => {
  it("hands out a view of exactly the bytes asked for, at offset 0 of a larger owned buffer", () => {
    const pool = new BufferPool();
    const v = pool.take(1000);
    assert.equal(v.byteOffset, 0);
    assert.equal(v.length, 1000);
    assert.ok(v.buffer.byteLength >= 1000);
    assert.ok(pool.owns(v.buffer));
    assert.equal(pool.owns(new ArrayBuffer(8)), false);
    assert.deepEqual(pool.stats, { hits: 0, misses: 1, returned: 0, discarded: 0, free: 0, freeBytes: 0 });
  });

  it("reuses the smallest free buffer that fits, and allocates when none does", () => {
    const pool = new BufferPool();
    const small = pool.take(100).buffer as ArrayBuffer; // 64 KiB
    const big = pool.take(1 << 20).buffer as ArrayBuffer; // > 1 MiB
    pool.give(big);
    pool.give(small);
    assert.equal(pool.take(10).buffer, small);
    assert.equal(pool.take(70_000).buffer, big);
    const fresh = pool.take(10);
    assert.notEqual(fresh.buffer, small);
    assert.notEqual(fresh.buffer, big);
    const s = pool.stats;
    assert.equal(s.hits, 2);
    assert.equal(s.misses, 3);
    assert.equal(s.free, 0);
  });

  it("discards detached buffers and, when full, the smallest ones", () => {
    const pool = new BufferPool(2);
    const a = pool.take(10).buffer as ArrayBuffer;
    const { port1 } = new MessageChannel();
    port1.postMessage(null, [a]); // transferred: detached here
    port1.close();
    assert.equal(a.byteLength, 0);
    pool.give(a);
    assert.equal(pool.stats.discarded, 1);
    pool.give(new ArrayBuffer(300_000));
    pool.give(new ArrayBuffer(100_000));
    pool.give(new ArrayBuffer(200_000));
    const s = pool.stats;
    assert.equal(s.free, 2);
    assert.equal(s.freeBytes, 500_000);
    assert.equal(s.discarded, 2);
    // a buffer given back (from another thread) becomes the pool's own
    assert.equal(pool.take(250_000).buffer.byteLength, 300_000);
  });

  it("keeps at most maxBytes free", () => {
    const pool = new BufferPool(16, 1_000_000);
    for (let i = 0; i < 5; i++) pool.give(new ArrayBuffer(400_000));
    assert.equal(pool.stats.free, 2);
    assert.ok(pool.stats.freeBytes <= 1_000_000);
  });
});

describe("transferables / recyclables (the two ends of the ownership rule)", () => {
  it("a worker transfers whole buffers and its pool's buffers, each once; never a shared slice", () => {
    const pooled = batchBuffers.take(100); // a view over part of a larger pooled buffer
    const whole = new Uint8Array(new ArrayBuffer(10));
    const slice = Buffer.from("small"); // a view into Node's shared Buffer pool
    const list = transferables({
      parts: [{ data: pooled }, { data: whole }, { data: slice }, { data: pooled }],
    });
    assert.deepEqual(list, [pooled.buffer, whole.buffer]);
  });

  it("the main thread sends back each buffer once, not detached ones nor views at an offset", () => {
    const a = new ArrayBuffer(16);
    const detachedView = new Uint8Array(new ArrayBuffer(8));
    structuredClone(detachedView.buffer, { transfer: [detachedView.buffer] }); // the view now covers 0 bytes
    const list = recyclables({
      parts: [
        { data: new Uint8Array(a, 0, 4) },
        { data: new Uint8Array(a, 0, 8) },
        { data: new Uint8Array(new ArrayBuffer(16), 4, 4) },
        { data: detachedView },
      ],
    });
    assert.deepEqual(list, [a]);
  });

  it("own: a buffer of the pool's outside its counts, transferable when a view covers only its start", () => {
    const before = batchBuffers.stats;
    const v = batchBuffers.own(100_000);
    assert.ok(v.length >= 100_000);
    assert.deepEqual(transferables({ parts: [{ data: new Uint8Array(v.buffer, 0, 10) }] }), [v.buffer]);
    const after = batchBuffers.stats;
    assert.equal(after.hits, before.hits);
    assert.equal(after.misses, before.misses);
    assert.equal(new BufferPool().owns(v.buffer), false, "another pool does not own it");
  });
});

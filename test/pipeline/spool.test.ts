import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { Spool, type SpooledEntry, type SpoolOptions } from "../../src/pipeline/spool.ts";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "spool-test-"));
  dirs.push(d);
  return d;
}

function entry(i: number, size = 100) {
  const data = Buffer.alloc(size, i % 251);
  data.writeUInt32LE(i, 0);
  return {
    id: `id-${i}`,
    key: `k${i % 3}`,
    meta: i % 2 ? '{"ct":"application/json"}' : "",
    records: i + 1,
    createdMs: 1_700_000_000_000 + i,
    data,
  };
}

function drainAll(s: Spool): SpooledEntry[] {
  const out: SpooledEntry[] = [];
  for (let e = s.next(); e !== null; e = s.next()) out.push(e);
  return out;
}

async function open(dir: string, extra: Partial<SpoolOptions> = {}): Promise<Spool> {
  return Spool.open({ dir, cursorSyncMs: 10, ...extra });
}

describe("Spool", () => {
  test("appends, dispenses in order, acknowledges, and keeps ids, keys, meta across a restart", async () => {
    const dir = tmp();
    let s = await open(dir);
    await Promise.all(Array.from({ length: 50 }, (_, i) => s.append(entry(i))));
    assert.equal(s.stats().batches, 50);
    const got = drainAll(s);
    assert.deepEqual(
      got.map((e) => e.id),
      Array.from({ length: 50 }, (_, i) => `id-${i}`),
    );
    for (const e of got.slice(0, 20)) s.ack(e);
    assert.equal(s.stats().batches, 30);
    await s.close();

    s = await open(dir);
    assert.equal(s.stats().batches, 30);
    assert.equal(
      s.stats().records,
      Array.from({ length: 30 }, (_, i) => i + 21).reduce((a, b) => a + b, 0),
    );
    assert.equal(s.stats().oldestCreatedMs, 1_700_000_000_000 + 20);
    const again = drainAll(s);
    assert.equal(again.length, 30);
    for (let i = 0; i < 30; i++) {
      const want = entry(i + 20);
      assert.equal(again[i].id, want.id);
      assert.equal(again[i].key, want.key);
      assert.equal(again[i].meta, want.meta);
      assert.equal(again[i].records, want.records);
      assert.equal(again[i].createdMs, want.createdMs);
      assert.deepEqual(Buffer.from(again[i].data), want.data);
    }
    for (const e of again) s.ack(e);
    assert.equal(s.stats().batches, 0);
    assert.equal(s.stats().bytes, 0);
    await s.close();
    s = await open(dir);
    assert.equal(s.next(), null);
    await s.close();
  });

  test("out-of-order acknowledgements advance the cursor only over a contiguous prefix", async () => {
    const dir = tmp();
    let s = await open(dir);
    for (let i = 0; i < 5; i++) await s.append(entry(i));
    const got = drainAll(s);
    s.ack(got[1]);
    s.ack(got[2]);
    assert.equal(s.stats().batches, 3);
    await s.close();
    s = await open(dir);
    // entry 0 was never acknowledged: 0..4 come back (1, 2 are duplicates the idempotency key covers)
    assert.deepEqual(
      drainAll(s).map((e) => e.id),
      ["id-0", "id-1", "id-2", "id-3", "id-4"],
    );
    await s.close();
  });

  test("rolls segments and deletes them once acknowledged", async () => {
    const dir = tmp();
    const s = await open(dir, { segmentBytes: 64 * 1024, maxBytes: 64 * 1024 * 1024 });
    for (let i = 0; i < 100; i++) await s.append(entry(i, 4000));
    assert.ok(s.stats().segments >= 6, `segments ${s.stats().segments}`);
    const got = drainAll(s);
    assert.equal(got.length, 100);
    for (const e of got) s.ack(e);
    await new Promise((r) => setTimeout(r, 20));
    const segs = readdirSync(dir).filter((f) => f.endsWith(".seg"));
    assert.ok(segs.length <= 1, `left ${segs.join(",")}`);
    assert.equal(s.stats().batches, 0);
    await s.close();
  });

  test("reads back from disk when entries exceed the memory bound", async () => {
    const dir = tmp();
    const s = await open(dir, { memoryBytes: 10_000, segmentBytes: 64 * 1024 });
    for (let i = 0; i < 200; i++) await s.append(entry(i, 1000));
    const got = drainAll(s);
    assert.equal(got.length, 200);
    for (let i = 0; i < 200; i++) {
      assert.equal(got[i].id, `id-${i}`);
      assert.deepEqual(Buffer.from(got[i].data), entry(i, 1000).data);
    }
    await s.close();
  });

  test("a torn tail record is detected by its checksum and truncated on open", async () => {
    const dir = tmp();
    let s = await open(dir);
    for (let i = 0; i < 10; i++) await s.append(entry(i, 500));
    await s.close();
    const seg = readdirSync(dir).filter((f) => f.endsWith(".seg"))[0];
    const path = join(dir, seg);
    const full = statSync(path).size;
    truncateSync(path, full - 100); // the last frame is torn
    appendFileSync(path, Buffer.from([1, 2, 3]));
    s = await open(dir);
    assert.equal(s.stats().corruptFrames, 1);
    assert.equal(s.stats().batches, 9);
    const got = drainAll(s);
    assert.deepEqual(
      got.map((e) => e.id),
      Array.from({ length: 9 }, (_, i) => `id-${i}`),
    );
    assert.ok(statSync(path).size < full - 100);
    // appends after recovery land after the good data and are read back in order
    await s.append(entry(42, 500));
    const more = drainAll(s);
    assert.deepEqual(
      more.map((e) => e.id),
      ["id-42"],
    );
    await s.close();
  });

  test("a flipped byte inside a record is caught by the checksum", async () => {
    const dir = tmp();
    let s = await open(dir);
    for (let i = 0; i < 3; i++) await s.append(entry(i, 200));
    await s.close();
    const seg = readdirSync(dir).filter((f) => f.endsWith(".seg"))[0];
    const path = join(dir, seg);
    const { openSync, writeSync, closeSync } = await import("node:fs");
    const fd = openSync(path, "r+");
    const frame = statSync(path).size / 3;
    writeSync(fd, Buffer.from([0xff]), 0, 1, Math.floor(frame * 2 + frame / 2)); // inside the third record
    closeSync(fd);
    s = await open(dir);
    assert.equal(s.stats().corruptFrames, 1);
    assert.deepEqual(
      drainAll(s).map((e) => e.id),
      ["id-0", "id-1"],
    );
    await s.close();
  });

  test("when full, the oldest segments are dropped and counted, the newest kept", async () => {
    const dir = tmp();
    const logs: string[] = [];
    const logger = { info() {}, warn: (_o: object | string, m?: string) => logs.push(m ?? ""), error() {} };
    const s = await open(dir, { maxBytes: 256 * 1024, segmentBytes: 64 * 1024, logger });
    const n = 200;
    for (let i = 0; i < n; i++) await s.append(entry(i, 4000));
    const st = s.stats();
    assert.ok(st.droppedBatches > 0, "something was dropped");
    assert.ok(st.bytes <= 256 * 1024, `spool holds ${st.bytes} bytes`);
    assert.equal(st.droppedBatches + st.batches, n);
    assert.ok(logs.some((m) => m.includes("spool full")));
    const got = drainAll(s);
    assert.equal(got.length, st.batches);
    assert.equal(got.at(-1)?.id, `id-${n - 1}`);
    // what is left is the newest, contiguous, in order
    const first = Number(got[0].id.slice(3));
    assert.deepEqual(
      got.map((e) => e.id),
      Array.from({ length: got.length }, (_, i) => `id-${first + i}`),
    );
    assert.equal(first, st.droppedBatches);
    await s.close();
  });

  test("entries are only dispensed once written; waitForData wakes the reader", async () => {
    const dir = tmp();
    const s = await open(dir, { fsync: "always" });
    const p = s.append(entry(1));
    assert.equal(s.next(), null);
    const woke = s.waitForData();
    await p;
    await woke;
    assert.equal(s.next()?.id, "id-1");
    await s.close();
  });
});

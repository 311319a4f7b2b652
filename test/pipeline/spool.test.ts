import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import {
  appendFileSync,
  closeSync,
  existsSync,
  fdatasync as fsFdatasync,
  writev as fsWritev,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { Delivery } from "../../src/pipeline/delivery.ts";
import { Spool, type SpooledEntry, type SpoolIo, type SpoolOptions } from "../../src/pipeline/spool.ts";

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

function ioError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected`), { code });
}

/** Write the first `n` bytes of `bufs` to `fd` (what a write that stops early leaves in the file). */
function writePrefix(fd: number, bufs: readonly NodeJS.ArrayBufferView[], n: number): void {
  const all = Buffer.concat(bufs.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)));
  writeSync(fd, all, 0, Math.min(n, all.length));
}

/** A write path that fails (after writing part of the frames) while `failures.n > 0`. */
function failingIo(failures: { n: number; delayMs?: number }): Partial<SpoolIo> {
  return {
    writev(fd, bufs, cb) {
      if (failures.n <= 0) {
        fsWritev(fd, bufs, (err, n) => cb(err, n));
        return;
      }
      failures.n--;
      writePrefix(fd, bufs, 20);
      setTimeout(() => cb(ioError("ENOSPC"), 0), failures.delayMs ?? 0);
    },
  };
}

const ids = (es: readonly SpooledEntry[]): string[] => es.map((e) => e.id);

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
      assert.equal(again[i]!.id, want.id);
      assert.equal(again[i]!.key, want.key);
      assert.equal(again[i]!.meta, want.meta);
      assert.equal(again[i]!.records, want.records);
      assert.equal(again[i]!.createdMs, want.createdMs);
      assert.deepEqual(Buffer.from(again[i]!.data), want.data);
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
    s.ack(got[1]!);
    s.ack(got[2]!);
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
      assert.equal(got[i]!.id, `id-${i}`);
      assert.deepEqual(Buffer.from(got[i]!.data), entry(i, 1000).data);
    }
    await s.close();
  });

  test("a torn tail record is detected by its checksum and truncated on open", async () => {
    const dir = tmp();
    let s = await open(dir);
    for (let i = 0; i < 10; i++) await s.append(entry(i, 500));
    await s.close();
    const seg = readdirSync(dir).filter((f) => f.endsWith(".seg"))[0]!;
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
    const seg = readdirSync(dir).filter((f) => f.endsWith(".seg"))[0]!;
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
    const first = Number(got[0]!.id.slice(3));
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

  test("a failed write rejects only its batches; appends queued behind it and later ones are kept", async () => {
    const dir = tmp();
    const failures = { n: 0, delayMs: 20 };
    const s = await open(dir, { io: failingIo(failures) });
    await s.append(entry(0, 300));
    failures.n = 1;
    const failed = s.append(entry(1, 300));
    await new Promise((r) => setImmediate(r)); // the failing write is in flight
    const queued = [s.append(entry(2, 300)), s.append(entry(3, 300))];
    await assert.rejects(failed, /ENOSPC/);
    await Promise.all(queued);
    await s.append(entry(4, 300));
    assert.equal(s.stats().writeErrors, 1);
    assert.equal(s.stats().batches, 4);
    assert.equal(
      s.stats().bytes,
      statSync(join(dir, readdirSync(dir).filter((f) => f.endsWith(".seg"))[0]!)).size,
    );
    assert.deepEqual(ids(drainAll(s)), ["id-0", "id-2", "id-3", "id-4"]);
    await s.close();
    const r = await open(dir);
    assert.equal(r.stats().corruptFrames, 0);
    const back = drainAll(r);
    assert.deepEqual(ids(back), ["id-0", "id-2", "id-3", "id-4"]);
    assert.deepEqual(Buffer.from(back[1]!.data), entry(2, 300).data);
    await r.close();
  });

  test("the spool recovers after a run of failures (no error sticks until restart)", async () => {
    const dir = tmp();
    let failSync = 3;
    const io: Partial<SpoolIo> = {
      fdatasync(fd, cb) {
        if (failSync > 0) {
          failSync--;
          cb(ioError("EIO"));
        } else fsFdatasync(fd, cb);
      },
    };
    const s = await open(dir, { fsync: "always", io });
    for (let i = 0; i < 3; i++) await assert.rejects(s.append(entry(i, 200)), /EIO/);
    await s.append(entry(3, 200));
    await s.append(entry(4, 200));
    assert.equal(s.stats().writeErrors, 3);
    assert.equal(s.stats().batches, 2);
    assert.deepEqual(ids(drainAll(s)), ["id-3", "id-4"]);
    await s.close();
    const r = await open(dir);
    assert.equal(r.stats().corruptFrames, 0);
    assert.deepEqual(ids(drainAll(r)), ["id-3", "id-4"]);
    await r.close();
  });

  test("a short write is completed, never committed torn", async () => {
    const dir = tmp();
    let short = 0;
    const io: Partial<SpoolIo> = {
      writev(fd, bufs, cb) {
        if (short > 0) {
          short--;
          writePrefix(fd, bufs, 37);
          setImmediate(() => cb(null, 37));
        } else fsWritev(fd, bufs, (err, n) => cb(err, n));
      },
    };
    const s = await open(dir, { io });
    await s.append(entry(0, 500));
    short = 2;
    await s.append(entry(1, 500));
    await s.append(entry(2, 500));
    assert.equal(s.stats().writeErrors, 0);
    await s.close();
    const r = await open(dir);
    assert.equal(r.stats().corruptFrames, 0);
    const back = drainAll(r);
    assert.deepEqual(ids(back), ["id-0", "id-1", "id-2"]);
    for (let i = 0; i < 3; i++) assert.deepEqual(Buffer.from(back[i]!.data), entry(i, 500).data);
    await r.close();
  });

  test("when the torn tail cannot be cut, writing goes on in a new segment", async () => {
    const dir = tmp();
    const failures = { n: 0 };
    const io: Partial<SpoolIo> = {
      ...failingIo(failures),
      ftruncateSync() {
        throw ioError("EIO");
      },
    };
    const s = await open(dir, { io });
    await s.append(entry(0, 300));
    failures.n = 1;
    await assert.rejects(s.append(entry(1, 300)), /ENOSPC/);
    await s.append(entry(2, 300));
    assert.deepEqual(ids(drainAll(s)), ["id-0", "id-2"]);
    assert.equal(readdirSync(dir).filter((f) => f.endsWith(".seg")).length, 2);
    await s.close();
    const r = await open(dir);
    assert.equal(r.stats().corruptFrames, 1); // the torn tail of the first segment, cut on open
    assert.deepEqual(ids(drainAll(r)), ["id-0", "id-2"]);
    await r.close();
  });
});

/** A small seeded PRNG (mulberry32), so a failing case can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Layout {
  /** Segment file name → pristine bytes. */
  files: Map<string, Buffer>;
  /** Every frame: its entry index, segment file, offset and size. */
  frames: { i: number; file: string; off: number; size: number }[];
}

/** A pristine spool of `n` entries of varied sizes over at least two segments, and where each frame is. */
async function pristine(n = 30): Promise<Layout> {
  const dir = tmp();
  const s = await open(dir, { segmentBytes: 64 * 1024 });
  for (let i = 0; i < n; i++) await s.append(entry(i, 1000 + ((i * 1237) % 4000)));
  const got = drainAll(s);
  await s.close();
  const files = new Map<string, Buffer>();
  for (const f of readdirSync(dir).filter((x) => x.endsWith(".seg")))
    files.set(f, readFileSync(join(dir, f)));
  const frames = got.map((e) => ({
    i: Number(e.id.slice(3)),
    file: `${String(e.seg).padStart(16, "0")}.seg`,
    off: e.off,
    size: e.size,
  }));
  assert.ok(files.size >= 2, "the layout spans segments");
  return { files, frames };
}

/** Write `layout`'s files (after `damage` changed them) into a fresh directory. */
function materialize(layout: Layout, damage: (files: Map<string, Buffer>) => void): string {
  const dir = tmp();
  const files = new Map([...layout.files].map(([k, v]) => [k, Buffer.from(v)]));
  damage(files);
  for (const [f, b] of files) writeFileSync(join(dir, f), b);
  return dir;
}

/** Every entry comes back intact except `lost`, in order; returns the stats after opening. */
async function expectDelivered(dir: string, n: number, lost: ReadonlySet<number>, what: string) {
  const s = await open(dir);
  const st = s.stats();
  const got = drainAll(s);
  const want = Array.from({ length: n }, (_, i) => i).filter((i) => !lost.has(i));
  assert.deepEqual(
    got.map((e) => Number(e.id.slice(3))),
    want,
    what,
  );
  for (const e of got) {
    const i = Number(e.id.slice(3));
    assert.deepEqual(Buffer.from(e.data), entry(i, 1000 + ((i * 1237) % 4000)).data, `${what}: data of ${i}`);
  }
  assert.equal(st.batches, want.length, `${what}: batches`);
  await s.close();
  return st;
}

function framesHit(layout: Layout, file: string, offs: readonly number[]): Set<number> {
  return new Set(
    layout.frames
      .filter((f) => f.file === file && offs.some((o) => o >= f.off && o < f.off + f.size))
      .map((f) => f.i),
  );
}

describe("Spool damage: scan forward to the next good frame", () => {
  test("one flipped byte anywhere costs only its frame; the bytes go to quarantine, a restart does not recount", async () => {
    const layout = await pristine();
    const n = layout.frames.length;
    const cases: { file: string; at: number }[] = [];
    for (const [file, b] of layout.files) for (let at = 0; at < b.length; at += 499) cases.push({ file, at });
    // every byte of a frame header and its fixed fields (length, CRC, version, lengths) in both segments
    for (const f of [layout.frames[3]!, layout.frames.at(-1)!])
      for (let k = 0; k < 30; k++) cases.push({ file: f.file, at: f.off + k });
    for (const { file, at } of cases) {
      const dir = materialize(layout, (files) => {
        files.get(file)![at]! ^= 0x5a;
      });
      const lost = framesHit(layout, file, [at]);
      assert.equal(lost.size, 1);
      const victim = layout.frames.find((f) => lost.has(f.i))!;
      const what = `flip at ${file}:${at}`;
      const st = await expectDelivered(dir, n, lost, what);
      assert.equal(st.corruptFrames, 1, what);
      assert.equal(st.corruptBytes, victim.size, what);
      const q = readFileSync(join(dir, "quarantine", `${file}.${victim.off}.bad`));
      const damaged = Buffer.from(layout.files.get(file)!.subarray(victim.off, victim.off + victim.size));
      damaged[at - victim.off]! ^= 0x5a;
      assert.deepEqual(q, damaged, `${what}: quarantined bytes`);
      // the repair is on disk: the next open counts nothing and delivers the same
      const again = await expectDelivered(dir, n, lost, `${what}, reopened`);
      assert.equal(again.corruptFrames, 0, `${what}, reopened`);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a segment truncated at any offset keeps every frame before the cut and every later segment", async () => {
    const layout = await pristine();
    const n = layout.frames.length;
    for (const [file, b] of layout.files) {
      for (let cut = 1; cut < b.length; cut += 347) {
        const dir = materialize(layout, (files) => {
          files.set(file, files.get(file)!.subarray(0, cut));
        });
        const lost = new Set(
          layout.frames.filter((f) => f.file === file && f.off + f.size > cut).map((f) => f.i),
        );
        const torn = layout.frames.find((f) => f.file === file && f.off < cut && f.off + f.size > cut);
        const what = `${file} cut at ${cut}`;
        const st = await expectDelivered(dir, n, lost, what);
        assert.equal(st.corruptFrames, torn ? 1 : 0, what);
        assert.equal(st.corruptBytes, torn ? cut - torn.off : 0, what);
        // the torn tail is cut (a segment cut inside its first frame is empty and removed)
        const size = existsSync(join(dir, file)) ? statSync(join(dir, file)).size : 0;
        assert.equal(size, torn ? torn.off : cut, `${what}: torn tail cut`);
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  test("random flips: exactly the untouched frames are delivered", async () => {
    const layout = await pristine();
    const n = layout.frames.length;
    const files = [...layout.files.keys()];
    const rnd = prng(12);
    let delivered = 0;
    let total = 0;
    for (let trial = 0; trial < 60; trial++) {
      const flips: { file: string; at: number }[] = [];
      for (let k = 1 + Math.floor(rnd() * 6); k > 0; k--) {
        const file = files[Math.floor(rnd() * files.length)]!;
        flips.push({ file, at: Math.floor(rnd() * layout.files.get(file)!.length) });
      }
      const dir = materialize(layout, (fs) => {
        for (const f of flips) fs.get(f.file)![f.at]! ^= 1 + Math.floor(rnd() * 255);
      });
      const lost = new Set<number>();
      for (const file of files)
        for (const i of framesHit(
          layout,
          file,
          flips.filter((f) => f.file === file).map((f) => f.at),
        ))
          lost.add(i);
      const lostBytes = layout.frames.filter((f) => lost.has(f.i)).reduce((a, f) => a + f.size, 0);
      const what = `trial ${trial}: ${JSON.stringify(flips)}`;
      const st = await expectDelivered(dir, n, lost, what);
      assert.equal(st.corruptBytes, lostBytes, what);
      assert.ok(st.corruptFrames >= 1 && st.corruptFrames <= lost.size, what);
      delivered += n - lost.size;
      total += n;
      rmSync(dir, { recursive: true, force: true });
    }
    assert.ok(delivered > total / 2, `${delivered} of ${total}`);
  });

  test("damage found while dispensing (after open) is skipped too, and its entries leave the counts", async () => {
    const dir = tmp();
    const s = await open(dir, { memoryBytes: 4000 });
    const n = 30;
    for (let i = 0; i < n; i++) await s.append(entry(i, 1000 + ((i * 1237) % 4000)));
    // entry 10 is not in memory any more: it will be read back from the file, which is damaged meanwhile
    const layoutDir = readdirSync(dir).filter((f) => f.endsWith(".seg"));
    assert.equal(layoutDir.length, 1);
    const path = join(dir, layoutDir[0]!);
    const bytes = readFileSync(path);
    let off = 0;
    for (let i = 0; i < 10; i++) off += bytes.readUInt32LE(off) + 8;
    const fd = openSync(path, "r+");
    writeSync(fd, Buffer.from([bytes[off + 50]! ^ 0xff]), 0, 1, off + 50);
    closeSync(fd);
    const got = drainAll(s);
    assert.deepEqual(
      ids(got),
      Array.from({ length: n }, (_, i) => `id-${i}`).filter((x) => x !== "id-10"),
    );
    const st = s.stats();
    assert.equal(st.corruptFrames, 1);
    assert.equal(st.corruptBytes, bytes.readUInt32LE(off) + 8);
    assert.equal(st.batches, n - 1, "the lost entry is no longer counted as waiting");
    for (const e of got) s.ack(e);
    assert.equal(s.stats().batches, 0);
    assert.equal(s.stats().records, 0);
    await s.close();
    const r = await open(dir);
    assert.equal(r.stats().corruptFrames, 0);
    assert.equal(r.next(), null);
    await r.close();
  });
});

describe("Delivery", () => {
  const quiet = { info() {}, warn() {}, error() {} };

  test("idle wakes leave no abort listeners behind", async () => {
    const dir = tmp();
    const spool = await open(dir);
    // Collect every AbortSignal the delivery loop listens on.
    const signals = new Set<EventTarget>();
    const add = EventTarget.prototype.addEventListener;
    EventTarget.prototype.addEventListener = function (this: EventTarget, type: string, ...rest) {
      if (type === "abort") signals.add(this);
      return add.call(this, type, ...rest);
    } as typeof add;
    const n = 300;
    let d: Delivery | undefined;
    try {
      d = new Delivery({
        name: "t",
        spool,
        concurrency: 1,
        deadLetterPath: join(dir, "dl.jsonl"),
        logger: quiet,
        send: async () => ({ kind: "ok", status: 200 }),
      });
      d.start();
      for (let i = 0; i < n; i++) {
        await spool.append(entry(i, 50));
        while (spool.stats().batches > 0) await new Promise((r) => setImmediate(r));
        await new Promise((r) => setImmediate(r)); // the loop finds the spool empty again
      }
    } finally {
      EventTarget.prototype.addEventListener = add;
    }
    assert.equal(d.stats().deliveredBatches, n);
    const most = Math.max(0, ...[...signals].map((t) => getEventListeners(t, "abort").length));
    assert.ok(most <= 2, `${most} abort listeners after ${n} idle wakes`);
    await d.stop();
    await spool.close();
  });
});

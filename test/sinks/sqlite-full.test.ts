/**
 * Disk full and back (issue 12 item 8): the SQLite sink must not let its WAL take the last space, must
 * checkpoint before writing again after SQLITE_FULL, and recover fully when space returns; a failed
 * template-state write leaves no temporary file.
 *
 * The real-disk test mounts an 8 MiB tmpfs (root and mount(8) needed: skipped where the test cannot mount;
 * the portable tests inject SQLITE_FULL with `PRAGMA max_page_count` and a failing state write instead).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { writeStateFile } from "../../src/app.ts";
import { FlowRecord } from "../../src/core/flow.ts";
import { findSink } from "../../src/sinks/index.ts";
import type { SqliteSink } from "../../src/sinks/sqlite/sink.ts";

const dirs: string[] = [];
const mounts: string[] = [];
after(() => {
  for (const m of mounts) spawnSync("umount", ["-l", m]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "clarion-full-"));
  dirs.push(d);
  return d;
}

/** A small tmpfs, or null when this process cannot mount one. */
function smallDisk(sizeMiB: number): string | null {
  const d = tmp();
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${sizeMiB}m`, "tmpfs", d], { encoding: "utf8" });
  if (r.status !== 0) return null;
  mounts.push(d);
  return d;
}

const logs: string[] = [];
const logger = {
  info: (_o: object, m?: string) => logs.push(m ?? ""),
  warn: (_o: object, m?: string) => logs.push(m ?? ""),
  error: (_o: object, m?: string) => logs.push(m ?? ""),
};

let seq = 0;
function batch(n: number): FlowRecord[] {
  return Array.from({ length: n }, () => {
    const i = seq++;
    const r = new FlowRecord();
    r.type = "IPFIX";
    r.time_received_ms = Date.now();
    r.time_flow_start_ms = Date.now() - 1000;
    r.time_flow_end_ms = Date.now();
    r.sampler_address = "192.0.2.1";
    r.switch_id = "192.0.2.1";
    r.src_addr = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    r.dst_addr = "2001:db8::2";
    r.src_port = i % 65_536;
    r.dst_port = 443;
    r.proto = 6;
    r.bytes = i * 7;
    r.packets = 1 + (i % 9);
    return r;
  });
}

async function open(dir: string): Promise<{ sink: SqliteSink; write: (n: number) => Promise<boolean> }> {
  const uri = `sqlite:${join(dir, "flows.db")}`;
  const def = findSink(uri);
  const sink = (await def.create(uri, { dataDir: dir, logger, options: {} })) as SqliteSink;
  const enc = def.createEncoder(uri, {});
  const write = async (n: number): Promise<boolean> => {
    try {
      await sink.write(enc.encode(batch(n)));
      return true;
    } catch {
      return false;
    }
  };
  return { sink, write };
}

const size = (p: string): number => (existsSync(p) ? statSync(p).size : 0);
const rows = (sink: SqliteSink): number =>
  Number((sink.db.prepare("SELECT count(*) AS n FROM flows").get() as { n: number }).n);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("SQLite sink on a full disk", () => {
  it("a real full disk: the WAL never takes the space, and writing resumes fully when space returns", async (t) => {
    const disk = smallDisk(8);
    if (disk === null) {
      t.skip("cannot mount a tmpfs here (needs root): the max_page_count test covers the logic");
      return;
    }
    writeFileSync(join(disk, "filler"), Buffer.alloc(2 * 1024 * 1024));
    const { sink, write } = await open(disk);
    const wal = join(disk, "flows.db-wal");
    let written = 0;
    let failed = false;
    for (let k = 0; k < 5000 && !failed; k++) {
      if (await write(200)) written += 200;
      else failed = true;
    }
    assert.ok(failed, "the disk filled up");
    assert.ok(size(wal) < 1024 * 1024, `the WAL stayed small near a full disk (${size(wal)} bytes)`);
    assert.ok(size(join(disk, "flows.db")) > 4 * 1024 * 1024, "the rows took the space, not the WAL");
    assert.equal(rows(sink), written);

    // Space comes back: after the retry interval the WAL is checkpointed and the rows go in again, into
    // the database (the WAL stays small), until the disk is full again.
    unlinkSync(join(disk, "filler"));
    await sleep(1100);
    let after = 0;
    for (let k = 0; k < 5000; k++) {
      if (await write(200)) after += 200;
      else break;
      assert.ok(size(wal) < 1024 * 1024, `the WAL stays small (${size(wal)} bytes)`);
    }
    // 2 MiB freed: rows of ~70 bytes on disk each (table and index): far more than one WAL's worth
    assert.ok(after >= 10_000, `${after} rows written after the space came back`);
    assert.equal(rows(sink), written + after);
    assert.ok(logs.some((m) => m.includes("WAL checkpointed after a failed write")));
    await sink.close();
  });

  it("after SQLITE_FULL, the WAL is checkpointed before anything else is written; then writing resumes", async () => {
    const dir = tmp();
    const { sink, write } = await open(dir);
    assert.ok(await write(100));
    const pages = Number((sink.db.prepare("PRAGMA page_count").get() as { page_count: number }).page_count);
    // SQLite answers SQLITE_FULL when the database would grow past max_page_count: a full disk, portably.
    // The pages go to the database at checkpoints, so checkpoint the rows written so far first.
    sink.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    sink.db.exec(`PRAGMA max_page_count = ${pages + 2}`);
    let failures = 0;
    for (let k = 0; k < 200 && failures === 0; k++) if (!(await write(300))) failures++;
    // the automatic checkpoint would only come at 1000 pages: the checkpoint the sink ran is what failed
    assert.equal(failures, 1, "SQLITE_FULL reached");
    const before = rows(sink);
    // while the checkpoint cannot run, batches are refused at once (nothing new goes into the WAL)
    assert.equal(await write(10), false);
    assert.equal(rows(sink), before);
    sink.db.exec("PRAGMA max_page_count = 1073741823"); // space returns
    await sleep(1100);
    assert.ok(await write(10), "writing resumes after the checkpoint");
    assert.equal(size(join(dir, "flows.db-wal")) <= 256 * 1024, true, "the WAL was truncated");
    for (let k = 0; k < 20; k++) assert.ok(await write(100));
    assert.equal(rows(sink), before + 10 + 2000);
    assert.equal(sink.stats.errors, 2);
    await sink.close();
  });

  it("a failed template-state write leaves no temporary file", async () => {
    const dir = tmp();
    const path = join(dir, "templates.json");
    // a value JSON cannot write: the write fails after the temporary file was created
    await assert.rejects(writeStateFile(path, [{ n: 1n }]), /BigInt/);
    assert.deepEqual(readdirSync(dir), []);
    await writeStateFile(path, [{ n: 1 }]);
    assert.deepEqual(readdirSync(dir), ["templates.json"]);
  });

  it("on a real full disk, the template state write fails cleanly and works again when space returns", async (t) => {
    const disk = smallDisk(1);
    if (disk === null) {
      t.skip("cannot mount a tmpfs here (needs root)");
      return;
    }
    const fill = join(disk, "filler");
    // fill the disk to the last block (ENOSPC on the next write)
    try {
      writeFileSync(fill, Buffer.alloc(2 * 1024 * 1024));
    } catch {
      // ENOSPC: what fitted stays
    }
    const path = join(disk, "templates.json");
    await assert.rejects(writeStateFile(path, [{ pad: "x".repeat(100_000) }]), /ENOSPC/);
    assert.deepEqual(readdirSync(disk), ["filler"]);
    unlinkSync(fill);
    await writeStateFile(path, [{ pad: "x".repeat(100_000) }]);
    assert.deepEqual(readdirSync(disk), ["templates.json"]);
  });
});

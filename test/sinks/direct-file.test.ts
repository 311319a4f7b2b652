import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { FlowRecord } from "../../src/core/flow.ts";
import { encodeGoflow2 } from "../../src/encode/goflow2.ts";
import { DirectAppender } from "../../src/sinks/direct-file.ts";
import { findSink } from "../../src/sinks/index.ts";
import type { JsonlSink } from "../../src/sinks/jsonl.ts";

/**
 * A directory whose filesystem takes O_DIRECT: the temp directory, else one inside the checkout (tmpfs
 * before Linux 6.6 refuses O_DIRECT). Null when neither does (then the direct cases are skipped).
 */
async function directDir(): Promise<string | null> {
  for (const base of [tmpdir(), new URL("../.tmp", import.meta.url).pathname]) {
    mkdirSync(base, { recursive: true });
    const d = mkdtempSync(join(base, "clarion-direct-test-"));
    const a = await DirectAppender.open(join(d, "probe"));
    if (a !== null) {
      await a.close();
      return d;
    }
    rmSync(d, { recursive: true, force: true });
  }
  return null;
}

const dir = await directDir();
after(() => {
  if (dir !== null) rmSync(dir, { recursive: true, force: true });
});
const skip = dir === null ? "no filesystem here takes O_DIRECT" : false;
const quiet = { info() {}, warn() {}, error() {} };

describe("DirectAppender (O_DIRECT appends)", { skip }, () => {
  it("appends pieces of every size around the block and staging sizes, byte for byte", async () => {
    const path = join(dir!, "pieces.bin");
    const a = (await DirectAppender.open(path))!;
    assert.ok(a);
    const sizes = [1, 4095, 1, 4096, 4097, 0, 100, 8 * 1024 * 1024 + 5, 3, 65536, 12_345];
    const chunks = sizes.map((n) => randomBytes(n));
    let want = 0;
    for (const c of chunks) {
      await a.append(c);
      want += c.length;
      assert.equal(a.size, want);
      // complete after every append (the partial block went through the buffered descriptor)
      assert.equal(readFileSync(path).length, want);
    }
    await a.datasync();
    await a.close();
    assert.ok(readFileSync(path).equals(Buffer.concat(chunks)));
  });

  it("continues an existing file from its partial last block", async () => {
    const path = join(dir!, "existing.bin");
    const head = randomBytes(10_000);
    writeFileSync(path, head);
    const a = (await DirectAppender.open(path))!;
    const more = randomBytes(20_000);
    await a.append(more);
    await a.close();
    assert.ok(readFileSync(path).equals(Buffer.concat([head, more])));
  });

  it("picks up a file truncated or appended to by someone else", async () => {
    const path = join(dir!, "foreign.bin");
    const a = (await DirectAppender.open(path))!;
    await a.append(Buffer.from("a".repeat(9000)));
    truncateSync(path, 0); // logrotate copytruncate
    await a.append(Buffer.from("bb"));
    assert.equal(readFileSync(path, "utf8"), "bb");
    appendFileSync(path, "cc"); // another writer
    await a.append(Buffer.from("d".repeat(5000)));
    await a.close();
    assert.equal(readFileSync(path, "utf8"), `bbcc${"d".repeat(5000)}`);
  });
});

function record(i: number): FlowRecord {
  const r = new FlowRecord();
  r.time_received_ms = 1700000000000 + i;
  r.sampler_address = "192.0.2.1";
  r.src_addr = "10.0.0.1";
  r.dst_addr = "10.0.0.2";
  r.proto = 6;
  r.src_port = i;
  r.switch_id = "192.0.2.1";
  return r;
}

describe("jsonl sink with directIo", { skip }, () => {
  it("writes the same lines as the buffered sink, reopens after a rename, and releases its batches", async () => {
    const path = join(dir!, "out", "flows.jsonl");
    const uri = `jsonl:${path}`;
    const def = findSink(uri);
    const enc = def.createEncoder(uri, { directIo: true });
    const sink = (await def.create(uri, {
      dataDir: dir!,
      logger: quiet,
      options: { directIo: true },
    })) as JsonlSink;
    assert.equal(sink.directIo, true);
    assert.equal(sink.releasesBatches, true);
    const recs = Array.from({ length: 3000 }, (_, i) => record(i));
    await sink.write(enc.encode(recs.slice(0, 1)));
    assert.equal(
      statSync(path).mode & 0o777,
      0o640 & ~process.umask(),
      "created 0640 like the buffered sink",
    );
    await sink.write(enc.encode(recs.slice(1, 2000)));
    await sink.write(enc.encode(recs.slice(2000)));
    await sink.flush();
    const want = recs.map((r) => `${encodeGoflow2(r)}\n`).join("");
    assert.equal(readFileSync(path, "utf8"), want);
    renameSync(path, `${path}.1`);
    await sink.reopen!();
    await sink.write(enc.encode([record(7)]));
    await sink.close();
    assert.equal(readFileSync(`${path}.1`, "utf8"), want);
    assert.equal(readFileSync(path, "utf8"), `${encodeGoflow2(record(7))}\n`);
  });
});

describe("jsonl directIo option", () => {
  it("must be a boolean, named in the error", () => {
    assert.throws(() => findSink("jsonl:/x").createEncoder("jsonl:/x", { directIo: "yes" }), /directIo/);
  });
});

describe("jsonl directIo on an unwritable path", () => {
  it("fails naming the path, without a fallback warning", async () => {
    const base = mkdtempSync(join(tmpdir(), "clarion-direct-bad-"));
    try {
      const file = join(base, "plain-file");
      writeFileSync(file, "");
      const uri = `jsonl:${file}/flows.jsonl`; // a directory that is a file: ENOTDIR even for root
      const warnings: unknown[] = [];
      const logger = { ...quiet, warn: (o: unknown) => warnings.push(o) };
      await assert.rejects(
        findSink(uri).create(uri, { dataDir: base, logger, options: { directIo: true } }),
        /plain-file\/flows\.jsonl/,
      );
      assert.deepEqual(warnings, []);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});

/** jsonl: timed rotation (a file per period, named from time fields in the file name, like nfcapd -t). */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { loadConfig } from "../../src/config/index.ts";
import { ConfigError } from "../../src/core/errors.ts";
import { formatTimedPath, JsonlSink, parseJsonlOptions, parseJsonlUri } from "../../src/sinks/jsonl.ts";

const dir = mkdtempSync(join(tmpdir(), "clarion-jsonl-rotate-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const quiet = { info() {}, warn() {}, error() {} };
const batch = (text: string) => ({
  sink: "t",
  records: 1,
  parts: [{ key: "", records: 1, data: new TextEncoder().encode(`${text}\n`) }],
  oldestMs: 0,
});

describe("jsonl timed rotation", () => {
  it("fills the time fields in local time", () => {
    const t = new Date(2026, 11, 5, 7, 4, 9).getTime();
    assert.equal(formatTimedPath("/x/%Y%m%d-%H%M%S.jsonl", t), "/x/20261205-070409.jsonl");
    assert.equal(formatTimedPath("/x/flows-%%-%H.jsonl", t), "/x/flows-%-07.jsonl");
  });

  it("checks the pattern and the interval", () => {
    assert.throws(() => parseJsonlUri("jsonl:/var/log/%Y/flows.jsonl"), /file name only/);
    assert.throws(() => parseJsonlUri("jsonl:/var/log/flows-%q.jsonl"), /unknown time field "%q"/);
    assert.throws(() => parseJsonlUri("jsonl:/var/log/flows-%"), /unknown time field/);
    assert.deepEqual(parseJsonlUri("jsonl:/var/log/flows-%Y%m%d-%H%M.jsonl"), {
      kind: "file",
      path: "/var/log/flows-%Y%m%d-%H%M.jsonl",
    });
    assert.equal(parseJsonlOptions({}).rotateIntervalMs, 300_000);
    assert.equal(parseJsonlOptions({ rotateInterval: 60 }).rotateIntervalMs, 60_000);
    assert.equal(parseJsonlOptions({ rotateInterval: "1h" }).rotateIntervalMs, 3_600_000);
    assert.equal(parseJsonlOptions({ rotateInterval: "90" }).rotateIntervalMs, 90_000);
    for (const bad of [0, -5, 0.5, "5x", "", true, 8 * 86_400])
      assert.throws(() => parseJsonlOptions({ rotateInterval: bad }), ConfigError, String(bad));
    // The option is known to the configuration (file outputs list).
    const c = loadConfig(["--data-dir", dir, "--output", `jsonl:${join(dir, "cfg-%H%M.jsonl")}`], {});
    assert.equal(c.outputs[0]!.uri, `jsonl:${join(dir, "cfg-%H%M.jsonl")}`);
  });

  it("writes one file per period and closes the finished one", async () => {
    const sub = join(dir, "run");
    let now = new Date(2026, 11, 5, 7, 3, 59).getTime();
    const sink = await JsonlSink.openFile("t", join(sub, "flows-%Y%m%d-%H%M.jsonl"), quiet, {
      directIo: false,
      rotateIntervalMs: 300_000,
      now: () => now,
    });
    assert.equal(sink.path, join(sub, "flows-20261205-0700.jsonl"));
    await sink.write(batch("a"));
    now += 1000; // 07:04:00, same period
    await sink.write(batch("b"));
    now += 60_000; // 07:05:00, next period
    await sink.write(batch("c"));
    assert.equal(sink.path, join(sub, "flows-20261205-0705.jsonl"));
    now += 15 * 60_000; // 07:20:00: periods without flows make no file
    await sink.write(batch("d"));
    await sink.close();
    assert.deepEqual(readdirSync(sub).sort(), [
      "flows-20261205-0700.jsonl",
      "flows-20261205-0705.jsonl",
      "flows-20261205-0720.jsonl",
    ]);
    assert.equal(readFileSync(join(sub, "flows-20261205-0700.jsonl"), "utf8"), "a\nb\n");
    assert.equal(readFileSync(join(sub, "flows-20261205-0705.jsonl"), "utf8"), "c\n");
    assert.equal(readFileSync(join(sub, "flows-20261205-0720.jsonl"), "utf8"), "d\n");
  });

  it("switches files at the end of a period even when nothing arrives", async () => {
    const sub = join(dir, "idle");
    let now = new Date(2026, 11, 5, 7, 0, 0).getTime();
    const sink = await JsonlSink.openFile("t", join(sub, "f-%H%M%S.jsonl"), quiet, {
      directIo: false,
      rotateIntervalMs: 1000,
      now: () => now,
    });
    await sink.write(batch("x"));
    now += 1000;
    for (let i = 0; i < 100 && sink.path !== join(sub, "f-070001.jsonl"); i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(sink.path, join(sub, "f-070001.jsonl"));
    await sink.close();
    assert.deepEqual(readdirSync(sub).sort(), ["f-070000.jsonl", "f-070001.jsonl"]);
  });
});

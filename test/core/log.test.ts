import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createLogger, RateLimitedLogger, uniqueKeys } from "../../src/core/log.ts";
import { checkLogLine } from "../helpers/log-lines.ts";

describe("RateLimitedLogger", () => {
  it("lets `limit` messages per key through per window and reports what it suppressed", () => {
    const lines: Array<[Record<string, unknown>, string]> = [];
    const sink = {
      error: (o: Record<string, unknown>, m: string) => lines.push([o, m]),
      warn: (o: Record<string, unknown>, m: string) => lines.push([o, m]),
    };
    let now = 0;
    const rl = new RateLimitedLogger(sink as never, { limit: 2, intervalMs: 1000, now: () => now });
    for (let i = 0; i < 5; i++) rl.error("a", { i }, "x");
    rl.error("b", {}, "y");
    assert.equal(lines.length, 3);
    assert.equal(rl.suppressed, 3);
    now = 1500;
    rl.error("a", { i: 9 }, "x");
    assert.equal(lines.length, 4);
    assert.deepEqual(lines[3]?.[0], { i: 9, suppressed: 3 });
    assert.equal(rl.suppressed, 0);
  });
});

describe("createLogger", () => {
  it("writes unique keys: a child's binding repeated by the call, and a msg field (kept as detail)", () => {
    const dir = mkdtempSync(join(tmpdir(), "clarion-log-"));
    try {
      const file = join(dir, "log");
      const fd = openSync(file, "w");
      const log = createLogger({ level: "info", fd });
      const child = log.child({ sink: "jsonl:-" });
      child.warn({ sink: "jsonl:-", n: 1 }, "sink line");
      log.error({ code: "EADDRINUSE", msg: "bind EADDRINUSE 0.0.0.0:2055" }, "receive worker failed");
      log.info({ a: 1 }, "plain");
      closeSync(fd);
      const lines = readFileSync(file, "utf8").trim().split("\n");
      assert.equal(lines.length, 3);
      for (const l of lines) assert.equal(checkLogLine(l), "", l);
      const [a, b] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.equal(a!.sink, "jsonl:-");
      assert.equal(a!.msg, "sink line");
      assert.equal(b!.msg, "receive worker failed");
      assert.equal(b!.detail, "bind EADDRINUSE 0.0.0.0:2055");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("uniqueKeys leaves a clean line as it is and folds a repeated key", () => {
    const clean = '{"level":"info","msg":"x"}\n';
    assert.equal(uniqueKeys(clean), clean);
    assert.equal(uniqueKeys('{"sink":"a","n":1,"sink":"a"}\n'), '{"sink":"a","n":1}\n');
    assert.equal(uniqueKeys("not json\n"), "not json\n");
  });
});

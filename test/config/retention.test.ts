import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { loadConfig } from "../../src/config/index.ts";
import { ConfigError } from "../../src/core/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "clarion-retention-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const base = ["--data-dir", dir];
const sqliteRetention = (argv: string[], env: Record<string, string> = {}) =>
  loadConfig([...base, ...argv], env).outputs.map((o) => [o.uri.split(":")[0], o.options.retentionMs]);

describe("--retention", () => {
  it("defaults to 7 days for the SQLite outputs only", () => {
    const c = loadConfig(base, {});
    assert.equal(c.retention, 7 * 86_400_000);
    assert.deepEqual(sqliteRetention([]), [["sqlite", 7 * 86_400_000]]);
    assert.deepEqual(sqliteRetention(["--output", "jsonl:-", "--output", `sqlite:${join(dir, "a.db")}`]), [
      ["jsonl", undefined],
      ["sqlite", 7 * 86_400_000],
    ]);
  });

  it("takes ages from the flag, the variable and the file; 0 keeps everything", () => {
    assert.deepEqual(sqliteRetention(["--retention", "12h"]), [["sqlite", 43_200_000]]);
    assert.deepEqual(sqliteRetention(["--retention", "1.5h"]), [["sqlite", 5_400_000]]);
    assert.deepEqual(sqliteRetention(["--retention", "0"]), [["sqlite", 0]]);
    assert.deepEqual(sqliteRetention([], { CLARION_COLLECTOR_RETENTION: "30m" }), [["sqlite", 1_800_000]]);
    const file = join(dir, "c.yaml");
    writeFileSync(
      file,
      `retention: 2d\noutputs:\n  - uri: "sqlite:${join(dir, "b.db")}"\n  - uri: "sqlite:${join(dir, "c.db")}"\n    retentionMs: 1000\n`,
    );
    assert.deepEqual(sqliteRetention(["--config", file]), [
      ["sqlite", 2 * 86_400_000],
      ["sqlite", 1000],
    ]);
  });

  it("refuses a bad age naming the flag", () => {
    for (const bad of ["7", "7x", "-1d", "d", ""])
      assert.throws(
        () => loadConfig([...base, "--retention", bad], {}),
        (e: unknown) =>
          e instanceof ConfigError && e.key === "--retention" && /an age such as 7d/.test(e.message),
        bad,
      );
  });
});

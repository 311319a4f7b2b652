import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { makeDirs } from "../../src/core/fs.ts";

describe("makeDirs", () => {
  const dir = mkdtempSync(join(tmpdir(), "clarion-fs-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function code(fn: () => void): string | undefined {
    try {
      fn();
    } catch (err) {
      return (err as NodeJS.ErrnoException).code;
    }
    assert.fail("expected an error");
  }

  it("creates every missing component and accepts an existing directory", () => {
    const deep = join(dir, "a", "b", "c");
    makeDirs(deep);
    assert.ok(statSync(deep).isDirectory());
    makeDirs(deep);
    makeDirs(join(dir, "a"));
    makeDirs(`${join(dir, "a", "b")}/../b/./c/`);
    assert.ok(statSync(deep).isDirectory());
  });

  it("a file in the way is ENOTDIR, for the path itself or a parent", () => {
    const file = join(dir, "file");
    writeFileSync(file, "");
    assert.equal(
      code(() => makeDirs(file)),
      "ENOTDIR",
    );
    assert.equal(
      code(() => makeDirs(join(file, "sub", "dir"))),
      "ENOTDIR",
    );
    assert.ok(!existsSync(join(file, "sub")));
  });

  // recursive fs.mkdir loops forever here; makeDirs must return the error of the component it cannot make.
  // Run in a child with a timeout, so that a regression fails this test instead of hanging the suite.
  it("a path under /proc fails with ENOENT instead of hanging", { skip: !existsSync("/proc/self") }, () => {
    const script = `
      import { makeDirs } from ${JSON.stringify(new URL("../../src/core/fs.ts", import.meta.url).href)};
      const codes = [];
      for (const p of ["/proc/clarion-test", "/proc/clarion-test/a/b"]) {
        try { makeDirs(p); codes.push("none"); } catch (err) { codes.push(err.code); }
      }
      console.log(codes.join(","));`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.equal(r.error, undefined, "makeDirs under /proc did not return within 20 s");
    assert.equal(r.stdout.trim(), "ENOENT,ENOENT", r.stderr);
  });
});

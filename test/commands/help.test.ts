import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });

describe("help", () => {
  it("names decode, top and tail in the usage line and the commands list", () => {
    for (const args of [["help"], ["--help"]]) {
      const r = run(...args);
      assert.equal(r.status, 0, r.stderr);
      assert.match(
        r.stdout,
        /^Usage: clarion-collector \[options\] {2}\| {2}decode\|top\|tail \[options\] \[args\]/,
      );
      for (const c of ["decode FILE", "top [FILTER]", "tail [FILTER]"])
        assert.ok(r.stdout.includes(`  ${c}`), c);
    }
  });

  it("help COMMAND shows that command's help", () => {
    for (const c of ["decode", "top", "tail"]) {
      const r = run("help", c);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^Usage: clarion-collector ${c} `));
    }
  });
});

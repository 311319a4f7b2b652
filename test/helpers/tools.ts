/**
 * External interop tools (softflowd, pmacctd, tshark, nfdump, tcpreplay, kcat). In CI (CI=true) a missing
 * tool fails the test: .ci/run installs them. On a laptop the test is skipped with a clear message.
 */
import { spawnSync } from "node:child_process";
import type { TestContext } from "node:test";

const cache = new Map<string, string | null>();

/** Absolute path of a tool, or null. Looks in PATH and the sbin directories Debian uses. */
export function findTool(name: string): string | null {
  if (cache.has(name)) return cache.get(name) ?? null;
  const path = `${process.env.PATH ?? ""}:/usr/sbin:/sbin:/usr/local/sbin`;
  const r = spawnSync("sh", ["-c", `command -v ${name}`], {
    env: { ...process.env, PATH: path },
    encoding: "utf8",
  });
  const found = r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
  cache.set(name, found);
  return found;
}

/**
 * Returns the tool's path, or: in CI throws (the test fails), elsewhere marks the test skipped and
 * returns null (the caller returns at once).
 */
export function requireTool(t: TestContext, name: string): string | null {
  const found = findTool(name);
  if (found) return found;
  const msg = `${name} is not installed (Debian package; .ci/run installs it)`;
  if (process.env.CI) throw new Error(`${msg}: required in CI`);
  t.skip(`${msg}: skipped outside CI`);
  return null;
}

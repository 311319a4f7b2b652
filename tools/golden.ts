/**
 * Writes or checks the golden files of test/fixtures/golden/ (what they hold: test/helpers/golden.ts):
 * the normalized flows and decoder stats of every corpus case, and GoFlow2 lines of corpus and crafted
 * records.
 *
 * Usage: node tools/golden.ts            reports every file that differs (first differing field), exit 1
 *        node tools/golden.ts --write    rewrites them all (and removes files no case produces any more)
 *
 * After an intended change of the decoded output (a new field, a fix), run it with --write and review the
 * diff of test/fixtures/golden/ before committing it.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { firstDifference, GOLDEN_DIR, goldenFiles } from "../test/helpers/golden.ts";

const write = process.argv.includes("--write");
const files = goldenFiles();
let differ = 0;
for (const [name, text] of files) {
  const path = fileURLToPath(new URL(name, GOLDEN_DIR));
  const old = existsSync(path) ? readFileSync(path, "utf8") : null;
  if (old === text) continue;
  differ++;
  if (write) {
    mkdirSync(fileURLToPath(new URL(".", new URL(name, GOLDEN_DIR))), { recursive: true });
    writeFileSync(path, text);
    console.log(`${old === null ? "new" : "updated"}: ${name}`);
  } else {
    console.log(`${name}: ${old === null ? "missing" : firstDifference(old, text)}`);
  }
}
for (const dir of ["corpus/", "goflow2/", "sqlite/"]) {
  const path = fileURLToPath(new URL(dir, GOLDEN_DIR));
  if (!existsSync(path)) continue;
  for (const f of readdirSync(path)) {
    if (files.has(`${dir}${f}`)) continue;
    differ++;
    if (write) rmSync(`${path}${f}`);
    console.log(`${write ? "removed" : "stale (no case produces it)"}: ${dir}${f}`);
  }
}
console.log(`${files.size} golden files, ${differ} ${write ? "written or removed" : "differ"}`);
if (!write && differ > 0) process.exitCode = 1;

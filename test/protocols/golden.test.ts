/**
 * Golden normalized flows per corpus case (akvorado-style): each case of test/fixtures/logstash decoded by
 * a fresh decoder must give exactly the flows, options records and decoder stats (flows, templates
 * learned, errors by reason, exporter counters) of its file in test/fixtures/golden/corpus/
 * (test/helpers/golden.ts describes the format). A difference fails with the first differing field.
 *
 * After an intended change of the decoded output, regenerate with `node tools/golden.ts --write` and
 * review the diff of test/fixtures/golden/.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { caseFile, caseGolden, firstDifference, GOLDEN_DIR, loadCorpus } from "../helpers/golden.ts";

const corpus = loadCorpus();
const REGENERATE = "(if the change is intended: node tools/golden.ts --write, then review the diff)";

describe("golden normalized flows and decoder stats per corpus case", () => {
  test("every case has a golden file and every golden file a case", () => {
    const names = corpus.map(caseFile);
    assert.equal(new Set(names).size, corpus.length, "case file names are unique");
    const files = readdirSync(new URL("corpus/", GOLDEN_DIR)).sort();
    assert.deepEqual(files, [...names].sort(), REGENERATE);
  });

  for (const c of corpus) {
    test(c.name, () => {
      const url = new URL(`corpus/${caseFile(c)}`, GOLDEN_DIR);
      assert.ok(existsSync(url), `no golden file ${caseFile(c)} ${REGENERATE}`);
      const diff = firstDifference(readFileSync(url, "utf8"), caseGolden(c));
      if (diff !== null) assert.fail(`${caseFile(c)} ${diff}\n${REGENERATE}`);
    });
  }

  test("the golden files hold what the corpus should give (flows, errors, templates)", () => {
    // A sanity check of the files themselves, so a regeneration that lost everything does not pass.
    let flows = 0;
    let cases = 0;
    for (const c of corpus) {
      const [head, ...records] = readFileSync(new URL(`corpus/${caseFile(c)}`, GOLDEN_DIR), "utf8")
        .trimEnd()
        .split("\n");
      const h = JSON.parse(head!) as { stats: { flows: number; templatesLearned: number } };
      assert.equal(records.filter((l) => l.includes('"record":"flow"')).length, h.stats.flows, c.name);
      flows += h.stats.flows;
      if (h.stats.templatesLearned > 0) cases++;
    }
    assert.ok(flows >= 470, `flows in the golden files: ${flows}`);
    assert.ok(cases >= 40, `cases that learn templates: ${cases}`);
  });
});

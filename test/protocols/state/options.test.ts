/**
 * The options store's bounds (hostile options data must not grow it without limit): entries per map, the
 * entries of all states together, and the number of exporter + domain states.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_OPTION_ENTRIES, OptionStore, setBounded } from "../../../src/protocols/state/options.ts";

describe("OptionStore bounds", () => {
  it("refuses a new state beyond the bound, keeps the known ones, and leaves no empty exporter entry", () => {
    const store = new OptionStore(false, { maxStates: 3 });
    const a = store.open("192.0.2.1", 0, 1);
    assert.ok(a);
    assert.ok(store.open("192.0.2.1", 0, 2));
    assert.ok(store.open("192.0.2.2", 0, 1));
    assert.equal(store.open("192.0.2.3", 0, 1), undefined, "a fourth state is refused");
    assert.equal(store.get("192.0.2.3", 0, 1), undefined);
    assert.equal(store.open("192.0.2.1", 0, 1), a, "a known state is still returned");
    assert.equal(store.values().length, 3);
  });

  it("counts every map of every state against one total; an update of a known key is not a new entry", () => {
    const store = new OptionStore(false, { maxEntries: 5 });
    const a = store.open("192.0.2.1", 0, 1)!;
    const b = store.open("192.0.2.2", 0, 7)!;
    assert.ok(setBounded(a, a.bySampler, 1, 100));
    assert.ok(setBounded(a, a.vrfNames, 10, "red"));
    assert.ok(setBounded(b, b.ifNames, 3, "ge-0/0/3"));
    assert.ok(setBounded(b, b.appNames, "0d000050", "http"));
    assert.ok(setBounded(a, a.rds, 10, "0:65000:1"));
    assert.equal(store.budget.entries, 5);
    assert.equal(
      setBounded(b, b.vrfNames, 11, "blue"),
      false,
      "the sixth entry, in another state, is refused",
    );
    assert.equal(b.vrfNames.size, 0);
    assert.ok(setBounded(a, a.bySampler, 1, 200), "a known key is updated");
    assert.equal(a.bySampler.get(1), 200);
    assert.equal(store.budget.entries, 5);
  });

  it("bounds one map at MAX_OPTION_ENTRIES", () => {
    const store = new OptionStore(false);
    const a = store.open("192.0.2.1", 0, 1)!;
    for (let i = 0; i < MAX_OPTION_ENTRIES; i++) assert.ok(setBounded(a, a.ifNames, i, "x"));
    assert.equal(setBounded(a, a.ifNames, MAX_OPTION_ENTRIES, "x"), false);
    assert.ok(setBounded(a, a.vrfNames, 1, "other maps still take entries"));
  });
});

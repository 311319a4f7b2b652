import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RateLimitedLogger } from "../../src/core/log.ts";

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

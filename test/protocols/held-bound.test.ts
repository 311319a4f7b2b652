/**
 * Garbage behind valid headers (issue 12 item 9): data sets for templates that never come are held as
 * copies, and from many source ports the copies grew a worker by hundreds of MB. The hold is bounded in
 * bytes over all sessions (holdMaxBytes); past it a set is dropped and counted, and a held set that leaves
 * (decoded, expired, pushed out) gives its bytes back, so a real exporter's early data is still held later.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import type { FlowRecord } from "../../src/core/flow.ts";
import { FlowDecoder } from "../../src/protocols/decoder.ts";
import { type FieldSpec, ipfixPacket, ipfixTemplate, record, set } from "../helpers/netflow-builder.ts";

const fields: FieldSpec[] = [
  [8, 4],
  [12, 4],
  [2, 4],
];

function decoder(holdMaxBytes?: number) {
  let now = 1_700_000_000_000;
  const d = new FlowDecoder({ now: () => now, ...(holdMaxBytes ? { holdMaxBytes } : {}) });
  const flows: FlowRecord[] = [];
  const handler = { flow: (r: FlowRecord) => flows.push(r) };
  return {
    d,
    flows,
    feed(payload: Buffer, port: number) {
      try {
        d.decode({ payload, exporter: "192.0.2.1", port, receivedAtMs: now, listener: "t" }, handler);
      } catch {
        // malformed garbage: counted by the decoder
      }
    },
    advance(ms: number) {
      now += ms;
      d.tick(now, handler);
    },
  };
}

describe("held data sets are bounded in bytes", () => {
  test("garbage data sets from many sessions hold at most holdMaxBytes; the rest is counted", () => {
    const c = decoder();
    let offered = 0;
    for (let port = 40000; port < 40200; port++) {
      for (let i = 0; i < 8; i++) {
        // a data set of ~16 KB for a template id that never comes
        c.feed(ipfixPacket([set(300 + i, [...randomBytes(16_000)])]), port);
        offered++;
      }
    }
    const st = c.d.stats;
    assert.equal(st.heldSets + (offered - st.heldSets), offered);
    assert.ok(c.d.heldCount() * 16_000 <= 4 * 1024 * 1024, `${c.d.heldCount()} sets held`);
    assert.ok(c.d.heldCount() >= 200, "up to the budget, sets are held");
    assert.equal(st.missingTemplateDrops, offered - c.d.heldCount());
  });

  test("bytes come back when held sets expire or are decoded: a real exporter's early data is held again", () => {
    const c = decoder(64 * 1024);
    for (let port = 40000; port < 40010; port++)
      c.feed(ipfixPacket([set(300, [...randomBytes(16_000)])]), port);
    assert.equal(c.d.heldCount(), 4, "64 KiB hold 4 sets of 16 KB");
    const dropped = c.d.stats.missingTemplateDrops;
    assert.equal(dropped, 6);
    c.advance(6000); // the hold expires
    assert.equal(c.d.heldCount(), 0);
    // now an exporter sends data before its template: held, then decoded when the template arrives
    c.feed(ipfixPacket([set(256, record(fields, ["10.0.0.1", "10.0.0.2", 5]))]), 50000);
    assert.equal(c.d.heldCount(), 1);
    c.feed(ipfixPacket([set(2, ipfixTemplate(256, fields))]), 50000);
    assert.equal(c.flows.length, 1);
    assert.equal(c.flows[0]!.src_addr, "10.0.0.1");
    // and the budget is whole again
    for (let port = 40000; port < 40004; port++)
      c.feed(ipfixPacket([set(300, [...randomBytes(16_000)])]), port);
    assert.equal(c.d.heldCount(), 4);
  });
});

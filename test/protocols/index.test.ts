/** The decoder registry: one entry per protocol, and the names the rest of the code uses come from it. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { emptyStats, FlowDecoder } from "../../src/protocols/decoder.ts";
import { DECODERS, FLOW_TYPES, PROTOCOL_NAMES } from "../../src/protocols/index.ts";

const FIRST_BYTES: Record<string, number[]> = {
  netflow5: [0, 5, 0, 0],
  netflow9: [0, 9, 0, 0],
  ipfix: [0, 10, 0, 16],
  sflow5: [0, 0, 0, 5],
};

test("names and flow types come from DECODERS, in order", () => {
  assert.deepEqual(
    DECODERS.map((d) => d.name),
    ["netflow5", "netflow9", "ipfix", "sflow5"],
  );
  assert.deepEqual(PROTOCOL_NAMES, ["netflow5", "netflow9", "ipfix", "sflow5", "unknown"]);
  assert.deepEqual(FLOW_TYPES, ["NETFLOW_V5", "NETFLOW_V9", "IPFIX", "SFLOW_5"]);
  assert.deepEqual(Object.keys(emptyStats().byProtocol), PROTOCOL_NAMES);
});

test("exactly one entry matches each protocol's version field; none matches garbage", () => {
  for (const [name, bytes] of Object.entries(FIRST_BYTES)) {
    const b = Buffer.from(bytes);
    assert.deepEqual(
      DECODERS.filter((d) => d.matches(b)).map((d) => d.name),
      [name],
    );
  }
  for (const b of [Buffer.alloc(0), Buffer.from([0]), Buffer.from([1, 2, 3, 4]), Buffer.from([0, 0, 0, 4])])
    assert.deepEqual(
      DECODERS.filter((d) => d.matches(b)),
      [],
    );
});

test("the front counts each datagram under the protocol of the entry that matched", () => {
  const d = new FlowDecoder();
  const dg = (payload: Buffer) => ({
    payload,
    exporter: "192.0.2.1",
    port: 9,
    receivedAtMs: 0,
    listener: "",
  });
  for (const bytes of Object.values(FIRST_BYTES)) {
    try {
      d.decode(dg(Buffer.from(bytes)), { flow: () => {} });
    } catch {
      // truncated on purpose: only the dispatch is looked at here
    }
  }
  assert.deepEqual(d.stats.byProtocol, { netflow5: 1, netflow9: 1, ipfix: 1, sflow5: 1, unknown: 0 });
});

/**
 * Physical interfaces (issue 19 item 3): ingressPhysicalInterface / egressPhysicalInterface (252/253) fill
 * in_if / out_if when the logical interface elements (10/14) are absent; the logical ones win when present,
 * whatever the field order.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { FlowRecord } from "../../src/core/flow.ts";
import { FlowDecoder } from "../../src/protocols/decoder.ts";
import {
  type FieldSpec,
  ipfixPacket,
  ipfixTemplate,
  record,
  set,
  v9Packet,
  v9Template,
} from "../helpers/netflow-builder.ts";

function decode(payload: Buffer): FlowRecord[] {
  const flows: FlowRecord[] = [];
  new FlowDecoder({ now: () => 1_700_000_000_000 }).decode(
    { payload, exporter: "192.0.2.1", port: 40000, receivedAtMs: 1_700_000_000_000, listener: "t" },
    { flow: (r) => flows.push(r) },
  );
  return flows;
}

const ADDR: FieldSpec[] = [
  [8, 4],
  [12, 4],
];

describe("physical interfaces (252/253)", () => {
  test("IPFIX: only physical interfaces → in_if / out_if", () => {
    const fields: FieldSpec[] = [...ADDR, [252, 4], [253, 4]];
    const [r] = decode(
      ipfixPacket([
        set(2, ipfixTemplate(400, fields)),
        set(400, record(fields, ["10.0.0.1", "10.0.0.2", 513, 1027])),
      ]),
    );
    assert.equal(r!.in_if, 513);
    assert.equal(r!.out_if, 1027);
  });

  test("NetFlow v9: the same field types", () => {
    const fields: FieldSpec[] = [...ADDR, [252, 2], [253, 2]];
    const [r] = decode(
      v9Packet([set(0, v9Template(400, fields)), set(400, record(fields, ["10.0.0.1", "10.0.0.2", 7, 8]))]),
    );
    assert.equal(r!.in_if, 7);
    assert.equal(r!.out_if, 8);
  });

  test("logical interfaces win, before or after the physical ones", () => {
    const after: FieldSpec[] = [...ADDR, [252, 4], [253, 4], [10, 4], [14, 4]];
    const before: FieldSpec[] = [...ADDR, [10, 4], [14, 4], [252, 4], [253, 4]];
    const [a, b] = decode(
      ipfixPacket([
        set(2, [...ipfixTemplate(401, after), ...ipfixTemplate(402, before)]),
        set(401, record(after, ["10.0.0.1", "10.0.0.2", 513, 1027, 3, 4])),
        set(402, record(before, ["10.0.0.1", "10.0.0.2", 3, 4, 513, 1027])),
      ]),
    );
    for (const r of [a!, b!]) {
      assert.equal(r.in_if, 3);
      assert.equal(r.out_if, 4);
    }
  });
});

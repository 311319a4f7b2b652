/**
 * Template keying and the cross-port fallback (issue 11 §3, DESIGN §4). A crafted Cisco IOS XR pattern:
 * one address, one observation domain, templates from one source port and data from the line cards' other
 * ports. And two exporters on one host (softflowd and pmacctd) with clashing template ids: no borrowing.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { FlowRecord } from "../../../src/core/flow.ts";
import { type DecoderOptions, FlowDecoder } from "../../../src/protocols/decoder.ts";
import { type FieldSpec, record, set, v9Packet, v9Template } from "../../helpers/netflow-builder.ts";

const ROUTER = "192.0.2.50";
const SOURCE_ID = 1;
/** IPv4 src/dst, ports, protocol, bytes: 17 bytes a record. */
const XR: FieldSpec[] = [
  [8, 4],
  [12, 4],
  [7, 2],
  [11, 2],
  [4, 1],
  [1, 4],
];

function collector(opts: Partial<DecoderOptions> = {}) {
  let now = 1_700_000_000_000;
  const decoder = new FlowDecoder({ now: () => now, ...opts });
  const flows: FlowRecord[] = [];
  return {
    decoder,
    flows,
    feed(payload: Buffer, port: number, exporter = ROUTER) {
      decoder.decode(
        { payload, exporter, port, receivedAtMs: now, listener: "" },
        { flow: (r) => flows.push(r) },
      );
    },
    advance(ms: number) {
      now += ms;
    },
  };
}

const v9 = (...sets: number[][]) => v9Packet(sets, { sourceId: SOURCE_ID });
const xrData = (src: string, port: number) => set(260, record(XR, [src, "10.9.9.9", port, 443, 6, 1500]));

describe("IOS XR: templates from one source port, data from the others", () => {
  test("fallback (default): the line cards' data decodes with the template of the other port", () => {
    const c = collector();
    c.feed(v9(set(0, v9Template(260, XR))), 30001); // route processor: templates
    c.feed(v9(xrData("10.0.0.1", 1001)), 30002); // line card 0
    c.feed(v9(xrData("10.0.0.2", 1002)), 30003); // line card 1
    assert.deepEqual(
      c.flows.map((f) => [f.src_addr, f.src_port, f.bytes]),
      [
        ["10.0.0.1", 1001, 1500],
        ["10.0.0.2", 1002, 1500],
      ],
    );
    assert.equal(c.decoder.stats.templateFallbacks, 2);
    assert.equal(c.decoder.heldCount(), 0);
  });

  test("line-card data held before the route processor's template is decoded when the template comes", () => {
    const c = collector();
    c.feed(v9(xrData("10.0.0.1", 1001)), 30002);
    c.feed(v9(xrData("10.0.0.2", 1002)), 30003);
    assert.equal(c.decoder.heldCount(), 2);
    c.feed(v9(set(0, v9Template(260, XR))), 30001);
    assert.deepEqual(
      c.flows.map((f) => f.src_addr),
      ["10.0.0.1", "10.0.0.2"],
    );
    assert.equal(c.decoder.heldCount(), 0);
    assert.equal(c.decoder.stats.heldDecoded, 2);
    assert.equal(c.decoder.stats.missingTemplateDrops, 0);
  });

  test("the most recent template of the other ports wins", () => {
    const c = collector();
    const other: FieldSpec[] = [
      [12, 4],
      [8, 4],
      [11, 2],
      [7, 2],
      [4, 1],
      [1, 4],
    ];
    c.feed(v9(set(0, v9Template(260, other))), 30004);
    c.advance(1000);
    c.feed(v9(set(0, v9Template(260, XR))), 30001);
    c.feed(v9(xrData("10.0.0.1", 1001)), 30002);
    assert.equal(c.flows[0]!.src_addr, "10.0.0.1");
  });

  test("data that does not fit the template's records is held, not decoded", () => {
    const c = collector();
    c.feed(v9(set(0, v9Template(260, XR))), 30001);
    // 17-byte records: a set of 2 records + 6 stray bytes is not this template's
    c.feed(
      v9(
        set(260, [
          ...record(XR, ["10.0.0.1", "10.9.9.9", 1, 2, 6, 1]),
          ...record(XR, ["10.0.0.2", "10.9.9.9", 1, 2, 6, 1]),
          1,
          2,
          3,
          4,
          5,
          6,
        ]),
      ),
      30002,
    );
    assert.equal(c.flows.length, 0);
    assert.equal(c.decoder.heldCount(), 1);
  });

  test("session keeps strict RFC 7011 keying (held); exporter keys by address alone (decoded, no fallback)", () => {
    const strict = collector({ templateScope: "session" });
    strict.feed(v9(set(0, v9Template(260, XR))), 30001);
    strict.feed(v9(xrData("10.0.0.1", 1001)), 30002);
    assert.equal(strict.flows.length, 0);
    assert.equal(strict.decoder.heldCount(), 1);
    const byAddress = collector({ templateScope: "exporter" });
    byAddress.feed(v9(set(0, v9Template(260, XR))), 30001);
    byAddress.feed(v9(xrData("10.0.0.1", 1001)), 30002);
    assert.equal(byAddress.flows.length, 1);
    assert.equal(byAddress.decoder.stats.templateFallbacks, 0);
  });

  test("another observation domain or address does not borrow", () => {
    const c = collector();
    c.feed(v9(set(0, v9Template(260, XR))), 30001);
    c.feed(v9Packet([xrData("10.0.0.1", 1001)], { sourceId: 2 }), 30002);
    c.feed(v9(xrData("10.0.0.1", 1001)), 30002, "192.0.2.51");
    assert.equal(c.flows.length, 0);
    assert.equal(c.decoder.heldCount(), 2);
  });
});

describe("two exporters on one host (softflowd and pmacctd) with clashing template ids", () => {
  const A: FieldSpec[] = [
    [8, 4],
    [12, 4],
    [4, 1],
    [2, 4],
    [1, 4],
  ]; // 17 bytes
  const B: FieldSpec[] = [
    [1, 4],
    [2, 4],
    [4, 1],
    [12, 4],
    [8, 4],
  ]; // 17 bytes too: the same length, another layout

  test("each decodes with its own template", () => {
    const c = collector();
    c.feed(v9(set(0, v9Template(256, A))), 9995);
    c.feed(v9(set(0, v9Template(256, B))), 9996);
    c.feed(v9(set(256, record(A, ["10.1.1.1", "10.2.2.2", 17, 3, 300]))), 9995);
    c.feed(v9(set(256, record(B, [400, 4, 6, "10.4.4.4", "10.3.3.3"]))), 9996);
    assert.deepEqual(
      c.flows.map((f) => [f.src_addr, f.dst_addr, f.proto, f.bytes]),
      [
        ["10.1.1.1", "10.2.2.2", 17, 300],
        ["10.3.3.3", "10.4.4.4", 6, 400],
      ],
    );
    assert.equal(c.decoder.stats.templateFallbacks, 0);
  });

  test("data ahead of its own template waits for it instead of borrowing the other exporter's", () => {
    const c = collector();
    c.feed(v9(set(0, v9Template(256, A))), 9995);
    c.feed(v9(set(0, v9Template(257, B))), 9996); // pmacctd has templates of its own (another id so far)
    c.feed(v9(set(256, record(B, [400, 4, 6, "10.4.4.4", "10.3.3.3"]))), 9996); // before its template 256
    assert.equal(c.flows.length, 0);
    c.feed(v9(set(0, v9Template(256, B))), 9996);
    assert.deepEqual(
      c.flows.map((f) => [f.src_addr, f.bytes]),
      [["10.3.3.3", 400]],
    );
    assert.equal(c.decoder.stats.templateFallbacks, 0);
  });
});

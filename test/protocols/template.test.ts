import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FlowRecord } from "../../src/core/flow.ts";
import { compileRecordDecoder, makeField, Scratch } from "../../src/protocols/template.ts";

describe("compileRecordDecoder", () => {
  // sourceIPv4Address, destinationIPv4Address, octetDeltaCount, an enterprise element kept in `extra`
  const layout = (v9: boolean, octets = 8) => [
    makeField(0, 8, 4, v9),
    makeField(0, 12, 4, v9),
    makeField(0, 1, octets, v9),
    makeField(9999, 7, 2, v9),
  ];

  it("shares one compiled function per layout, across exporters and templates", () => {
    const a = compileRecordDecoder(layout(false));
    assert.equal(compileRecordDecoder(layout(false)), a);
    assert.notEqual(compileRecordDecoder(layout(false, 4)), a);
    assert.notEqual(compileRecordDecoder(layout(false).slice(0, 3)), a);
    assert.notEqual(compileRecordDecoder([...layout(false)].reverse()), a);
  });

  it("the shared function decodes each caller's record by its own fields", () => {
    const wire = Uint8Array.from([10, 1, 2, 3, 192, 168, 200, 254, 0, 0, 0, 0, 0, 0, 5, 220, 0x12, 0x34]);
    for (const octets of [8, 4]) {
      const decode = compileRecordDecoder(layout(false, octets));
      const b = octets === 8 ? wire : Uint8Array.from([...wire.subarray(0, 8), 0, 0, 5, 220, 0x12, 0x34]);
      const r = new FlowRecord();
      assert.equal(decode(b, 0, b.length, r, new Scratch()), b.length);
      assert.equal(r.src_addr, "10.1.2.3");
      assert.equal(r.dst_addr, "192.168.200.254");
      assert.equal(r.bytes, 1500);
      assert.deepEqual(r.extra, { "9999.7": "1234" }); // unknown element: hex
    }
  });
});

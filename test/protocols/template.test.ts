import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FlowRecord } from "../../src/core/flow.ts";
import { compileRecordDecoder, makeField, Scratch } from "../../src/protocols/template.ts";
import { readUint, readUintNumber } from "../../src/protocols/wire.ts";

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

  it("reads 8-byte counters and numbers inline exactly as readUint / readUintNumber do", () => {
    // octetDeltaCount, packetDeltaCount (counters: number below 2^53, bigint from 2^53) and
    // observationPointId (a number: rounded above 2^53)
    const decode = compileRecordDecoder([
      makeField(0, 1, 8, false),
      makeField(0, 2, 8, false),
      makeField(0, 138, 8, false),
    ]);
    const highs = [0, 1, 0x1fffff, 0x200000, 0x200001, 0xffffffff, 0x80000000, 0x12345678];
    const lows = [0, 1, 0xffffffff, 0x80000000, 0x9abcdef0];
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0);
    const words: [number, number][] = [];
    for (const hi of highs) for (const lo of lows) words.push([hi, lo]);
    for (let i = 0; i < 200; i++) words.push([rand() >>> (rand() % 32), rand()]);
    for (let i = 0; i + 2 < words.length; i++) {
      const b = new Uint8Array(24);
      const view = new DataView(b.buffer);
      for (let k = 0; k < 3; k++) {
        view.setUint32(k * 8, words[i + k]![0]);
        view.setUint32(k * 8 + 4, words[i + k]![1]);
      }
      const r = new FlowRecord();
      assert.equal(decode(b, 0, b.length, r, new Scratch()), 24);
      assert.deepEqual([r.bytes, r.packets], [readUint(b, 0, 8), readUint(b, 8, 8)], `words ${i}`);
      assert.equal(r.observation_point_id, readUintNumber(b, 16, 8));
    }
    const edge = new Uint8Array(24);
    new DataView(edge.buffer).setBigUint64(0, 2n ** 53n - 1n);
    new DataView(edge.buffer).setBigUint64(8, 2n ** 53n);
    new DataView(edge.buffer).setBigUint64(16, 2n ** 64n - 1n);
    const r = new FlowRecord();
    decode(edge, 0, 24, r, new Scratch());
    assert.equal(r.bytes, 9007199254740991);
    assert.equal(r.packets, 9007199254740992n);
    assert.equal(r.observation_point_id, 2 ** 64); // rounded, as readUintNumber does
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ipv4, ipv4Number, ipv4Text, ipv6, writeIPv4, writeOctet } from "../../src/core/address.ts";

const ipv4Chars = (b: Uint8Array, o: number): string => ipv4Text(ipv4Number(b, o));

describe("ipv4", () => {
  it("renders every octet value, at any offset", () => {
    const b = new Uint8Array(4);
    const addrs = Array.from({ length: 70_000 }, (_, i) => (Math.imul(i, 2654435761) >>> 0) ^ (i & 255));
    for (let round = 0; round < 2; round++) {
      for (const v of addrs) {
        b[0] = v >>> 24;
        b[1] = (v >>> 16) & 255;
        b[2] = (v >>> 8) & 255;
        b[3] = v & 255;
        const want = `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
        assert.equal(ipv4(b, 0), want);
        assert.equal(ipv4Chars(b, 0), want);
        assert.equal(ipv4Number(b, 0), v >>> 0);
      }
    }
    assert.equal(ipv4(Uint8Array.from([9, 0, 0, 0, 255, 0, 10, 1]), 4), "255.0.10.1");
    assert.equal(ipv4(new Uint8Array(4), 0), "0.0.0.0");
    assert.equal(ipv4Chars(Uint8Array.from([9, 0, 0, 0, 255, 0, 10, 1]), 4), "255.0.10.1");
    // every text length from 7 ("0.0.0.0") to 15 ("255.255.255.255")
    for (let len = 7; len <= 15; len++) {
      const octets = [0, 0, 0, 0].map((_, i) => {
        const digits = Math.min(3, Math.max(1, len - 3 - 3 * i - (3 - i)));
        return digits === 3 ? 200 : digits === 2 ? 42 : 7;
      });
      const text = ipv4Chars(Uint8Array.from(octets), 0);
      assert.equal(text, octets.join("."));
      assert.equal(text.length, len);
    }
    assert.equal(ipv4Chars(Uint8Array.from([255, 255, 255, 255]), 0), "255.255.255.255");
    assert.equal(
      ipv6(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 10, 1, 2, 3]), 0),
      "::ffff:10.1.2.3",
    );
  });
});

describe("writeIPv4 / writeOctet", () => {
  it("write the same text as ipv4Text into bytes, ending where the text ends", () => {
    const out = new Uint8Array(40);
    const addrs = [0, 0xffffffff, 0x0a000001, 0xc0a80aff, 0x64090a63];
    for (let i = 0; i < 5000; i++) addrs.push((Math.imul(i, 2654435761) >>> 0) ^ (i & 255));
    for (const v of addrs) {
      for (const at of [0, 3]) {
        out.fill(120);
        const end = writeIPv4(out, at, v);
        const text = ipv4Text(v);
        assert.equal(Buffer.from(out.subarray(at, end)).toString("latin1"), text);
        assert.equal(end - at, text.length);
      }
    }
    for (let v = 0; v < 256; v++) {
      const end = writeOctet(out, 1, v);
      assert.equal(Buffer.from(out.subarray(1, end)).toString("latin1"), String(v));
    }
  });
});

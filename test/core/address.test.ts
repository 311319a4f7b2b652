import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  addressBytes,
  ipv4,
  ipv4Number,
  ipv4Text,
  ipv6,
  macString,
  maskIPv4,
  parseIPv4Number,
  prefixText,
  writeIPv4,
  writeOctet,
} from "../../src/core/address.ts";

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

describe("ipv6", () => {
  it("prints what the WHATWG URL serializer prints (RFC 5952), and addressBytes reads it back", () => {
    const b = new Uint8Array(16);
    let x = 0x9e3779b9;
    for (let i = 0; i < 20_000; i++) {
      // mostly zero groups, so runs of every length and position occur
      for (let g = 0; g < 8; g++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        const v = x >>> 28 < 9 ? 0 : x >>> 16;
        b[2 * g] = v >>> 8;
        b[2 * g + 1] = v & 255;
      }
      if (b[10] === 255 && b[11] === 255 && b.subarray(0, 10).every((o) => o === 0)) continue; // 4in6 below
      const text = ipv6(b, 0);
      assert.equal(text, new URL(`http://[${text}]/`).hostname.slice(1, -1));
      assert.deepEqual(addressBytes(text), b, text);
    }
    assert.equal(ipv6(new Uint8Array(16), 0), "::");
    assert.equal(ipv6(Uint8Array.from([0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3]), 0), "1:0:0:2::3");
    assert.equal(ipv6(Uint8Array.from([0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 0]), 0), "1::2:0:0:3:0");
  });
});

describe("address text to numbers and bytes", () => {
  it("parseIPv4Number reads dotted quads and refuses anything else", () => {
    for (const v of [0, 1, 0x0a000001, 0xc0a85801, 0xffffffff]) assert.equal(parseIPv4Number(ipv4Text(v)), v);
    assert.equal(parseIPv4Number("010.1.2.3"), 0x0a010203, "up to 3 digits");
    for (const bad of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.1.1.1",
      "1..2.3",
      "1.2.3.4 ",
      "::1",
      "0001.1.1.1",
      "a.b.c.d",
    ])
      assert.equal(parseIPv4Number(bad), -1, bad);
  });

  it("addressBytes gives 4 or 16 network-order bytes, null for what is not an address", () => {
    assert.deepEqual(addressBytes("10.1.2.3"), Uint8Array.from([10, 1, 2, 3]));
    assert.deepEqual(
      addressBytes("::ffff:10.1.2.3"),
      Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 10, 1, 2, 3]),
    );
    assert.deepEqual(addressBytes("fe80::1%eth0")?.[15], 1, "a zone is ignored");
    for (const bad of ["", "1:2:3:4:5:6:7", "1::2::3", "12345::", ":1::", "1:2:", "1.2.3.4::", "x"])
      assert.equal(addressBytes(bad), null, bad);
  });

  it("maskIPv4 and prefixText mask to the prefix length as Go's netip does", () => {
    assert.equal(maskIPv4(0x0affffff, 9), 0x0a800000);
    assert.equal(maskIPv4(0x0affffff, 32), 0x0affffff);
    for (const len of [0, 33, -1, 1.5, NaN]) assert.equal(maskIPv4(0x0affffff, len), -1, String(len));
    assert.equal(prefixText("10.1.2.3", 24), "10.1.2.0/24");
    assert.equal(prefixText("10.1.2.3", 0), "0.0.0.0/0");
    assert.equal(prefixText("2001:db8:abcd:12::1", 33), "2001:db8:8000::/33");
    assert.equal(prefixText("::ffff:10.1.2.3", 120), "::ffff:10.1.2.0/120");
    for (const [a, len] of [
      ["10.1.2.3", 33],
      ["10.1.2.3", 1.5],
      ["", 0],
      ["::1", 129],
      ["x", 8],
    ] as const)
      assert.equal(prefixText(a, len), null, `${a}/${len}`);
  });

  it("macString renders 48-bit MACs", () => {
    assert.equal(macString(0), "00:00:00:00:00:00");
    assert.equal(macString(0xffffffffffff), "ff:ff:ff:ff:ff:ff");
    assert.equal(macString(0x0a1b2c3d4e5f), "0a:1b:2c:3d:4e:5f");
  });
});

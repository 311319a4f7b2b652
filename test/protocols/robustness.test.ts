/**
 * Malformed input: every prefix of every fixture, and random bit flips over them, decode to records or a
 * DecodeError only (never a RangeError/TypeError, never a hang), within bounded time and memory.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { DecodeError } from "../../src/core/errors.ts";
import { FlowDecoder } from "../../src/protocols/decoder.ts";

const DIR = new URL("../fixtures/logstash/", import.meta.url);
const files = readdirSync(DIR)
  .filter((f) => f.endsWith(".dat"))
  .sort();

/** Template files first so that data files meet their templates and the record paths are exercised. */
const ordered = [...files.filter((f) => /tpl|opttpl/.test(f)), ...files.filter((f) => !/tpl|opttpl/.test(f))];

function decodeAll(decoder: FlowDecoder, payload: Buffer): number {
  let n = 0;
  try {
    decoder.decode(
      { payload, exporter: "192.0.2.1", port: 2055, receivedAtMs: 1_600_000_000_000, listener: "" },
      { flow: () => n++, options: () => n++, counters: () => n++ },
    );
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    // The front turns a decoder bug into a DecodeError so the service survives; here it must not happen.
    assert.notEqual(e.code, "INTERNAL", e.message);
    assert.ok(e.offset >= 0 && e.offset <= payload.length, `error offset ${e.offset} inside the datagram`);
  }
  return n;
}

/** A small deterministic PRNG (xorshift32) so failures reproduce. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

test("every prefix of every fixture decodes to records or a DecodeError", () => {
  const decoder = new FlowDecoder({ collectElements: true });
  let datagrams = 0;
  for (const f of ordered) {
    const data = readFileSync(new URL(f, DIR));
    for (let len = 0; len <= data.length; len++) {
      decodeAll(decoder, data.subarray(0, len));
      datagrams++;
    }
  }
  assert.ok(datagrams > 50_000);
});

test("random bit flips over every fixture decode to records or a DecodeError", () => {
  const random = rng(0xc1a710);
  const decoder = new FlowDecoder({ collectElements: true });
  const started = process.hrtime.bigint();
  for (const f of ordered) {
    const data = readFileSync(new URL(f, DIR));
    for (let round = 0; round < 200; round++) {
      const copy = Buffer.from(data);
      const flips = 1 + Math.floor(random() * 8);
      for (let i = 0; i < flips; i++) {
        const bit = Math.floor(random() * copy.length * 8);
        copy[bit >>> 3]! ^= 1 << (bit & 7);
      }
      decodeAll(decoder, copy);
    }
  }
  // bounded memory: held data and templates stay within their limits
  assert.ok(decoder.heldCount() <= 256 * 64);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  assert.ok(seconds < 120, `bit-flip rounds finished (${seconds.toFixed(1)} s)`);
});

test("length fields cannot make the decoder allocate more than the datagram holds", () => {
  // v9 header + a FlowSet claiming 65535 bytes; IPFIX header claiming a 65535-byte message
  const v9 = Buffer.from([0, 9, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0xff, 0xff]);
  const ipfix = Buffer.from([0, 10, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const decoder = new FlowDecoder();
  assert.equal(decodeAll(decoder, v9), 0);
  assert.equal(decodeAll(decoder, ipfix), 0);
  assert.equal(decoder.stats.errors.TRUNCATED, 2);
  const before = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < 10_000; i++) {
    decodeAll(decoder, v9);
    decodeAll(decoder, ipfix);
  }
  assert.ok(process.memoryUsage().arrayBuffers - before < 50 * 1024 * 1024);
});

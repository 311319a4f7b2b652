/** The decode threads' datagram ring (src/inputs/ring.ts): order, contents, wrap-around, a full ring. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Datagram } from "../../src/core/datagram.ts";
import {
  createRingBuffer,
  RING_NORMAL,
  RING_STATE_ONLY,
  RingReader,
  RingWriter,
} from "../../src/inputs/ring.ts";

const dg = (i: number, len: number): Datagram => ({
  payload: Buffer.alloc(len, i & 0xff),
  exporter: i % 2 ? "192.0.2.1" : "2001:db8::7",
  port: 1000 + i,
  receivedAtMs: 1_700_000_000_000 + i,
  listener: i % 3 ? "udp:2055" : "udp:6343",
});

describe("datagram ring", () => {
  it("hands over every datagram in order, with its fields, across many wrap-arounds", () => {
    const sab = createRingBuffer(4096);
    const w = new RingWriter(sab);
    const r = new RingReader(sab, ["udp:2055", "udp:6343"]);
    let written = 0;
    let read = 0;
    let refused = 0;
    for (let round = 0; round < 400; round++) {
      // write a few of varying sizes (up to a full ring), then read some
      for (let k = 0; k < 3; k++) {
        const i = written;
        const d = dg(i, 1 + ((i * 397) % 1500));
        if (w.write(d, d.listener === "udp:2055" ? 0 : 1, i, i % 5 ? RING_NORMAL : RING_STATE_ONLY))
          written++;
        else refused++;
      }
      const n = round % 2 ? 3 : 2;
      for (let k = 0; k < n; k++) {
        const e = r.read();
        if (e === null) break;
        const want = dg(read, 1 + ((read * 397) % 1500));
        assert.equal(e.index, read);
        assert.equal(e.kind, read % 5 ? RING_NORMAL : RING_STATE_ONLY);
        assert.equal(e.dg.exporter, want.exporter);
        assert.equal(e.dg.port, want.port);
        assert.equal(e.dg.listener, want.listener);
        assert.equal(e.dg.receivedAtMs, want.receivedAtMs);
        assert.ok(e.dg.payload.equals(want.payload), `payload of ${read}`);
        read++;
      }
    }
    while (r.read() !== null) read++;
    assert.equal(read, written, "everything written is read");
    assert.ok(refused > 0, "the ring filled up at times");
    assert.ok(written > 400, "and wrapped around many times");
  });

  it("refuses a datagram when full and takes it again once read", () => {
    const sab = createRingBuffer(1024);
    const w = new RingWriter(sab);
    const r = new RingReader(sab, ["udp:2055"]);
    assert.ok(w.write(dg(0, 600), 0, 0, RING_NORMAL));
    assert.equal(w.write(dg(1, 600), 0, 1, RING_NORMAL), false, "no room");
    assert.equal(w.write(dg(2, 2000), 0, 2, RING_NORMAL), false, "never fits");
    assert.equal(r.read()?.index, 0);
    assert.equal(r.read(), null);
    // (a record goes in one piece, at the head or at the start: up to half the ring always fits once read)
    assert.ok(w.write(dg(1, 300), 0, 1, RING_NORMAL), "room again");
    assert.equal(r.read()?.index, 1);
  });

  it("wakes a waiting reader when a datagram comes", async () => {
    const sab = createRingBuffer(1024);
    const w = new RingWriter(sab);
    const r = new RingReader(sab, ["udp:2055"]);
    const woken = r.wait();
    w.write(dg(0, 10), 0, 0, RING_NORMAL);
    await woken;
    assert.equal(r.read()?.index, 0);
  });
});

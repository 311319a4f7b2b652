import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { describe, it } from "node:test";
import { parseProcNetUdp, readKernelUdpCounters } from "../../src/inputs/udp.ts";

const SAMPLE = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 00000000:0807 00000000:0000 07 00000000:00000300 00:00000000 00000000     0        0 4242 2 0000000000000000 17
  124: 0100007F:1283 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 4243 2 0000000000000000 0
`;

describe("parseProcNetUdp", () => {
  it("reads port, inode, receive queue and drops", () => {
    assert.deepEqual(parseProcNetUdp(SAMPLE), [
      { port: 2055, inode: 4242, rxQueue: 0x300, drops: 17 },
      { port: 4739, inode: 4243, rxQueue: 0, drops: 0 },
    ]);
  });
});

describe("readKernelUdpCounters", { skip: process.platform !== "linux" ? "Linux only" : false }, () => {
  it("finds our own socket by port", async () => {
    const s = createSocket("udp4");
    await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
    try {
      const port = s.address().port;
      const m = await readKernelUdpCounters([port]);
      assert.deepEqual(m.get(port), { drops: 0, rxQueueBytes: 0 });
    } finally {
      s.close();
    }
  });
});

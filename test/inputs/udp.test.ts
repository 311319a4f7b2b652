import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { describe, it } from "node:test";
import { DecodeError } from "../../src/core/errors.ts";
import type { RecordHandler } from "../../src/core/flow.ts";
import { createLogger } from "../../src/core/log.ts";
import {
  parseProcNetUdp,
  readKernelUdpCounters,
  receiveBufferShortfall,
  UdpInput,
  type WorkerStats,
} from "../../src/inputs/udp.ts";
import { isInternalDecodeError } from "../../src/inputs/worker.ts";
import { FlowDecoder } from "../../src/protocols/decoder.ts";
import type { EncodedBatch } from "../../src/sinks/types.ts";
import { type FieldSpec, record, set, v9Packet, v9Template } from "../helpers/netflow-builder.ts";
import { netflowV5, send, udpClient, waitFor } from "../helpers/service.ts";

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

describe("isInternalDecodeError", () => {
  it("tells the decoder's wrapped bugs from malformed input", () => {
    // FlowDecoder.decode turns an exception that is not a DecodeError into this one.
    const bug = new DecodeError(
      "INTERNAL",
      "internal decoder error: x is undefined",
      "ipfix",
      "192.0.2.1",
      0,
    );
    const malformed = new DecodeError("BAD_RECORD", "record longer than its set", "ipfix", "192.0.2.1", 20);
    assert.equal(isInternalDecodeError(bug), true);
    assert.equal(isInternalDecodeError(malformed), false);
    assert.equal(isInternalDecodeError(new Error("INTERNAL")), false);
  });

  it("recognizes what FlowDecoder.decode throws for a bug", () => {
    const d = new FlowDecoder({});
    const dg = {
      payload: netflowV5(1, 1000, 2),
      exporter: "192.0.2.1",
      port: 2055,
      receivedAtMs: Date.now(),
      listener: "udp:2055",
    };
    const thrown = (handler: RecordHandler): unknown => {
      try {
        d.decode(dg, handler);
      } catch (err) {
        return err;
      }
      return null;
    };
    const bug = thrown({
      flow: () => {
        throw new TypeError("a bug");
      },
      counters: () => {},
    });
    assert.ok(bug instanceof DecodeError);
    assert.equal(isInternalDecodeError(bug), true);
    const truncated = { ...dg, payload: dg.payload.subarray(0, 30) };
    const malformed = (() => {
      try {
        d.decode(truncated, { flow: () => {}, counters: () => {} });
      } catch (err) {
        return err;
      }
      return null;
    })();
    assert.ok(malformed instanceof DecodeError);
    assert.equal(isInternalDecodeError(malformed), false);
  });
});

describe("UdpInput worker restart", () => {
  const FIELDS: FieldSpec[] = [
    [8, 4], // IPV4_SRC_ADDR
    [12, 4], // IPV4_DST_ADDR
    [7, 2], // L4_SRC_PORT
    [11, 2], // L4_DST_PORT
    [4, 1], // PROTOCOL
    [1, 4], // IN_BYTES
    [2, 4], // IN_PKTS
  ];
  const data = (ports: number[]) =>
    set(
      256,
      ports.flatMap((p) => record(FIELDS, ["10.0.0.1", "10.0.0.2", p, 53, 17, 100, 1])),
    );
  const unixSecs = () => Math.floor(Date.now() / 1000);

  for (const decodeThreads of [0, 2])
    it(`counts the records a crashed worker held and restarts it with the latest templates (--decode-threads ${decodeThreads})`, async () => {
      const stats: WorkerStats[] = [];
      const exits: Array<[number, number]> = [];
      const batches: EncodedBatch[] = [];
      const input = await UdpInput.start({
        ports: [{ port: 0, role: "netflow" }],
        bindHost: "127.0.0.1",
        workers: 1,
        state: [],
        logger: createLogger({ level: "silent" }),
        onBatch: (b) => batches.push(b),
        onStats: (s) => stats.push(s),
        onWorkerExit: (w, lost) => exits.push([w, lost]),
        worker: {
          udpRcvbuf: 0,
          outputs: [{ uri: "jsonl:-", options: {} }],
          batchSize: 1000,
          batchIntervalMs: 600_000,
          decoder: {},
          logLevel: "silent",
          statsIntervalMs: 20,
          tickIntervalMs: 1000,
          decodeThreads,
        },
      });
      const client = await udpClient("udp4", "127.0.0.1");
      const port = input.listeners[0]!.port;
      try {
        // The template arrives after process start: only a state saved since then knows it.
        await send(
          client,
          v9Packet([set(0, v9Template(256, FIELDS)), data([1, 2, 3])], { sequence: 1, unixSecs: unixSecs() }),
          port,
          "127.0.0.1",
        );
        await waitFor("3 records pending", async () => stats.at(-1)?.recordsPending === 3);
        assert.equal(stats.at(-1)!.generation, 1);
        assert.equal((await input.states()).length, 1); // what the periodic state save does

        await input.terminateWorker(0);
        await waitFor("exit counted", async () => exits.length === 1);
        assert.deepEqual(exits, [[0, 3]]);
        await waitFor("worker restarted", async () => input.workersListening === 1, 10_000);

        // Data without its template decodes at once in the restarted worker.
        await send(
          client,
          v9Packet([data([4, 5])], { sequence: 2, unixSecs: unixSecs() }),
          port,
          "127.0.0.1",
        );
        await waitFor(
          "restarted worker batches 2 records",
          async () => stats.at(-1)?.generation === 2 && stats.at(-1)?.recordsPending === 2,
        );
        assert.equal(stats.at(-1)!.decoder.missingTemplateDrops, 0);
        assert.equal(stats.at(-1)!.decoder.heldSets, 0);
      } finally {
        client.close();
        await input.stop();
      }
      assert.deepEqual(
        batches.map((b) => b.records),
        [2],
      );
    });
});

describe("receiveBufferShortfall", () => {
  const l = (name: string, receiveBufferBytes: number) => ({ name, receiveBufferBytes });
  it("on Linux, a full grant reads twice the request", () => {
    assert.equal(receiveBufferShortfall(1000, [l("udp:1", 2000)], "linux"), null);
    assert.deepEqual(receiveBufferShortfall(1000, [l("udp:1", 2000), l("udp:2", 1500)], "linux"), {
      granted: 1500,
      listeners: ["udp:2"],
    });
  });
  it("elsewhere the size itself; 0 (system default) is never short", () => {
    assert.equal(receiveBufferShortfall(1000, [l("udp:1", 1000)], "darwin"), null);
    assert.equal(receiveBufferShortfall(0, [l("udp:1", 10)], "linux"), null);
  });
});

/**
 * The receive worker's outputs (src/inputs/outputs.ts): batches cut at --batch-size and at the interval,
 * nothing left behind at close, counters, which outputs let the decoder refill one record, copies for
 * outputs that hold records, and encoder failures counted per record (append) or per batch (cut).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { FlowRecord } from "../../src/core/flow.ts";
import { type NamedEncoder, WorkerOutputs } from "../../src/inputs/outputs.ts";
import { createGoflow2LinesEncoder } from "../../src/sinks/jsonl.ts";
import { createSqliteEncoder, decodeColumnar } from "../../src/sinks/sqlite/columnar.ts";
import type { EncodedBatch, SinkEncoder } from "../../src/sinks/types.ts";

/** Fills `r` as flow number i (src_port i, receive time 1000 + i). */
function fill(r: FlowRecord, i: number): FlowRecord {
  r.clear();
  r.type = "NETFLOW_V5";
  r.sampler_address = "192.0.2.1";
  r.src_addr = "10.0.0.1";
  r.dst_addr = "10.0.0.2";
  r.src_port = i;
  r.dst_port = 80;
  r.proto = 6;
  r.bytes = 100 + i;
  r.packets = 1;
  r.time_received_ms = 1000 + i;
  return r;
}

/** A batched (not streaming) output that records what it was given; optionally idle-capable. */
function holding(idle?: () => boolean): SinkEncoder & { seen: FlowRecord[][] } {
  const seen: FlowRecord[][] = [];
  return {
    seen,
    encode(records) {
      seen.push([...records]);
      return { sink: "hold", records: records.length, parts: [], oldestMs: 0 };
    },
    ...(idle !== undefined ? { idle } : {}),
  };
}

function setup(encoders: NamedEncoder[], batchSize: number, batchIntervalMs = 3_600_000) {
  const posted: EncodedBatch[] = [];
  const errors: string[] = [];
  const outputs = new WorkerOutputs({
    encoders,
    batchSize,
    batchIntervalMs,
    post: (b) => posted.push(b),
    error: (key, _f, message) => errors.push(`${key}: ${message}`),
  });
  /** Feeds flows from..to−1 as the decoder does (the refilled record when the outputs allow it). */
  const feed = (from: number, to: number): void => {
    for (let i = from; i < to; i++) outputs.flow(fill(outputs.scratch ?? new FlowRecord(), i));
  };
  return { outputs, posted, errors, feed };
}

const ports = (b: EncodedBatch): number[] =>
  new TextDecoder()
    .decode(b.parts[0]!.data)
    .trimEnd()
    .split("\n")
    .map((l) => (JSON.parse(l) as { src_port: number }).src_port);

describe("WorkerOutputs", () => {
  it("cuts every streaming output's batch at the batch size, keeps the rest pending, cuts it at close", () => {
    const { outputs, posted, feed } = setup(
      [
        { name: "jsonl:-", enc: createGoflow2LinesEncoder("jsonl:-") },
        { name: "sqlite:x", enc: createSqliteEncoder("sqlite:x") },
      ],
      3,
    );
    assert.ok(outputs.scratch instanceof FlowRecord, "jsonl and sqlite let the decoder refill one record");
    feed(0, 7);
    assert.deepEqual(
      posted.map((b) => [b.sink, b.records]),
      [
        ["jsonl:-", 3],
        ["sqlite:x", 3],
        ["jsonl:-", 3],
        ["sqlite:x", 3],
      ],
    );
    assert.deepEqual(ports(posted[0]!), [0, 1, 2]);
    assert.deepEqual(ports(posted[2]!), [3, 4, 5]);
    assert.equal(posted[2]!.oldestMs, 1003);
    const rows = decodeColumnar(posted[3]!.parts[0]!.data);
    assert.equal(rows.rows, 3);
    assert.equal(outputs.recordsBatched, 6);
    assert.equal(outputs.recordsPending, 1);
    assert.equal(outputs.batchesPosted, 4);
    outputs.close();
    assert.equal(posted.length, 6, "the last, short batch of every output at close");
    assert.deepEqual(ports(posted[4]!), [6]);
    assert.equal(posted[5]!.records, 1);
    assert.equal(outputs.recordsBatched, 7);
    assert.equal(outputs.recordsPending, 0);
    assert.throws(() => feed(7, 8), /closed/);
  });

  it("cuts at the interval when the size is not reached", async () => {
    const { outputs, posted, feed } = setup(
      [{ name: "jsonl:-", enc: createGoflow2LinesEncoder("jsonl:-") }],
      1000,
      20,
    );
    feed(0, 2);
    assert.equal(posted.length, 0);
    for (let waited = 0; posted.length === 0 && waited < 30_000; waited += 10) await sleep(10);
    assert.equal(posted.length, 1);
    assert.deepEqual(ports(posted[0]!), [0, 1]);
    assert.equal(outputs.recordsBatched, 2);
    feed(2, 3);
    outputs.close();
    assert.deepEqual(ports(posted[1]!), [2]);
  });

  it("refills one record only while no output holds records; held records are copies", () => {
    const busy = holding(() => false);
    const withHttp = setup(
      [
        { name: "sqlite:x", enc: createSqliteEncoder("sqlite:x") },
        { name: "http", enc: holding() },
      ],
      10,
    );
    assert.equal(withHttp.outputs.scratch, undefined, "an output holding records: one record per flow");

    const { outputs, posted, feed } = setup(
      [
        { name: "jsonl:-", enc: createGoflow2LinesEncoder("jsonl:-") },
        { name: "tail", enc: busy },
      ],
      4,
    );
    assert.ok(outputs.scratch !== undefined, "an idle-capable output does not prevent the refill");
    feed(0, 4);
    assert.equal(busy.seen.length, 1);
    assert.deepEqual(
      busy.seen[0]!.map((r) => r.src_port),
      [0, 1, 2, 3],
      "copies: each held record kept its values",
    );
    assert.ok(busy.seen[0]!.every((r) => r !== outputs.scratch));
    assert.deepEqual(ports(posted[0]!), [0, 1, 2, 3]);
  });

  it("holds nothing for an idle output, and counts records no batch waits for", () => {
    const tail = holding(() => true);
    const { outputs, feed } = setup([{ name: "tail", enc: tail }], 2);
    feed(0, 5);
    outputs.close();
    assert.equal(tail.seen.length, 0);
    assert.equal(outputs.recordsBatched, 5);

    const both = setup(
      [
        { name: "sqlite:x", enc: createSqliteEncoder("sqlite:x") },
        { name: "tail", enc: holding(() => true) },
      ],
      2,
    );
    both.feed(0, 5);
    both.outputs.close();
    assert.deepEqual(
      both.posted.map((b) => b.records),
      [2, 2, 1],
    );
    assert.equal(both.outputs.recordsBatched, 5);
  });

  it("counts a failed append per record and a failed cut per batch; the other outputs go on", () => {
    const jsonl = createGoflow2LinesEncoder("jsonl:-");
    const flaky: SinkEncoder = {
      encode: jsonl.encode,
      append(r) {
        if (r.src_port === 1) throw new Error("bad record");
        jsonl.append!(r);
      },
      cut() {
        const b = jsonl.cut!();
        if (b.records === 1) throw new Error("bad batch");
        return b;
      },
    };
    const { outputs, posted, errors, feed } = setup(
      [
        { name: "flaky", enc: flaky },
        { name: "sqlite:x", enc: createSqliteEncoder("sqlite:x") },
      ],
      3,
    );
    feed(0, 4);
    assert.deepEqual(
      posted.map((b) => [b.sink, b.records]),
      [
        ["jsonl:-", 2],
        ["sqlite:x", 3],
      ],
    );
    assert.deepEqual(ports(posted[0]!), [0, 2]);
    outputs.close(); // flaky's last batch (1 record) fails as a whole
    assert.deepEqual(
      posted.map((b) => b.records),
      [2, 3, 1],
    );
    assert.equal(posted[2]!.sink, "sqlite:x");
    assert.deepEqual(outputs.encodeErrors, { flaky: 2 });
    assert.deepEqual(errors, [
      "encode:flaky: encoder failed; record lost for this sink",
      "encode:flaky: encoder failed; batch lost for this sink",
    ]);
  });
});

/**
 * Export sequence gaps (src/protocols/sequence.ts) through the decoder front, with crafted datagrams of
 * every protocol: gaps counted in each protocol's unit, per exporter and domain; exporter restarts (uptime
 * back, big jumps) told apart as resets; late datagrams; held data (unknown record count) never counted as
 * a gap; the stream bound.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RecordHandler } from "../../src/core/flow.ts";
import { FlowDecoder } from "../../src/protocols/decoder.ts";
import { netflow9 } from "../../src/protocols/netflow9.ts";
import { SequenceTracker } from "../../src/protocols/sequence.ts";
import {
  type FieldSpec,
  ipfixPacket,
  ipfixTemplate,
  record,
  set,
  type V5Flow,
  v5Packet,
  v9Packet,
  v9Template,
} from "../helpers/netflow-builder.ts";
import { datagram, flowSample, sampledIPv4 } from "../helpers/sflow-builder.ts";

const handler: RecordHandler = { flow: () => {} };
const EXP = "192.0.2.10";

function feed(d: FlowDecoder, payload: Buffer, port = 5000, exporter = EXP): void {
  d.decode({ payload, exporter, port, receivedAtMs: 1_700_000_000_000, listener: "udp:2055" }, handler);
}

const flow: V5Flow = {
  src: "10.0.0.1",
  dst: "10.0.0.2",
  packets: 1,
  bytes: 100,
  first: 1,
  last: 2,
  srcPort: 1,
  dstPort: 2,
  proto: 6,
};
const v5 = (sequence: number, count: number, uptimeMs = 100_000) =>
  v5Packet(
    Array.from({ length: count }, () => flow),
    { sequence, uptimeMs },
  );

const FIELDS: FieldSpec[] = [
  [8, 4],
  [12, 4],
  [2, 4],
];
const recs = (n: number) => Array.from({ length: n }, () => record(FIELDS, ["10.0.0.1", "10.0.0.2", 5]));
const v9 = (sequence: number, sourceId = 0, uptimeMs = 100_000, withTemplate = true) =>
  v9Packet([...(withTemplate ? [set(0, v9Template(256, FIELDS))] : []), set(256, recs(2).flat())], {
    sequence,
    sourceId,
    uptimeMs,
  });
const ipfix = (sequence: number, n: number, o: { template?: boolean; domain?: number } = {}) =>
  ipfixPacket(
    [
      ...(o.template === false ? [] : [set(2, ipfixTemplate(256, FIELDS))]),
      ...(n > 0 ? [set(256, recs(n).flat())] : []),
    ],
    { sequence, domain: o.domain ?? 1 },
  );
const sample = (sequence: number, sourceIdIndex = 1) =>
  flowSample({
    sequence,
    sourceIdIndex,
    records: [
      sampledIPv4({ length: 100, protocol: 6, src: "10.0.0.1", dst: "10.0.0.2", srcPort: 1, dstPort: 2 }),
    ],
  });

describe("export sequence tracking", () => {
  it("NetFlow v5: flow_sequence counts flows; a gap is missing flows; an uptime going back is a reset", () => {
    const d = new FlowDecoder();
    feed(d, v5(0, 10));
    feed(d, v5(10, 10));
    feed(d, v5(50, 10)); // 20..49 never came: 30 flows
    assert.equal(d.sequences.totals.missingFlows, 30);
    assert.equal(d.sequences.totals.resets, 0);
    feed(d, v5(0, 10, 500)); // exporter restarted: uptime 100 s → 0.5 s
    feed(d, v5(10, 10, 600));
    assert.equal(d.sequences.totals.missingFlows, 30);
    assert.equal(d.sequences.totals.resets, 1);
    const [e] = d.sequences.stats();
    assert.equal(e!.exporter, EXP);
    assert.equal(e!.missingFlows, 30);
    assert.equal(e!.missingDatagrams, 0);
    assert.equal(e!.resets, 1);
    assert.deepEqual(
      e!.streams.map((s) => [s.protocol, s.scope, s.unit, s.missing, s.resets]),
      [["netflow5", "engine 0/0", "flows", 30, 1]],
    );
  });

  it("NetFlow v9: package_sequence counts datagrams, per source id; late datagrams are not loss", () => {
    const d = new FlowDecoder();
    feed(d, v9(1));
    feed(d, v9(2));
    feed(d, v9(5)); // 3 and 4 missing
    feed(d, v9(100, 7)); // another observation domain: its own stream
    feed(d, v9(101, 7));
    feed(d, v9(4)); // 4 arrives late
    feed(d, v9(6));
    const t = d.sequences.totals;
    assert.equal(t.missingDatagrams, 2);
    assert.equal(t.missingFlows, 0);
    assert.equal(t.late, 1);
    assert.equal(t.resets, 0);
    feed(d, v9(1, 0, 2_000)); // restart: uptime 100 s → 2 s, sequence back to 1
    assert.equal(d.sequences.totals.resets, 1);
    assert.equal(d.sequences.totals.missingDatagrams, 2);
    const scopes = d.sequences.stats()[0]!.streams.map((s) => [s.scope, s.missing, s.resets, s.late]);
    assert.deepEqual(scopes, [["domain 0", 2, 1, 1]]); // domain 7 had no loss: not listed
  });

  it("IPFIX: the sequence counts data records; held data only resynchronizes; a far jump back is a reset", () => {
    const d = new FlowDecoder();
    feed(d, ipfix(0, 3)); // records 0..2
    feed(d, ipfix(3, 2)); // 3..4
    feed(d, ipfix(10, 1)); // 5..9 missing: 5 records
    assert.equal(d.sequences.totals.missingFlows, 5);
    // Another domain whose data comes before its template: its count is unknown, so no gap is claimed.
    feed(d, ipfix(0, 4, { template: false, domain: 2 }), 5001);
    feed(d, ipfix(4, 1, { domain: 2 }), 5001); // template arrives, held set released
    feed(d, ipfix(5, 1, { template: false, domain: 2 }), 5001); // the held records were 4: 4 + 1 = 5, exact again
    feed(d, ipfix(6, 1, { template: false, domain: 2 }), 5001);
    assert.equal(d.sequences.totals.missingFlows, 5);
    feed(d, ipfix(7, 1, { template: false, domain: 2 }), 5001);
    feed(d, ipfix(9, 1, { template: false, domain: 2 }), 5001); // 8 missing
    assert.equal(d.sequences.totals.missingFlows, 6);
    // Exporter restart (no uptime in IPFIX): the sequence falls far back.
    feed(d, ipfix(5_000_000, 1, { domain: 3 }), 5002);
    feed(d, ipfix(0, 1, { domain: 3 }), 5002);
    feed(d, ipfix(1, 1, { domain: 3 }), 5002);
    assert.equal(d.sequences.totals.resets, 1);
    assert.equal(d.sequences.totals.missingFlows, 6);
    const streams = d.sequences.stats()[0]!.streams;
    assert.deepEqual(
      streams.map((s) => [s.scope, s.unit, s.missing, s.resets]),
      [
        ["domain 1", "flows", 5, 0],
        ["domain 2", "flows", 1, 0],
        ["domain 3", "flows", 0, 1],
      ],
    );
  });

  it("IPFIX numbered after each message's own records (softflowd): learned, no false gap, real loss still counted", () => {
    const d = new FlowDecoder();
    // from its first message: the sequence equals the message's own count (18, 25, 26, ...)
    let seq = 0;
    for (const n of [18, 25, 26, 3, 7]) {
      seq += n;
      feed(d, ipfix(seq, n));
    }
    assert.equal(d.sequences.totals.missingFlows, 0);
    assert.equal(d.sequences.totals.late, 0);
    seq += 9; // a message of 9 records lost
    seq += 4;
    feed(d, ipfix(seq, 4));
    assert.equal(d.sequences.totals.missingFlows, 9);
    // joined mid-stream (the collector restarted): the first message tells nothing, the second switches
    let s2 = 5000;
    feed(d, ipfix(s2, 10, { domain: 2 }), 5001);
    for (const n of [12, 5, 30]) {
      s2 += n;
      feed(d, ipfix(s2, n, { domain: 2 }), 5001);
    }
    assert.equal(d.sequences.totals.missingFlows, 9);
    s2 += 6 + 2; // 6 lost
    feed(d, ipfix(s2, 2, { domain: 2 }), 5001);
    assert.equal(d.sequences.totals.missingFlows, 15);
    // an exporter that numbers as RFC 7011 says, with varying counts: never switched, its loss counted
    feed(d, ipfix(0, 18, { domain: 3 }), 5002);
    feed(d, ipfix(18, 25, { domain: 3 }), 5002);
    feed(d, ipfix(43, 3, { domain: 3 }), 5002);
    feed(d, ipfix(46 + 10, 7, { domain: 3 }), 5002); // 10 lost
    assert.equal(d.sequences.totals.missingFlows, 25);
    assert.equal(d.sequences.totals.resets, 0);
    // one that looked like numbering after at first (first sequence = its count, by chance) switches back
    feed(d, ipfix(20, 20, { domain: 4 }), 5003);
    feed(d, ipfix(40, 5, { domain: 4 }), 5003);
    feed(d, ipfix(45, 8, { domain: 4 }), 5003);
    feed(d, ipfix(53, 1, { domain: 4 }), 5003);
    assert.equal(d.sequences.totals.missingFlows, 25);
  });

  it("sFlow: datagram sequence → missing datagrams; flow sample sequence per source → missing flows; restarts", () => {
    const d = new FlowDecoder();
    feed(d, datagram({ sequence: 1, uptime: 600_000, samples: [sample(10), sample(20, 2)] }), 6343);
    feed(d, datagram({ sequence: 2, uptime: 600_000, samples: [sample(11), sample(21, 2)] }), 6343);
    feed(d, datagram({ sequence: 4, uptime: 600_000, samples: [sample(14), sample(22, 2)] }), 6343); // datagram 3 lost
    const t = d.sequences.totals;
    assert.equal(t.missingDatagrams, 1);
    assert.equal(t.missingFlows, 2); // samples 12, 13 of source 1
    feed(d, datagram({ sequence: 1, uptime: 10, samples: [sample(1)] }), 6343); // agent restarted (uptime 600 s → 10 ms)
    assert.equal(d.sequences.totals.resets, 2); // the datagram stream and source 1's sample stream
    assert.equal(d.sequences.totals.missingDatagrams, 1);
    assert.equal(d.sequences.totals.missingFlows, 2);
    const streams = d.sequences.stats()[0]!.streams;
    assert.deepEqual(
      streams.map((s) => [s.scope, s.unit, s.missing]),
      [
        ["agent 192.0.2.1/0 source 1", "flows", 2],
        ["agent 192.0.2.1/0", "datagrams", 1],
      ],
    );
  });

  it("a big forward jump is a reset, not a gap", () => {
    const d = new FlowDecoder();
    feed(d, v9(1));
    feed(d, v9(3_000_000));
    assert.equal(d.sequences.totals.missingDatagrams, 0);
    assert.equal(d.sequences.totals.resets, 1);
  });

  it("tracks at most maxStreams streams (the oldest evicted); per-exporter totals never go down", () => {
    const t = new SequenceTracker({ maxStreams: 2 });
    const p = (seq: number, src: number) => v9Packet([], { sequence: seq, sourceId: src });
    const dg = (payload: Buffer) => ({ payload, exporter: EXP, port: 1, receivedAtMs: 0, listener: "" });
    netflow9.sequence(dg(p(1, 1)), t);
    netflow9.sequence(dg(p(3, 1)), t); // 1 missing
    netflow9.sequence(dg(p(1, 2)), t);
    netflow9.sequence(dg(p(1, 3)), t); // evicts source 1
    assert.equal(t.totals.evicted, 1);
    assert.equal(t.totals.streams, 2);
    assert.equal(t.stats()[0]!.missingDatagrams, 1);
  });
});

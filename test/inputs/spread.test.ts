/**
 * Spreading one worker's datagrams over decode threads (src/inputs/spread.ts): which datagrams every
 * thread must see, and FlowDecoder.decodeStateOnly (a copy changes state, never counters or output).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { FlowRecord } from "../../src/core/flow.ts";
import { mergePipelineStats, OptionTemplates } from "../../src/inputs/spread.ts";
import type { PipelineStats } from "../../src/inputs/worker.ts";
import { emptyStats, FlowDecoder } from "../../src/protocols/decoder.ts";
import {
  type FieldSpec,
  ipfixOptionsTemplate,
  ipfixPacket,
  ipfixTemplate,
  ipfixWithdrawal,
  record,
  set,
  v9OptionsTemplate,
  v9Packet,
  v9Template,
} from "../helpers/netflow-builder.ts";
import { netflowV5 } from "../helpers/service.ts";

const FLOW: FieldSpec[] = [
  [8, 4],
  [12, 4],
  [1, 4],
];
const SCOPE: FieldSpec[] = [[149, 4]];
const OPT: FieldSpec[] = [[34, 4]];
const V9_SCOPE: FieldSpec[] = [[1, 4]];
const data = (n: number) =>
  Array.from({ length: n }, (_, i) => record(FLOW, [`10.0.0.${i + 1}`, "10.0.1.1", 100 + i])).flat();
const dg = (payload: Buffer, port = 4000) => ({
  payload,
  exporter: "192.0.2.1",
  port,
  receivedAtMs: 1_700_000_000_000,
  listener: "udp:4739",
});

describe("OptionTemplates: which datagrams go to every decode thread", () => {
  it("IPFIX: template sets, and data of options templates it saw, per exporter and domain", () => {
    const o = new OptionTemplates();
    const ex = "192.0.2.1";
    assert.equal(o.broadcast(ipfixPacket([set(256, data(2))], { domain: 1 }), ex), false, "data");
    assert.equal(o.broadcast(ipfixPacket([set(2, ipfixTemplate(256, FLOW))], { domain: 1 }), ex), true);
    assert.equal(o.broadcast(ipfixPacket([set(300, [0, 0, 0, 7, 0, 0, 0, 9])], { domain: 1 }), ex), false);
    assert.equal(
      o.broadcast(ipfixPacket([set(3, ipfixOptionsTemplate(300, SCOPE, OPT))], { domain: 1 }), ex),
      true,
    );
    const options = ipfixPacket([set(300, record([...SCOPE, ...OPT], [1, 100]))], { domain: 1 });
    assert.equal(o.broadcast(options, ex), true, "options data of a known options template");
    assert.equal(o.broadcast(options, "192.0.2.2"), false, "another exporter's id 300 is not");
    assert.equal(
      o.broadcast(ipfixPacket([set(300, record([...SCOPE, ...OPT], [1, 100]))], { domain: 2 }), ex),
      false,
      "nor another domain's",
    );
    // redefined as a flow template: its data goes round robin again
    o.broadcast(ipfixPacket([set(2, ipfixTemplate(300, FLOW))], { domain: 1 }), ex);
    assert.equal(o.broadcast(ipfixPacket([set(300, data(1))], { domain: 1 }), ex), false);
    o.broadcast(ipfixPacket([set(3, ipfixOptionsTemplate(300, SCOPE, OPT))], { domain: 1 }), ex);
    assert.equal(o.broadcast(ipfixPacket([set(3, ipfixWithdrawal(300))], { domain: 1 }), ex), true);
    assert.equal(o.broadcast(options, ex), false, "withdrawn");
  });

  it("NetFlow v9: flowsets 0 and 1, and options data by source id; v5 and sFlow never", () => {
    const o = new OptionTemplates();
    const ex = "192.0.2.1";
    assert.equal(o.broadcast(v9Packet([set(0, v9Template(256, FLOW))], { sourceId: 3 }), ex), true);
    assert.equal(
      o.broadcast(v9Packet([set(1, v9OptionsTemplate(257, V9_SCOPE, OPT))], { sourceId: 3 }), ex),
      true,
    );
    assert.equal(
      o.broadcast(
        v9Packet([set(256, data(2)), set(257, record([...V9_SCOPE, ...OPT], [0, 10]))], { sourceId: 3 }),
        ex,
      ),
      true,
    );
    assert.equal(o.broadcast(v9Packet([set(256, data(2))], { sourceId: 3 }), ex), false);
    assert.equal(o.broadcast(netflowV5(0, 0, 2), ex), false);
    assert.equal(o.broadcast(Buffer.from([0, 0, 0, 5, 0, 0, 0, 1]), ex), false);
    assert.equal(o.broadcast(Buffer.alloc(0), ex), false);
  });
});

describe("FlowDecoder.decodeStateOnly", () => {
  it("learns templates and options data without a flow or a counter, and releases its own held data", () => {
    const flows: FlowRecord[] = [];
    const handler = { flow: (r: FlowRecord) => flows.push(r) };
    const d = new FlowDecoder({}, false);
    // this decoder's own data, before its template: held
    d.decode(dg(ipfixPacket([set(256, data(3))], { domain: 1, sequence: 0 })), handler);
    assert.equal(d.heldCount(), 1);
    const before = JSON.stringify({ stats: d.stats, exporters: d.exporters() });
    // a copy of a datagram another thread decodes: template, options template and data, and flows
    const copy = ipfixPacket(
      [
        set(2, ipfixTemplate(256, FLOW)),
        set(3, ipfixOptionsTemplate(300, SCOPE, OPT)),
        set(300, record([...SCOPE, ...OPT], [1, 100])),
        set(256, data(5)),
      ],
      { domain: 1, sequence: 3 },
    );
    d.decodeStateOnly(dg(copy), handler);
    assert.equal(flows.length, 3, "only the held data is decoded");
    // ... as a decoder that gets the whole datagram decodes it: released when its template is learned,
    // before the options data that follows in the same datagram
    const whole: FlowRecord[] = [];
    const w = new FlowDecoder({}, false);
    w.decode(dg(ipfixPacket([set(256, data(3))], { domain: 1, sequence: 0 })), {
      flow: (r) => whole.push(r),
    });
    w.decode(dg(copy), { flow: (r) => whole.push(r) });
    assert.deepEqual(
      flows.map((r) => [r.src_addr, r.bytes, r.sampling_rate]),
      whole.slice(0, 3).map((r) => [r.src_addr, r.bytes, r.sampling_rate]),
    );
    assert.equal(flows[0]!.sampling_rate, 0, "the rate came after the template");
    assert.equal(d.heldCount(), 0);
    const after = { stats: d.stats, exporters: d.exporters() };
    const was = JSON.parse(before) as typeof after;
    assert.equal(after.stats.datagrams, was.stats.datagrams, "the copy is not counted");
    assert.equal(after.stats.templatesLearned, 0, "the thread that decodes it counts its templates");
    assert.equal(after.stats.optionsRecords, 0);
    assert.equal(after.stats.flows, 3, "the released held flows count");
    assert.equal(after.stats.heldDecoded, 1);
    assert.equal(after.exporters[0]!.datagrams, 1);
    assert.equal(after.exporters[0]!.flows, 3);
    assert.equal(d.templateCount(), 2, "both templates learned");
    // what it learned decodes the data of the next datagram, at the rate the options data set
    d.decode(dg(ipfixPacket([set(256, data(2))], { domain: 1, sequence: 9 })), handler);
    assert.equal(flows.length, 5);
    assert.equal(flows[4]!.sampling_rate, 100);
    assert.equal(d.stats.datagrams, 2);
    assert.equal(d.last.records, 2);
    assert.equal(d.sequences.totals.streams, 0, "sequences are left to the caller");
  });

  it("a malformed copy counts no error", () => {
    const d = new FlowDecoder({}, false);
    d.decodeStateOnly(dg(ipfixPacket([set(2, [1, 0, 0, 1])], { domain: 1 })), { flow: () => {} });
    assert.deepEqual(d.stats.errors, {});
    assert.equal(d.exporters().length, 0);
  });
});

describe("mergePipelineStats: the decode threads' counters as one worker's", () => {
  const thread = (datagrams: number, expired: number, templates: number): PipelineStats => {
    const d = new FlowDecoder();
    d.decode(dg(netflowV5(0, 0, 2)), { flow: () => {} });
    const ex = d.exporters()[0]!;
    return {
      decoder: {
        ...emptyStats(),
        datagrams,
        flows: datagrams * 2,
        templatesExpired: expired,
        errors: { TRUNCATED: 1 },
      },
      exporters: [{ ...ex, datagrams, flows: datagrams * 2 }],
      missingTemplates: [
        {
          exporter: "192.0.2.1",
          droppedSets: 1,
          heldSets: 0,
          templates: [{ version: 10, domain: 1, template_id: 256, dropped: 1, held: 0 }],
        },
      ],
      templates,
      recordsBatched: datagrams,
      recordsPending: 1,
      batchesPosted: 1,
      encodeErrors: { "jsonl:-": 1 },
      internalErrors: 0,
      batchBuffers: { hits: 1, misses: 2 },
      encodeMaxMs: datagrams,
    };
  };
  it("sums counts, keeps the largest template count and expiry (every thread has its own copy)", () => {
    const m = mergePipelineStats([thread(3, 2, 5), thread(4, 1, 5)]);
    assert.equal(m.decoder.datagrams, 7);
    assert.equal(m.decoder.flows, 14);
    assert.deepEqual(m.decoder.errors, { TRUNCATED: 2 });
    assert.equal(m.decoder.templatesExpired, 2);
    assert.equal(m.templates, 5);
    assert.equal(m.exporters.length, 1);
    assert.equal(m.exporters[0]!.datagrams, 7);
    assert.equal(m.exporters[0]!.flows, 14);
    assert.equal(m.missingTemplates[0]!.droppedSets, 2);
    assert.deepEqual(m.missingTemplates[0]!.templates, [
      { version: 10, domain: 1, template_id: 256, dropped: 2, held: 0 },
    ]);
    assert.equal(m.recordsPending, 2);
    assert.deepEqual(m.encodeErrors, { "jsonl:-": 2 });
    assert.deepEqual(m.batchBuffers, { hits: 2, misses: 4 });
    assert.equal(m.encodeMaxMs, 4);
    assert.equal(mergePipelineStats([]).decoder.datagrams, 0, "no thread reported yet: zeros");
  });
});

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { FlowRecord } from "../../src/core/flow.ts";
import { type DecoderOptions, FlowDecoder } from "../../src/protocols/decoder.ts";
import { MAX_SAMPLER_ROWS } from "../../src/protocols/state/options.ts";
import { announcedRate } from "../../src/protocols/state/sampling.ts";
import { parseSamplingMap, type SamplingMapEntry } from "../../src/protocols/state/sampling-map.ts";
import {
  type FieldSpec,
  ipfixOptionsTemplate,
  ipfixPacket,
  ipfixTemplate,
  record,
  set,
  v5Packet,
  v9OptionsTemplate,
  v9Packet,
  v9Template,
} from "../helpers/netflow-builder.ts";
import { datagram, expandedFlowSample, flowSample, sampledIPv4 } from "../helpers/sflow-builder.ts";

function collector(opts: Partial<DecoderOptions> = {}, exporter = "192.0.2.7") {
  const decoder = new FlowDecoder({ now: () => 1_700_000_000_000, ...opts });
  const flows: FlowRecord[] = [];
  const handler = { flow: (r: FlowRecord) => flows.push(r) };
  return {
    decoder,
    flows,
    feed(payload: Buffer, port = 40000) {
      decoder.decode({ payload, exporter, port, receivedAtMs: 1_700_000_000_000, listener: "t" }, handler);
    },
    rates(): number[] {
      return flows.splice(0).map((r) => r.sampling_rate);
    },
  };
}

function f64(x: number): number[] {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(x);
  return [...b];
}

/** IPFIX flows naming a selector (302) or not: template 256 with selectorId, 257 without. */
const SEL_FLOW: FieldSpec[] = [
  [8, 4],
  [1, 4],
  [302, 8],
];
const PLAIN_FLOW: FieldSpec[] = [
  [8, 4],
  [1, 4],
];
function ipfixFlows(domain: number, selectors: number[], plain = 0): Buffer {
  const sets = [set(2, [...ipfixTemplate(256, SEL_FLOW), ...ipfixTemplate(257, PLAIN_FLOW)])];
  if (selectors.length > 0)
    sets.push(
      set(
        256,
        selectors.flatMap((s) => record(SEL_FLOW, ["10.0.0.1", 100, s])),
      ),
    );
  if (plain > 0)
    sets.push(set(257, Array.from({ length: plain }, () => record(PLAIN_FLOW, ["10.0.0.2", 100])).flat()));
  return ipfixPacket(sets, { domain });
}

describe("announcedRate (RFC 5477 selectors, v9 sampler elements)", () => {
  const m = (pairs: [number, number][]) => new Map(pairs);
  test("selectorAlgorithm decides which elements count", () => {
    assert.equal(
      announcedRate(
        m([
          [304, 3],
          [305, 1],
          [309, 1],
          [310, 1000],
        ]),
      ),
      1000,
      "n-out-of-N, not the interval of 1",
    );
    assert.equal(
      announcedRate(
        m([
          [304, 3],
          [305, 1],
          [309, 2],
          [310, 1000],
        ]),
      ),
      500,
    );
    assert.equal(
      announcedRate(
        m([
          [304, 1],
          [305, 10],
          [306, 90],
          [309, 1],
          [310, 7],
        ]),
      ),
      10,
      "count-based",
    );
    assert.equal(
      announcedRate(
        m([
          [304, 4],
          [311, 0.001],
          [305, 1],
        ]),
      ),
      1000,
      "uniform probabilistic 1/p",
    );
    assert.equal(
      announcedRate(
        m([
          [304, 2],
          [307, 10],
          [308, 990],
          [305, 1],
        ]),
      ),
      0,
      "time-based: no rate",
    );
    assert.equal(
      announcedRate(
        m([
          [304, 5],
          [305, 1],
          [306, 99],
        ]),
      ),
      0,
      "property match filtering: no rate",
    );
  });
  test("without selectorAlgorithm: the most specific elements present", () => {
    assert.equal(
      announcedRate(
        m([
          [305, 1],
          [309, 1],
          [310, 4096],
        ]),
      ),
      4096,
    );
    assert.equal(announcedRate(m([[311, 0.25]])), 4);
    assert.equal(
      announcedRate(
        m([
          [309, 3],
          [310, 1000],
        ]),
      ),
      333,
      "an integer rate, rounded",
    );
    assert.equal(
      announcedRate(
        m([
          [305, 3],
          [306, 7],
        ]),
      ),
      3,
    );
    assert.equal(announcedRate(m([[311, 0.3]])), 3);
    assert.equal(
      announcedRate(
        m([
          [305, 1],
          [306, 63],
        ]),
      ),
      64,
    );
    assert.equal(
      announcedRate(
        m([
          [34, 512],
          [35, 2],
        ]),
      ),
      512,
    );
    assert.equal(
      announcedRate(
        m([
          [48, 1],
          [49, 2],
          [50, 100],
        ]),
      ),
      100,
    );
  });
  test("no usable rate is 0", () => {
    assert.equal(
      announcedRate(
        m([
          [309, 0],
          [310, 100],
        ]),
      ),
      0,
    );
    assert.equal(announcedRate(m([[311, 0]])), 0);
    assert.equal(announcedRate(m([[311, 2]])), 0, "a probability above 1");
    assert.equal(
      announcedRate(
        m([
          [305, 0],
          [306, 10],
        ]),
      ),
      0,
    );
    assert.equal(announcedRate(m([[34, 0]])), 0);
    assert.equal(announcedRate(m([])), 0);
  });
});

describe("IPFIX selector options (Cisco IOS XR style)", () => {
  // Scope selectorId; selectorAlgorithm, samplingPacketInterval (the misleading 1), samplingSize, samplingPopulation.
  const scope: FieldSpec[] = [[302, 8]];
  const opt: FieldSpec[] = [
    [304, 2],
    [305, 4],
    [309, 4],
    [310, 4],
  ];
  const options = (domain: number, rows: [number, number, number, number, number][]) =>
    ipfixPacket(
      [
        set(3, ipfixOptionsTemplate(300, scope, opt)),
        set(
          300,
          rows.flatMap((r) => record([...scope, ...opt], r)),
        ),
      ],
      { domain },
    );

  test("random n-out-of-N with samplingPacketInterval = 1: rate N/n, per selector", () => {
    const c = collector();
    c.feed(
      options(5, [
        [1, 3, 1, 1, 1000],
        [2, 3, 1, 1, 32],
      ]),
      40001,
    ); // from another source port
    c.feed(ipfixFlows(5, [1, 2, 1]));
    assert.deepEqual(c.rates(), [1000, 32, 1000]);
  });

  test("options after the flows: earlier flows have no rate, later ones have it", () => {
    const c = collector();
    c.feed(ipfixFlows(5, [1]));
    assert.deepEqual(c.rates(), [0]);
    c.feed(options(5, [[1, 3, 1, 1, 4000]]));
    c.feed(ipfixFlows(5, [1]));
    assert.deepEqual(c.rates(), [4000]);
  });

  test("a flow naming no selector, or an unknown one, gets the exporter domain's announced rate", () => {
    const c = collector();
    c.feed(options(5, [[1, 3, 1, 1, 1000]]));
    c.feed(ipfixFlows(5, [9], 1));
    assert.deepEqual(c.rates(), [1000, 1000]);
    c.feed(ipfixFlows(6, [1], 1));
    assert.deepEqual(c.rates(), [0, 0], "another observation domain learned nothing");
  });

  test("uniform probabilistic (samplingProbability, float64) and time-based keeping the known rate", () => {
    const c = collector();
    const pOpt: FieldSpec[] = [
      [304, 2],
      [311, 8],
    ];
    c.feed(
      ipfixPacket(
        [
          set(3, ipfixOptionsTemplate(301, scope, pOpt)),
          set(301, [...record([...scope, [304, 2]], [3, 4]), ...f64(0.01)]),
        ],
        { domain: 5 },
      ),
    );
    c.feed(ipfixFlows(5, [3]));
    assert.deepEqual(c.rates(), [100]);
    const tOpt: FieldSpec[] = [
      [304, 2],
      [307, 4],
      [308, 4],
      [305, 4],
    ];
    c.feed(
      ipfixPacket(
        [
          set(3, ipfixOptionsTemplate(302, scope, tOpt)),
          set(302, record([...scope, ...tOpt], [3, 2, 10, 990, 1])),
        ],
        { domain: 5 },
      ),
    );
    c.feed(ipfixFlows(5, [3]));
    assert.deepEqual(c.rates(), [100], "a time-based selector announces no packet rate");
  });

  test("systematic count-based: (interval + space) / interval", () => {
    const c = collector();
    const cOpt: FieldSpec[] = [
      [304, 2],
      [305, 4],
      [306, 4],
    ];
    c.feed(
      ipfixPacket(
        [
          set(3, ipfixOptionsTemplate(303, scope, cOpt)),
          set(303, record([...scope, ...cOpt], [4, 1, 2, 98])),
        ],
        { domain: 5 },
      ),
    );
    c.feed(ipfixFlows(5, [4]));
    assert.deepEqual(c.rates(), [50]);
  });
});

describe("NetFlow v9 sampler options", () => {
  const flow: FieldSpec[] = [
    [8, 4],
    [1, 4],
    [48, 1], // FLOW_SAMPLER_ID
  ];
  const flows = (ids: number[]) =>
    v9Packet(
      [
        set(0, v9Template(256, flow)),
        set(
          256,
          ids.flatMap((id) => record(flow, ["10.0.0.1", 1, id])),
        ),
      ],
      {
        sourceId: 3,
      },
    );

  test("flowSamplerId / Mode / RandomInterval: each sampler its own rate", () => {
    const c = collector();
    const scope: FieldSpec[] = [[1, 4]]; // System
    const opt: FieldSpec[] = [
      [48, 1],
      [49, 1],
      [50, 4],
    ];
    c.feed(flows([1]));
    assert.deepEqual(c.rates(), [0], "before any options");
    c.feed(
      v9Packet(
        [
          set(1, v9OptionsTemplate(300, scope, opt)),
          set(300, [
            ...record([...scope, ...opt], [0, 1, 2, 100]),
            ...record([...scope, ...opt], [0, 2, 1, 1000]),
          ]),
        ],
        { sourceId: 3 },
      ),
      40002,
    );
    c.feed(flows([1, 2, 1]));
    assert.deepEqual(c.rates(), [100, 1000, 100]);
  });

  test("a flow record carrying samplingInterval (34) has that rate, before any sampler's or the domain's", () => {
    const c = collector();
    const own: FieldSpec[] = [
      [8, 4],
      [1, 4],
      [48, 1],
      [34, 4],
    ];
    const scope: FieldSpec[] = [[1, 4]];
    const opt: FieldSpec[] = [
      [48, 1],
      [50, 4],
    ];
    c.feed(
      v9Packet(
        [set(1, v9OptionsTemplate(300, scope, opt)), set(300, record([...scope, ...opt], [0, 1, 100]))],
        {
          sourceId: 3,
        },
      ),
    );
    c.feed(
      v9Packet(
        [
          set(0, v9Template(257, own)),
          set(257, [...record(own, ["10.0.0.1", 1, 1, 64]), ...record(own, ["10.0.0.1", 1, 1, 0])]),
        ],
        { sourceId: 3 },
      ),
    );
    assert.deepEqual(c.rates(), [64, 100], "0 in the record: not a rate");
  });

  test("samplingInterval / samplingAlgorithm (34/35), scaled on request", () => {
    const c = collector({ scaleBySampling: true });
    const scope: FieldSpec[] = [[1, 4]];
    const opt: FieldSpec[] = [
      [34, 4],
      [35, 1],
    ];
    c.feed(
      v9Packet(
        [set(1, v9OptionsTemplate(300, scope, opt)), set(300, record([...scope, ...opt], [0, 256, 2]))],
        {
          sourceId: 3,
        },
      ),
    );
    c.feed(flows([7]));
    assert.equal(c.flows[0]!.bytes, 256);
    assert.deepEqual(c.rates(), [256]);
  });
});

describe("static sampling map", () => {
  const map = (text: string) => parseSamplingMap(text) as SamplingMapEntry[];
  const selScope: FieldSpec[] = [[302, 8]];
  const selOpt: FieldSpec[] = [
    [304, 2],
    [309, 4],
    [310, 4],
  ];
  const announce = (domain: number, population: number) =>
    ipfixPacket(
      [
        set(3, ipfixOptionsTemplate(300, selScope, selOpt)),
        set(300, record([...selScope, ...selOpt], [1, 3, 1, population])),
      ],
      { domain },
    );

  test("fills in for an exporter that announces nothing; the most specific entry wins", () => {
    const m = map("192.0.2.0/24=100,192.0.2.7=200,192.0.2.7@9=300,198.51.100.0/24=5");
    const c = collector({ samplingMap: m });
    c.feed(ipfixFlows(5, [1], 1));
    c.feed(ipfixFlows(9, [1]));
    assert.deepEqual(c.rates(), [200, 200, 300]);
    const other = collector({ samplingMap: m }, "192.0.2.8");
    other.feed(ipfixFlows(9, [], 1));
    assert.deepEqual(other.rates(), [100]);
    const none = collector({ samplingMap: m }, "203.0.113.1");
    none.feed(ipfixFlows(9, [], 1));
    assert.deepEqual(none.rates(), [0]);
  });

  test("an announced rate wins unless the entry overrides; scaling uses the effective rate", () => {
    const c = collector({ samplingMap: map("192.0.2.0/24=100"), scaleBySampling: true });
    c.feed(announce(5, 1000));
    c.feed(ipfixFlows(5, [1]));
    assert.equal(c.flows[0]!.bytes, 100_000);
    assert.deepEqual(c.rates(), [1000]);
    const o = collector({ samplingMap: map("192.0.2.0/24=100!"), scaleBySampling: true });
    o.feed(announce(5, 1000));
    o.feed(ipfixFlows(5, [1]));
    assert.equal(o.flows[0]!.bytes, 10_000);
    assert.deepEqual(o.rates(), [100]);
  });

  test("NetFlow v5: the header's rate wins, the map fills in for 0 and overrides when told", () => {
    const flow = {
      src: "10.0.0.1",
      dst: "10.0.0.2",
      bytes: 100,
      packets: 1,
      first: 1,
      last: 2,
      srcPort: 1,
      dstPort: 2,
      proto: 6,
    };
    const rate = (text: string, sampling: number) => {
      const c = collector({ samplingMap: map(text) });
      c.feed(v5Packet([flow], { sampling }));
      return c.rates()[0];
    };
    assert.equal(rate("192.0.2.7=64", 0), 64);
    assert.equal(rate("192.0.2.7=64", (1 << 14) | 10), 10);
    assert.equal(rate("192.0.2.7=64!", (1 << 14) | 10), 64);
  });
});

describe("PSAMP selection sequences (selectionSequenceId 301)", () => {
  /** Flows carrying a selection sequence (301), template 260. */
  const SEQ_FLOW: FieldSpec[] = [
    [8, 4],
    [1, 4],
    [301, 8],
  ];
  const seqFlows = (domain: number, sequences: number[]) =>
    ipfixPacket(
      [
        set(2, ipfixTemplate(260, SEQ_FLOW)),
        set(
          260,
          sequences.flatMap((q) => record(SEQ_FLOW, ["10.0.0.3", 100, q])),
        ),
      ],
      { domain },
    );
  /** Selection Sequence Report (RFC 5476 §6.5.1): scope 301, then its selectors (302, repeated). */
  const sequenceReport = (domain: number, seq: number, selectors: number[]) => {
    const opt: FieldSpec[] = selectors.map(() => [302, 4] as FieldSpec);
    return ipfixPacket(
      [
        set(3, ipfixOptionsTemplate(310 + selectors.length, [[301, 8]], opt)),
        set(310 + selectors.length, record([[301, 8], ...opt], [seq, ...selectors])),
      ],
      { domain },
    );
  };
  /** Selector Report: scope 302; selectorAlgorithm and its parameters. */
  const selectorReport = (domain: number, rows: [number, number, number, number][]) => {
    const opt: FieldSpec[] = [
      [304, 2],
      [309, 4],
      [310, 4],
    ];
    return ipfixPacket(
      [
        set(3, ipfixOptionsTemplate(320, [[302, 4]], opt)),
        set(
          320,
          rows.flatMap((r) => record([[302, 4], ...opt], r)),
        ),
      ],
      { domain },
    );
  };

  test("options scoped by the sequence itself: its flows get its rate, another domain learned nothing", () => {
    const c = collector();
    const opt: FieldSpec[] = [
      [304, 2],
      [305, 4],
      [306, 4],
    ];
    c.feed(
      ipfixPacket(
        [
          set(3, ipfixOptionsTemplate(330, [[301, 8]], opt)),
          set(330, [
            ...record([[301, 8], ...opt], [7, 1, 1, 99]),
            ...record([[301, 8], ...opt], [8, 1, 1, 9]),
          ]),
        ],
        { domain: 3 },
      ),
      40001,
    );
    c.feed(seqFlows(3, [7, 8, 7]));
    assert.deepEqual(c.rates(), [100, 10, 100]);
    assert.equal(c.flows.length, 0);
    c.feed(seqFlows(4, [7]));
    assert.deepEqual(c.rates(), [0], "another domain learned nothing");
  });

  test("a sequence of two selectors: their rates multiply, whichever report comes first", () => {
    for (const order of ["sequence first", "selectors first"] as const) {
      const c = collector();
      const seq = sequenceReport(2, 5, [11, 12]);
      const sel = selectorReport(2, [
        [11, 3, 1, 10],
        [12, 3, 1, 4],
      ]);
      c.feed(seqFlows(2, [5]));
      assert.deepEqual(c.rates(), [0], `${order}: nothing known yet`);
      c.feed(order === "sequence first" ? seq : sel);
      c.feed(order === "sequence first" ? sel : seq);
      c.feed(seqFlows(2, [5]));
      assert.deepEqual(c.rates(), [40], order);
    }
  });

  test("a sequence whose selectors are unknown falls back to the flow's selector, then the domain", () => {
    const c = collector();
    c.feed(sequenceReport(2, 5, [11]));
    c.feed(selectorReport(2, [[12, 3, 1, 64]]));
    const BOTH: FieldSpec[] = [
      [8, 4],
      [1, 4],
      [301, 8],
      [302, 4],
    ];
    c.feed(
      ipfixPacket([set(2, ipfixTemplate(261, BOTH)), set(261, record(BOTH, ["10.0.0.4", 100, 5, 12]))], {
        domain: 2,
      }),
    );
    assert.deepEqual(c.rates(), [64], "sequence 5's selector 11 has no rate: selector 12's");
    c.feed(selectorReport(2, [[11, 3, 1, 8]]));
    c.feed(
      ipfixPacket([set(2, ipfixTemplate(261, BOTH)), set(261, record(BOTH, ["10.0.0.4", 100, 5, 12]))], {
        domain: 2,
      }),
    );
    assert.deepEqual(c.rates(), [8], "now the sequence's rate, before the selector's");
  });

  test("the sampler table in /exporters, and sequences survive a restart", () => {
    const c = collector();
    c.feed(sequenceReport(2, 5, [11, 12]));
    c.feed(
      selectorReport(2, [
        [11, 3, 1, 10],
        [12, 3, 1, 4],
      ]),
    );
    const ex = c.decoder.exporters()[0]!;
    assert.equal(ex.dictionaries.samplers, 2);
    const byKey = new Map(ex.samplers.map((r) => [`${r.kind}:${r.id}`, r]));
    assert.deepEqual(byKey.get("sequence:5"), {
      kind: "sequence",
      id: 5,
      domain: 2,
      rate: 0,
      parameters: {},
      selectors: [11, 12],
    });
    assert.deepEqual(byKey.get("selector:11"), {
      kind: "selector",
      id: 11,
      domain: 2,
      rate: 10,
      parameters: { selectorAlgorithm: 3, samplingSize: 1, samplingPopulation: 10 },
    });
    const saved = JSON.parse(JSON.stringify(c.decoder.saveState()));
    const d = collector();
    d.decoder.loadState(saved);
    d.feed(seqFlows(2, [5]));
    assert.deepEqual(d.rates(), [40]);
    assert.equal(d.decoder.exporters().length, 1);
  });
});

describe("time-based systematic sampling (307/308)", () => {
  const scope: FieldSpec[] = [[302, 4]];
  const timeOpt: FieldSpec[] = [
    [304, 2],
    [307, 4],
    [308, 4],
  ];
  const timeReport = (domain: number, selector: number, interval: number, space: number) =>
    ipfixPacket(
      [
        set(3, ipfixOptionsTemplate(340, scope, timeOpt)),
        set(340, record([...scope, ...timeOpt], [selector, 2, interval, space])),
      ],
      { domain },
    );
  const statsOpt: FieldSpec[] = [
    [318, 8],
    [319, 8],
  ];
  /** Selector Statistics Report: scope 302, packets observed and selected, without the algorithm. */
  const statsReport = (domain: number, selector: number, observed: number, selected: number) =>
    ipfixPacket(
      [
        set(3, ipfixOptionsTemplate(341, scope, statsOpt)),
        set(341, record([...scope, ...statsOpt], [selector, observed, selected])),
      ],
      { domain },
    );
  const flows = (domain: number, selector: number) => {
    const t: FieldSpec[] = [
      [8, 4],
      [1, 4],
      [302, 4],
    ];
    return ipfixPacket([set(2, ipfixTemplate(262, t)), set(262, record(t, ["10.0.0.5", 100, selector]))], {
      domain,
    });
  };

  test("the intervals are recorded and shown; the rate stays the domain's until packets are counted", () => {
    const c = collector();
    c.feed(timeReport(1, 9, 100_000, 900_000));
    c.feed(flows(1, 9));
    assert.deepEqual(c.rates(), [0], "no packet rate: unknown");
    const row = c.decoder.exporters()[0]!.samplers.find((r) => r.kind === "selector" && r.id === 9);
    assert.deepEqual(row, {
      kind: "selector",
      id: 9,
      domain: 1,
      rate: 0,
      parameters: { selectorAlgorithm: 2, samplingTimeInterval: 100_000, samplingTimeSpace: 900_000 },
    });
    // the domain's own announced rate applies meanwhile
    const dOpt: FieldSpec[] = [[34, 4]];
    c.feed(
      ipfixPacket(
        [set(3, ipfixOptionsTemplate(342, [[149, 4]], dOpt)), set(342, record([[149, 4], ...dOpt], [1, 16]))],
        { domain: 1 },
      ),
    );
    c.feed(flows(1, 9));
    assert.deepEqual(c.rates(), [16]);
    // a statistics report counts the packets: observed / selected is the selector's rate
    c.feed(statsReport(1, 9, 1_000_000, 9_800));
    c.feed(flows(1, 9));
    assert.deepEqual(c.rates(), [102]);
    const after = c.decoder.exporters()[0]!.samplers.find((r) => r.kind === "selector" && r.id === 9)!;
    assert.equal(after.rate, 102);
    assert.equal(after.parameters.selectorIdTotalPktsObserved, 1_000_000);
    assert.equal(after.parameters.samplingTimeInterval, 100_000);
  });

  test("the sampler table is bounded per exporter and domain; refusals are counted", () => {
    const c = collector();
    const rows: number[] = [];
    for (let id = 0; id < MAX_SAMPLER_ROWS + 5; id++)
      rows.push(...record([...scope, ...timeOpt], [id, 2, 10, 90]));
    c.feed(ipfixPacket([set(3, ipfixOptionsTemplate(340, scope, timeOpt)), set(340, rows)], { domain: 1 }));
    assert.equal(c.decoder.stats.optionEntriesRefused, 5);
    assert.equal(c.decoder.exporters()[0]!.samplers.length, 256, "/exporters shows the first 256");
    const saved = JSON.parse(JSON.stringify(c.decoder.saveState()));
    assert.equal(collector().decoder.loadState(saved).sampling, 1, "a full table saves and loads");
  });

  test("packet counts of a selector not known as time-based give no rate (a filter passes a share, not a sample)", () => {
    const c = collector();
    c.feed(statsReport(1, 9, 1_000_000, 10_000));
    c.feed(flows(1, 9));
    assert.deepEqual(c.rates(), [0]);
  });

  test("NetFlow v9: a time-based selector's intervals are shown too", () => {
    const c = collector();
    c.feed(
      v9Packet(
        [
          set(1, v9OptionsTemplate(300, [[1, 4]], [[302, 4], ...timeOpt])),
          set(300, record([[1, 4], [302, 4], ...timeOpt], [0, 4, 2, 50_000, 950_000])),
        ],
        { sourceId: 3 },
      ),
    );
    const row = c.decoder.exporters()[0]!.samplers[0]!;
    assert.deepEqual(
      [
        row.kind,
        row.id,
        row.domain,
        row.rate,
        row.parameters.samplingTimeInterval,
        row.parameters.samplingTimeSpace,
      ],
      ["selector", 4, 3, 0, 50_000, 950_000],
    );
  });
});

describe("static sampling map keyed by interface and sampler", () => {
  const map = (text: string) => parseSamplingMap(text) as SamplingMapEntry[];
  /** v9 flows with in_if (10) and flowSamplerId (48); a second template without the sampler. */
  const FLOW: FieldSpec[] = [
    [8, 4],
    [1, 4],
    [10, 2],
    [48, 1],
  ];
  const NO_SAMPLER: FieldSpec[] = [
    [8, 4],
    [1, 4],
    [10, 2],
  ];
  const v9Flows = (rows: [number, number][], domain = 3, plainIfs: number[] = []) =>
    v9Packet(
      [
        set(0, [...v9Template(256, FLOW), ...v9Template(257, NO_SAMPLER)]),
        set(
          256,
          rows.flatMap(([inIf, sampler]) => record(FLOW, ["10.0.0.1", 1, inIf, sampler])),
        ),
        ...(plainIfs.length > 0
          ? [
              set(
                257,
                plainIfs.flatMap((inIf) => record(NO_SAMPLER, ["10.0.0.1", 1, inIf])),
              ),
            ]
          : []),
      ],
      { sourceId: domain },
    );

  test("the most specific entry per flow: sampler, then interface, then domain, then prefix", () => {
    const c = collector({
      samplingMap: map("192.0.2.0/24=2,192.0.2.7@3=3,192.0.2.0/24%5=5,192.0.2.0/24@3%5=6,192.0.2.0/24#9=9"),
    });
    c.feed(
      v9Flows(
        [
          [1, 1], // only the domain entry matches
          [5, 1], // interface 5 in domain 3: the entry naming both
          [5, 9], // sampler 9 beats the interface entries
          [1, 9],
        ],
        3,
        [5, 1],
      ),
    );
    assert.deepEqual(c.rates(), [3, 6, 9, 9, 6, 3]);
    c.feed(v9Flows([[5, 1]], 4, [2]));
    assert.deepEqual(c.rates(), [5, 2], "domain 4: the interface entry without a domain, then the /24");
  });

  test("an announced sampler rate wins over keyed entries unless they override", () => {
    const scope: FieldSpec[] = [[1, 4]];
    const opt: FieldSpec[] = [
      [48, 1],
      [50, 4],
    ];
    const announce = v9Packet(
      [set(1, v9OptionsTemplate(300, scope, opt)), set(300, record([...scope, ...opt], [0, 1, 100]))],
      { sourceId: 3 },
    );
    const c = collector({ samplingMap: map("192.0.2.7#1=7,192.0.2.7#2=8,192.0.2.7%4=40!") });
    c.feed(announce);
    c.feed(
      v9Flows([
        [1, 1],
        [1, 2],
        [4, 1],
        [4, 3],
      ]),
    );
    // sampler 1 announced 100 (wins over #1=7); sampler 2 is not announced, but the domain fallback
    // (the last rate learned) is an announced rate too; in_if 4's entry overrides
    // where no more specific entry (#1) matches.
    assert.deepEqual(c.rates(), [100, 100, 100, 40]);
  });

  test("IPFIX selectorId is the sampler key", () => {
    const c = collector({ samplingMap: map("192.0.2.7#2=20,192.0.2.7=1") });
    c.feed(ipfixFlows(5, [1, 2], 1));
    assert.deepEqual(c.rates(), [1, 20, 1]);
  });

  test("NetFlow v5: entries by interface, per record", () => {
    const flow = (inIf: number) => ({
      src: "10.0.0.1",
      dst: "10.0.0.2",
      bytes: 100,
      packets: 1,
      first: 1,
      last: 2,
      srcPort: 1,
      dstPort: 2,
      proto: 6,
      input: inIf,
    });
    const c = collector({ samplingMap: map("192.0.2.7=10,192.0.2.7%2=20,192.0.2.7#2=99") });
    c.feed(v5Packet([flow(1), flow(2), flow(3)], { sampling: 0 }));
    assert.deepEqual(c.rates(), [10, 20, 10], "v5 names no sampler: #2 never matches");
  });

  test("sFlow: agent address, sub-agent, input interface and data source index", () => {
    const sample = (input: number, source: number, rate: number, expanded = false) =>
      (expanded ? expandedFlowSample : flowSample)({
        sourceIdIndex: source,
        rate,
        input,
        records: [sampledIPv4({ length: 100, protocol: 6, src: "10.0.0.1", dst: "10.0.0.2" })],
      });
    const c = collector({
      samplingMap: map(
        "198.51.100.0/24=5,198.51.100.1@2=7,198.51.100.1%3=30,198.51.100.1#8=80,198.51.100.1=512!",
      ),
    });
    c.feed(
      datagram({
        agent: "198.51.100.1",
        subAgent: 2,
        samples: [
          sample(1, 1, 0), // the sub-agent entry fills in for no rate
          sample(3, 1, 0), // the interface entry
          sample(1, 8, 0, true), // the data source entry (expanded sample)
          sample(1, 1, 1000), // announced wins
        ],
      }),
    );
    assert.deepEqual(c.rates(), [7, 30, 80, 1000]);
    c.feed(datagram({ agent: "198.51.100.1", subAgent: 0, samples: [sample(1, 1, 1000)] }));
    assert.deepEqual(c.rates(), [512], "the agent entry overrides");
    c.feed(datagram({ agent: "198.51.100.9", samples: [sample(1, 1, 0)] }));
    assert.deepEqual(c.rates(), [5]);
  });
});

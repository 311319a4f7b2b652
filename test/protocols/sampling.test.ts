import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { FlowRecord } from "../../src/core/flow.ts";
import { type DecoderOptions, FlowDecoder } from "../../src/protocols/decoder.ts";
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

function collector(opts: Partial<DecoderOptions> = {}, exporter = "192.0.2.7") {
  const decoder = new FlowDecoder({ now: () => 1_700_000_000_000, ...opts });
  const flows: FlowRecord[] = [];
  const handler = { flow: (r: FlowRecord) => flows.push(r) };
  return {
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

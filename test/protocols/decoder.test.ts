import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DecodeError } from "../../src/core/errors.ts";
import type { FlowRecord, OptionsRecord } from "../../src/core/flow.ts";
import { type DecoderOptions, FlowDecoder } from "../../src/protocols/decoder.ts";
import {
  type FieldSpec,
  ipfixOptionsTemplate,
  ipfixPacket,
  ipfixTemplate,
  ipfixWithdrawal,
  record,
  set,
  v5Packet,
  v9OptionsTemplate,
  v9Packet,
  v9Template,
  varlen,
} from "../helpers/netflow-builder.ts";

const T0 = 1_700_000_000_000;

function collector(opts: Partial<DecoderOptions> = {}) {
  let now = T0;
  const decoder = new FlowDecoder({ now: () => now, ...opts });
  const flows: FlowRecord[] = [];
  const options: OptionsRecord[] = [];
  const handler = { flow: (r: FlowRecord) => flows.push(r), options: (r: OptionsRecord) => options.push(r) };
  return {
    decoder,
    flows,
    options,
    feed(payload: Buffer, exporter = "192.0.2.1", port = 40000) {
      decoder.decode({ payload, exporter, port, receivedAtMs: now, listener: "test" }, handler);
    },
    advance(ms: number) {
      now += ms;
      decoder.tick(now, handler);
    },
  };
}

const IPV4_FIELDS: FieldSpec[] = [
  [8, 4], // sourceIPv4Address
  [12, 4], // destinationIPv4Address
  [7, 2], // sourceTransportPort
  [11, 2], // destinationTransportPort
  [4, 1], // protocolIdentifier
  [1, 4], // octetDeltaCount (reduced size)
  [2, 4], // packetDeltaCount
  [10, 2], // ingressInterface
  [14, 2], // egressInterface
];

describe("NetFlow v5", () => {
  test("every record field and the header sampling rate", () => {
    const c = collector();
    c.feed(
      v5Packet(
        [
          {
            src: "10.0.0.1",
            dst: "10.0.0.2",
            nextHop: "10.0.0.254",
            input: 3,
            output: 4,
            packets: 10,
            bytes: 1500,
            first: 90_000,
            last: 99_000,
            srcPort: 1234,
            dstPort: 80,
            tcpFlags: 0x1b,
            proto: 6,
            tos: 8,
            srcAs: 65001,
            dstAs: 65002,
            srcMask: 24,
            dstMask: 16,
          },
        ],
        {
          uptimeMs: 100_000,
          unixSecs: 1_700_000_000,
          unixNsecs: 500_000_000,
          sequence: 7,
          sampling: (1 << 14) | 100,
        },
      ),
    );
    const r = c.flows[0]!;
    assert.equal(r.type, "NETFLOW_V5");
    assert.equal(r.src_addr, "10.0.0.1");
    assert.equal(r.dst_addr, "10.0.0.2");
    assert.equal(r.next_hop, "10.0.0.254");
    assert.equal(r.in_if, 3);
    assert.equal(r.out_if, 4);
    assert.equal(r.packets, 10);
    assert.equal(r.bytes, 1500);
    assert.equal(r.src_port, 1234);
    assert.equal(r.dst_port, 80);
    assert.equal(r.tcp_flags, 0x1b);
    assert.equal(r.proto, 6);
    assert.equal(r.ip_tos, 8);
    assert.equal(r.src_as, 65001);
    assert.equal(r.dst_as, 65002);
    assert.equal(r.src_net, 24);
    assert.equal(r.dst_net, 16);
    assert.equal(r.etype, 0x800);
    assert.equal(r.sequence_num, 7);
    assert.equal(r.sampling_rate, 100);
    assert.equal(r.sampler_address, "192.0.2.1");
    assert.equal(r.switch_id, "192.0.2.1");
    // export time 1_700_000_000.5 s; first switched 10 s before the uptime
    assert.equal(r.time_flow_start_ms, 1_700_000_000_500 - 10_000);
    assert.equal(r.time_flow_end_ms, 1_700_000_000_500 - 1_000);
  });

  test("switched times wrap at 2^32 ms of uptime", () => {
    const c = collector();
    const flow = { src: "1.1.1.1", dst: "2.2.2.2", packets: 1, bytes: 1, srcPort: 1, dstPort: 2, proto: 17 };
    c.feed(v5Packet([{ ...flow, first: 4294967000, last: 50 }], { uptimeMs: 100, unixSecs: 1_000_000 }));
    const r = c.flows[0]!;
    assert.equal(r.time_flow_start_ms, 1_000_000_000 - 396);
    assert.equal(r.time_flow_end_ms, 1_000_000_000 - 50);
  });

  test("a count past the datagram is a DecodeError", () => {
    const c = collector();
    const p = v5Packet([]);
    p.writeUInt16BE(3, 2);
    assert.throws(
      () => c.feed(p),
      (e: unknown) => e instanceof DecodeError && e.code === "TRUNCATED",
    );
    assert.equal(c.decoder.stats.errors.TRUNCATED, 1);
  });
});

describe("NetFlow v9", () => {
  const fields: FieldSpec[] = [...IPV4_FIELDS, [22, 4], [21, 4], [34000, 4], [34001, 4]];
  const values = ["10.1.1.1", "10.2.2.2", 5000, 443, 6, 1000, 5, 1, 2, 95_000, 99_000, 100, 200];

  test("template and data in one packet; TrustSec SGTs; uptime-relative times", () => {
    const c = collector();
    c.feed(
      v9Packet([set(0, v9Template(256, fields)), set(256, record(fields, values))], {
        uptimeMs: 100_000,
        unixSecs: 1_700_000_000,
        sourceId: 3,
        sequence: 42,
      }),
    );
    assert.equal(c.flows.length, 1);
    const r = c.flows[0]!;
    assert.equal(r.type, "NETFLOW_V9");
    assert.equal(r.src_addr, "10.1.1.1");
    assert.equal(r.dst_port, 443);
    assert.equal(r.bytes, 1000);
    assert.equal(r.packets, 5);
    assert.equal(r.src_sgt, 100);
    assert.equal(r.dst_sgt, 200);
    assert.equal(r.observation_domain_id, 3);
    assert.equal(r.sequence_num, 42);
    assert.equal(r.etype, 0x800);
    assert.equal(r.time_flow_start_ms, 1_700_000_000_000 - 5_000);
    assert.equal(r.time_flow_end_ms, 1_700_000_000_000 - 1_000);
    assert.equal(r.extra, null, "every field mapped");
  });

  test("padding: a zero-length FlowSet ends the packet; a remainder shorter than a record ends the set", () => {
    const c = collector();
    const data = [...record(fields, values), 0, 0, 0]; // 3 bytes of padding after one record
    const p = v9Packet([set(0, v9Template(256, fields)), set(256, data)]);
    c.feed(Buffer.concat([p, Buffer.alloc(64)]));
    assert.equal(c.flows.length, 1);
  });

  test("options data sets the sampling rate and interface names of later flows", () => {
    const c = collector();
    const scope: FieldSpec[] = [[1, 4]]; // System
    const opt: FieldSpec[] = [
      [34, 4], // samplingInterval
      [35, 1], // samplingAlgorithm
    ];
    const ifScope: FieldSpec[] = [[2, 4]]; // Interface
    const ifOpt: FieldSpec[] = [[82, 16]];
    c.feed(
      v9Packet([
        set(1, [...v9OptionsTemplate(300, scope, opt), ...v9OptionsTemplate(301, ifScope, ifOpt)]),
        set(300, record([...scope, ...opt], [0, 512, 2])),
        set(301, record([...ifScope, ...ifOpt], [1, "Gi0/1"])),
      ]),
      "192.0.2.1",
      40001, // options from another source port
    );
    assert.equal(c.options.length, 2);
    assert.equal(c.options[0]!.values.samplingInterval, 512);
    c.feed(v9Packet([set(0, v9Template(256, fields)), set(256, record(fields, values))]));
    assert.equal(c.flows[0]!.sampling_rate, 512);
    assert.equal(c.flows[0]!.in_if_name, "Gi0/1");
    assert.equal(c.flows[0]!.out_if_name, "");
    assert.equal(c.flows[0]!.bytes, 1000, "unscaled by default");
  });

  test("scaling by the sampling rate is an option", () => {
    const c = collector({ scaleBySampling: true });
    const scope: FieldSpec[] = [[1, 4]];
    const opt: FieldSpec[] = [[34, 4]];
    c.feed(
      v9Packet([set(1, v9OptionsTemplate(300, scope, opt)), set(300, record([...scope, ...opt], [0, 10]))]),
    );
    c.feed(v9Packet([set(0, v9Template(256, fields)), set(256, record(fields, values))]));
    assert.equal(c.flows[0]!.bytes, 10_000);
    assert.equal(c.flows[0]!.packets, 50);
  });
});

describe("IPFIX", () => {
  const fields: FieldSpec[] = [...IPV4_FIELDS, [152, 8], [153, 8]];
  const values = ["10.1.1.1", "10.2.2.2", 5000, 443, 6, 1000, 5, 1, 2, T0 - 5000, T0 - 1000];

  test("template and data sets in one message (UniFi UCG-Max style)", () => {
    const c = collector();
    c.feed(
      ipfixPacket([set(2, ipfixTemplate(256, fields)), set(256, record(fields, values))], { domain: 7 }),
    );
    assert.equal(c.flows.length, 1);
    const r = c.flows[0]!;
    assert.equal(r.type, "IPFIX");
    assert.equal(r.time_flow_start_ms, T0 - 5000);
    assert.equal(r.time_flow_end_ms, T0 - 1000);
    assert.equal(r.observation_domain_id, 7);
  });

  test("data before its template is held, then decoded when the template arrives", () => {
    const c = collector();
    c.feed(ipfixPacket([set(256, record(fields, values))]));
    assert.equal(c.flows.length, 0);
    assert.equal(c.decoder.stats.heldSets, 1);
    assert.equal(c.decoder.heldCount(), 1);
    c.feed(ipfixPacket([set(2, ipfixTemplate(256, fields))]));
    assert.equal(c.flows.length, 1);
    assert.equal(c.flows[0]!.src_addr, "10.1.1.1");
    assert.equal(c.decoder.stats.heldDecoded, 1);
    assert.equal(c.decoder.stats.missingTemplateDrops, 0);
  });

  test("held data whose template never comes is dropped and counted after the hold time", () => {
    const c = collector({ holdMaxMs: 2000 });
    c.feed(ipfixPacket([set(256, record(fields, values))]));
    c.advance(1000);
    assert.equal(c.decoder.stats.missingTemplateDrops, 0);
    c.advance(1500);
    assert.equal(c.decoder.stats.missingTemplateDrops, 1);
    assert.equal(c.decoder.heldCount(), 0);
    c.feed(ipfixPacket([set(2, ipfixTemplate(256, fields))]));
    assert.equal(c.flows.length, 0);
  });

  test("the hold is bounded per exporter", () => {
    const c = collector({ holdMaxSets: 3 });
    for (let i = 0; i < 5; i++) c.feed(ipfixPacket([set(256, record(fields, values))]));
    assert.equal(c.decoder.heldCount(), 3);
    assert.equal(c.decoder.stats.missingTemplateDrops, 2);
  });

  test("withdrawal of one template and of all templates", () => {
    const c = collector();
    c.feed(ipfixPacket([set(2, [...ipfixTemplate(256, fields), ...ipfixTemplate(257, fields)])]));
    assert.equal(c.decoder.templates().length, 2);
    c.feed(ipfixPacket([set(2, ipfixWithdrawal(256))]));
    assert.deepEqual(
      c.decoder.templates().map((t) => t.id),
      [257],
    );
    c.feed(ipfixPacket([set(256, record(fields, values))]));
    assert.equal(c.flows.length, 0, "withdrawn template no longer decodes");
    c.feed(ipfixPacket([set(2, ipfixWithdrawal(2))]));
    assert.equal(c.decoder.templates().length, 0);
    assert.equal(c.decoder.stats.templatesWithdrawn, 2);
  });

  test("redefinition replaces the template and changes decoding", () => {
    const c = collector();
    const a: FieldSpec[] = [
      [8, 4],
      [12, 4],
    ];
    const b: FieldSpec[] = [
      [12, 4],
      [8, 4],
    ];
    c.feed(ipfixPacket([set(2, ipfixTemplate(256, a)), set(256, record(a, ["1.1.1.1", "2.2.2.2"]))]));
    c.feed(ipfixPacket([set(2, ipfixTemplate(256, b)), set(256, record(b, ["3.3.3.3", "4.4.4.4"]))]));
    assert.equal(c.flows[0]!.src_addr, "1.1.1.1");
    assert.equal(c.flows[1]!.src_addr, "4.4.4.4");
    assert.equal(c.flows[1]!.dst_addr, "3.3.3.3");
  });

  test("two exporters (and two ports of one address) with the same template id do not collide", () => {
    const c = collector();
    const a: FieldSpec[] = [
      [8, 4],
      [7, 2],
    ];
    const b: FieldSpec[] = [
      [7, 2],
      [8, 4],
    ];
    c.feed(ipfixPacket([set(2, ipfixTemplate(256, a))]), "198.51.100.1", 5000);
    c.feed(ipfixPacket([set(2, ipfixTemplate(256, b))]), "198.51.100.2", 5000);
    c.feed(ipfixPacket([set(2, ipfixTemplate(256, b))]), "198.51.100.1", 5001);
    c.feed(ipfixPacket([set(256, record(a, ["9.9.9.9", 53]))]), "198.51.100.1", 5000);
    c.feed(ipfixPacket([set(256, record(b, [80, "8.8.8.8"]))]), "198.51.100.2", 5000);
    c.feed(ipfixPacket([set(256, record(b, [443, "7.7.7.7"]))]), "198.51.100.1", 5001);
    assert.deepEqual(
      c.flows.map((f) => [f.sampler_address, f.src_addr, f.src_port]),
      [
        ["198.51.100.1", "9.9.9.9", 53],
        ["198.51.100.2", "8.8.8.8", 80],
        ["198.51.100.1", "7.7.7.7", 443],
      ],
    );
  });

  test("sampling from options data keyed by samplerId, and (interval+space)/interval", () => {
    const c = collector();
    const scope: FieldSpec[] = [[48, 2]]; // samplerId
    const opt: FieldSpec[] = [
      [305, 4],
      [306, 4],
    ];
    const f: FieldSpec[] = [
      [8, 4],
      [48, 2],
    ];
    c.feed(
      ipfixPacket(
        [
          set(3, ipfixOptionsTemplate(400, scope, opt)),
          set(400, [...record([...scope, ...opt], [1, 1, 99]), ...record([...scope, ...opt], [2, 1, 9])]),
        ],
        { domain: 1 },
      ),
      "192.0.2.1",
      9999,
    );
    c.feed(
      ipfixPacket(
        [
          set(2, ipfixTemplate(256, f)),
          set(256, [...record(f, ["1.1.1.1", 1]), ...record(f, ["2.2.2.2", 2])]),
        ],
        { domain: 1 },
      ),
    );
    assert.deepEqual(
      c.flows.map((r) => r.sampling_rate),
      [100, 10],
    );
  });

  test("variable-length fields, enterprise elements, and IEs 411/412 as what they are", () => {
    const c = collector({ collectElements: true });
    const f: FieldSpec[] = [
      [8, 4],
      [82, 0xffff], // interfaceName, variable length
      [411, 4], // dot1qServiceInstanceTag
      [412, 4], // dot1qServiceInstanceId
      [1232, 4, 9], // Cisco PEN 9: source SGT over IPFIX
      [1233, 4, 9],
      [4242, 3, 99999], // unknown enterprise element
    ];
    const rec = [
      ...record([[8, 4]], ["10.0.0.1"]),
      ...varlen([...Buffer.from("eth0")]),
      ...record(
        [
          [411, 4],
          [412, 4],
          [1232, 4],
          [1233, 4],
          [4242, 3],
        ],
        [11, 12, 300, 400, 0xabcdef],
      ),
    ];
    const long = [
      ...record([[8, 4]], ["10.0.0.2"]),
      ...varlen([...Buffer.alloc(300, 0x41)]),
      ...Array(19).fill(0),
    ];
    c.feed(ipfixPacket([set(2, ipfixTemplate(256, f)), set(256, [...rec, ...long])]));
    assert.equal(c.flows.length, 2);
    const r = c.flows[0]!;
    assert.equal(r.src_sgt, 300);
    assert.equal(r.dst_sgt, 400);
    assert.equal(r.extra?.interfaceName, "eth0");
    assert.equal(r.extra?.dot1qServiceInstanceTag, "0000000b", "octetArray per the IANA registry");
    assert.equal(r.extra?.dot1qServiceInstanceId, 12);
    assert.equal(r.extra?.["99999.4242"], "abcdef");
    assert.equal(c.decoder.stats.unknownElements, 1, "the enterprise element nobody defines is counted");
    assert.deepEqual(
      r.elements?.map((e) => e.name),
      [
        "sourceIPv4Address",
        "interfaceName",
        "dot1qServiceInstanceTag",
        "dot1qServiceInstanceId",
        r.elements?.[4]?.name,
        r.elements?.[5]?.name,
        "99999.4242",
      ],
    );
    assert.equal(String(c.flows[1]!.extra?.interfaceName).length, 300);
  });

  test("a variable-length field running past its set is a DecodeError", () => {
    const c = collector();
    const f: FieldSpec[] = [[82, 0xffff]];
    const bad = [200, 1, 2, 3]; // claims 200 bytes
    assert.throws(
      () => c.feed(ipfixPacket([set(2, ipfixTemplate(256, f)), set(256, bad)])),
      (e: unknown) => e instanceof DecodeError && e.code === "BAD_RECORD",
    );
  });

  test("64-bit counters above 2^53 stay exact; reduced-size and delta times", () => {
    const c = collector();
    const f: FieldSpec[] = [
      [1, 8],
      [2, 3],
      [158, 4],
      [159, 4],
    ];
    c.feed(
      ipfixPacket(
        [set(2, ipfixTemplate(256, f)), set(256, record(f, [2n ** 60n + 1n, 70000, 3_000_000, 1_000_000]))],
        {
          exportTime: 1_700_000_000,
        },
      ),
    );
    const r = c.flows[0]!;
    assert.equal(r.bytes, 2n ** 60n + 1n);
    assert.equal(r.packets, 70000);
    assert.equal(r.time_flow_start_ms, 1_700_000_000_000 - 3000);
    assert.equal(r.time_flow_end_ms, 1_700_000_000_000 - 1000);
  });

  test("IPv6, MACs, VLANs and microsecond (NTP) times", () => {
    const c = collector();
    const f: FieldSpec[] = [
      [27, 16],
      [28, 16],
      [56, 6],
      [80, 6],
      [58, 2],
      [59, 2],
      [154, 8],
      [31, 4],
    ];
    // NTP: seconds since 1900; 1_700_000_000 + 2208988800, fraction 0.5
    const ntp = ((1_700_000_000n + 2_208_988_800n) << 32n) | 0x80000000n;
    c.feed(
      ipfixPacket([
        set(2, ipfixTemplate(256, f)),
        set(
          256,
          record(f, [
            "2001:db8::1",
            "2001:db8:0:1::2",
            "00:11:22:33:44:55",
            "aa:bb:cc:dd:ee:ff",
            10,
            20,
            ntp,
            12345,
          ]),
        ),
      ]),
    );
    const r = c.flows[0]!;
    assert.equal(r.src_addr, "2001:db8::1");
    assert.equal(r.dst_addr, "2001:db8:0:1::2");
    assert.equal(r.etype, 0x86dd);
    assert.equal(r.src_mac, 0x001122334455);
    assert.equal(r.dst_mac, 0xaabbccddeeff);
    assert.equal(r.src_vlan, 10);
    assert.equal(r.vlan_id, 10);
    assert.equal(r.dst_vlan, 20);
    assert.equal(r.ipv6_flow_label, 12345);
    assert.equal(r.time_flow_start_ms, 1_700_000_000_500);
  });

  test("templates expire when neither refreshed nor used", () => {
    const c = collector({ templateTimeoutMs: 60_000 });
    c.feed(ipfixPacket([set(2, ipfixTemplate(256, fields))]));
    c.advance(50_000);
    c.feed(ipfixPacket([set(256, record(fields, values))])); // use refreshes
    c.advance(50_000);
    assert.equal(c.decoder.templates().length, 1);
    c.advance(20_000);
    assert.equal(c.decoder.templates().length, 0);
    assert.equal(c.decoder.stats.templatesExpired, 1);
  });

  test("state round trip: a restarted decoder decodes at once with the saved templates and sampling", () => {
    const c = collector();
    const scope: FieldSpec[] = [[149, 4]];
    const opt: FieldSpec[] = [[34, 4]];
    c.feed(
      ipfixPacket([
        set(2, ipfixTemplate(256, fields)),
        set(3, ipfixOptionsTemplate(300, scope, opt)),
        set(300, record([...scope, ...opt], [0, 64])),
      ]),
    );
    const saved = JSON.parse(JSON.stringify(c.decoder.saveState()));
    const d = collector();
    const loaded = d.decoder.loadState(saved);
    assert.deepEqual(loaded, { templates: 2, sampling: 1 });
    d.feed(ipfixPacket([set(256, record(fields, values))]));
    assert.equal(d.flows.length, 1);
    assert.equal(d.flows[0]!.sampling_rate, 64);
    assert.throws(() => d.decoder.loadState({ hello: 1 }), /not a clarion-collector decoder state/);
  });
});

describe("front", () => {
  test("per-exporter state is bounded: sources beyond maxExporters count as other", () => {
    const c = collector({ maxExporters: 3 });
    for (let i = 0; i < 10; i++) {
      try {
        c.feed(Buffer.from([0, 7]), `203.0.113.${i}`);
      } catch {
        // garbage: counted as an error
      }
    }
    const ex = c.decoder.exporters();
    assert.equal(ex.length, 4, "three exporters and other");
    const other = ex.find((e) => e.exporter === "other");
    assert.ok(other);
    assert.equal(other.datagrams, 7);
    assert.equal(other.errors, 7);
  });

  test("unknown versions and empty datagrams are DecodeErrors, counted", () => {
    const c = collector();
    assert.throws(() => c.feed(Buffer.from([0, 7, 0, 0])), DecodeError);
    assert.throws(() => c.feed(Buffer.alloc(0)), DecodeError);
    assert.equal(c.decoder.stats.errors.BAD_VERSION, 2);
    assert.equal(c.decoder.exporters()[0]!.errors, 2);
  });
});

/**
 * Tests of the interop harness itself: the capture reader/writer, and each real exporter + tshark
 * round trip on synthetic traffic (skipped outside CI when a tool is missing).
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  CaptureError,
  formatIPv6,
  ipFrame,
  parseAddress,
  readCapture,
  scanCapture,
  udpFrame,
  writePcap,
} from "../../src/core/pcap.ts";
import {
  collectorPcap,
  PADDING_SRC,
  padPcap,
  runPmacctdNfprobe,
  runPmacctdSfprobe,
  runSoftflowd,
} from "../helpers/exporters.ts";
import { requireTool } from "../helpers/tools.ts";
import { type FlowSpec, flowKey, makeTrafficPcap } from "../helpers/traffic.ts";
import { type TsharkRecord, tsharkFlows } from "../helpers/tshark.ts";

const T0 = Date.UTC(2024, 5, 1, 12, 0, 0);

describe("capture reader", () => {
  test("round-trips writePcap + udpFrame: IPv4, IPv6, VLAN and QinQ", () => {
    const p1 = Buffer.from("netflow v9 bytes");
    const p2 = Buffer.from("ipfix over v6");
    const p3 = Buffer.alloc(1400, 7);
    const pcap = writePcap([
      {
        timestampMs: T0 + 0.5,
        frame: udpFrame({ src: "192.0.2.1", dst: "192.0.2.9", srcPort: 5000, dstPort: 2055, payload: p1 }),
      },
      {
        timestampMs: T0 + 10,
        frame: udpFrame({
          src: "2001:db8::1",
          dst: "2001:db8::2",
          srcPort: 5001,
          dstPort: 4739,
          payload: p2,
        }),
      },
      {
        timestampMs: T0 + 20,
        frame: udpFrame({
          src: "10.0.0.1",
          dst: "10.0.0.2",
          srcPort: 5002,
          dstPort: 6343,
          payload: p3,
          vlans: [100],
        }),
      },
      {
        timestampMs: T0 + 30,
        frame: udpFrame({
          src: "::ffff:10.1.1.1",
          dst: "::1",
          srcPort: 5003,
          dstPort: 2055,
          payload: p1,
          vlans: [10, 20],
        }),
      },
    ]);
    const got = readCapture(pcap);
    assert.equal(got.length, 4);
    assert.deepEqual(
      got.map((d) => [d.exporter, d.port, d.dstPort]),
      [
        ["192.0.2.1", 5000, 2055],
        ["2001:db8::1", 5001, 4739],
        ["10.0.0.1", 5002, 6343],
        ["::ffff:10.1.1.1", 5003, 2055],
      ],
    );
    assert.deepEqual(got[0]!.payload, p1);
    assert.deepEqual(got[1]!.payload, p2);
    assert.deepEqual(got[2]!.payload, p3);
    assert.equal(got[0]!.timestampMs, T0 + 0.5);
    assert.equal(got[3]!.timestampMs, T0 + 30);
  });

  test("skips non-UDP frames and bounds the datagram by the IP length past Ethernet padding", () => {
    const tcp = ipFrame({ src: "10.0.0.1", dst: "10.0.0.2", protocol: 6, l4: Buffer.alloc(20) });
    const small = udpFrame({
      src: "10.0.0.1",
      dst: "10.0.0.2",
      srcPort: 1,
      dstPort: 2,
      payload: Buffer.from("ab"),
    });
    const padded = Buffer.concat([small, Buffer.alloc(60 - small.length)]); // minimum Ethernet frame
    const arp = Buffer.concat([Buffer.alloc(12), Buffer.from([0x08, 0x06]), Buffer.alloc(28)]);
    const { datagrams, stats } = scanCapture(
      writePcap([tcp, padded, arp].map((frame) => ({ timestampMs: T0, frame }))),
    );
    assert.equal(datagrams.length, 1);
    assert.equal(datagrams[0]!.payload.toString(), "ab");
    assert.equal(stats.frames, 3);
    assert.equal(stats.notUdp, 2);
  });

  test("reads big-endian and nanosecond pcap", () => {
    const frame = udpFrame({
      src: "198.51.100.7",
      dst: "198.51.100.8",
      srcPort: 9995,
      dstPort: 9996,
      payload: Buffer.from("x"),
    });
    const be = Buffer.alloc(24 + 16 + frame.length);
    be.writeUInt32BE(0xa1b23c4d, 0); // ns magic, big-endian
    be.writeUInt16BE(2, 4);
    be.writeUInt16BE(4, 6);
    be.writeUInt32BE(65535, 16);
    be.writeUInt32BE(1, 20);
    be.writeUInt32BE(1_700_000_000, 24);
    be.writeUInt32BE(123_456_789, 28);
    be.writeUInt32BE(frame.length, 32);
    be.writeUInt32BE(frame.length, 36);
    frame.copy(be, 40);
    const [d] = readCapture(be);
    assert.equal(d!.exporter, "198.51.100.7");
    assert.ok(Math.abs(d!.timestampMs - (1_700_000_000_123 + 0.456789)) < 1e-3);
  });

  test("raw IP, NULL, SLL and SLL2 link types", () => {
    const eth = udpFrame({
      src: "10.9.9.9",
      dst: "10.9.9.10",
      srcPort: 7,
      dstPort: 2055,
      payload: Buffer.from("p"),
    });
    const ip = eth.subarray(14);
    const nullHdr = Buffer.from([2, 0, 0, 0]); // AF_INET, little-endian writer
    const sll = Buffer.alloc(16);
    sll.writeUInt16BE(0x0800, 14);
    const sll2 = Buffer.alloc(20);
    sll2.writeUInt16BE(0x0800, 0);
    for (const [lt, frame] of [
      [101, ip],
      [228, ip],
      [12, ip],
      [0, Buffer.concat([nullHdr, ip])],
      [113, Buffer.concat([sll, ip])],
      [276, Buffer.concat([sll2, ip])],
    ] as const) {
      const got = readCapture(writePcap([{ timestampMs: T0, frame }], lt));
      assert.equal(got.length, 1, `link type ${lt}`);
      assert.equal(got[0]!.exporter, "10.9.9.9");
      assert.equal(got[0]!.payload.toString(), "p");
    }
  });

  test("IPv4 options, IPv6 extension headers, fragments", () => {
    // IPv4 with a 4-byte option (IHL 6)
    const base = udpFrame({
      src: "10.0.0.1",
      dst: "10.0.0.2",
      srcPort: 11,
      dstPort: 12,
      payload: Buffer.from("opt"),
    });
    const ip = Buffer.from(base.subarray(14));
    const withOpt = Buffer.concat([ip.subarray(0, 20), Buffer.from([1, 1, 1, 0]), ip.subarray(20)]);
    withOpt[0] = 0x46;
    withOpt.writeUInt16BE(withOpt.length, 2);
    // IPv6: hop-by-hop (8 bytes) then UDP
    const v6 = Buffer.from(
      udpFrame({
        src: "2001:db8::a",
        dst: "2001:db8::b",
        srcPort: 13,
        dstPort: 14,
        payload: Buffer.from("ext"),
      }).subarray(14),
    );
    const hbh = Buffer.from([17, 0, 1, 4, 0, 0, 0, 0]);
    const v6ext = Buffer.concat([v6.subarray(0, 40), hbh, v6.subarray(40)]);
    v6ext[6] = 0; // next header: hop-by-hop
    v6ext.writeUInt16BE(v6ext.length - 40, 4);
    // IPv4 fragments of one datagram (UDP header + 24 bytes), sent last fragment first
    const whole = Buffer.from(
      udpFrame({
        src: "10.0.0.5",
        dst: "10.0.0.6",
        srcPort: 15,
        dstPort: 16,
        payload: Buffer.from("0123456789abcdefghijklmn"),
      }).subarray(34),
    );
    const frag = (offset: number, more: boolean, data: Buffer) => {
      const h = Buffer.from(ip.subarray(0, 20));
      h.writeUInt32BE(0x0a000005, 12);
      h.writeUInt32BE(0x0a000006, 16);
      h.writeUInt16BE(20 + data.length, 2);
      h.writeUInt16BE(0x77, 4);
      h.writeUInt16BE((more ? 0x2000 : 0) | (offset / 8), 6);
      return Buffer.concat([h, data]);
    };
    const frames = [
      withOpt,
      v6ext,
      frag(16, false, whole.subarray(16)),
      frag(0, true, whole.subarray(0, 16)),
    ];
    const got = readCapture(
      writePcap(
        frames.map((frame) => ({ timestampMs: T0, frame })),
        101,
      ),
    );
    assert.deepEqual(
      got.map((d) => [d.exporter, d.port, d.payload.toString()]),
      [
        ["10.0.0.1", 11, "opt"],
        ["2001:db8::a", 13, "ext"],
        ["10.0.0.5", 15, "0123456789abcdefghijklmn"],
      ],
    );
  });

  test("pcapng: both byte orders, if_tsresol, EPB, SPB, skipped blocks, several interfaces", () => {
    const f1 = udpFrame({
      src: "192.0.2.10",
      dst: "192.0.2.20",
      srcPort: 100,
      dstPort: 2055,
      payload: Buffer.from("one"),
    });
    const f2 = udpFrame({
      src: "2001:db8::10",
      dst: "2001:db8::20",
      srcPort: 200,
      dstPort: 4739,
      payload: Buffer.from("two"),
    });
    const f3 = f1.subarray(14); // raw IP on interface 1
    for (const le of [true, false]) {
      const ng = pcapng(le, [
        shb(le),
        idb(le, 1, [[9, Buffer.from([9])]]), // nanoseconds
        idb(le, 101, []), // default microseconds
        block(le, 4, Buffer.alloc(8)), // name resolution block: skipped
        epb(le, 0, 1_700_000_000_000_000_001n, f1),
        epb(le, 1, 1_700_000_000_500_000n, f3),
        spb(le, f2),
        block(le, 0x00000bad, Buffer.alloc(4)), // custom block: skipped
      ]);
      const got = readCapture(ng);
      assert.deepEqual(
        got.map((d) => [d.exporter, d.port, d.payload.toString()]),
        [
          ["192.0.2.10", 100, "one"],
          ["192.0.2.10", 100, "one"],
          ["2001:db8::10", 200, "two"],
        ],
        le ? "little-endian" : "big-endian",
      );
      assert.ok(Math.abs(got[0]!.timestampMs - 1_700_000_000_000) < 1e-3);
      assert.equal(got[1]!.timestampMs, 1_700_000_000_500);
      assert.equal(got[2]!.timestampMs, 0);
    }
  });

  test("truncated, empty and unknown files throw CaptureError", () => {
    const pcap = writePcap([
      {
        timestampMs: T0,
        frame: udpFrame({
          src: "10.0.0.1",
          dst: "10.0.0.2",
          srcPort: 1,
          dstPort: 2,
          payload: Buffer.alloc(100),
        }),
      },
    ]);
    assert.throws(() => readCapture(pcap.subarray(0, pcap.length - 10)), CaptureError);
    assert.throws(() => readCapture(pcap.subarray(0, 30)), /cut short/);
    assert.throws(() => readCapture(pcap.subarray(0, 20)), CaptureError);
    assert.throws(() => readCapture(Buffer.alloc(0)), CaptureError);
    assert.throws(() => readCapture(Buffer.from("hello, this is not a capture")), /not a pcap or pcapng/);
    assert.deepEqual(readCapture(pcap.subarray(0, pcap.length - 10), { allowTruncatedFile: true }), []);
    const ng = pcapng(true, [shb(true), idb(true, 1, []), epb(true, 0, 0n, Buffer.alloc(60))]);
    assert.throws(() => readCapture(ng.subarray(0, ng.length - 4)), CaptureError);
    const badLink = writePcap([{ timestampMs: T0, frame: Buffer.alloc(10) }], 147);
    assert.throws(() => readCapture(badLink), /unsupported link type 147/);
  });

  test("IPv6 text is RFC 5952 compressed", () => {
    const cases = [
      "::",
      "::1",
      "2001:db8::1",
      "2001:db8:0:1:1:1:1:1",
      "2001:0:0:1::1",
      "fe80::1:0:0:0",
      "::ffff:192.0.2.1",
      "1::",
    ];
    for (const c of cases) assert.equal(formatIPv6(parseAddress(c), 0), c);
    assert.equal(formatIPv6(parseAddress("2001:DB8:0:0:1:0:0:1"), 0), "2001:db8::1:0:0:1");
  });
});

// ------------------------------------------------------------------------------ real exporters

describe("exporters and tshark", { concurrency: true }, () => {
  let dir = "";
  let pcapPath = "";
  let flows: FlowSpec[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "clarion-harness-"));
    const traffic = makeTrafficPcap({ flows: 60, ipv6: true, seed: 42 });
    flows = traffic.flows;
    pcapPath = join(dir, "traffic.pcap");
    await writeFile(pcapPath, traffic.pcap);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function decode(datagrams: Buffer[], port: number, proto: "cflow" | "sflow", name: string) {
    const path = join(dir, `${name}.pcap`);
    await writeFile(path, collectorPcap(datagrams, port));
    assert.equal(readCapture(await readFile(path)).length, datagrams.length);
    return tsharkFlows(path, { port, proto });
  }

  function byKey(records: TsharkRecord[]): Map<string, TsharkRecord> {
    const m = new Map<string, TsharkRecord>();
    for (const r of records) {
      const icmp = r.protocol === 1 || r.protocol === 58;
      m.set(
        flowKey({
          proto: r.protocol ?? -1,
          src: r.srcAddr ?? "",
          dst: r.dstAddr ?? "",
          srcPort: icmp ? 0 : (r.srcPort ?? 0),
          dstPort: icmp ? 0 : (r.dstPort ?? 0),
        }),
        r,
      );
    }
    return m;
  }

  function assertFlowsMatch(records: TsharkRecord[], expected: FlowSpec[], timeToleranceMs: number) {
    const got = byKey(records);
    assert.equal(got.size, expected.length, "one record per flow");
    for (const f of expected) {
      const r = got.get(flowKey(f));
      assert.ok(r, `flow ${flowKey(f)} exported`);
      assert.equal(r.octets, f.bytes, `octets of ${flowKey(f)}`);
      assert.equal(r.packets, f.packets, `packets of ${flowKey(f)}`);
      // softflowd and pmacctd both export IP_TOS 0 for IPv6 (they do not read the traffic class)
      assert.equal(r.tos, f.family === 4 ? f.tos : 0, `tos of ${flowKey(f)}`);
      if (f.proto === 6) assert.equal(r.tcpFlags, f.tcpFlags, `tcp flags of ${flowKey(f)}`);
      assert.ok(
        r.startMs !== undefined && Math.abs(r.startMs - f.firstMs) <= timeToleranceMs,
        `start of ${flowKey(f)}`,
      );
      assert.ok(
        r.endMs !== undefined && Math.abs(r.endMs - f.lastMs) <= timeToleranceMs,
        `end of ${flowKey(f)}`,
      );
    }
  }

  test("softflowd v9 → tshark sees every flow with its counters", async (t) => {
    if (!requireTool(t, "softflowd") || !requireTool(t, "tshark")) return;
    const datagrams = await runSoftflowd(pcapPath, { version: 9, timeoutMs: 10_000 });
    assert.ok(datagrams.length > 0);
    assert.ok(datagrams.every((d) => d.readUInt16BE(0) === 9));
    const records = await decode(datagrams, 2055, "cflow", "softflowd-v9");
    // v9 headers carry whole seconds only, so times are exact to 1 s
    assertFlowsMatch(
      records.filter((r) => r.kind === "flow"),
      flows,
      1000,
    );
    assert.ok(
      records.some((r) => r.kind === "options"),
      "options data (sampling, interface name)",
    );
  });

  test("softflowd v5 and IPFIX", async (t) => {
    if (!requireTool(t, "softflowd") || !requireTool(t, "tshark")) return;
    const v5 = await runSoftflowd(pcapPath, { version: 5, timeoutMs: 10_000 });
    const r5 = await decode(v5, 2055, "cflow", "softflowd-v5");
    assertFlowsMatch(
      r5,
      flows.filter((f) => f.family === 4),
      1,
    ); // v5 has unix_nsecs: ms-exact
    const v10 = await runSoftflowd(pcapPath, { version: 10, absoluteTime: "milli", timeoutMs: 10_000 });
    const r10 = await decode(v10, 4739, "cflow", "softflowd-v10");
    assertFlowsMatch(
      r10.filter((r) => r.kind === "flow"),
      flows,
      1,
    );
  });

  test("pmacctd nfprobe v9 → tshark sees every flow", async (t) => {
    if (!requireTool(t, "pmacctd") || !requireTool(t, "tshark")) return;
    const datagrams = await runPmacctdNfprobe(pcapPath, { version: 9, timeoutMs: 15_000 });
    assert.ok(datagrams.every((d) => d.readUInt16BE(0) === 9));
    const records = await decode(datagrams, 2055, "cflow", "pmacctd-v9");
    assertFlowsMatch(records, flows, 1);
  });

  test("pmacctd sfprobe → tshark sees one sample per packet", async (t) => {
    if (!requireTool(t, "pmacctd") || !requireTool(t, "tshark")) return;
    const datagrams = await runPmacctdSfprobe(pcapPath, { timeoutMs: 15_000 });
    assert.ok(datagrams.every((d) => d.readUInt32BE(0) === 5));
    const records = await decode(datagrams, 6343, "sflow", "pmacctd-sflow");
    const samples = records.filter((r) => r.kind === "flow" && r.srcAddr !== PADDING_SRC);
    const totalPackets = flows.reduce((a, f) => a + f.packets, 0);
    assert.equal(samples.length, totalPackets);
    assert.ok(samples.every((s) => s.samplingRate === 1 && s.agent === "127.0.0.1"));
    const got = new Map<string, { packets: number; bytes: number; frames: number }>();
    for (const s of samples) {
      const icmp = s.protocol === 1 || s.protocol === 58;
      const key = flowKey({
        proto: s.protocol ?? -1,
        src: s.srcAddr ?? "",
        dst: s.dstAddr ?? "",
        srcPort: icmp ? 0 : (s.srcPort ?? 0),
        dstPort: icmp ? 0 : (s.dstPort ?? 0),
      });
      const g = got.get(key) ?? { packets: 0, bytes: 0, frames: 0 };
      g.packets++;
      g.bytes += s.octets ?? 0;
      g.frames += s.frameLength ?? 0;
      got.set(key, g);
    }
    for (const f of flows) {
      const g = got.get(flowKey(f));
      assert.ok(g, `samples of ${flowKey(f)}`);
      assert.equal(g.packets, f.packets);
      assert.equal(g.bytes, f.bytes);
      assert.equal(g.frames, f.frameBytes + 4 * f.packets, "frame length counts the FCS");
    }
  });

  test("padPcap appends marker frames readable by readCapture", async () => {
    const base = writePcap([
      {
        timestampMs: T0,
        frame: udpFrame({
          src: "10.0.0.1",
          dst: "10.0.0.2",
          srcPort: 1,
          dstPort: 2,
          payload: Buffer.from("a"),
        }),
      },
    ]);
    const got = readCapture(padPcap(base, 3));
    assert.equal(got.length, 4);
    assert.deepEqual(
      got.slice(1).map((d) => [d.exporter, d.timestampMs - T0]),
      [
        [PADDING_SRC, 1],
        [PADDING_SRC, 2],
        [PADDING_SRC, 3],
      ],
    );
  });
});

// --------------------------------------------------------------------------- pcapng builders

function u32(le: boolean, v: number): Buffer {
  const b = Buffer.alloc(4);
  if (le) b.writeUInt32LE(v >>> 0);
  else b.writeUInt32BE(v >>> 0);
  return b;
}

function u16(le: boolean, v: number): Buffer {
  const b = Buffer.alloc(2);
  if (le) b.writeUInt16LE(v);
  else b.writeUInt16BE(v);
  return b;
}

function pad4(b: Buffer): Buffer {
  return Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
}

function block(le: boolean, type: number, body: Buffer): Buffer {
  const b = pad4(body);
  const total = 12 + b.length;
  return Buffer.concat([u32(le, type), u32(le, total), b, u32(le, total)]);
}

function shb(le: boolean): Buffer {
  const body = Buffer.concat([u32(le, 0x1a2b3c4d), u16(le, 1), u16(le, 0), Buffer.alloc(8, 0xff)]);
  const total = 12 + body.length;
  // the block type reads the same in both orders
  return Buffer.concat([Buffer.from([0x0a, 0x0d, 0x0d, 0x0a]), u32(le, total), body, u32(le, total)]);
}

function idb(le: boolean, linkType: number, options: [number, Buffer][]): Buffer {
  const opts = options.map(([code, v]) => Buffer.concat([u16(le, code), u16(le, v.length), pad4(v)]));
  if (opts.length) opts.push(Buffer.alloc(4)); // opt_endofopt
  return block(le, 1, Buffer.concat([u16(le, linkType), u16(le, 0), u32(le, 65535), ...opts]));
}

function epb(le: boolean, ifId: number, ts: bigint, data: Buffer): Buffer {
  return block(
    le,
    6,
    Buffer.concat([
      u32(le, ifId),
      u32(le, Number(ts >> 32n)),
      u32(le, Number(ts & 0xffffffffn)),
      u32(le, data.length),
      u32(le, data.length),
      pad4(data),
    ]),
  );
}

function spb(le: boolean, data: Buffer): Buffer {
  return block(le, 3, Buffer.concat([u32(le, data.length), pad4(data)]));
}

function pcapng(_le: boolean, blocks: Buffer[]): Buffer {
  return Buffer.concat(blocks);
}

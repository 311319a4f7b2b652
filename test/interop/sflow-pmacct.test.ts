/**
 * Interop: pmacctd's sfprobe plugin samples a synthetic pcap (1 in 1) and sends sFlow v5; every flow sample
 * we decode is compared field by field with tshark's dissection of the same datagrams.
 * (tshark is run here directly with -T json; move to test/helpers/tshark.ts once that helper lands.)
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { FlowRecord } from "../../src/core/flow.ts";
import { emptyStats } from "../../src/protocols/decoder.ts";
import { decodeSflow5 } from "../../src/protocols/sflow5.ts";
import { collectorPcap, PADDING_SRC, runPmacctdSfprobe } from "../helpers/exporters.ts";
import { requireTool } from "../helpers/tools.ts";
import { makeTrafficPcap } from "../helpers/traffic.ts";

type Tree = { [key: string]: string | string[] | Tree | Tree[] };

function str(t: Tree | undefined, key: string): string | undefined {
  const v = t?.[key];
  return typeof v === "string" ? v : undefined;
}

function num(t: Tree | undefined, key: string): number | undefined {
  const v = str(t, key);
  return v === undefined ? undefined : Number(v);
}

function sub(t: Tree | undefined, key: string): Tree | undefined {
  const v = t?.[key];
  return v && typeof v === "object" && !Array.isArray(v) ? v : undefined;
}

function macNumber(mac: string | undefined): number {
  return mac === undefined ? 0 : Number.parseInt(mac.replaceAll(":", ""), 16);
}

test("pmacctd sfprobe → every flow sample matches tshark", { timeout: 60_000 }, async (t) => {
  const pmacctd = requireTool(t, "pmacctd");
  const tshark = requireTool(t, "tshark");
  if (!pmacctd || !tshark) return;

  const dir = await mkdtemp(join(tmpdir(), "clarion-sflow-interop-"));
  try {
    const { pcap, flows: specs } = makeTrafficPcap({ flows: 40, ipv6: true, seed: 11, maxPackets: 4 });
    const input = join(dir, "traffic.pcap");
    await writeFile(input, pcap);
    const datagrams = await runPmacctdSfprobe(input, { agentIp: "192.0.2.77" });
    assert.ok(datagrams.length > 0, "pmacctd sent nothing");

    // ours
    const ctx = { stats: emptyStats(), collectElements: false, scaleBySampling: false, switchIdFromIp: true };
    const ours: FlowRecord[] = [];
    for (const payload of datagrams) {
      decodeSflow5({ payload, exporter: "127.0.0.1", port: 40000, receivedAtMs: 0, listener: "" }, ctx, {
        flow: (r) => ours.push(r),
      });
    }

    // tshark's
    const capture = join(dir, "collector.pcap");
    await writeFile(capture, collectorPcap(datagrams, 6343));
    const run = spawnSync(
      tshark,
      ["-r", capture, "-d", "udp.port==6343,sflow", "-T", "json", "--no-duplicate-keys"],
      { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 },
    );
    assert.equal(run.status, 0, run.stderr);
    const frames = JSON.parse(run.stdout) as { _source: { layers: Tree } }[];
    const theirs: { dgram: Tree; sample: Tree }[] = [];
    for (const f of frames) {
      const sflow = sub(f._source.layers, "sflow");
      assert.ok(sflow, "tshark found no sFlow layer");
      for (const [key, value] of Object.entries(sflow)) {
        if (!key.startsWith("Flow sample") && !key.startsWith("Expanded flow sample")) continue;
        for (const s of Array.isArray(value) ? value : [value])
          theirs.push({ dgram: sflow, sample: s as Tree });
      }
    }
    assert.equal(ours.length, theirs.length, "flow sample count");

    let real = 0;
    for (let i = 0; i < ours.length; i++) {
      const r = ours[i]!;
      const { dgram, sample } = theirs[i]!;
      const at = `sample ${i}`;
      assert.equal(r.sampler_address, str(dgram, "sflow_245.agent"), at);
      assert.equal(r.sequence_num, num(dgram, "sflow_245.sequence_number"), at);
      assert.equal(r.sampling_rate, num(sample, "sflow.flow_sample.sampling_rate"), at);
      assert.equal(r.in_if, num(sample, "sflow.flow_sample.input_interface")! & 0x3fffffff, at);
      const outTree = sub(sample, "sflow.flow_sample.output_interface_tree");
      assert.equal(num(outTree, "sflow.flow_sample.output_interface_format"), 0, at);
      assert.equal(r.out_if, num(outTree, "sflow.flow_sample.output_interface_value"), at);

      const raw = sub(sample, "Raw packet header");
      assert.ok(raw, `${at}: no raw packet header`);
      assert.equal(r.bytes, num(raw, "sflow_245.header.frame_length"), at);
      assert.equal(r.packets, 1, at);
      const hdr = sub(raw, "sflow_245.header_tree");
      const eth = sub(hdr, "eth");
      assert.equal(r.src_mac, macNumber(str(eth, "eth.src")), at);
      assert.equal(r.dst_mac, macNumber(str(eth, "eth.dst")), at);
      assert.equal(r.etype, num(eth, "eth.type"), at);

      const ip4 = sub(hdr, "ip");
      const ip6 = sub(hdr, "ipv6");
      if (ip4) {
        assert.equal(r.src_addr, str(ip4, "ip.src"), at);
        assert.equal(r.dst_addr, str(ip4, "ip.dst"), at);
        assert.equal(r.proto, num(ip4, "ip.proto"), at);
        assert.equal(r.ip_tos, num(ip4, "ip.dsfield"), at);
        assert.equal(r.ip_ttl, num(ip4, "ip.ttl"), at);
        assert.equal(r.fragment_id, num(ip4, "ip.id"), at);
        assert.equal(r.ip_flags, num(ip4, "ip.flags"), at); // tshark shows the 3 flag bits (DF = 2)
      } else {
        assert.ok(ip6, `${at}: neither IPv4 nor IPv6`);
        assert.equal(r.src_addr, str(ip6, "ipv6.src"), at);
        assert.equal(r.dst_addr, str(ip6, "ipv6.dst"), at);
        assert.equal(r.proto, num(ip6, "ipv6.nxt"), at);
        assert.equal(r.ip_tos, num(ip6, "ipv6.tclass"), at);
        assert.equal(r.ip_ttl, num(ip6, "ipv6.hlim"), at);
        assert.equal(r.ipv6_flow_label, num(ip6, "ipv6.flow"), at);
      }
      const tcp = sub(hdr, "tcp");
      const udp = sub(hdr, "udp");
      const icmp = sub(hdr, "icmp") ?? sub(hdr, "icmpv6");
      if (tcp) {
        assert.equal(r.src_port, num(tcp, "tcp.srcport"), at);
        assert.equal(r.dst_port, num(tcp, "tcp.dstport"), at);
        assert.equal(r.tcp_flags, num(tcp, "tcp.flags")! & 0x1ff, at);
      } else if (udp) {
        assert.equal(r.src_port, num(udp, "udp.srcport"), at);
        assert.equal(r.dst_port, num(udp, "udp.dstport"), at);
      } else {
        assert.ok(icmp, `${at}: no transport layer`);
        const v6 = sub(hdr, "icmpv6") !== undefined;
        assert.equal(r.icmp_type, num(icmp, v6 ? "icmpv6.type" : "icmp.type"), at);
        assert.equal(r.icmp_code, num(icmp, v6 ? "icmpv6.code" : "icmp.code"), at);
      }

      const sw = sub(sample, "Extended switch data");
      if (sw) {
        assert.equal(r.src_vlan, num(sw, "sflow_245.vlan.in"), at);
        assert.equal(r.dst_vlan, num(sw, "sflow_245.vlan.out"), at);
      }
      if (r.src_addr !== PADDING_SRC) real++;
    }
    // every packet of the synthetic traffic was sampled (rate 1) and decoded
    assert.equal(
      real,
      specs.reduce((n, s) => n + s.packets, 0),
      "one sample per real packet",
    );
    assert.equal(ctx.stats.sflowSkippedRecords, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

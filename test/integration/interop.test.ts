/**
 * End to end through the real CLI: softflowd (NetFlow v5, v9, IPFIX) and pmacctd's nfprobe (v9, IPFIX)
 * export flows from a pcap the test makes; their datagrams reach the collector, each exporter from its
 * own loopback address; every record lands in SQLite and in JSON lines, equal to tshark's decoding of the
 * datagrams sent. A second test: several exporters with clashing template ids against --workers 2.
 */
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, test } from "node:test";
import { collectorPcap, runPmacctdNfprobe, runSoftflowd } from "../helpers/exporters.ts";
import {
  type FieldSpec,
  ipfixPacket,
  ipfixTemplate,
  record,
  set,
  v9Packet,
  v9Template,
} from "../helpers/netflow-builder.ts";
import { dirs, getJson, loopbackArgs, sleep, startService, waitFor } from "../helpers/service.ts";
import { requireTool } from "../helpers/tools.ts";
import { makeTrafficPcap } from "../helpers/traffic.ts";
import { type TsharkRecord, tsharkFlows } from "../helpers/tshark.ts";

interface JsonFlow {
  type: string;
  sampler_address: string;
  src_addr: string;
  dst_addr: string;
  src_port: number;
  dst_port: number;
  proto: string;
  bytes: number;
  packets: number;
  time_flow_start_ns: number | string;
  time_flow_end_ns: number | string;
  in_if: number;
  out_if: number;
  tcp_flags: number;
  ip_tos: number;
}

interface SqlFlow {
  exporter: string;
  src_ip: string;
  dst_ip: string;
  src_port: number;
  dst_port: number;
  protocol: number;
  bytes: number;
  packets: number;
  time_flow_start: number;
  time_flow_end: number;
}

const PROTO_NAMES: Record<number, string> = { 1: "ICMP", 6: "TCP", 17: "UDP", 58: "IPv6-ICMP" };

async function bound(address: string): Promise<Socket> {
  const s = createSocket("udp4");
  await new Promise<void>((resolve) => s.bind(0, address, () => resolve()));
  return s;
}

async function sendAll(from: string, datagrams: Buffer[], port: number): Promise<void> {
  const s = await bound(from);
  try {
    for (const d of datagrams) {
      await new Promise<void>((resolve, reject) =>
        s.send(d, port, "127.0.0.1", (e) => (e ? reject(e) : resolve())),
      );
      await sleep(1); // an exporter's pace: keep the loopback socket buffer from overflowing
    }
  } finally {
    s.close();
  }
}

/** Key a record by what identifies a flow (ICMP ports are not ports). */
function key(proto: number, src: string, dst: string, sport: number, dport: number): string {
  const icmp = proto === 1 || proto === 58;
  return `${proto} ${src}:${icmp ? 0 : sport} > ${dst}:${icmp ? 0 : dport}`;
}

function ms(ns: number | string): number {
  return Number(BigInt(ns) / 1000000n);
}

describe("real exporters through the collector into SQLite and JSON lines", () => {
  test("softflowd v5/v9/IPFIX and pmacctd nfprobe v9/IPFIX agree with tshark", async (t) => {
    for (const tool of ["softflowd", "pmacctd", "tshark"]) if (!requireTool(t, tool)) return;
    const dir = mkdtempSync(join(tmpdir(), "clarion-interop-"));
    dirs.push(dir);
    const traffic = makeTrafficPcap({ flows: 60, ipv6: true, seed: 11 });
    const pcapPath = join(dir, "traffic.pcap");
    writeFileSync(pcapPath, traffic.pcap);
    const exports = {
      "127.0.0.11": await runSoftflowd(pcapPath, { version: 5, timeoutMs: 15_000 }),
      "127.0.0.12": await runSoftflowd(pcapPath, { version: 9, timeoutMs: 15_000 }),
      "127.0.0.13": await runSoftflowd(pcapPath, { version: 10, absoluteTime: "milli", timeoutMs: 15_000 }),
      "127.0.0.14": await runPmacctdNfprobe(pcapPath, { version: 9, timeoutMs: 20_000 }),
      "127.0.0.15": await runPmacctdNfprobe(pcapPath, { version: 10, timeoutMs: 20_000 }),
    };
    // tshark's decoding of exactly the datagrams we send
    const oracle = new Map<string, TsharkRecord[]>();
    for (const [exporter, datagrams] of Object.entries(exports)) {
      const p = join(dir, `${exporter}.pcap`);
      writeFileSync(p, collectorPcap(datagrams, 2055));
      oracle.set(
        exporter,
        (await tsharkFlows(p, { port: 2055, proto: "cflow" })).filter((r) => r.kind === "flow"),
      );
    }
    const total = [...oracle.values()].reduce((n, r) => n + r.length, 0);
    assert.ok(total >= 250, `the exporters produced flows (${total})`);

    const jsonl = join(dir, "flows.jsonl");
    const db = join(dir, "flows.db");
    const svc = await startService(
      loopbackArgs(
        "--workers",
        "1",
        "--batch-size",
        "100",
        "--batch-interval",
        "0.2",
        "--data-dir",
        join(dir, "data"),
        "--output",
        `jsonl:${jsonl}`,
        "--output",
        `sqlite:${db}`,
      ),
    );
    for (const [exporter, datagrams] of Object.entries(exports))
      await sendAll(exporter, datagrams, svc.udpPorts[0]!);
    await waitFor(
      `${total} flows decoded`,
      async () => (await getJson(svc.httpPort, "/metrics")).body.total_received === total,
    );
    // Every datagram arrived (loopback): no exporter's sequence numbers may claim a loss. (softflowd numbers
    // an IPFIX message after its own records, against RFC 7011: that must not read as missing flows.)
    const seen = (await getJson(svc.httpPort, "/exporters")).body.exporters as {
      exporter: string;
      loss: { sequence_missing_flows: number; sequence_missing_datagrams: number } | null; // null: none
    }[];
    assert.equal(seen.length, Object.keys(exports).length);
    for (const e of seen)
      assert.deepEqual(
        [e.exporter, e.loss?.sequence_missing_flows ?? 0, e.loss?.sequence_missing_datagrams ?? 0],
        [e.exporter, 0, 0],
        `${e.exporter}: no sequence gap`,
      );
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0, svc.stderr.join("\n"));

    const lines = readFileSync(jsonl, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as JsonFlow);
    const conn = new DatabaseSync(db, { readOnly: true });
    const rows = conn
      .prepare(
        "SELECT exporter, src_ip, dst_ip, src_port, dst_port, protocol, bytes, packets, time_flow_start, time_flow_end FROM flows",
      )
      .all() as unknown as SqlFlow[];
    conn.close();
    assert.equal(lines.length, total, "every record in JSON lines");
    assert.equal(rows.length, total, "every record in SQLite");

    const types: Record<string, string> = {
      "127.0.0.11": "NETFLOW_V5",
      "127.0.0.12": "NETFLOW_V9",
      "127.0.0.13": "IPFIX",
      "127.0.0.14": "NETFLOW_V9",
      "127.0.0.15": "IPFIX",
    };
    for (const [exporter, theirs] of oracle) {
      const byKey = new Map(
        theirs.map((r) => [key(r.protocol!, r.srcAddr!, r.dstAddr!, r.srcPort ?? 0, r.dstPort ?? 0), r]),
      );
      const ours = lines.filter((l) => l.sampler_address === exporter);
      const sql = rows.filter((r) => r.exporter === exporter);
      assert.equal(ours.length, theirs.length, `${exporter}: JSON lines records`);
      assert.equal(sql.length, theirs.length, `${exporter}: SQLite rows`);
      for (const l of ours) {
        const proto = Number(Object.entries(PROTO_NAMES).find(([, n]) => n === l.proto)?.[0] ?? -1);
        const k = key(proto, l.src_addr, l.dst_addr, l.src_port, l.dst_port);
        const r = byKey.get(k);
        assert.ok(r, `${exporter}: ${k} is a record tshark saw`);
        const where = `${exporter} ${k}`;
        assert.equal(l.type, types[exporter], `${where}: type`);
        assert.equal(l.bytes, r.octets, `${where}: bytes`);
        assert.equal(l.packets, r.packets, `${where}: packets`);
        if (r.inIf !== undefined) assert.equal(l.in_if, r.inIf, `${where}: in_if`);
        if (r.outIf !== undefined) assert.equal(l.out_if, r.outIf, `${where}: out_if`);
        if (r.tos !== undefined) assert.equal(l.ip_tos, r.tos, `${where}: tos`);
        if (r.tcpFlags !== undefined) assert.equal(l.tcp_flags, r.tcpFlags, `${where}: tcp flags`);
        assert.ok(Math.abs(ms(l.time_flow_start_ns) - r.startMs!) <= 1, `${where}: start`);
        assert.ok(Math.abs(ms(l.time_flow_end_ns) - r.endMs!) <= 1, `${where}: end`);
      }
      for (const s of sql) {
        const k = key(s.protocol, s.src_ip, s.dst_ip, s.src_port, s.dst_port);
        const r = byKey.get(k);
        assert.ok(r, `${exporter}: SQLite row ${k} is a record tshark saw`);
        assert.equal(Number(s.bytes), r.octets, `${exporter} ${k}: SQLite bytes`);
        assert.equal(Number(s.packets), r.packets, `${exporter} ${k}: SQLite packets`);
        assert.ok(Math.abs(Number(s.time_flow_start) - r.startMs!) <= 1, `${exporter} ${k}: SQLite start`);
        assert.ok(Math.abs(Number(s.time_flow_end) - r.endMs!) <= 1, `${exporter} ${k}: SQLite end`);
      }
      assert.equal(
        new Set(
          ours.map((l) =>
            key(
              Number(Object.entries(PROTO_NAMES).find(([, n]) => n === l.proto)?.[0]),
              l.src_addr,
              l.dst_addr,
              l.src_port,
              l.dst_port,
            ),
          ),
        ).size,
        theirs.length,
        `${exporter}: no record twice`,
      );
    }
  });

  test("several exporters with clashing template ids, --workers 2: every record decoded right", async () => {
    const dir = mkdtempSync(join(tmpdir(), "clarion-clash-"));
    dirs.push(dir);
    const jsonl = join(dir, "flows.jsonl");
    const svc = await startService(
      loopbackArgs(
        "--workers",
        "2",
        "--batch-size",
        "50",
        "--batch-interval",
        "0.2",
        "--data-dir",
        join(dir, "data"),
        "--output",
        `jsonl:${jsonl}`,
      ),
    );
    // Every exporter uses template 256 with its own layout (a rotation of the same fields).
    const base: FieldSpec[] = [
      [8, 4],
      [12, 4],
      [7, 2],
      [11, 2],
      [4, 1],
      [1, 4],
      [2, 4],
    ];
    const exporters = 8;
    const perExporter = 40;
    const expected = new Map<
      string,
      { src: string; dst: string; bytes: number; packets: number; proto: string }
    >();
    const sockets: Socket[] = [];
    for (let e = 0; e < exporters; e++) {
      const fields = [...base.slice(e % base.length), ...base.slice(0, e % base.length)];
      const ipfix = e % 2 === 0;
      const s = await bound(`127.0.1.${e + 1}`);
      sockets.push(s);
      const order = (v: Record<number, number | string>) => fields.map(([id]) => v[id]!);
      const datagrams: Buffer[] = [];
      const tpl = ipfix ? set(2, ipfixTemplate(256, fields)) : set(0, v9Template(256, fields));
      datagrams.push(ipfix ? ipfixPacket([tpl], { domain: 1 }) : v9Packet([tpl], { sourceId: 1 }));
      for (let d = 0; d < perExporter / 10; d++) {
        const body: number[] = [];
        for (let i = 0; i < 10; i++) {
          const n = d * 10 + i;
          const sport = 10_000 + e * 100 + n;
          const v = {
            8: `10.${e}.0.${n}`,
            12: `192.0.2.${e}`,
            7: sport,
            11: 443,
            4: 6,
            1: 1000 + sport,
            2: 1 + e,
          };
          expected.set(`127.0.1.${e + 1}:${sport}`, {
            src: `10.${e}.0.${n}`,
            dst: `192.0.2.${e}`,
            bytes: 1000 + sport,
            packets: 1 + e,
            proto: "TCP",
          });
          body.push(...record(fields, order(v)));
        }
        datagrams.push(
          ipfix
            ? ipfixPacket([set(256, body)], { domain: 1, sequence: d })
            : v9Packet([set(256, body)], { sourceId: 1, sequence: d }),
        );
      }
      for (const dg of datagrams) {
        await new Promise<void>((resolve, reject) =>
          s.send(dg, svc.udpPorts[0]!, "127.0.0.1", (err) => (err ? reject(err) : resolve())),
        );
      }
    }
    for (const s of sockets) s.close();
    const total = exporters * perExporter;
    await waitFor(
      `${total} flows decoded`,
      async () => (await getJson(svc.httpPort, "/metrics")).body.total_received === total,
    );
    const templates = (await getJson(svc.httpPort, "/templates")).body.templates as Array<{
      exporter: string;
      template_id: number;
    }>;
    assert.equal(
      templates.filter((t) => t.template_id === 256).length,
      exporters,
      "one template 256 per exporter",
    );
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0, svc.stderr.join("\n"));
    const lines = readFileSync(jsonl, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as JsonFlow);
    assert.equal(lines.length, total);
    for (const l of lines) {
      const want = expected.get(`${l.sampler_address}:${l.src_port}`);
      assert.ok(want, `record ${l.sampler_address}:${l.src_port} was sent`);
      assert.deepEqual(
        { src: l.src_addr, dst: l.dst_addr, bytes: l.bytes, packets: l.packets, proto: l.proto },
        want,
        `${l.sampler_address}:${l.src_port} decoded with its own exporter's template`,
      );
      expected.delete(`${l.sampler_address}:${l.src_port}`);
    }
    assert.equal(expected.size, 0, "every record arrived once");
  });
});

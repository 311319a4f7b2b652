/**
 * Real exporters, independent oracle: softflowd (v5, v9, IPFIX) and pmacctd's nfprobe (v9, IPFIX) export
 * flows from a pcap the test makes; every record our decoder produces must agree with tshark's decoding of
 * the same export datagrams, field by field, and with the traffic that was generated.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { DecodeError } from "../../src/core/errors.ts";
import type { FlowRecord, OptionsRecord } from "../../src/core/flow.ts";
import { FlowDecoder } from "../../src/protocols/decoder.ts";
import { collectorPcap, runPmacctdNfprobe, runSoftflowd } from "../helpers/exporters.ts";
import { requireTool } from "../helpers/tools.ts";
import { type FlowSpec, flowKey, makeTrafficPcap } from "../helpers/traffic.ts";
import { type TsharkRecord, tsharkFlows } from "../helpers/tshark.ts";

function decodeAll(datagrams: Buffer[]): { flows: FlowRecord[]; options: OptionsRecord[] } {
  const decoder = new FlowDecoder();
  const flows: FlowRecord[] = [];
  const options: OptionsRecord[] = [];
  for (const payload of datagrams) {
    try {
      decoder.decode(
        { payload, exporter: "127.0.0.1", port: 40000, receivedAtMs: Date.now(), listener: "test" },
        { flow: (r) => flows.push(r), options: (r) => options.push(r) },
      );
    } catch (e) {
      assert.fail(e instanceof DecodeError ? `decode error: ${e.message}` : String(e));
    }
  }
  assert.equal(decoder.heldCount(), 0, "no data left waiting for a template");
  return { flows, options };
}

/** Compare one of our records with tshark's record of the same position, field by field. */
function compare(ours: FlowRecord, theirs: TsharkRecord, where: string): void {
  const eq = (a: unknown, b: unknown, what: string) => assert.equal(a, b, `${where}: ${what}`);
  eq(ours.src_addr, theirs.srcAddr, "source address");
  eq(ours.dst_addr, theirs.dstAddr, "destination address");
  eq(ours.proto, theirs.protocol, "protocol");
  const icmp = ours.proto === 1 || ours.proto === 58;
  if (theirs.srcPort !== undefined) eq(ours.src_port, theirs.srcPort, "source port");
  if (theirs.dstPort !== undefined) eq(ours.dst_port, theirs.dstPort, "destination port");
  if (icmp && theirs.icmpType !== undefined) {
    eq(ours.icmp_type, theirs.icmpType, "icmp type");
    eq(ours.icmp_code, theirs.icmpCode ?? 0, "icmp code");
  }
  eq(Number(ours.bytes), theirs.octets, "bytes");
  eq(Number(ours.packets), theirs.packets, "packets");
  if (theirs.inIf !== undefined) eq(ours.in_if, theirs.inIf, "input interface");
  if (theirs.outIf !== undefined) eq(ours.out_if, theirs.outIf, "output interface");
  if (theirs.tos !== undefined) eq(ours.ip_tos, theirs.tos, "tos");
  if (theirs.tcpFlags !== undefined) eq(ours.tcp_flags, theirs.tcpFlags, "tcp flags");
  if (theirs.srcAs !== undefined) eq(ours.src_as, theirs.srcAs, "source AS");
  if (theirs.dstAs !== undefined) eq(ours.dst_as, theirs.dstAs, "destination AS");
  if (theirs.srcMask !== undefined) eq(ours.src_net, theirs.srcMask, "source mask");
  if (theirs.dstMask !== undefined) eq(ours.dst_net, theirs.dstMask, "destination mask");
  if (theirs.nextHop !== undefined) eq(ours.next_hop, theirs.nextHop, "next hop");
  if (theirs.direction !== undefined) eq(ours.flow_direction, theirs.direction, "direction");
  assert.ok(
    theirs.startMs !== undefined && theirs.endMs !== undefined,
    `${where}: tshark computed the times`,
  );
  assert.ok(
    Math.abs(ours.time_flow_start_ms - theirs.startMs) <= 1,
    `${where}: start ${ours.time_flow_start_ms} vs ${theirs.startMs}`,
  );
  assert.ok(
    Math.abs(ours.time_flow_end_ms - theirs.endMs) <= 1,
    `${where}: end ${ours.time_flow_end_ms} vs ${theirs.endMs}`,
  );
}

describe("decoding real exporters agrees with tshark", { concurrency: true }, () => {
  let dir = "";
  let pcapPath = "";
  let spec: FlowSpec[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "clarion-oracle-"));
    const traffic = makeTrafficPcap({ flows: 80, ipv6: true, seed: 7 });
    spec = traffic.flows;
    pcapPath = join(dir, "traffic.pcap");
    await writeFile(pcapPath, traffic.pcap);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function check(
    name: string,
    datagrams: Buffer[],
    port: number,
    ipv4Only: boolean,
    timeTolerance: number,
  ) {
    const { flows } = decodeAll(datagrams);
    const path = join(dir, `${name}.pcap`);
    await writeFile(path, collectorPcap(datagrams, port));
    const theirs = (await tsharkFlows(path, { port, proto: "cflow" })).filter((r) => r.kind === "flow");
    const expected = ipv4Only ? spec.filter((f) => f.family === 4) : spec;
    assert.equal(flows.length, expected.length, `${name}: one record per generated flow`);
    assert.equal(theirs.length, flows.length, `${name}: tshark and we see the same number of records`);
    for (const [i, r] of flows.entries()) compare(r, theirs[i]!, `${name} record ${i}`);
    // and against the traffic itself
    const byKey = new Map(
      flows.map((r) => {
        const icmp = r.proto === 1 || r.proto === 58;
        return [
          flowKey({
            proto: r.proto,
            src: r.src_addr,
            dst: r.dst_addr,
            srcPort: icmp ? 0 : r.src_port,
            dstPort: icmp ? 0 : r.dst_port,
          }),
          r,
        ] as const;
      }),
    );
    for (const f of expected) {
      const r = byKey.get(flowKey(f));
      assert.ok(r, `${name}: flow ${flowKey(f)} decoded`);
      assert.equal(Number(r.bytes), f.bytes, `${name}: bytes of ${flowKey(f)}`);
      assert.equal(Number(r.packets), f.packets, `${name}: packets of ${flowKey(f)}`);
      assert.equal(r.etype, f.family === 4 ? 0x800 : 0x86dd, `${name}: etype of ${flowKey(f)}`);
      assert.ok(
        Math.abs(r.time_flow_start_ms - f.firstMs) <= timeTolerance,
        `${name}: start of ${flowKey(f)}`,
      );
      assert.ok(Math.abs(r.time_flow_end_ms - f.lastMs) <= timeTolerance, `${name}: end of ${flowKey(f)}`);
    }
    return flows;
  }

  test("softflowd NetFlow v5", async (t) => {
    if (!requireTool(t, "softflowd") || !requireTool(t, "tshark")) return;
    const d = await runSoftflowd(pcapPath, { version: 5, timeoutMs: 15_000 });
    const flows = await check("softflowd-v5", d, 2055, true, 1);
    assert.ok(flows.every((f) => f.type === "NETFLOW_V5"));
  });

  test("softflowd NetFlow v9 (uptime-relative times, options data)", async (t) => {
    if (!requireTool(t, "softflowd") || !requireTool(t, "tshark")) return;
    const d = await runSoftflowd(pcapPath, { version: 9, timeoutMs: 15_000 });
    // v9 headers carry whole seconds: times are exact to the second against the traffic
    await check("softflowd-v9", d, 2055, false, 1000);
  });

  test("softflowd IPFIX, uptime-relative times resolved through systemInitTimeMilliseconds options", async (t) => {
    if (!requireTool(t, "softflowd") || !requireTool(t, "tshark")) return;
    const d = await runSoftflowd(pcapPath, { version: 10, timeoutMs: 15_000 });
    await check("softflowd-ipfix", d, 4739, false, 1);
  });

  test("softflowd IPFIX with absolute millisecond times", async (t) => {
    if (!requireTool(t, "softflowd") || !requireTool(t, "tshark")) return;
    const d = await runSoftflowd(pcapPath, { version: 10, absoluteTime: "milli", timeoutMs: 15_000 });
    await check("softflowd-ipfix-ms", d, 4739, false, 1);
  });

  test("pmacctd nfprobe NetFlow v9 and IPFIX", async (t) => {
    if (!requireTool(t, "pmacctd") || !requireTool(t, "tshark")) return;
    const [v9, v10] = await Promise.all([
      runPmacctdNfprobe(pcapPath, { version: 9, timeoutMs: 20_000 }),
      runPmacctdNfprobe(pcapPath, { version: 10, timeoutMs: 20_000 }),
    ]);
    await check("pmacctd-v9", v9, 2055, false, 1);
    await check("pmacctd-ipfix", v10, 4739, false, 1);
  });
});

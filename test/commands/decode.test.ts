import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { runDecode } from "../../src/commands/decode.ts";
import { udpFrame, writePcap } from "../../src/core/pcap.ts";
import {
  type FieldSpec,
  ipfixPacket,
  ipfixTemplate,
  record,
  set,
  v5Packet,
  v9OptionsTemplate,
  v9Packet,
  v9Template,
} from "../helpers/netflow-builder.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FIX = join(ROOT, "test/fixtures/logstash");

async function decode(
  args: string[],
): Promise<{ code: number; lines: Record<string, unknown>[]; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks: Buffer[] = [];
  const errChunks: Buffer[] = [];
  out.on("data", (c: Buffer) => chunks.push(c));
  err.on("data", (c: Buffer) => errChunks.push(c));
  const code = await runDecode(args, { out, err });
  const text = Buffer.concat(chunks).toString("utf8");
  return {
    code,
    lines: text
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>),
    err: Buffer.concat(errChunks).toString("utf8"),
  };
}

const tmp = mkdtempSync(join(tmpdir(), "decode-test-"));

describe("clarion-collector decode", () => {
  test("--raw files from one exporter, in order, with --elements and --element-ids", async () => {
    const r = await decode([
      "--raw",
      "--exporter",
      "192.0.2.5",
      "--elements",
      "--element-ids",
      join(FIX, "netflow9_test_cisco_asa_1_tpl.dat"),
      join(FIX, "netflow9_test_cisco_asa_1_data.dat"),
    ]);
    assert.equal(r.code, 0);
    assert.equal(r.lines.length, 14);
    const first = r.lines[0]!;
    assert.equal(first.record_type, "flow");
    assert.equal(first.type, "NETFLOW_V9");
    assert.equal(first.sampler_address, "192.0.2.5");
    assert.equal(first.src_addr, "192.168.14.1");
    const elements = first.elements as Record<string, unknown>;
    assert.equal(elements.sourceIPv4Address, "192.168.14.1");
    assert.equal(elements.xlate_src_addr_ipv4, "192.168.14.1");
    const ids = first.element_ids as Record<string, unknown>;
    assert.equal(ids["0.8"], "192.168.14.1");
    assert.equal(ids["0.40001"], "192.168.14.1");
    assert.match(r.err, /decoded 2 datagrams: 14 flow records, 0 options records/);
  });

  test("options data records are printed as record_type options", async () => {
    const scope: FieldSpec[] = [[1, 4]];
    const opt: FieldSpec[] = [[34, 4]];
    const file = join(tmp, "opts.bin");
    writeFileSync(
      file,
      v9Packet([set(1, v9OptionsTemplate(300, scope, opt)), set(300, record([...scope, ...opt], [0, 100]))]),
    );
    const r = await decode(["--raw", file]);
    assert.equal(r.lines.length, 1);
    assert.equal(r.lines[0]!.record_type, "options");
    assert.deepEqual(r.lines[0]!.values, { samplingInterval: 100 });
    assert.deepEqual(r.lines[0]!.scope, { scopeSystem: 0 });
  });

  test("pcap input: the exporter is each packet's IP source (IPv4 and IPv6, VLAN-tagged)", async () => {
    const fields: FieldSpec[] = [
      [8, 4],
      [12, 4],
      [1, 4],
    ];
    const v9 = v9Packet([
      set(0, v9Template(256, fields)),
      set(256, record(fields, ["10.0.0.1", "10.0.0.2", 99])),
    ]);
    const ipfix = ipfixPacket([
      set(2, ipfixTemplate(256, fields)),
      set(256, record(fields, ["10.0.0.3", "10.0.0.4", 77])),
    ]);
    const v5 = v5Packet([
      {
        src: "1.1.1.1",
        dst: "2.2.2.2",
        packets: 1,
        bytes: 60,
        first: 1,
        last: 2,
        srcPort: 1,
        dstPort: 2,
        proto: 6,
      },
    ]);
    const pcap = writePcap([
      {
        timestampMs: 1_700_000_000_000,
        frame: udpFrame({ src: "192.0.2.1", dst: "192.0.2.100", srcPort: 5000, dstPort: 2055, payload: v9 }),
      },
      {
        timestampMs: 1_700_000_000_001,
        frame: udpFrame({
          src: "2001:db8::1",
          dst: "2001:db8::100",
          srcPort: 5001,
          dstPort: 4739,
          payload: ipfix,
        }),
      },
      {
        timestampMs: 1_700_000_000_002,
        frame: udpFrame({
          src: "192.0.2.3",
          dst: "192.0.2.100",
          srcPort: 5002,
          dstPort: 2055,
          payload: v5,
          vlans: [10],
        }),
      },
    ]);
    const file = join(tmp, "mixed.pcap");
    writeFileSync(file, pcap);
    const r = await decode([file]);
    assert.equal(r.code, 0);
    assert.deepEqual(
      r.lines.map((l) => [l.type, l.sampler_address, l.src_addr, l.bytes]),
      [
        ["NETFLOW_V9", "192.0.2.1", "10.0.0.1", 99],
        ["IPFIX", "2001:db8::1", "10.0.0.3", 77],
        ["NETFLOW_V5", "192.0.2.3", "1.1.1.1", 60],
      ],
    );
    assert.equal(r.lines[0]!.time_received_ns, 1_700_000_000_000_000_000);
  });

  test("an unreadable file exits non-zero with a clear message; decode errors are counted, not fatal", async () => {
    const junk = join(tmp, "junk.bin");
    writeFileSync(junk, Buffer.from([0, 9, 0, 1]));
    const r = await decode(["--raw", junk, join(tmp, "missing.bin")]);
    assert.equal(r.code, 1);
    assert.match(r.err, /cannot read .*missing\.bin/);
    assert.match(r.err, /errors: TRUNCATED=1/);
    const notPcap = await decode([junk]);
    assert.equal(notPcap.code, 1);
    assert.match(notPcap.err, /is not a readable pcap\/pcapng capture/);
    const badExporter = await decode(["--raw", "--exporter", "nope", junk]);
    assert.equal(badExporter.code, 2);
  });

  test("a reader that goes away (| head) ends the output quietly", async () => {
    const files = Array.from({ length: 300 }, () => join(FIX, "netflow5_test_microtik.dat"));
    const child = spawn(
      join(ROOT, "node_modules/.bin/node"),
      [join(ROOT, "src/cli.ts"), "decode", "--raw", ...files],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let err = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      err += d;
    });
    const first = await new Promise<string>((resolve) =>
      child.stdout.once("data", (d: Buffer) => resolve(d.toString())),
    );
    assert.match(first, /"record_type":"flow"/);
    child.stdout.destroy(); // like head -1 exiting
    const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    assert.equal(code, 0, err);
    assert.doesNotMatch(err, /Error|EPIPE/);
  });

  test("the real CLI runs decode", () => {
    const r = spawnSync(
      join(ROOT, "node_modules/.bin/node"),
      [join(ROOT, "src/cli.ts"), "decode", "--raw", join(FIX, "netflow5_test_microtik.dat")],
      { encoding: "utf8", timeout: 30_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split("\n").length, 30);
    assert.match(r.stderr, /30 flow records/);
  });
});

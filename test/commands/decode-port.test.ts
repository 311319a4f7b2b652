/**
 * `decode` on an ordinary capture: --port keeps the export port's datagrams, and datagrams that are no flow
 * export (DNS here) are skipped with one summary line instead of one BAD_VERSION error each.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, describe, it } from "node:test";
import { looksLikeFlowExport, runDecode } from "../../src/commands/decode.ts";
import { udpFrame, writePcap } from "../../src/core/pcap.ts";
import { v5Packet } from "../helpers/netflow-builder.ts";

const dir = mkdtempSync(join(tmpdir(), "clarion-decode-port-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const flow = (src: string) => ({
  src,
  dst: "192.0.2.9",
  srcPort: 1,
  dstPort: 2,
  proto: 6,
  packets: 1,
  bytes: 40,
  first: 1,
  last: 2,
});
// A DNS query for example.com: starts 0x1234 0x0100, no flow protocol's version.
const dns = Buffer.from("123401000001000000000000076578616d706c6503636f6d0000010001", "hex");

const pcap = join(dir, "mixed.pcap");
writeFileSync(
  pcap,
  writePcap(
    [
      { dst: 53, payload: dns },
      { dst: 2055, payload: v5Packet([flow("10.0.0.1")]) },
      { dst: 53, payload: dns },
      { dst: 9995, payload: v5Packet([flow("10.0.0.2"), flow("10.0.0.3")]) },
      { dst: 123, payload: Buffer.alloc(48, 0x1b) },
    ].map((p, i) => ({
      timestampMs: 1_700_000_000_000 + i,
      frame: udpFrame({
        src: "192.0.2.1",
        dst: "192.0.2.2",
        srcPort: 40000,
        dstPort: p.dst,
        payload: p.payload,
      }),
    })),
  ),
);

async function decode(args: string[]) {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = "";
  let e = "";
  out.on("data", (c: Buffer) => {
    o += c.toString();
  });
  err.on("data", (c: Buffer) => {
    e += c.toString();
  });
  const code = await runDecode(args, { out, err });
  const srcs = o
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l).src_addr as string);
  return { code, srcs, err: e };
}

describe("decode --port and non-flow datagrams", () => {
  it("skips datagrams that are no flow export with one summary line", async () => {
    const r = await decode([pcap]);
    assert.equal(r.code, 0);
    assert.deepEqual(r.srcs, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    assert.doesNotMatch(r.err, /BAD_VERSION/);
    const lines = r.err.trimEnd().split("\n");
    assert.equal(lines.length, 2);
    assert.equal(
      lines[0],
      "skipped 3 UDP datagrams that are not NetFlow v5/v9, IPFIX or sFlow v5 exports (--port picks the export port)",
    );
    assert.match(lines[1]!, /^decoded 2 datagrams: 3 flow records/);
  });

  it("keeps only the ports asked for", async () => {
    const r = await decode(["--port", "2055", pcap]);
    assert.deepEqual(r.srcs, ["10.0.0.1"]);
    assert.match(r.err, /^skipped 4 UDP datagrams sent to other ports than --port 2055\n/);
    const both = await decode(["--port", "2055,9995,53", pcap]);
    assert.deepEqual(both.srcs, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    assert.match(
      both.err,
      /^skipped 1 UDP datagrams sent to other ports than --port 2055,9995,53 and 2 UDP datagrams that are not NetFlow/,
    );
  });

  it("refuses bad ports and --port with --raw", async () => {
    for (const bad of ["x", "0", "70000", "2055,", ""])
      assert.equal((await decode(["--port", bad, pcap])).code, 2, bad);
    assert.equal((await decode(["--raw", "--port", "2055", pcap])).code, 2);
  });

  it("recognises the versions it decodes", () => {
    assert.equal(looksLikeFlowExport(v5Packet([flow("10.0.0.1")])), true);
    assert.equal(looksLikeFlowExport(Buffer.from([0, 9, 0, 0])), true);
    assert.equal(looksLikeFlowExport(Buffer.from([0, 10, 0, 0])), true);
    assert.equal(looksLikeFlowExport(Buffer.from([0, 0, 0, 5, 0, 0, 0, 1])), true);
    assert.equal(looksLikeFlowExport(Buffer.from([0, 7, 0, 0])), false);
    assert.equal(looksLikeFlowExport(dns), false);
    assert.equal(looksLikeFlowExport(Buffer.from([0, 5])), false);
  });
});

/**
 * One collector per port (issue 11 §4): a second instance on a UDP port the first one holds exits 2 with a
 * message naming the port, and so does a collector started on a port some other program holds with
 * SO_REUSEPORT (which would otherwise split the traffic silently); the first keeps working.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { dirs, getJson, netflowV5, send, startService, udpClient, waitFor } from "../helpers/service.ts";

const CLI = new URL("../../src/cli.ts", import.meta.url).pathname;

function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const p = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  p.stderr.setEncoding("utf8");
  p.stderr.on("data", (c: string) => {
    stderr += c;
  });
  const timer = setTimeout(() => p.kill("SIGKILL"), 30_000);
  return new Promise((resolve) =>
    p.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    }),
  );
}

function args(dir: string, netflowPort: number): string[] {
  return [
    "--bind-host",
    "127.0.0.1",
    "--netflow-port",
    String(netflowPort),
    "--ipfix-port",
    "0",
    "--sflow-port",
    "0",
    "--http-port",
    "0",
    "--workers",
    "2",
    "--data-dir",
    dir,
    "--output",
    "jsonl:-",
  ];
}

describe("one collector per port", () => {
  it("a second instance on the first one's NetFlow port exits 2 naming the port; the first keeps all", async () => {
    const d1 = mkdtempSync(join(tmpdir(), "clarion-port1-"));
    const d2 = mkdtempSync(join(tmpdir(), "clarion-port2-"));
    dirs.push(d1, d2);
    const first = await startService(args(d1, 0));
    const port = first.udpPorts[0]!;
    const second = await run(args(d2, port));
    assert.equal(second.code, 2, second.stderr);
    assert.match(
      second.stderr,
      new RegExp(
        `--netflow-port: UDP port ${port} \\(netflow\\) on 127\\.0\\.0\\.1 is already in use by another process`,
      ),
    );
    // The first instance still receives everything on that port (2 workers share it through SO_REUSEPORT).
    const c = await udpClient("udp4", "127.0.0.1");
    try {
      for (let i = 0; i < 20; i++) await send(c, netflowV5(i * 10, i * 10, 10), port, "127.0.0.1");
    } finally {
      c.close();
    }
    await waitFor(
      "200 flows in the first instance",
      async () => (await getJson(first.httpPort, "/metrics")).body.total_received === 200,
    );
    first.proc.kill("SIGTERM");
    assert.equal(await first.exited, 0);
  });

  it("refuses a port another program holds with SO_REUSEPORT", async () => {
    const d = mkdtempSync(join(tmpdir(), "clarion-port3-"));
    dirs.push(d);
    const other = createSocket({ type: "udp4", reusePort: true });
    await new Promise<void>((r) => other.bind(0, "127.0.0.1", () => r()));
    try {
      const port = other.address().port;
      const r = await run(args(d, port));
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`UDP port ${port} \\(netflow\\)`));
    } finally {
      other.close();
    }
  });
});

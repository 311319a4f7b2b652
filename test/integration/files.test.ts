/**
 * Files under the data directory hold flow data and agent payloads (issue 12 item 4): the real CLI, started
 * with umask 000, must create every file there 0600 and every directory 0700: the SQLite database and its
 * -wal/-shm, the HTTP output's and the agent relay's spools (segments, cursor), dead letters, the template
 * state file.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { FakeBackend } from "../helpers/fake-backend.ts";
import { record, set, v9Packet, v9Template } from "../helpers/netflow-builder.ts";
import {
  dirs,
  getJson,
  loopbackArgs,
  netflowV5,
  send,
  startService,
  udpClient,
  waitFor,
} from "../helpers/service.ts";

const backends: FakeBackend[] = [];
after(async () => {
  await Promise.allSettled(backends.map((b) => b.close()));
});

/** Every file and directory under `root` (root included) with its permission bits. */
function modes(root: string): Map<string, number> {
  const out = new Map<string, number>([[root, statSync(root).mode & 0o777]]);
  for (const name of readdirSync(root, { recursive: true }) as string[]) {
    const p = join(root, name);
    out.set(p, statSync(p).mode & 0o777);
  }
  return out;
}

function assertPrivate(root: string, must: readonly string[]): void {
  const all = modes(root);
  for (const m of must) assert.ok(all.has(join(root, m)), `${m} exists (have ${[...all.keys()].join(", ")})`);
  for (const [p, mode] of all) {
    const want = statSync(p).isDirectory() ? 0o700 : 0o600;
    assert.equal(mode.toString(8), want.toString(8), `mode of ${p}`);
  }
}

describe("data directory permissions", () => {
  it("creates every file 0600 and every directory 0700 even with umask 000", async () => {
    const b = new FakeBackend();
    await b.up();
    backends.push(b);
    // flows-v1 requests are refused (dead letters); relayed agent payloads fail for a while (spooled)
    b.fault = ({ path }) =>
      path.startsWith("/v1/") ? { kind: "status", status: 400 } : { kind: "status", status: 503 };
    const base = mkdtempSync(join(tmpdir(), "clarion-files-"));
    dirs.push(base);
    const data = join(base, "data");
    const old = process.umask(0);
    let svc: Awaited<ReturnType<typeof startService>>;
    try {
      svc = await startService(
        [
          ...loopbackArgs(),
          "--mode",
          "both",
          "--agent-port",
          "0",
          "--workers",
          "1",
          "--batch-interval",
          "0.2",
          "--data-dir",
          data,
          "--backend-url",
          b.url,
          "--output",
          "sqlite:",
          "--output",
          `flows-v1+http://127.0.0.1:${b.port}/v1/ingest`,
        ],
        { wait: "both" },
      );
    } finally {
      process.umask(old);
    }
    const client = await udpClient("udp4", "127.0.0.1");
    const port = svc.udpPorts[0]!;
    await send(client, netflowV5(0, 1000, 20), port, "127.0.0.1");
    const fields: [number, number][] = [
      [8, 4],
      [12, 4],
      [1, 4],
    ];
    await send(
      client,
      v9Packet([set(0, v9Template(300, fields)), set(300, record(fields, ["10.0.0.1", "10.0.0.2", 99]))]),
      port,
      "127.0.0.1",
    );
    client.close();
    const r = await fetch(`http://127.0.0.1:${svc.agentPort}/api/edge/sketches`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ switch_id: "sw1", sketches: [{ unique_peers: 1 }] }),
    });
    assert.equal(r.status, 202);
    await waitFor("flows stored, dead-lettered and the relay spooling", async () => {
      const m = (await getJson(svc.httpPort, "/metrics")).body;
      const sinks = m.sinks as Record<string, { sent?: number; dead_lettered?: number }>;
      const dl = Object.values(sinks).some((s) => (s.dead_lettered ?? 0) > 0);
      return (
        dl &&
        (sinks["sqlite:"]?.sent ?? 0) >= 20 &&
        Number(m.templates) >= 1 &&
        b.log.some((l) => l.status === 503)
      );
    });
    // while running: the database's -wal and -shm exist
    assertPrivate(data, [
      "flows.db",
      "flows.db-wal",
      "flows.db-shm",
      "spool",
      join("spool", "agent-relay"),
      "deadletter",
    ]);
    const spools = readdirSync(join(data, "spool"));
    assert.ok(spools.length >= 2, spools.join(","));
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0, svc.stderr.join("\n"));
    assertPrivate(data, ["flows.db", "templates.json", join("spool", "agent-relay", "cursor.json")]);
    assert.ok(
      readdirSync(join(data, "spool", "agent-relay")).some((f) => f.endsWith(".seg")),
      "a relay segment",
    );
  });
});

/**
 * Log lines (DESIGN §5, issue 12 "small things"): every line is one JSON object with unique keys. Every
 * integration test checks the lines of the services it starts (test/helpers/service.ts); this file runs the
 * scenarios that wrote repeated keys: HTTP sink lines ("sink" from the child logger and the call), a bind
 * error and a malformed datagram ("msg" in the object and as the message), and checks the shutdown line
 * tells spooled from delivered flows.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { FakeBackend } from "../helpers/fake-backend.ts";
import { checkLogLine } from "../helpers/log-lines.ts";
import {
  checkServiceLine,
  dirs,
  getJson,
  loopbackArgs,
  netflowV5,
  send,
  startService,
  udpClient,
  waitFor,
} from "../helpers/service.ts";

const NODE = process.execPath;
const CLI = new URL("../../src/cli.ts", import.meta.url).pathname;

const backends: FakeBackend[] = [];
after(async () => {
  await Promise.allSettled(backends.map((b) => b.close()));
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "clarion-logs-"));
  dirs.push(d);
  return d;
}

/** The parsed lines whose message is `msg`. */
function linesWith(lines: readonly string[], msg: string): Record<string, unknown>[] {
  return lines
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((o) => o.msg === msg);
}

describe("log lines", () => {
  it("the line checker finds repeated keys at any depth and refuses what is not one JSON object", () => {
    assert.equal(checkLogLine('{"a":1,"b":{"c":[1,{"d":2}]},"msg":"x"}'), "");
    assert.equal(checkLogLine('{"sink":"a","x":1,"sink":"a"}'), "duplicate keys: sink");
    assert.equal(checkLogLine('{"err":{"msg":"a","msg":"b"}}'), "duplicate keys: err.msg");
    assert.equal(checkLogLine('{"a":[{"k":1,"k":2}]}'), "duplicate keys: a[0].k");
    assert.equal(checkLogLine("plain text"), "not a JSON object");
    assert.match(checkLogLine('{"a":1} trailing'), /trailing/);
    assert.match(checkLogLine('{"a":}'), /invalid JSON/);
  });

  it("a port in use: the startup error line keeps the real error, with unique keys", async () => {
    const dir = tmp();
    const squatter = createSocket("udp4");
    await new Promise<void>((r) => squatter.bind(0, "127.0.0.1", () => r()));
    const port = squatter.address().port;
    try {
      const args = [...loopbackArgs(), "--netflow-port", String(port), "--data-dir", join(dir, "data")];
      const proc = spawn(NODE, [CLI, ...args], { stdio: ["ignore", "ignore", "pipe"] });
      let err = "";
      proc.stderr.setEncoding("utf8");
      proc.stderr.on("data", (c: string) => {
        err += c;
      });
      const code = await new Promise<number | null>((r) => proc.once("exit", (c) => r(c)));
      assert.notEqual(code, 0);
      const lines = err.split("\n").filter((l) => l !== "");
      for (const l of lines) checkServiceLine(l);
      // The port is probed before the workers bind (one collector per port, issue 11): the fatal line names
      // the flag and the port, and survives JSON.parse (it used to be a second "msg" that overwrote it).
      assert.equal(code, 2);
      const fatal = lines
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((o) => String(o.msg).includes("already in use"));
      assert.ok(fatal.length > 0, lines.join("\n"));
      for (const o of fatal) {
        assert.match(String(o.msg), new RegExp(`--netflow-port: UDP port ${port} `), JSON.stringify(o));
        assert.equal(o.key, "--netflow-port");
      }
    } finally {
      squatter.close();
    }
  });

  it("HTTP sink lines, malformed datagrams and the shutdown line (spooled vs delivered)", async () => {
    const b = new FakeBackend();
    await b.up();
    backends.push(b);
    b.fault = ({ path }) =>
      path.startsWith("/v1/") ? { kind: "status", status: 400 } : { kind: "status", status: 503 };
    const dir = tmp();
    const svc = await startService([
      ...loopbackArgs(),
      "--workers",
      "1",
      "--batch-interval",
      "0.2",
      "--data-dir",
      join(dir, "data"),
      "--backend-url",
      b.url,
      "--output",
      `flows-v1+http://127.0.0.1:${b.port}/v1/ingest`,
      "--log-level",
      "debug",
    ]);
    const client = await udpClient("udp4", "127.0.0.1");
    const port = svc.udpPorts[0]!;
    await send(client, netflowV5(0, 1000, 20), port, "127.0.0.1");
    await send(client, Buffer.from([0, 9, 0, 1, 2, 3]), port, "127.0.0.1"); // truncated v9 header
    client.close();
    await waitFor("a dead letter and a retry", async () => {
      const m = (await getJson(svc.httpPort, "/metrics")).body.sinks as Record<
        string,
        { dead_lettered?: number; retried?: number }
      >;
      return (
        Object.values(m).some((s) => (s.dead_lettered ?? 0) > 0) &&
        Object.values(m).some((s) => (s.retried ?? 0) > 0)
      );
    });
    await waitFor("the malformed datagram logged", async () =>
      svc.stderr.some((l) => l.includes('"malformed datagram"')),
    );
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0);
    for (const l of svc.stderr) assert.equal(checkLogLine(l.startsWith("{") ? l : "{}"), "", l);
    const malformed = linesWith(svc.stderr, "malformed datagram")[0]!;
    assert.ok(typeof malformed.reason === "string" && malformed.reason !== "", JSON.stringify(malformed));
    const dead = linesWith(svc.stderr, "delivery: rejected by destination, dead-lettered")[0]!;
    assert.equal(dead.sink, `flows-v1+http://127.0.0.1:${b.port}/v1/ingest`);
    const stopped = linesWith(svc.stderr, "stopped")[0]!;
    assert.equal(stopped.sent, undefined, "no `sent` for flows only spooled");
    const sinks = stopped.sinks as Record<string, Record<string, unknown>>;
    const clarion = sinks[`clarion+http://127.0.0.1:${b.port}`]!;
    assert.equal(clarion.spooled, 20);
    assert.equal(clarion.delivered, 0);
    assert.equal(clarion.left_in_spool, 20);
  });
});

/**
 * Runs the real CLI as a child process for end-to-end tests: waits for its ops and UDP ports (logged on
 * stderr), kills every child it started when the test file ends. Every stderr line of every service is
 * checked (test/helpers/log-lines.ts): a line that is not a JSON object with unique keys fails the test
 * that started the service (Node's runtime warnings and the CLI's startup error line aside).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { rmSync } from "node:fs";
import { after, afterEach } from "node:test";
import { checkLogLine } from "./log-lines.ts";

const NODE = process.execPath;
const CLI = new URL("../../src/cli.ts", import.meta.url).pathname;

export const children: ChildProcess[] = [];
export const dirs: string[] = [];
/** Bad log lines seen so far, with what is wrong with each. */
export const badLogLines: string[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
// After each test (not in `after`: a failing root hook would skip the test file's own cleanup hooks).
afterEach(() => {
  const bad = badLogLines.splice(0);
  assert.deepEqual(bad, [], "every log line is a JSON object with unique keys");
});

/**
 * Not log lines: Node's own runtime warnings, and the CLI's one-line startup error for a person at a terminal
 * (src/cli.ts, exit 2; the error is in the JSON log as well).
 */
const NODE_WARNING = /^\(node:\d+\) |^\(Use `node --trace-warnings|^clarion-collector: /;

/** Records `line` in badLogLines when it is not a valid log line. */
export function checkServiceLine(line: string): void {
  if (line === "" || NODE_WARNING.test(line)) return;
  const problem = checkLogLine(line);
  if (problem !== "") badLogLines.push(`${problem}: ${line}`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The CLI on loopback with every UDP and HTTP port picked free (read back from its logs), then `extra`. */
export function loopbackArgs(...extra: string[]): string[] {
  return [
    "--bind-host",
    "127.0.0.1",
    "--netflow-port",
    "0",
    "--ipfix-port",
    "0",
    "--sflow-port",
    "0",
    "--http-port",
    "0",
    ...extra,
  ];
}

export interface Service {
  proc: ChildProcess;
  /** The ops server's port (0 in mode agent). */
  httpPort: number;
  udpPorts: number[];
  /** The agent collector's port (mode agent/both), 0 otherwise. */
  agentPort: number;
  stderr: string[];
  exited: Promise<number | null>;
}

export interface StartServiceOptions {
  /** Extra environment variables (the child gets PATH and NODE_OPTIONS besides). */
  env?: Record<string, string>;
  /** What to wait for: the native collector (default), the agent collector, or both. */
  wait?: "native" | "agent" | "both";
  /** The program and its first arguments, before `args`; default the checkout's CLI under this Node. */
  command?: readonly string[];
  /** Working directory of the child; default the test's. */
  cwd?: string;
}

export async function startService(args: string[], opts: StartServiceOptions = {}): Promise<Service> {
  const wait = opts.wait ?? "native";
  const [program, ...first] = opts.command ?? [NODE, CLI];
  const proc = spawn(program!, [...first, ...args], {
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: process.env.PATH ?? "",
      ...(process.env.NODE_OPTIONS ? { NODE_OPTIONS: process.env.NODE_OPTIONS } : {}),
      ...opts.env,
    },
  });
  children.push(proc);
  const stderr: string[] = [];
  let httpPort = 0;
  let udpPorts: number[] = [];
  let agentPort = 0;
  let buf = "";
  proc.stderr!.setEncoding("utf8");
  proc.stderr!.on("data", (chunk: string) => {
    buf += chunk;
    let nl = buf.indexOf("\n");
    while (nl >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      stderr.push(line);
      checkServiceLine(line);
      try {
        const o = JSON.parse(line) as { msg?: string; port?: number; listeners?: string[] };
        if (o.msg === "ops server listening") httpPort = o.port ?? 0;
        if (o.msg === "agent collector listening") agentPort = o.port ?? 0;
        if (o.msg === "collector listening")
          udpPorts = (o.listeners ?? []).map((l) => Number(l.slice(l.lastIndexOf(":") + 1)));
      } catch {
        // not a log line
      }
      nl = buf.indexOf("\n");
    }
  });
  proc.stdout!.resume();
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  const ready = (): boolean =>
    (wait === "agent" || (httpPort !== 0 && udpPorts.length > 0)) && (wait === "native" || agentPort !== 0);
  // 30 s: a collector starts in 1–2 s on a quiet machine, but 15 s was not enough on a loaded one.
  const deadline = Date.now() + 30_000;
  while (!ready() && Date.now() < deadline) {
    if (proc.exitCode !== null) break;
    await sleep(50);
  }
  assert.ok(ready(), `service did not start:\n${stderr.join("\n")}`);
  return { proc, httpPort, udpPorts, agentPort, stderr, exited };
}

export async function getJson(
  port: number,
  path: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

export async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await fn()) return;
    await sleep(50);
  }
  assert.fail(`timed out waiting for ${what}`);
}

export function send(sock: Socket, msg: Buffer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) =>
    sock.send(msg, port, host, (err) => (err ? reject(err) : resolve())),
  );
}

export async function udpClient(type: "udp4" | "udp6", host: string): Promise<Socket> {
  const s = createSocket(type);
  await new Promise<void>((r) => s.bind(0, host, () => r()));
  return s;
}

/** NetFlow v5: 24-byte header, 48-byte records. Record i gets src port `base + i` so each is identifiable. */
export function netflowV5(seq: number, base: number, count: number): Buffer {
  const b = Buffer.alloc(24 + 48 * count);
  const now = Date.now();
  b.writeUInt16BE(5, 0);
  b.writeUInt16BE(count, 2);
  b.writeUInt32BE(100_000, 4); // sysUptime ms
  b.writeUInt32BE(Math.floor(now / 1000), 8);
  b.writeUInt32BE((now % 1000) * 1_000_000, 12);
  b.writeUInt32BE(seq, 16);
  for (let i = 0; i < count; i++) {
    const o = 24 + 48 * i;
    b.writeUInt32BE(0x0a000001, o); // 10.0.0.1
    b.writeUInt32BE(0x0a000002 + (i % 200), o + 4);
    b.writeUInt32BE(0, o + 8);
    b.writeUInt16BE(1, o + 12);
    b.writeUInt16BE(2, o + 14);
    b.writeUInt32BE(3, o + 16); // packets
    b.writeUInt32BE(1500, o + 20); // bytes
    b.writeUInt32BE(90_000, o + 24); // first
    b.writeUInt32BE(99_000, o + 28); // last
    b.writeUInt16BE(base + i, o + 32); // src port
    b.writeUInt16BE(443, o + 34);
    b[o + 37] = 0x18;
    b[o + 38] = 6; // TCP
  }
  return b;
}

/**
 * Runs the real CLI as a child process for end-to-end tests: waits for its ops and UDP ports (logged on
 * stderr), kills every child it started when the test file ends.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { rmSync } from "node:fs";
import { after } from "node:test";

const NODE = process.execPath;
const CLI = new URL("../../src/cli.ts", import.meta.url).pathname;

export const children: ChildProcess[] = [];
export const dirs: string[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Service {
  proc: ChildProcess;
  httpPort: number;
  udpPorts: number[];
  stderr: string[];
  exited: Promise<number | null>;
}

export async function startService(args: string[]): Promise<Service> {
  const proc = spawn(NODE, [CLI, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: process.env.PATH ?? "",
      ...(process.env.NODE_OPTIONS ? { NODE_OPTIONS: process.env.NODE_OPTIONS } : {}),
    },
  });
  children.push(proc);
  const stderr: string[] = [];
  let httpPort = 0;
  let udpPorts: number[] = [];
  let buf = "";
  proc.stderr!.setEncoding("utf8");
  proc.stderr!.on("data", (chunk: string) => {
    buf += chunk;
    let nl = buf.indexOf("\n");
    while (nl >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      stderr.push(line);
      try {
        const o = JSON.parse(line) as { msg?: string; port?: number; listeners?: string[] };
        if (o.msg === "ops server listening") httpPort = o.port ?? 0;
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
  for (let i = 0; i < 300 && (httpPort === 0 || udpPorts.length === 0); i++) {
    if (proc.exitCode !== null) break;
    await sleep(50);
  }
  assert.ok(httpPort && udpPorts.length, `service did not start:\n${stderr.join("\n")}`);
  return { proc, httpPort, udpPorts, stderr, exited };
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

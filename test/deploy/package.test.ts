/**
 * The package as a user gets it: `npm pack` here (prepack compiles dist/), `npm install -g --prefix TMP`
 * of the tarball (dependencies from the npm cache, the registry as fallback), then the installed binary,
 * never the checkout, is run: --version/--help, decode of a fixture (same output as the checkout), a real
 * collection run from softflowd into SQLite, and the command lines the deploy files give it: the systemd
 * unit's ExecStart with its environment (StateDirectory as data dir, ExecReload's SIGHUP, SIGTERM → 0),
 * the Dockerfile's ENTRYPOINT/CMD with its ENV and HEALTHCHECK (/app assembled as its runtime stage does:
 * its COPYs and its `npm ci --omit=dev` from the lockfile), and the Kubernetes container's args with the
 * ConfigMap's config file (probe path answered, idle memory under the container's memory request).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { before, describe, test } from "node:test";
import { OPTIONS } from "../../src/config/options.ts";
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
import { requireTool } from "../helpers/tools.ts";
import { makeTrafficPcap } from "../helpers/traffic.ts";
import {
  type Doc,
  dockerEnv,
  kubeObjects,
  option,
  PACKAGE,
  parseDockerfile,
  parseEnvFile,
  parseUnit,
  ROOT,
  read,
  splitWords,
  tempDir,
  unitValues,
} from "./deploy-files.ts";

/** This Node 24 first in PATH: the installed bin's `#!/usr/bin/env node` and npm itself run under it. */
const PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ""}`;
const work = tempDir("package");
dirs.push(work);
const prefix = join(work, "prefix");
const BIN = join(prefix, "bin", "clarion-collector");
const PKG_DIR = join(prefix, "lib", "node_modules", PACKAGE.name);
let tarball = "";

/** Loopback, free ports: the variables of the registry (lower priority than flags, above the file). */
const LOOPBACK_ENV: Record<string, string> = {
  [option("bindHost").env[0]!]: "127.0.0.1",
  [option("netflowPort").env[0]!]: "0",
  [option("ipfixPort").env[0]!]: "0",
  [option("sflowPort").env[0]!]: "0",
  [option("httpPort").env[0]!]: "0",
};

function npm(args: string[]): string {
  const r = spawnSync("npm", args, {
    cwd: ROOT,
    env: { ...process.env, PATH, npm_config_update_notifier: "false" },
    encoding: "utf8",
    timeout: 240_000,
  });
  assert.equal(r.status, 0, `npm ${args.join(" ")}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

before(() => {
  npm(["pack", "--pack-destination", work]);
  const name = readdirSync(work).find((f) => f.endsWith(".tgz"));
  assert.equal(name, `${PACKAGE.name}-${PACKAGE.version}.tgz`);
  tarball = join(work, name);
  npm(["install", "-g", "--prefix", prefix, "--prefer-offline", "--no-audit", "--no-fund", tarball]);
});

function run(
  argv: string[],
  env: Record<string, string> = {},
): { status: number | null; stdout: string; stderr: string } {
  const [program, ...args] = argv;
  const r = spawnSync(program!, args, { env: { PATH, ...env }, encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

async function stop(proc: import("node:child_process").ChildProcess, exited: Promise<number | null>) {
  proc.kill("SIGTERM");
  assert.equal(await exited, 0, "SIGTERM: flush and exit 0");
}

describe("npm pack", () => {
  test("the tarball holds the compiled dist/ of every source module and the other `files` entries; nothing else", () => {
    const r = spawnSync("tar", ["-tzf", tarball], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const files = r.stdout
      .trim()
      .split("\n")
      .map((f) => f.replace(/^package\//, ""));
    const sources = walk(join(ROOT, "src"))
      .filter((f) => f.endsWith(".ts"))
      .map((f) => `dist/${relative(join(ROOT, "src"), f).replace(/\.ts$/, ".js")}`);
    assert.ok(sources.length > 20);
    assert.ok(PACKAGE.files.includes("dist") && PACKAGE.files.includes("bin"));
    // Every other `files` entry as it is in the repository (a file or a whole directory, e.g. bin/).
    const others = PACKAGE.files
      .filter((e) => e !== "dist")
      .flatMap((e) => (statSync(join(ROOT, e)).isDirectory() ? walk(join(ROOT, e)) : [join(ROOT, e)]))
      .map((f) => relative(ROOT, f));
    assert.ok(others.includes(PACKAGE.bin["clarion-collector"]!));
    assert.deepEqual(
      files.sort(),
      [...sources, ...others, "package.json"].sort(),
      "no tests, benches, sources, maps or type declarations",
    );
  });

  test("installs only the runtime dependencies", () => {
    const installed = readdirSync(join(PKG_DIR, "node_modules")).flatMap((n) =>
      n.startsWith("@") ? readdirSync(join(PKG_DIR, "node_modules", n)).map((m) => `${n}/${m}`) : [n],
    );
    for (const dep of Object.keys(PACKAGE.dependencies)) assert.ok(installed.includes(dep), dep);
    for (const dev of Object.keys(PACKAGE.devDependencies)) assert.ok(!installed.includes(dev), dev);
    assert.ok(!existsSync(join(PKG_DIR, "src")));
  });
});

describe("the installed binary", () => {
  test("--version and --help (every option of the registry)", () => {
    const v = run([BIN, "--version"]);
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout.trim(), PACKAGE.version);
    const h = run([BIN, "--help"]);
    assert.equal(h.status, 0, h.stderr);
    for (const o of OPTIONS) if (o.flag) assert.ok(h.stdout.includes(o.flag), o.flag);
  });

  test("decode of a fixture: the same lines as the checkout's CLI", () => {
    const fx = (f: string) => join(ROOT, "test/fixtures/logstash", f);
    const args = [
      "decode",
      "--raw",
      "--exporter",
      "192.0.2.1",
      fx("ipfix_test_mikrotik_tpl.dat"),
      fx("ipfix_test_mikrotik_data258.dat"),
    ];
    const installed = run([BIN, ...args]);
    assert.equal(installed.status, 0, installed.stderr);
    const lines = installed.stdout.trim().split("\n");
    assert.ok(lines.length > 0);
    for (const l of lines) assert.equal((JSON.parse(l) as { record_type: string }).record_type, "flow");
    const checkout = run([process.execPath, join(ROOT, "src/cli.ts"), ...args]);
    // time_received_ns is the wall clock of the decode run; everything else must match.
    const stable = (out: string) =>
      out
        .trim()
        .split("\n")
        .map((l) => JSON.stringify({ ...(JSON.parse(l) as object), time_received_ns: 0 }));
    assert.equal(checkout.status, 0, checkout.stderr);
    assert.deepEqual(stable(installed.stdout), stable(checkout.stdout));
  });

  test("collects softflowd's NetFlow v9 into SQLite", async (t) => {
    const softflowd = requireTool(t, "softflowd");
    if (!softflowd) return;
    const dir = join(work, "softflowd");
    mkdirSync(dir);
    const { pcap, flows } = makeTrafficPcap({ flows: 40, ipv6: true, seed: 14 });
    writeFileSync(join(dir, "traffic.pcap"), pcap);
    const svc = await startService(
      loopbackArgs("--data-dir", join(dir, "data"), "--workers", "1", "--batch-interval", "0.2"),
      { command: [BIN], env: { PATH }, cwd: dir },
    );
    const exporter = spawn(
      softflowd,
      ["-r", join(dir, "traffic.pcap"), "-n", `127.0.0.1:${svc.udpPorts[0]}`, "-v", "9"].concat([
        "-d",
        "-c",
        "none",
        "-a",
        "-T",
        "full",
        "-p",
        join(dir, "softflowd.pid"),
      ]),
      { stdio: "ignore" },
    );
    assert.equal(await new Promise((r) => exporter.once("exit", r)), 0, "softflowd");
    const key = (f: { proto: number; src: string; dst: string; bytes: number; packets: number }) =>
      `${f.proto}|${f.src}|${f.dst}|${f.bytes}|${f.packets}`;
    const rows = (): {
      protocol: number;
      src_ip: string;
      dst_ip: string;
      bytes: number;
      packets: number;
    }[] => {
      const db = new DatabaseSync(join(dir, "data", "flows.db"), { readOnly: true });
      try {
        return db.prepare("SELECT protocol, src_ip, dst_ip, bytes, packets FROM flows").all() as never;
      } finally {
        db.close();
      }
    };
    await waitFor(
      "every flow in SQLite",
      async () => existsSync(join(dir, "data", "flows.db")) && rows().length >= flows.length,
    );
    await stop(svc.proc, svc.exited);
    assert.deepEqual(
      rows()
        .map((r) =>
          key({ proto: r.protocol, src: r.src_ip, dst: r.dst_ip, bytes: r.bytes, packets: r.packets }),
        )
        .sort(),
      flows.map(key).sort(),
    );
  });
});

describe("deploy command lines, run for real", () => {
  test("systemd: ExecStart with the unit's environment; StateDirectory holds the data; reload = SIGHUP", async () => {
    const unit = parseUnit(read("deploy/systemd/clarion-collector.service"));
    const [program, ...args] = splitWords(unitValues(unit, "Service", "ExecStart")[0]!);
    assert.equal(program!.split("/").at(-1), "clarion-collector");
    const stateRoot = join(work, "var-lib"); // %S
    const spec = (v: string) => v.replaceAll("%S", stateRoot);
    const state = join(stateRoot, unitValues(unit, "Service", "StateDirectory")[0]!);
    mkdirSync(state, { recursive: true, mode: 0o700 }); // systemd creates it
    const env: Record<string, string> = { PATH };
    for (const v of unitValues(unit, "Service", "Environment"))
      for (const [k, x] of parseEnvFile(splitWords(v).join("\n"))) env[k] = spec(x);
    for (const [k, x] of parseEnvFile(read("deploy/systemd/clarion-collector.env"))) env[k] = x;
    Object.assign(env, LOOPBACK_ENV);
    const svc = await startService(args, {
      command: [BIN],
      env,
      cwd: spec(unitValues(unit, "Service", "WorkingDirectory")[0]!),
    });
    assert.deepEqual((await getJson(svc.httpPort, "/health")).body.status, "ok");
    const sock = await udpClient("udp4", "127.0.0.1");
    await send(sock, netflowV5(1, 1000, 3), svc.udpPorts[0]!, "127.0.0.1");
    sock.close();
    await waitFor("flows.db in the state directory", async () => existsSync(join(state, "flows.db")));
    const reload = splitWords(unitValues(unit, "Service", "ExecReload")[0]!);
    assert.equal(reload[1], "-HUP");
    svc.proc.kill("SIGHUP");
    await waitFor("reopen logged", async () => svc.stderr.some((l) => l.includes("SIGHUP")));
    assert.equal(svc.proc.exitCode, null, "still running after the reload");
    await stop(svc.proc, svc.exited);
  });

  test("Docker: the runtime stage's /app, ENTRYPOINT + CMD with the image's ENV; HEALTHCHECK passes while up, fails when down", async () => {
    const ins = parseDockerfile(read("Dockerfile"));
    const last = Math.max(...ins.map((i) => i.stage));
    const get = (name: string) => ins.filter((i) => i.stage === last && i.instruction === name).at(-1)!;
    // /app as the runtime stage makes it: its COPYs from the context, the build stage's dist/ (the same tsc
    // output as the packed one) and its `npm ci` (production dependencies from the lockfile). The other
    // RUN steps (the /usr/local/bin link, /data ownership) need root in an image and are not replayed.
    const app = join(work, "app");
    mkdirSync(app);
    const workdirs = ins.filter((i) => i.stage === last && i.instruction === "WORKDIR").map((i) => i.args);
    assert.equal(workdirs[0], "/app", "the runtime stage installs into /app");
    for (const i of ins.filter((x) => x.stage === last && ["COPY", "RUN"].includes(x.instruction))) {
      const words = splitWords(i.args);
      if (i.instruction === "COPY") {
        const from = words[0]!.startsWith("--from=");
        const sources = from ? [words[1]!.replace("/build/dist", join(PKG_DIR, "dist"))] : words.slice(0, -1);
        const dest = join(app, words.at(-1)!);
        for (const src of sources) {
          const abs = from ? src : join(ROOT, src);
          cpSync(abs, sources.length > 1 || dest.endsWith("/") ? join(dest, basename(src)) : dest, {
            recursive: true,
          });
        }
      } else {
        for (const step of i.args.split("&&").map((x) => x.trim())) {
          if (!step.startsWith("npm ci")) continue;
          const r = spawnSync("npm", [...splitWords(step).slice(1), "--prefer-offline"], {
            cwd: app,
            env: { ...process.env, PATH, npm_config_update_notifier: "false" },
            encoding: "utf8",
            timeout: 240_000,
          });
          assert.equal(r.status, 0, `${step}:\n${r.stdout}\n${r.stderr}`);
        }
      }
    }
    const appModules = readdirSync(join(app, "node_modules"));
    for (const dep of Object.keys(PACKAGE.dependencies))
      assert.ok(appModules.includes(dep.split("/")[0]!), dep);
    for (const dev of Object.keys(PACKAGE.devDependencies))
      assert.ok(!existsSync(join(app, "node_modules", dev)), `${dev} in the runtime image`);
    assert.ok(!existsSync(join(app, "src")), "no sources in /app: the bin runs dist/");
    const volume = join(work, "docker-data"); // the /data volume
    mkdirSync(volume, { mode: 0o700 });
    const fromImage = (w: string) =>
      w === "node" ? process.execPath : w.replace(/^\/app\//, `${app}/`).replace(/^\/data$/, volume);
    const argv = [...get("ENTRYPOINT").json!, ...get("CMD").json!].map(fromImage);
    const env: Record<string, string> = { PATH };
    for (const [k, v] of dockerEnv(ins, last)) env[k] = fromImage(v);
    Object.assign(env, LOOPBACK_ENV);
    const svc = await startService(argv.slice(1), {
      command: [argv[0]!],
      env,
      cwd: fromImage(get("WORKDIR").args),
    });
    const healthcheck = get("HEALTHCHECK").json!.map(fromImage);
    const port = option("httpPort").env[0]!;
    const healthy = () => run(healthcheck, { [port]: String(svc.httpPort) }).status;
    await waitFor("HEALTHCHECK passes", async () => healthy() === 0);
    await stop(svc.proc, svc.exited);
    assert.notEqual(healthy(), 0, "HEALTHCHECK fails once the collector is gone");
    assert.ok(existsSync(join(volume, "flows.db")), "the data went to the volume");
  });

  test("Kubernetes: the container's args with the ConfigMap's file; the probe path answers; idle memory under the request", async (t) => {
    const objects = kubeObjects().map((o) => o.obj as Doc);
    const deployment = objects.find((o) => o.kind === "Deployment");
    const container = deployment.spec.template.spec.containers.find((c: Doc) => c.name === "collector");
    const configMap = objects.find((o) => o.kind === "ConfigMap");
    const etc = join(work, "etc-clarion");
    mkdirSync(etc);
    const configArgs = (container.args as string[]).map((a) =>
      a.startsWith("/etc/clarion-collector/") ? a.replace("/etc/clarion-collector", etc) : a,
    );
    writeFileSync(join(etc, "config.yaml"), configMap.data["config.yaml"]);
    chmodSync(etc, 0o755);
    const data = join(work, "kube-data");
    const env: Record<string, string> = { PATH, ...LOOPBACK_ENV, [option("dataDir").env[0]!]: data };
    for (const e of container.env as Doc[]) env[e.name] = "pod-0";
    const svc = await startService(configArgs, {
      command: [process.execPath, join(PKG_DIR, PACKAGE.bin["clarion-collector"]!)],
      env,
      cwd: work,
    });
    const probe = container.readinessProbe.httpGet.path as string;
    await waitFor(
      "probe 200",
      async () => (await fetch(`http://127.0.0.1:${svc.httpPort}${probe}`)).status === 200,
    );
    // Idle resident memory, the lowest of a few readings (GC lowers it), against the memory request.
    let rss = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 250));
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${svc.proc.pid}/status`, "utf8"));
      rss = Math.min(rss, Number(m![1]) * 1024);
    }
    const request = /^(\d+)(Mi|Gi)$/.exec(container.resources.requests.memory)!;
    const requestBytes = Number(request[1]) * (request[2] === "Gi" ? 1024 ** 3 : 1024 ** 2);
    t.diagnostic(
      `idle RSS ${(rss / 1024 ** 2).toFixed(0)} MiB, request ${container.resources.requests.memory}`,
    );
    assert.ok(rss < requestBytes, `idle RSS ${rss} B above the memory request`);
    await stop(svc.proc, svc.exited);
  });
});

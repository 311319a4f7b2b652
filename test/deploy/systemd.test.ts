/**
 * deploy/systemd/: the unit, its environment file and the logrotate snippet, checked against the code
 * (option registry variables and values, the signals src/cli.ts handles) and against systemd itself
 * (`systemd-analyze verify`) and logrotate (`logrotate -d`, and a real rotation of a running collector's
 * JSON-lines file with the unit's reload). The unit's ExecStart is run for real against the installed
 * package in package.test.ts.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { loadConfig } from "../../src/config/index.ts";
import { loopbackArgs, netflowV5, send, startService, udpClient, waitFor } from "../helpers/service.ts";
import { requireTool } from "../helpers/tools.ts";
import {
  KNOWN_ENV,
  parseEnvFile,
  parseUnit,
  read,
  splitWords,
  tempDir,
  unitValues,
  WRAPPERS,
} from "./deploy-files.ts";

const UNIT_FILE = "deploy/systemd/clarion-collector.service";
const ENV_FILE = "deploy/systemd/clarion-collector.env";
const LOGROTATE_FILE = "deploy/systemd/clarion-collector.logrotate";
const unit = parseUnit(read(UNIT_FILE));
const svc = (key: string): string[] => unitValues(unit, "Service", key);
const one = (key: string): string => {
  const v = svc(key);
  assert.equal(v.length, 1, `${key}= once in [Service], got ${JSON.stringify(v)}`);
  return v[0]!;
};

const temps: string[] = [];
after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

describe("systemd unit", () => {
  test("runs the installed binary directly, never through npm, npx or a shell", () => {
    const argv = splitWords(one("ExecStart"));
    assert.match(argv[0]!, /^\/.*\/bin\/clarion-collector$/, "an absolute path to the installed binary");
    for (const w of argv) assert.doesNotMatch(w, WRAPPERS);
    assert.ok(!argv.some((w) => /\bnpx\b|\bnpm\b/.test(w)));
  });

  test("signals: SIGTERM stops (flushes), reload sends SIGHUP, both handled by src/cli.ts", () => {
    const cli = read("src/cli.ts");
    assert.match(cli, /process\.on\("SIGTERM"/);
    assert.match(cli, /process\.on\("SIGHUP"/);
    assert.deepEqual(svc("KillSignal"), ["SIGTERM"]);
    assert.deepEqual(splitWords(one("ExecReload")), ["/bin/kill", "-HUP", "$MAINPID"]);
    assert.equal(one("Restart"), "on-failure");
    assert.ok(Number.parseInt(one("TimeoutStopSec"), 10) >= 30, "time to flush the sinks");
  });

  test("state: StateDirectory is the data dir and the working directory; a dedicated user", () => {
    const state = one("StateDirectory");
    const env = new Map(svc("Environment").flatMap((v) => [...parseEnvFile(splitWords(v).join("\n"))]));
    assert.equal(env.get("CLARION_COLLECTOR_DATA_DIR"), `%S/${state}`);
    assert.equal(one("WorkingDirectory"), `%S/${state}`);
    assert.equal(one("StateDirectoryMode"), "0700");
    assert.ok(svc("DynamicUser").includes("yes") || svc("User").length === 1, "DynamicUser= or User=");
    for (const name of env.keys())
      assert.ok(KNOWN_ENV.has(name), `Environment= ${name} is not an option variable`);
    assert.deepEqual(svc("EnvironmentFile"), [`-/etc/clarion-collector/clarion-collector.env`]);
  });

  test("hardening, without MemoryDenyWriteExecute (V8's JIT)", () => {
    for (const key of ["NoNewPrivileges", "ProtectHome", "PrivateTmp"]) assert.equal(one(key), "yes", key);
    assert.equal(one("ProtectSystem"), "strict");
    assert.equal(one("CapabilityBoundingSet"), "");
    assert.deepEqual(one("RestrictAddressFamilies").split(/\s+/).sort(), ["AF_INET", "AF_INET6", "AF_UNIX"]);
    assert.deepEqual(svc("MemoryDenyWriteExecute"), []);
    assert.ok(Number(one("LimitNOFILE")) >= 65536);
    assert.equal(one("UMask"), "0077", "files 0600, directories 0700 (DESIGN §2)");
  });

  test("systemd-analyze verify finds nothing to say", (t) => {
    const tool = requireTool(t, "systemd-analyze");
    if (!tool) return;
    const dir = tempDir("unit");
    temps.push(dir);
    // verify checks that ExecStart's program exists: point it at an executable of this machine.
    const text = read(UNIT_FILE).replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`);
    writeFileSync(join(dir, "clarion-collector.service"), text);
    const r = spawnSync(tool, ["verify", "--man=no", join(dir, "clarion-collector.service")], {
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), "", "warnings (unknown keys, bad values)");
  });
});

describe("environment file", () => {
  const all = parseEnvFile(read(ENV_FILE), true);

  test("names only variables of the option registry", () => {
    assert.ok(all.size >= 10);
    for (const name of all.keys()) assert.ok(KNOWN_ENV.has(name), `${name} is not an option variable`);
  });

  test("every value, commented examples included, passes the collector's validation", () => {
    const dir = tempDir("envfile");
    temps.push(dir);
    const env: Record<string, string> = {};
    for (const [k, v] of all) {
      if (k === "CLARION_COLLECTOR_CONFIG" || k.endsWith("_FILE")) continue; // files of the target host
      env[k] = v.replaceAll("/var/log/clarion-collector", join(dir, "log"));
    }
    const config = loadConfig(["--data-dir", join(dir, "data")], env);
    assert.equal(config.workers, Number(all.get("CLARION_COLLECTOR_WORKERS")));
    const listed = all
      .get("CLARION_COLLECTOR_OUTPUTS")!
      .replaceAll("/var/log/clarion-collector", join(dir, "log"));
    // An explicit backend URL adds its Clarion output after the listed ones.
    assert.deepEqual(
      config.outputs.map((o) => o.uri),
      [...listed.split(","), `clarion+${all.get("CLARION_COLLECTOR_BACKEND_URL")}`],
    );
  });
});

describe("logrotate snippet", () => {
  const text = read(LOGROTATE_FILE);

  test("rotates the unit's LogsDirectory, reloads the unit, lets the collector create the next file", () => {
    const logs = one("LogsDirectory");
    assert.match(text, new RegExp(`^/var/log/${logs}/\\*\\.jsonl \\{`, "m"));
    assert.match(text, /systemctl reload clarion-collector\.service/);
    assert.match(text, /^\s*nocreate$/m);
    assert.doesNotMatch(text, /^\s*copytruncate/m);
  });

  test("logrotate -d accepts it", (t) => {
    const tool = requireTool(t, "logrotate");
    if (!tool) return;
    const dir = tempDir("logrotate");
    temps.push(dir);
    writeFileSync(join(dir, "conf"), text);
    chmodSync(join(dir, "conf"), 0o644); // logrotate ignores a config writable by group or others
    const r = spawnSync(tool, ["-d", "-s", join(dir, "state"), join(dir, "conf")], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(`${r.stdout}${r.stderr}`, /error/i);
    assert.match(r.stderr, /rotating pattern: \/var\/log\/clarion-collector\/\*\.jsonl/);
  });

  test("a real rotation: logrotate moves the file, the reload's SIGHUP makes the collector start a new one", async (t) => {
    const tool = requireTool(t, "logrotate");
    if (!tool) return;
    const dir = tempDir("rotate");
    temps.push(dir);
    const logs = join(dir, "log");
    const file = join(logs, "flows.jsonl");
    const svc = await startService(
      loopbackArgs("--data-dir", join(dir, "data"), "--output", `jsonl:${file}`, "--batch-interval", "0.1"),
    );
    const lines = (f: string) => (existsSync(f) ? readFileSync(f, "utf8").split("\n").filter(Boolean) : []);
    const sock = await udpClient("udp4", "127.0.0.1");
    sock.unref(); // a failed assertion must not leave the test file running
    await send(sock, netflowV5(1, 1000, 3), svc.udpPorts[0]!, "127.0.0.1");
    await waitFor("3 lines", async () => lines(file).length === 3);
    // The snippet as shipped, on this directory, with the unit's reload (ExecReload) done directly.
    const reload = one("ExecReload").replace("$MAINPID", String(svc.proc.pid));
    const conf = text
      .replaceAll("/var/log/clarion-collector", logs)
      .replace(/systemctl reload clarion-collector\.service/, reload);
    assert.ok(conf.includes(reload));
    writeFileSync(join(dir, "conf"), conf);
    chmodSync(join(dir, "conf"), 0o644);
    const r = spawnSync(tool, ["-f", "-s", join(dir, "state"), join(dir, "conf")], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(lines(`${file}.1`).length, 3, "rotated (delaycompress: .1 stays plain)");
    await waitFor("the collector reopened its path", async () => existsSync(file));
    await send(sock, netflowV5(2, 2000, 2), svc.udpPorts[0]!, "127.0.0.1");
    sock.close();
    await waitFor("new lines in the new file", async () => lines(file).length === 2);
    assert.equal(lines(`${file}.1`).length, 3, "nothing written to the rotated file");
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0);
  });
});

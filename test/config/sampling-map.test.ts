import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadConfig } from "../../src/config/index.ts";
import { ConfigError } from "../../src/core/errors.ts";

const CLI = new URL("../../src/cli.ts", import.meta.url).pathname;

let dir = "";
before(() => {
  dir = mkdtempSync(join(tmpdir(), "clarion-sampling-map-"));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const load = (argv: string[], env: Record<string, string> = {}) => loadConfig(argv, env, { cwd: dir });

describe("sampling map config (issue 18)", () => {
  it("is empty by default", () => {
    assert.deepEqual(load([]).samplingMap, []);
  });

  it("reads PREFIX[@DOMAIN]=RATE[!] from the flag and the variable", () => {
    assert.deepEqual(load(["--sampling-map", "192.0.2.0/24=1000, 2001:db8::1@256=512!"]).samplingMap, [
      { exporter: "192.0.2.0/24", domain: null, interface: null, sampler: null, rate: 1000, override: false },
      { exporter: "2001:db8::1", domain: 256, interface: null, sampler: null, rate: 512, override: true },
    ]);
    assert.deepEqual(load([], { CLARION_COLLECTOR_SAMPLING_MAP: "10.0.0.1=64" }).samplingMap, [
      { exporter: "10.0.0.1", domain: null, interface: null, sampler: null, rate: 64, override: false },
    ]);
  });

  it("reads the interface and sampler keys, in text and in a file", () => {
    assert.deepEqual(
      load(["--sampling-map", "192.0.2.1@5%7#2=100!,192.0.2.2%12=10,192.0.2.3#0=9"]).samplingMap,
      [
        { exporter: "192.0.2.1", domain: 5, interface: 7, sampler: 2, rate: 100, override: true },
        { exporter: "192.0.2.2", domain: null, interface: 12, sampler: null, rate: 10, override: false },
        { exporter: "192.0.2.3", domain: null, interface: null, sampler: 0, rate: 9, override: false },
      ],
    );
    const file = join(dir, "keys.yaml");
    writeFileSync(
      file,
      "sampling_map:\n  - exporter: 10.0.0.0/8\n    interface: 4\n    sampler: 1\n    rate: 50\n",
    );
    assert.deepEqual(load(["--config", file]).samplingMap, [
      { exporter: "10.0.0.0/8", domain: null, interface: 4, sampler: 1, rate: 50, override: false },
    ]);
  });

  it("reads a list of objects or strings from a config file", () => {
    const file = join(dir, "map.yaml");
    writeFileSync(
      file,
      "sampling_map:\n  - exporter: 198.51.100.0/24\n    domain: 3\n    rate: 100\n    override: true\n  - 10.0.0.0/8=2000\n",
    );
    assert.deepEqual(load(["--config", file]).samplingMap, [
      { exporter: "198.51.100.0/24", domain: 3, interface: null, sampler: null, rate: 100, override: true },
      { exporter: "10.0.0.0/8", domain: null, interface: null, sampler: null, rate: 2000, override: false },
    ]);
  });

  it("refuses a bad entry, naming it", () => {
    for (const bad of [
      "192.0.2.0/33=10",
      "host.example=10",
      "10.0.0.1=0",
      "10.0.0.1=1.5",
      "10.0.0.1",
      "10.0.0.1@x=5",
      "10.0.0.1%eth0=5",
      "10.0.0.1#-1=5",
      "10.0.0.1#1@2=5",
      "10.0.0.1%4294967296=5",
    ]) {
      assert.throws(
        () => load(["--sampling-map", bad]),
        (e: unknown) => e instanceof ConfigError && /sampling-map/.test(e.message) && e.message.includes(bad),
        bad,
      );
    }
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "sampling_map:\n  - exporter: 10.0.0.1\n    rate: 10\n    overide: true\n");
    assert.throws(() => load(["--config", file]), /sampling_map.*overide/);
    writeFileSync(file, "sampling_map:\n  - exporter: 10.0.0.1\n    rate: 10\n    interface: ge-0/0/1\n");
    assert.throws(() => load(["--config", file]), /sampling_map.*ge-0\/0\/1.*interface must be an integer/);
  });

  it("the CLI exits 2 on a bad entry", () => {
    const r = spawnSync(process.execPath, [CLI, "--sampling-map", "10.0.0.0/8=-1"], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? "" },
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.equal(r.error, undefined);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--sampling-map.*"10.0.0.0\/8=-1": expected PREFIX/);
  });
});

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { HelpRequested, loadConfig } from "../../src/config/index.ts";
import { ConfigError } from "../../src/core/errors.ts";
import { findSink } from "../../src/sinks/index.ts";

const NODE = process.execPath;
const CLI = new URL("../../src/cli.ts", import.meta.url).pathname;

let dir = "";
before(() => {
  dir = mkdtempSync(join(tmpdir(), "clarion-config-"));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** loadConfig with a data dir under the test directory unless the caller sets one. */
function load(argv: string[], env: Record<string, string> = {}) {
  return loadConfig(argv, env, { cwd: dir });
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    return err;
  }
  assert.fail("expected a ConfigError");
}

describe("loadConfig defaults", () => {
  it("uses the Clarion defaults", () => {
    const c = load([]);
    assert.equal(c.mode, "native");
    assert.equal(c.netflowPort, 2055);
    assert.equal(c.ipfixPort, 4739);
    assert.equal(c.sflowPort, 6343);
    assert.equal(c.agentPort, 8080);
    assert.equal(c.httpPort, 8081);
    assert.equal(c.batchSize, 1000);
    assert.equal(c.batchInterval, 5.0);
    assert.equal(c.bindHost, "0.0.0.0");
    assert.equal(c.switchIdFromIp, true);
    assert.equal(c.udpRcvbuf, 32 * 1024 * 1024);
    assert.equal(c.retryAttempts, 3);
    assert.equal(c.retryBackoff, 1.5);
    assert.equal(c.backendUrl, "http://localhost:8000");
    assert.equal(c.logLevel, "info");
    assert.ok(c.workers >= 1);
    assert.equal(c.dataDir, join(dir, "data"));
    assert.deepEqual(c.outputs, [
      {
        uri: `sqlite:${join(dir, "data", "flows.db")}`,
        options: { retryAttempts: 3, retryBackoff: 1.5, switchIdFromIp: true, retentionMs: 7 * 86_400_000 },
      },
    ]);
    assert.equal(c.configFile, "");
    assert.equal(c.spoolMaxBytes, 1024 ** 3);
    assert.equal(c.agentBodyLimit, 10 * 1024 ** 2);
    assert.equal(c.agentToken, "");
    assert.equal(c.collectorId, "gw-local");
    assert.equal(c.ingestToken, "");
    assert.equal(c.backendOutput, "");
  });
});

describe("delivery settings", () => {
  it("--backend-url set explicitly adds the Clarion output (alone without --output)", () => {
    const viaFlag = load(["--backend-url", "http://backend:8000/"]);
    assert.equal(viaFlag.backendOutput, "clarion+http://backend:8000");
    assert.deepEqual(
      viaFlag.outputs.map((o) => o.uri),
      ["clarion+http://backend:8000"],
    );
    assert.deepEqual(viaFlag.outputs[0]?.options, {
      retryAttempts: 3,
      retryBackoff: 1.5,
      switchIdFromIp: true,
      spoolMaxBytes: 1024 ** 3,
    });
    const viaEnv = load(["--output", "jsonl:-"], {
      CLARION_COLLECTOR_BACKEND_URL: "https://b.example/base",
      CLARION_COLLECTOR_SPOOL_MAX_BYTES: "512M",
    });
    assert.deepEqual(
      viaEnv.outputs.map((o) => o.uri),
      ["jsonl:-", "clarion+https://b.example/base"],
    );
    assert.equal(viaEnv.outputs[1]?.options.spoolMaxBytes, 512 * 1024 ** 2);
    assert.equal(viaEnv.outputs[0]?.options.spoolMaxBytes, undefined);
    const file = join(dir, "backend.yaml");
    writeFileSync(file, "backend_url: http://10.0.0.5:8000\n");
    assert.equal(load(["--config", file]).backendOutput, "clarion+http://10.0.0.5:8000");
    // listed already (with its own options): not added twice
    const listed = load(["--backend-url", "http://b:8000", "--output", "clarion+http://b:8000"]);
    assert.deepEqual(
      listed.outputs.map((o) => o.uri),
      ["clarion+http://b:8000"],
    );
    // mode agent: the URL is the relay's destination only
    const agent = load(["--mode", "agent", "--backend-url", "http://b:8000"]);
    assert.equal(agent.backendOutput, "");
    assert.ok(agent.outputs.every((o) => !o.uri.startsWith("clarion+")));
  });

  it("the default backend URL adds nothing", () => {
    const c = load(["--mode", "both"]);
    assert.equal(c.backendUrl, "http://localhost:8000");
    assert.equal(c.backendOutput, "");
    assert.deepEqual(
      c.outputs.map((o) => o.uri),
      [`sqlite:${join(dir, "data", "flows.db")}`],
    );
  });

  it("flows-v1 outputs get the collector id and the bearer key unless they set their own", () => {
    const c = load(
      ["--output", "flows-v1+http://h:8080/v1/ingest", "--collector-id", "gw-7", "--spool-max-bytes", "2G"],
      { CLARION_COLLECTOR_INGEST_TOKEN: " s3cret " },
    );
    assert.deepEqual(c.outputs[0]?.options, {
      retryAttempts: 3,
      retryBackoff: 1.5,
      switchIdFromIp: true,
      spoolMaxBytes: 2 * 1024 ** 3,
      collectorId: "gw-7",
      token: "s3cret",
    });
    const tokenFile = join(dir, "ingest.key");
    writeFileSync(tokenFile, "from-file\n");
    const own = join(dir, "own.yaml");
    writeFileSync(
      own,
      `outputs:\n  - uri: flows-v1+http://h/v1/ingest\n    tokenEnv: MY_KEY\n    collectorId: own\n  - flows-v1+http://g/v1/ingest\n`,
    );
    const d = load(["--config", own, "--ingest-token-file", tokenFile]);
    assert.equal(d.ingestToken, "from-file");
    assert.equal(d.outputs[0]?.options.token, undefined);
    assert.equal(d.outputs[0]?.options.tokenEnv, "MY_KEY");
    assert.equal(d.outputs[0]?.options.collectorId, "own");
    assert.equal(d.outputs[1]?.options.token, "from-file");
    assert.equal(d.outputs[1]?.options.collectorId, "gw-local");
  });

  it("agent settings: token from the variable, the file key or a token file; body limit", () => {
    const a = load(["--agent-body-limit", "64K"], { CLARION_COLLECTOR_AGENT_TOKEN: "tok" });
    assert.equal(a.agentToken, "tok");
    assert.equal(a.agentBodyLimit, 64 * 1024);
    const f = join(dir, "agent.key");
    writeFileSync(f, "tok-file\n");
    assert.equal(load([], { CLARION_COLLECTOR_AGENT_TOKEN_FILE: f }).agentToken, "tok-file");
    const y = join(dir, "agent.yaml");
    writeFileSync(y, "agent_token: tok-yaml\nagent_body_limit: 2M\n");
    const b = load(["--config", y]);
    assert.equal(b.agentToken, "tok-yaml");
    assert.equal(b.agentBodyLimit, 2 * 1024 ** 2);
  });

  it("secrets have no flag and are never shown in messages", () => {
    assert.equal(configError(() => load(["--agent-token", "x"])).key, "--agent-token");
    const err = configError(() => load([], { CLARION_COLLECTOR_AGENT_TOKEN: "two words" }));
    assert.equal(err.key, "CLARION_COLLECTOR_AGENT_TOKEN");
    assert.ok(!err.message.includes("two words"), err.message);
    const e2 = configError(() => load(["--agent-token-file", join(dir, "missing.key")]));
    assert.equal(e2.key, "--agent-token-file");
    const empty = join(dir, "empty.key");
    writeFileSync(empty, "\n");
    assert.equal(
      configError(() => load([], { CLARION_COLLECTOR_INGEST_TOKEN_FILE: empty })).key,
      "CLARION_COLLECTOR_INGEST_TOKEN_FILE",
    );
  });

  it("refuses bad delivery values naming the key", () => {
    assert.equal(configError(() => load(["--spool-max-bytes", "1K"])).key, "--spool-max-bytes");
    assert.equal(
      configError(() => load([], { CLARION_COLLECTOR_AGENT_BODY_LIMIT: "lots" })).key,
      "CLARION_COLLECTOR_AGENT_BODY_LIMIT",
    );
    assert.equal(configError(() => load(["--collector-id", " "])).key, "--collector-id");
  });
});

describe("loadConfig precedence", () => {
  it("CLI beats env beats file beats default", () => {
    const file = join(dir, "prec.yaml");
    writeFileSync(file, "netflow_port: 3001\nipfix_port: 3002\nsflow_port: 3003\nbatch-size: 7\n");
    const c = load(["--config", file, "--netflow-port", "1001"], {
      CLARION_COLLECTOR_NETFLOW_PORT: "2001",
      CLARION_COLLECTOR_IPFIX_PORT: "2002",
    });
    assert.equal(c.netflowPort, 1001); // CLI
    assert.equal(c.ipfixPort, 2002); // env
    assert.equal(c.sflowPort, 3003); // file
    assert.equal(c.batchSize, 7); // file, kebab-case key
    assert.equal(c.httpPort, 8081); // default
    assert.equal(c.configFile, file);
  });

  it("reads the config file named by CLARION_COLLECTOR_CONFIG, JSON too", () => {
    const file = join(dir, "c.json");
    writeFileSync(
      file,
      JSON.stringify({
        batch_interval: 0.5,
        outputs: ["jsonl:-", { uri: "jsonl:out/x.jsonl", retryAttempts: 9 }],
      }),
    );
    const c = load([], { CLARION_COLLECTOR_CONFIG: file });
    assert.equal(c.batchInterval, 0.5);
    const shared = { retryAttempts: 3, retryBackoff: 1.5, switchIdFromIp: true };
    assert.deepEqual(c.outputs, [
      { uri: "jsonl:-", options: shared },
      { uri: "jsonl:out/x.jsonl", options: { ...shared, retryAttempts: 9 } },
    ]);
  });

  it("takes the plain BIND_HOST/UDP_RCVBUF/SWITCH_ID_FROM_IP variables, prefixed ones first", () => {
    const c = load([], {
      BIND_HOST: "::",
      UDP_RCVBUF: "8M",
      SWITCH_ID_FROM_IP: "false",
      RETRY_ATTEMPTS: "5",
    });
    assert.equal(c.bindHost, "::");
    assert.equal(c.udpRcvbuf, 8 * 1024 * 1024);
    assert.equal(c.switchIdFromIp, false);
    assert.equal(c.retryAttempts, 5);
    const d = load([], { BIND_HOST: "::", CLARION_COLLECTOR_BIND_HOST: "127.0.0.1" });
    assert.equal(d.bindHost, "127.0.0.1");
  });

  it("parses repeatable --output and comma-separated CLARION_COLLECTOR_OUTPUTS", () => {
    const c = load(["--output", "jsonl:-", "--output", "sqlite:db/f.db"]);
    assert.deepEqual(
      c.outputs.map((o) => o.uri),
      ["jsonl:-", "sqlite:db/f.db"],
    );
    const e = load([], { CLARION_COLLECTOR_OUTPUTS: "jsonl:-, sqlite:db/g.db" });
    assert.deepEqual(
      e.outputs.map((o) => o.uri),
      ["jsonl:-", "sqlite:db/g.db"],
    );
    // a comma not followed by a scheme belongs to the URI (a Kafka broker list)
    const k = load([], { CLARION_COLLECTOR_OUTPUTS: "kafka://k1:9092,k2:9092/flows,jsonl:-" });
    assert.deepEqual(
      k.outputs.map((o) => o.uri),
      ["kafka://k1:9092,k2:9092/flows", "jsonl:-"],
    );
  });

  it("handles boolean flags both ways, log level aliases and --workers auto", () => {
    assert.equal(load(["--no-switch-id-from-ip"]).switchIdFromIp, false);
    assert.equal(load(["--switch-id-from-ip", "false"]).switchIdFromIp, false);
    assert.equal(load(["--scale-by-sampling"]).scaleBySampling, true);
    assert.equal(load([]).tunnelHeader, "outer");
    assert.equal(load(["--tunnel-header", "Inner"]).tunnelHeader, "inner");
    assert.equal(load(["--log-level", "WARNING"]).logLevel, "warn");
    assert.ok(load(["--workers", "auto"]).workers >= 1);
    assert.equal(load(["--native-http-port", "9999"]).httpPort, 9999);
  });

  it("default output follows --data-dir", () => {
    const c = load(["--data-dir", "elsewhere"]);
    assert.equal(c.dataDir, join(dir, "elsewhere"));
    assert.deepEqual(c.outputs[0]?.uri, `sqlite:${join(dir, "elsewhere", "flows.db")}`);
  });
});

describe("loadConfig bad values name the key and the value", () => {
  const cases: Array<[string, string[], Record<string, string>, string, string]> = [
    ["port out of range (CLI)", ["--netflow-port", "70000"], {}, "--netflow-port", "70000"],
    [
      "port out of range (env)",
      [],
      { CLARION_COLLECTOR_IPFIX_PORT: "70000" },
      "CLARION_COLLECTOR_IPFIX_PORT",
      "70000",
    ],
    ["negative port", ["--sflow-port", "-1"], {}, "--sflow-port", "-1"],
    ["unparsable number", ["--batch-size", "x"], {}, "--batch-size", "x"],
    ["trailing garbage", ["--batch-size", "12abc"], {}, "--batch-size", "12abc"],
    ["zero batch size", ["--batch-size", "0"], {}, "--batch-size", "0"],
    [
      "bad interval",
      [],
      { CLARION_COLLECTOR_BATCH_INTERVAL: "soon" },
      "CLARION_COLLECTOR_BATCH_INTERVAL",
      "soon",
    ],
    ["bad mode", ["--mode", "hybrid"], {}, "--mode", "hybrid"],
    ["bad log level", ["--log-level", "loud"], {}, "--log-level", "loud"],
    ["bad boolean", [], { SWITCH_ID_FROM_IP: "maybe" }, "SWITCH_ID_FROM_IP", "maybe"],
    ["bad rcvbuf", ["--udp-rcvbuf", "lots"], {}, "--udp-rcvbuf", "lots"],
    ["bad workers", ["--workers", "0"], {}, "--workers", "0"],
    ["bad backend url", ["--backend-url", "ftp://x"], {}, "--backend-url", "ftp://x"],
    ["bad bind host", ["--bind-host", "not a host"], {}, "--bind-host", "not a host"],
    ["unknown output scheme", ["--output", "foo:bar"], {}, "--output", "foo:bar"],
    ["output without scheme", ["--output", "flows.db"], {}, "--output", "flows.db"],
    [
      "unknown output scheme (env)",
      [],
      { CLARION_COLLECTOR_OUTPUTS: "jsonl:-,kafkaa:x" },
      "CLARION_COLLECTOR_OUTPUTS",
      "kafkaa:x",
    ],
  ];
  for (const [name, argv, env, key, value] of cases) {
    it(name, () => {
      const err = configError(() => load(argv, env));
      assert.equal(err.key, key);
      assert.match(err.message, new RegExp(`^${key.replace(/[-]/g, "\\-")}: `));
      assert.ok(err.message.includes(value), `message should include the value: ${err.message}`);
    });
  }

  it("a bad file value names the file key and the file", () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "netflow_port: 70000\n");
    const err = configError(() => load(["--config", file]));
    assert.equal(err.key, `netflow_port (in ${file})`);
    assert.ok(err.message.includes("70000"));
  });

  it("an unknown file key is refused", () => {
    const file = join(dir, "typo.yaml");
    writeFileSync(file, "netflow_prot: 2055\n");
    const err = configError(() => load(["--config", file]));
    assert.match(err.key, /^netflow_prot/);
  });

  it("an unknown per-output option is refused, naming outputs[i].<key>", () => {
    const file = join(dir, "output-typo.yaml");
    writeFileSync(
      file,
      "outputs:\n  - jsonl:-\n  - uri: flows-v1+http://h/v1/ingest\n    token_fil: /etc/key\n",
    );
    const err = configError(() => load(["--config", file]));
    assert.equal(err.key, `outputs[1].token_fil (in ${file})`);
    assert.match(err.message, /unknown option.*known: collector_id, batch_size/);

    const json = join(dir, "output-typo.json");
    writeFileSync(json, JSON.stringify({ outputs: [{ uri: "sqlite:x.db", retention: 5 }] }));
    const e2 = configError(() => load(["--config", json]));
    assert.equal(e2.key, `outputs[0].retention (in ${json})`);
    assert.match(e2.message, /known: retention_ms/);

    writeFileSync(json, JSON.stringify({ outputs: [{ uri: "jsonl:-", batchSize: 5 }] }));
    assert.equal(configError(() => load(["--config", json])).key, `outputs[0].batchSize (in ${json})`);
  });

  it("the options each sink reads are accepted", () => {
    const file = join(dir, "output-ok.json");
    writeFileSync(
      file,
      JSON.stringify({
        outputs: [
          { uri: "sqlite:ok.db", retentionMs: 0, exporterIndex: true },
          {
            uri: "flows-v1+http://h/v1/ingest",
            token: "k",
            gzipThreshold: 100,
            breakerResetMs: 10,
            fsync: "never",
          },
          { uri: "clarion+http://h:8000", timeoutMs: 100, retryAttempts: 2, spoolMaxBytes: 1048576 },
        ],
      }),
    );
    const c = load(["--config", file]);
    assert.equal(c.outputs.length, 3);
    assert.equal(c.outputs[1]?.options.fsync, "never");
  });

  it("per-output option keys are snake_case, the camelCase spelling a deprecated alias", () => {
    const file = join(dir, "output-snake.yaml");
    writeFileSync(
      file,
      [
        "outputs:",
        "  - uri: sqlite:snake.db",
        "    retention_ms: 0",
        "  - uri: flows-v1+http://h/v1/ingest",
        "    token_file: /dev/null",
        "    gzip_threshold: 100",
        "    breakerResetMs: 10",
        "",
      ].join("\n"),
    );
    const c = load(["--config", file]);
    assert.equal(c.outputs[0]?.options.retentionMs, 0);
    assert.equal(c.outputs[1]?.options.tokenFile, "/dev/null");
    assert.equal(c.outputs[1]?.options.gzipThreshold, 100);
    assert.equal(c.outputs[1]?.options.breakerResetMs, 10);
    assert.equal(c.outputs[1]?.options.token_file, undefined);

    writeFileSync(file, "outputs:\n  - uri: sqlite:snake.db\n    retention_ms: 0\n    retentionMs: 5\n");
    assert.match(configError(() => load(["--config", file])).message, /given twice/);
  });

  it("the per-scheme option lists match the keys the sinks read", () => {
    // Guard against drift: every key src/sinks/{http,sqlite/sink,jsonl}.ts reads is listed, and nothing more.
    const read = (file: string, ...patterns: RegExp[]): string[] => {
      const text = readFileSync(new URL(`../../src/sinks/${file}`, import.meta.url), "utf8");
      return [...new Set(patterns.flatMap((p) => [...text.matchAll(p)].map((m) => m[1]!)))].sort();
    };
    const http = read("http.ts", /\b(?:num|str|bool)\(options, "(\w+)"/g);
    const sqlite = read("sqlite/sink.ts", /\w+Option\(options, "(\w+)"/g, /\boptions\.(\w+) \?\?/g);
    assert.ok(http.includes("tokenFile") && sqlite.includes("retentionMs"));
    const keys = (uri: string): string[] => [...findSink(uri).optionKeys].sort();
    assert.deepEqual(keys("flows-v1+https://h/v1/ingest"), http);
    assert.deepEqual(keys("clarion+http://h"), http);
    assert.deepEqual(keys("sqlite:x.db"), sqlite);
    const jsonl = read("jsonl.ts", /\boptions\.(\w+)\b/g);
    assert.deepEqual(keys("jsonl:-"), jsonl);
  });

  it("a missing or unparsable config file is refused", () => {
    assert.equal(configError(() => load(["--config", join(dir, "nope.yaml")])).key, "--config");
    const file = join(dir, "broken.json");
    writeFileSync(file, "{ not json");
    assert.equal(
      configError(() => load([], { CLARION_COLLECTOR_CONFIG: file })).key,
      "CLARION_COLLECTOR_CONFIG",
    );
  });

  it("an unwritable data dir is refused", {
    skip: process.getuid?.() === 0 ? "root can write anywhere" : false,
  }, () => {
    const ro = join(dir, "ro");
    mkdirSync(ro);
    chmodSync(ro, 0o500);
    const err = configError(() => load(["--data-dir", join(ro, "data")]));
    assert.equal(err.key, "--data-dir");
    assert.ok(err.message.includes(join(ro, "data")));
  });

  it("a data dir that is a file is refused", () => {
    const f = join(dir, "afile");
    writeFileSync(f, "");
    const err = configError(() => load(["--data-dir", f]));
    assert.equal(err.key, "--data-dir");
    assert.ok(err.message.includes(f));
  });

  it("an unknown flag is refused", () => {
    assert.equal(configError(() => load(["--netflow-prot", "1"])).key, "--netflow-prot");
  });

  it("--help documents every flag and variable", () => {
    let text = "";
    try {
      load(["--help"]);
    } catch (err) {
      assert.ok(err instanceof HelpRequested);
      text = err.text;
    }
    for (const s of [
      "--mode",
      "--backend-url",
      "--netflow-port",
      "--ipfix-port",
      "--sflow-port",
      "--agent-port",
      "--http-port",
      "--bind-host",
      "--log-level",
      "--batch-size",
      "--batch-interval",
      "--switch-id-from-ip",
      "--udp-rcvbuf",
      "--retry-attempts",
      "--retry-backoff",
      "--workers",
      "--output",
      "--data-dir",
      "--config",
      "CLARION_COLLECTOR_OUTPUTS",
      "BIND_HOST",
      "UDP_RCVBUF",
      "--spool-max-bytes",
      "CLARION_COLLECTOR_SPOOL_MAX_BYTES",
      "spool_max_bytes",
      "--agent-body-limit",
      "CLARION_COLLECTOR_AGENT_TOKEN",
      "--agent-token-file",
      "--collector-id",
      "CLARION_COLLECTOR_INGEST_TOKEN",
      "--ingest-token-file",
      "clarion+http",
      "flows-v1+http",
      "fsync",
    ]) {
      assert.ok(text.includes(s), `help mentions ${s}`);
    }
  });
});

describe("CLI exit codes", () => {
  const run = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(NODE, [CLI, ...args], {
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? "",
        ...(process.env.NODE_OPTIONS ? { NODE_OPTIONS: process.env.NODE_OPTIONS } : {}),
        ...env,
      },
      encoding: "utf8",
      timeout: 20_000,
    });

  // /proc answers ENOENT to mkdir, which makes a recursive mkdir loop forever (Node 20 and 24): the collector
  // must refuse such paths promptly, for root too (a child with a timeout, so a regression fails, not hangs)
  it("exits 2 for a data dir or output directory that cannot be created (under /proc), not hung", () => {
    let r = run(["--data-dir", "/proc/clarion-test/data"]);
    assert.equal(r.error, undefined, "startup did not end within 20 s");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--data-dir.*\/proc\/clarion-test\/data.*ENOENT/);
    for (const uri of ["jsonl:/proc/clarion-test/flows.jsonl", "sqlite:/proc/clarion-test/flows.db"]) {
      r = run(["--data-dir", dir, "--output", uri]);
      assert.equal(r.error, undefined, `startup with ${uri} did not end within 20 s`);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /--output.*\/proc\/clarion-test.*ENOENT/);
    }
  });

  it("exits 2 naming the flag and value for a port out of range", () => {
    const r = run(["--netflow-port", "70000"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--netflow-port.*70000/);
  });

  it("exits 2 for an unknown output scheme", () => {
    const r = run(["--output", "foo:bar"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--output.*foo:bar/);
  });

  it("exits 2 naming outputs[i].<key> for an unknown per-output option", () => {
    const file = join(dir, "cli-output-typo.yaml");
    writeFileSync(file, "outputs:\n  - uri: flows-v1+http://h/v1/ingest\n    tokenfile_path: /etc/key\n");
    const r = run(["--config", file]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /outputs\[0\]\.tokenfile_path/);
  });

  it("exits 2 for an unparsable number in a variable", () => {
    const r = run([], { CLARION_COLLECTOR_BATCH_SIZE: "x" });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /CLARION_COLLECTOR_BATCH_SIZE.*"x"/);
  });

  it("exits 2 for an unwritable data dir", () => {
    const f = join(dir, "blocker");
    writeFileSync(f, "");
    const r = run(["--data-dir", join(f, "sub")]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--data-dir/);
    assert.ok(r.stderr.includes(join(f, "sub")));
  });

  it("exits 2 naming --agent-port when the agent port is taken", async () => {
    const { createServer } = await import("node:net");
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    const port = (srv.address() as { port: number }).port;
    try {
      const r = run([
        "--mode",
        "agent",
        "--bind-host",
        "127.0.0.1",
        "--agent-port",
        String(port),
        "--data-dir",
        join(dir, "agent-data"),
      ]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /--agent-port/);
    } finally {
      srv.close();
    }
  });

  it("--help prints to stdout and exits 0", () => {
    const r = run(["--help"]);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /--netflow-port/);
  });
});

/**
 * The Kafka output end to end: the real CLI, NetFlow v5 over UDP from two exporter addresses (127.0.0.2 and
 * 127.0.0.3), librdkafka's mock cluster (test/helpers/kafka-mock.c), kcat reading the topic back.
 * Checks: every flow arrives exactly as encoded (each protobuf message, decoded with the shipped .proto,
 * equals the JSON line the jsonl output of the same run wrote), keyed by exporter, one partition per
 * exporter in order; the brokers down and a SIGKILL during the outage, then a restart on the same
 * --data-dir: nothing lost; bad TLS/SASL settings exit 2.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { protoName } from "../../src/encode/goflow2.ts";
import {
  buildMock,
  consumeAll,
  decodeProto,
  flowMessageFields,
  MockCluster,
  parseJsonExact,
  protoVersusJson,
  undelimit,
} from "../helpers/kafka.ts";
import {
  dirs,
  getJson,
  loopbackArgs,
  netflowV5,
  type Service,
  send,
  sleep,
  startService,
  udpClient,
  waitFor,
} from "../helpers/service.ts";

const FIELDS = flowMessageFields();
const EXPORTERS = ["127.0.0.2", "127.0.0.3"];
const CLI = new URL("../../src/cli.ts", import.meta.url).pathname;

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "kafka-e2e-"));
  dirs.push(d);
  return d;
}

/** `n` flows from each exporter, source ports from + 0 .. from + n − 1, 30 per datagram. */
async function sendFlows(svc: Service, from: number, n: number): Promise<void> {
  for (const e of EXPORTERS) {
    const client = await udpClient("udp4", e);
    try {
      for (let i = 0; i < n; i += 30) {
        await send(client, netflowV5(from + i, from + i, Math.min(30, n - i)), svc.udpPorts[0]!, "127.0.0.1");
      }
    } finally {
      client.close();
    }
  }
}

function writeConfig(dir: string, outputs: unknown[]): string {
  const file = join(dir, "collector.json");
  writeFileSync(file, JSON.stringify({ outputs }));
  return file;
}

const FAST = {
  retry_base_ms: 50,
  retry_max_ms: 300,
  breaker_reset_ms: 200,
  breaker_max_reset_ms: 500,
  timeout_ms: 3000,
  connect_timeout_ms: 1000,
  linger_ms: 200,
};

async function kafkaSinkStats(svc: Service, uri: string): Promise<Record<string, number>> {
  const sinks = (await getJson(svc.httpPort, "/metrics")).body.sinks as Record<
    string,
    Record<string, number>
  >;
  return sinks[uri] ?? {};
}

/** Source ports per exporter (key) in partition order; checks key = exporter and one partition each. */
function portsByExporter(bootstrap: string, topic: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const part = new Map<string, number>();
  const msgs = consumeAll(bootstrap, topic).sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  for (const m of msgs) {
    const key = m.key?.toString() ?? "";
    const pb = decodeProto(undelimit(m.value), FIELDS);
    assert.equal(key, [...(pb.sampler_address as Uint8Array)].join("."), "key = exporter address");
    assert.ok((part.get(key) ?? m.partition) === m.partition, `exporter ${key} stays in one partition`);
    part.set(key, m.partition);
    out.set(key, [...(out.get(key) ?? []), Number(pb.src_port ?? 0n)]); // proto3: 0 is not written
  }
  return out;
}

describe("kafka output end to end", () => {
  it("every flow sent over UDP arrives in the topic exactly as the JSON lines of the same run say", async (t) => {
    const bin = buildMock(t);
    if (!bin) return;
    const mock = await MockCluster.start(bin, 3);
    t.after(() => mock.close());
    await mock.command("topic flows 6 3");
    const dir = tmp();
    const uri = `kafka://${mock.bootstrap}/flows`;
    const jsonl = join(dir, "flows.jsonl");
    const config = writeConfig(dir, [{ uri, ...FAST }, `jsonl:${jsonl}`]);
    const svc = await startService(
      loopbackArgs("--data-dir", dir, "--config", config, "--batch-interval", "0.2", "--workers", "2"),
    );
    await sendFlows(svc, 1000, 300);
    await waitFor(
      "600 flows acknowledged by Kafka",
      async () => (await kafkaSinkStats(svc, uri)).sent === 600,
      30_000,
    );
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0, svc.stderr.join("\n"));

    const lines = readFileSync(jsonl, "utf8").trim().split("\n").map(parseJsonExact);
    assert.equal(lines.length, 600);
    const byId = new Map(lines.map((j) => [`${j.sampler_address}/${j.src_port}`, j]));
    const msgs = consumeAll(mock.bootstrap, "flows");
    assert.equal(msgs.length, 600);
    const seen = new Set<string>();
    for (const m of msgs) {
      const pb = decodeProto(undelimit(m.value), FIELDS);
      const id = `${[...(pb.sampler_address as Uint8Array)].join(".")}/${pb.src_port ?? 0n}`;
      const json = byId.get(id);
      assert.ok(json, `message ${id} has a JSON line`);
      assert.deepEqual(protoVersusJson(pb, json, protoName), [], id);
      seen.add(id);
    }
    assert.equal(seen.size, 600);
    const ports = portsByExporter(mock.bootstrap, "flows");
    const want = Array.from({ length: 300 }, (_, i) => 1000 + i);
    for (const e of EXPORTERS) assert.deepEqual(ports.get(e), want, `exporter ${e}: in order`);
    assert.notEqual(
      msgs.find((m) => m.key?.toString() === EXPORTERS[0])?.partition,
      undefined,
      "exporter 1 has a partition",
    );
  });

  it("brokers down, SIGKILL during the outage, restart after they are back: nothing lost, order kept", async (t) => {
    const bin = buildMock(t);
    if (!bin) return;
    const mock = await MockCluster.start(bin, 3);
    t.after(() => mock.close());
    await mock.command("topic outage 4 3");
    const dir = tmp();
    const uri = `kafka://${mock.bootstrap}/outage`;
    const config = writeConfig(dir, [{ uri, ...FAST }]);
    const args = loopbackArgs("--data-dir", dir, "--config", config, "--batch-interval", "0.2");
    let svc = await startService(args);
    await sendFlows(svc, 0, 60);
    await waitFor("first flows delivered", async () => (await kafkaSinkStats(svc, uri)).sent === 120, 30_000);

    for (const id of [1, 2, 3]) await mock.command(`down ${id}`);
    await sendFlows(svc, 60, 240);
    await waitFor(
      "the outage's flows spooled",
      async () => (await kafkaSinkStats(svc, uri)).spool_records === 480,
      30_000,
    );
    await waitFor(
      "/health degraded while Kafka is unreachable",
      async () => {
        const h = await getJson(svc.httpPort, "/health");
        return h.body.status === "degraded" && JSON.stringify(h.body.reasons).includes(uri);
      },
      30_000,
    );
    const prom = await (
      await fetch(`http://127.0.0.1:${svc.httpPort}/metrics`, { headers: { accept: "text/plain" } })
    ).text();
    assert.match(prom, /clarion_collector_kafka_spool_records\{sink="[^"]+",topic="outage"\} 480/);
    assert.match(prom, /clarion_collector_kafka_messages_total\{sink="[^"]+",topic="outage"\} 120/);
    svc.proc.kill("SIGKILL");
    await svc.exited;
    await sleep(1000);
    for (const id of [1, 2, 3]) await mock.command(`up ${id}`);

    svc = await startService(args);
    await waitFor(
      "the spool delivered after the restart",
      async () => {
        const s = await kafkaSinkStats(svc, uri);
        return (s.sent ?? 0) >= 480 && s.pending === 0;
      },
      60_000,
    );
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0, svc.stderr.join("\n"));

    const ports = portsByExporter(mock.bootstrap, "outage");
    const want = Array.from({ length: 300 }, (_, i) => i);
    for (const e of EXPORTERS) {
      const got = ports.get(e) ?? [];
      assert.deepEqual(
        [...new Set(got)].sort((a, b) => a - b),
        want,
        `exporter ${e}: nothing lost`,
      );
      assert.deepEqual(
        got.filter((p, i) => got.indexOf(p) === i),
        want,
        `exporter ${e}: in order`,
      );
    }
  });

  // (every refused combination is in test/sinks/kafka.test.ts; here the exit code, at load and at open)
  it("exits 2 on bad TLS or SASL settings, naming the option", async () => {
    const dir = tmp();
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ uri: "kafka://127.0.0.1:1/t", tls_ca_file: "/etc/ssl/ca.pem" }, /tls_ca_file.*kafkas/],
      [{ uri: "kafka://127.0.0.1:1/t", sasl_username: "u", sasl_password: "p" }, /sasl_mechanism/],
      [{ uri: "kafkas://127.0.0.1:1/t", tls_ca_file: join(dir, "missing-ca.pem") }, /missing-ca\.pem/],
      [{ uri: "kafka://127.0.0.1:1/t", tls_ca: "x" }, /outputs\[0\]\.tls_ca/],
    ];
    for (const [output, re] of cases) {
      const config = writeConfig(dir, [output]);
      const r = spawnSync(process.execPath, [CLI, ...loopbackArgs("--data-dir", dir, "--config", config)], {
        encoding: "utf8",
        timeout: 30_000,
      });
      assert.equal(r.status, 2, `${JSON.stringify(output)}: ${r.stderr}`);
      assert.match(r.stderr, re, JSON.stringify(output));
    }
  });
});

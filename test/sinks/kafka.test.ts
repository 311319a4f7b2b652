/**
 * The Kafka sink against librdkafka's mock cluster (test/helpers/kafka-mock.c): delivery, ordering per key,
 * injected retriable and non-retriable errors, brokers down and back. Flows are built directly (the UDP
 * path is covered by test/integration/kafka.test.ts).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it, type TestContext } from "node:test";
import { ConfigError } from "../../src/core/errors.ts";
import { FlowRecord } from "../../src/core/flow.ts";
import { decodeFrames } from "../../src/encode/goflow2-pb.ts";
import {
  createKafkaEncoder,
  createKafkaSink,
  parseKafkaOptions,
  parseKafkaUri,
} from "../../src/sinks/kafka.ts";
import type { RemoteSinkStats, Sink } from "../../src/sinks/types.ts";
import {
  buildMock,
  consumeAll,
  decodeProto,
  flowMessageFields,
  MockCluster,
  undelimit,
} from "../helpers/kafka.ts";
import { sleep, waitFor } from "../helpers/service.ts";

const FIELDS = flowMessageFields();
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const quiet = { info() {}, warn() {}, error() {} };

/** Flows of `exporters` exporters, sequence_num counting per exporter from `from`. */
function flows(exporters: string[], perExporter: number, from = 0): FlowRecord[] {
  const out: FlowRecord[] = [];
  for (let i = 0; i < perExporter; i++) {
    for (const e of exporters) {
      const r = new FlowRecord();
      r.type = "IPFIX";
      r.sampler_address = e;
      r.switch_id = e;
      r.sequence_num = from + i + 1;
      r.time_received_ms = 1_733_380_000_000 + i;
      r.src_v4 = 0x0a000000 + i;
      r.dst_v4 = 0xc0a80001;
      r.bytes = 1000 + i;
      r.packets = 1;
      r.proto = 17;
      r.etype = 0x800;
      out.push(r);
    }
  }
  return out;
}

const FAST = {
  retryBaseMs: 50,
  retryMaxMs: 500,
  breakerResetMs: 200,
  breakerMaxResetMs: 1000,
  timeoutMs: 3000,
  connectTimeoutMs: 1000,
  fsync: "never",
  flushTimeoutMs: 30_000,
};

async function setup(
  t: TestContext,
  topic: string,
  partitions: number,
  options: Record<string, unknown> = {},
): Promise<{
  mock: MockCluster;
  sink: Sink;
  uri: string;
  dataDir: string;
  write(recs: FlowRecord[]): Promise<void>;
} | null> {
  const bin = buildMock(t);
  if (!bin) return null;
  const mock = await MockCluster.start(bin, 3);
  t.after(() => mock.close());
  await mock.command(`topic ${topic} ${partitions} 3`);
  const dataDir = mkdtempSync(join(tmpdir(), "kafka-sink-"));
  dirs.push(dataDir);
  const uri = `kafka://${mock.bootstrap}/${topic}`;
  const opts = { ...FAST, ...options };
  const enc = createKafkaEncoder(uri, opts);
  const sink = await createKafkaSink(uri, { dataDir, logger: quiet, options: opts });
  t.after(() => sink.close());
  return { mock, sink, uri, dataDir, write: (recs) => sink.write(enc.encode(recs)) };
}

const stats = (s: Sink): RemoteSinkStats => s.remoteStats!();

/** Consumed messages decoded: exporter (key) → sequence numbers in partition order. */
function sequencesByKey(bootstrap: string, topic: string): Map<string, number[]> {
  const byKey = new Map<string, number[]>();
  const partitionOf = new Map<string, number>();
  const msgs = consumeAll(bootstrap, topic).sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  for (const m of msgs) {
    const key = m.key!.toString();
    const pb = decodeProto(undelimit(m.value), FIELDS);
    const addr = [...(pb.sampler_address as Uint8Array)].join(".");
    assert.equal(key, addr, "key is the exporter address");
    const p = partitionOf.get(key);
    assert.ok(p === undefined || p === m.partition, `exporter ${key} in one partition`);
    partitionOf.set(key, m.partition);
    const list = byKey.get(key) ?? [];
    list.push(Number(pb.sequence_num));
    byKey.set(key, list);
  }
  return byKey;
}

function assertAllInOrder(
  byKey: Map<string, number[]>,
  exporters: string[],
  count: number,
  exact: boolean,
): void {
  for (const e of exporters) {
    const seqs = byKey.get(e) ?? [];
    const want = Array.from({ length: count }, (_, i) => i + 1);
    if (exact) {
      assert.deepEqual(seqs, want, `exporter ${e}: every flow once, in order`);
    } else {
      // at least once: every flow present; a retried unit may repeat a run, but never goes backwards
      // except to repeat it
      assert.deepEqual(
        [...new Set(seqs)].sort((a, b) => a - b),
        want,
        `exporter ${e}: every flow present`,
      );
      const firstSeen = seqs.filter((s, i) => seqs.indexOf(s) === i);
      assert.deepEqual(firstSeen, want, `exporter ${e}: first occurrences in order`);
    }
  }
}

describe("kafka sink", () => {
  it("delivers every flow once, keyed by exporter, in order per exporter", async (t) => {
    const s = await setup(t, "flows", 4);
    if (!s) return;
    const exporters = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "198.51.100.7"];
    for (let b = 0; b < 5; b++) await s.write(flows(exporters, 40, b * 40));
    await s.sink.flush();
    const st = stats(s.sink);
    assert.equal(st.delivered, 800);
    assert.equal(st.spoolRecords, 0);
    assertAllInOrder(sequencesByKey(s.mock.bootstrap, "flows"), exporters, 200, true);
    const names = s.sink.samples!().map((x) => `${x.name}=${x.value}`);
    assert.ok(names.includes("kafka_messages_total=800"), names.join(" "));
  });

  it("retriable errors: retried, nothing lost, counted by code", async (t) => {
    const s = await setup(t, "retry", 1);
    if (!s) return;
    // Produce (API key 0): NOT_LEADER_OR_FOLLOWER (6), REQUEST_TIMED_OUT (7), NOT_ENOUGH_REPLICAS (19)
    await s.mock.command("errors 0 6 7 19 19");
    for (let b = 0; b < 3; b++) await s.write(flows(["192.0.2.9"], 50, b * 50));
    await s.sink.flush();
    const st = stats(s.sink);
    assert.equal(st.spoolRecords, 0);
    const retries = s.sink.samples!().find((x) => x.name === "kafka_retries_total")?.value ?? 0;
    // NOT_LEADER_OR_FOLLOWER makes the client refresh metadata and resend at once; the others reach the
    // retry counters and the per-code error counters
    assert.ok(retries >= 1, `retries ${retries}`);
    assertAllInOrder(sequencesByKey(s.mock.bootstrap, "retry"), ["192.0.2.9"], 150, false);
    const codes = s.sink.samples!()
      .filter((x) => x.name === "kafka_errors_total")
      .map((x) => x.labels.code);
    assert.ok(codes.includes("REQUEST_TIMED_OUT") && codes.includes("NOT_ENOUGH_REPLICAS"), codes.join());
  });

  it("MESSAGE_TOO_LARGE splits the batch in halves until it goes through", async (t) => {
    const s = await setup(t, "large", 1);
    if (!s) return;
    await s.mock.command("errors 0 10 10");
    await s.write(flows(["192.0.2.10"], 100));
    await s.sink.flush();
    const st = stats(s.sink);
    assert.ok(st.splits >= 1, `splits ${st.splits}`);
    assert.equal(st.deadLettered, 0);
    assertAllInOrder(sequencesByKey(s.mock.bootstrap, "large"), ["192.0.2.10"], 100, false);
  });

  it("topic authorization refused: dead letter, health problem, later batches still delivered", async (t) => {
    const s = await setup(t, "authz", 1);
    if (!s) return;
    await s.mock.command("errors 0 29"); // TOPIC_AUTHORIZATION_FAILED
    await s.write(flows(["192.0.2.11"], 30));
    await s.sink.flush();
    await s.write(flows(["192.0.2.11"], 30, 30));
    await s.sink.flush();
    const st = stats(s.sink);
    assert.equal(st.deadLettered, 1);
    assert.equal(st.deadLetteredRecords, 30);
    assert.match(st.problem ?? "", /TOPIC_AUTHORIZATION_FAILED/);
    const dl = readFileSync(join(s.dataDir, "deadletter", readdirOne(join(s.dataDir, "deadletter"))), "utf8");
    const entry = JSON.parse(dl.trim().split("\n")[0]!) as {
      messages?: { key: string; value_base64: string }[];
    };
    assert.equal(entry.messages?.length, 30);
    const first = decodeProto(undelimit(Buffer.from(entry.messages![0]!.value_base64, "base64")), FIELDS);
    assert.equal(first.sequence_num, 1n);
    const seqs = sequencesByKey(s.mock.bootstrap, "authz").get("192.0.2.11");
    assert.deepEqual(
      seqs,
      Array.from({ length: 30 }, (_, i) => i + 31),
    );
  });

  it("every broker down for seconds, then up: nothing lost, order per exporter kept, health spooling meanwhile", async (t) => {
    const s = await setup(t, "outage", 3);
    if (!s) return;
    const exporters = ["192.0.2.21", "192.0.2.22"];
    await s.write(flows(exporters, 20));
    await s.sink.flush();
    for (const id of [1, 2, 3]) await s.mock.command(`down ${id}`);
    for (let b = 1; b < 6; b++) await s.write(flows(exporters, 20, b * 20));
    await waitFor("spooling while down", async () => stats(s.sink).spooling, 20_000);
    await sleep(3000);
    assert.ok(stats(s.sink).spoolRecords > 0);
    for (const id of [1, 2, 3]) await s.mock.command(`up ${id}`);
    await waitFor("spool drained", async () => stats(s.sink).spoolRecords === 0, 60_000);
    assert.equal(stats(s.sink).spooling, false);
    assertAllInOrder(sequencesByKey(s.mock.bootstrap, "outage"), exporters, 120, false);
  });
});

function readdirOne(dir: string): string {
  const files = readdirSync(dir);
  assert.equal(files.length, 1, `one dead-letter file in ${dir}`);
  return files[0]!;
}

describe("kafka options", () => {
  const uri = "kafka://127.0.0.1:9092/flows";
  const bad = (u: string, o: Record<string, unknown>): string => {
    try {
      parseKafkaOptions(u, o);
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.key;
    }
    assert.fail(`accepted ${JSON.stringify(o)}`);
  };

  it("parses broker lists, ports, IPv6 and TLS schemes", () => {
    assert.deepEqual(parseKafkaUri("kafka://a:9093,b,[::1]:19092/flows.v1"), {
      tls: false,
      brokers: ["a:9093", "b:9092", "[::1]:19092"],
      topic: "flows.v1",
    });
    assert.equal(parseKafkaUri("kafkas://k1/t").tls, true);
    for (const u of [
      "kafka://h/",
      "kafka:///t",
      "kafka://h/a/b",
      "kafka://u:p@h/t",
      "kafka://h:99999/t",
      "kafka://h/t t",
    ]) {
      assert.throws(() => parseKafkaUri(u), ConfigError, u);
    }
  });

  it("refuses bad TLS and SASL combinations, naming the key", () => {
    assert.equal(bad(uri, { tlsCaFile: "/x" }), "tls_ca_file");
    assert.equal(bad(uri, { tlsInsecure: true }), "tls_insecure");
    assert.equal(bad("kafkas://h/t", { tlsCertFile: "/c" }), "tls_key_file");
    assert.equal(bad(uri, { saslUsername: "u" }), "sasl_mechanism");
    assert.equal(bad(uri, { saslMechanism: "gssapi" }), "sasl_mechanism");
    assert.equal(bad(uri, { saslMechanism: "plain", saslPassword: "p" }), "sasl_username");
    assert.equal(bad(uri, { saslMechanism: "scram-sha-256", saslUsername: "u" }), "sasl_password");
    assert.equal(
      bad(uri, { saslMechanism: "plain", saslUsername: "u", saslPassword: "p", saslPasswordEnv: "E" }),
      "sasl_password",
    );
    assert.equal(bad(uri, { acks: 1 }), "idempotent");
    assert.equal(bad(uri, { format: "avro" }), "format");
    assert.equal(bad(uri, { keyFields: ["src_addr", "nope"] }), "key_fields");
    assert.equal(bad(uri, { compression: "brotli" }), "compression");
    const ok = parseKafkaOptions("kafkas://h/t", {
      saslMechanism: "scram-sha-512",
      saslUsername: "u",
      saslPasswordEnv: "X",
      tlsCaFile: "/ca",
      acks: "1",
      idempotent: false,
      keyFields: "src_addr, dst_addr",
    });
    assert.equal(ok.acks, 1);
    assert.deepEqual(ok.keyFields, ["src_addr", "dst_addr"]);
    assert.equal(parseKafkaOptions(uri, {}).acks, -1);
    assert.equal(parseKafkaOptions(uri, {}).format, "protobuf");
  });

  it("the encoder's frames hold one message per flow", () => {
    const enc = createKafkaEncoder(uri, { batchSize: 2 });
    const b = enc.encode(flows(["192.0.2.1"], 5));
    assert.deepEqual(
      b.parts.map((p) => decodeFrames(p.data).length),
      [2, 2, 1],
    );
    assert.equal(enc.flushIntervalMs, 1000);
  });
});

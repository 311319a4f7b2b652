/**
 * The streaming encoders (SinkEncoder.append/cut, src/sinks/types.ts) of jsonl, sqlite and Kafka, fed as the
 * receive worker feeds them: one record at a time, with the decoder refilling one record for every flow
 * (RecordHandler.scratch).
 * - Byte-identical to the batch path: the golden files test/fixtures/golden/goflow2/*.jsonl and
 *   sqlite/columnar.txt (the latter written by the batch encoder before streaming existed, commit 8b549cb;
 *   `node tools/golden.ts` regenerates it with today's `encode`).
 * - No reference into the record is kept: a record overwritten after `append` (before `cut`) does not
 *   change the batch.
 * - A failing `append` leaves the open batch as it was.
 * - Kafka: the frames of records appended through a refilled record by two outputs at once (protobuf and
 *   JSON, interleaved with the module's single-message encoder) equal the single-record encoders' values.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { DecodeError } from "../../src/core/errors.ts";
import { FlowRecord } from "../../src/core/flow.ts";
import { encodeGoflow2 } from "../../src/encode/goflow2.ts";
import { decodeFrames, encodeFlowMessageDelimited } from "../../src/encode/goflow2-pb.ts";
import { FlowDecoder } from "../../src/protocols/decoder.ts";
import { createGoflow2LinesEncoder } from "../../src/sinks/jsonl.ts";
import { createKafkaEncoder } from "../../src/sinks/kafka.ts";
import { createSqliteEncoder, decodeColumnar } from "../../src/sinks/sqlite/columnar.ts";
import type { EncodedBatch, SinkEncoder } from "../../src/sinks/types.ts";
import { caseDatagrams } from "../helpers/corpus.ts";
import { CRAFTED } from "../helpers/goflow2-records.ts";
import {
  firstDifference,
  GOFLOW2_PER_CASE,
  GOLDEN_DIR,
  loadCorpus,
  SQLITE_GOLDEN_BATCH,
} from "../helpers/golden.ts";

const corpus = loadCorpus();

/**
 * Decodes a corpus case as test/helpers/corpus.ts decodeCase does, but with one refilled record: `flow` gets
 * the decoder's record. Returns how many flows came in the refilled record itself.
 */
function decodeRefilled(c: (typeof corpus)[number], flow: (r: FlowRecord) => void): number {
  const decoder = new FlowDecoder({ now: () => Date.UTC(2020, 0, 1) });
  const scratch = new FlowRecord();
  let refilled = 0;
  for (const { payload } of caseDatagrams(c)) {
    try {
      decoder.decode(
        { payload, exporter: "192.0.2.10", port: 2055, receivedAtMs: 1_600_000_000_000, listener: "" },
        {
          flow: (r) => {
            if (r === scratch) refilled++;
            flow(r);
          },
          scratch,
        },
      );
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
    }
  }
  return refilled;
}

function text(b: EncodedBatch): string {
  return b.parts.map((p) => new TextDecoder().decode(p.data)).join("");
}

function streaming(enc: SinkEncoder): { append: (r: FlowRecord) => void; cut: () => EncodedBatch } {
  assert.ok(enc.append !== undefined && enc.cut !== undefined, "the encoder streams");
  return { append: enc.append.bind(enc), cut: enc.cut.bind(enc) };
}

describe("streaming encoders give the batch path's bytes", () => {
  it("jsonl: the corpus flows decoded into one refilled record give the golden GoFlow2 lines", () => {
    let actual = "";
    let refilled = 0;
    for (const c of corpus) {
      const enc = streaming(createGoflow2LinesEncoder("jsonl:-"));
      let n = 0;
      refilled += decodeRefilled(c, (r) => {
        if (n++ < GOFLOW2_PER_CASE) enc.append(r);
      });
      actual += text(enc.cut());
    }
    assert.ok(refilled > 300, `flows decoded into the refilled record: ${refilled}`);
    const golden = readFileSync(new URL("goflow2/corpus.jsonl", GOLDEN_DIR), "utf8");
    assert.equal(firstDifference(golden, actual), null);
  });

  it("jsonl: the crafted records copied one by one into one record give the golden lines", () => {
    const enc = streaming(createGoflow2LinesEncoder("jsonl:-"));
    const r = new FlowRecord();
    for (const [, make] of CRAFTED) enc.append(Object.assign(r.clear(), make()));
    const b = enc.cut();
    assert.equal(b.records, CRAFTED.length);
    const golden = readFileSync(new URL("goflow2/crafted.jsonl", GOLDEN_DIR), "utf8");
    assert.equal(firstDifference(golden, text(b)), null);
  });

  it("sqlite: every corpus flow in one refilled record, cut every 97, gives the batch encoder's documents", () => {
    const enc = streaming(createSqliteEncoder("sqlite:golden"));
    const lines: string[] = [];
    let n = 0;
    const append = (r: FlowRecord): void => {
      enc.append(r);
      if (++n % SQLITE_GOLDEN_BATCH === 0) {
        const b = enc.cut();
        assert.equal(b.records, SQLITE_GOLDEN_BATCH);
        lines.push(Buffer.from(b.parts[0]!.data).toString("base64"));
      }
    };
    let refilled = 0;
    for (const c of corpus) refilled += decodeRefilled(c, append);
    assert.ok(refilled > 300, `flows decoded into the refilled record: ${refilled}`);
    const r = new FlowRecord();
    for (const [, make] of CRAFTED) append(Object.assign(r.clear(), make()));
    const last = enc.cut();
    assert.equal(last.records, n % SQLITE_GOLDEN_BATCH);
    lines.push(Buffer.from(last.parts[0]!.data).toString("base64"));
    const golden = readFileSync(new URL("sqlite/columnar.txt", GOLDEN_DIR), "utf8").trimEnd().split("\n");
    assert.equal(lines.length, golden.length);
    for (let i = 0; i < golden.length; i++) assert.ok(lines[i] === golden[i], `batch ${i} differs`);
  });

  it("an empty cut is an empty batch, and the next batch starts afresh", () => {
    for (const make of [() => createGoflow2LinesEncoder("x"), () => createSqliteEncoder("x")]) {
      const enc = streaming(make());
      assert.deepEqual(enc.cut(), { sink: "x", records: 0, parts: [], oldestMs: 0 });
      const [, a] = CRAFTED[0]!;
      enc.append(a());
      assert.equal(enc.cut().records, 1);
      assert.deepEqual(enc.cut(), { sink: "x", records: 0, parts: [], oldestMs: 0 });
    }
  });
});

describe("streaming encoders keep nothing of the record", () => {
  for (const [name, make] of [
    ["jsonl", () => createGoflow2LinesEncoder("x")],
    ["sqlite", () => createSqliteEncoder("x")],
  ] as const) {
    it(`${name}: overwriting the record after append changes nothing in the batch`, () => {
      const records = CRAFTED.map(([, m]) => m());
      const expected = make().encode(records);
      const enc = streaming(make());
      const r = new FlowRecord();
      for (const x of records) {
        enc.append(Object.assign(r.clear(), x));
        // what a decoder does next: clear and refill, with other values (a later flow)
        Object.assign(r.clear(), records[(records.indexOf(x) + 3) % records.length]!);
        r.extra = { mutated: 1 };
        r.src_port = 4242;
        r.time_received_ms = 1;
      }
      const b = enc.cut();
      assert.equal(b.records, records.length);
      assert.equal(b.oldestMs, expected.oldestMs);
      assert.ok(Buffer.from(b.parts[0]!.data).equals(Buffer.from(expected.parts[0]!.data)));
    });

    it(`${name}: a failing append leaves the open batch as it was`, () => {
      const [, a] = CRAFTED[0]!;
      const [, c] = CRAFTED[2]!;
      const enc = streaming(make());
      enc.append(a());
      const bad = c();
      // a field each reads late, after most of the record was written
      Object.defineProperty(bad, name === "jsonl" ? "reverse_packets" : "application_name", {
        get() {
          throw new Error("boom");
        },
      });
      assert.throws(() => enc.append(bad), /boom/);
      enc.append(c());
      const b = enc.cut();
      assert.equal(b.records, 2);
      if (name === "jsonl") {
        assert.equal(text(b), text(make().encode([a(), c()])));
      } else {
        const got = decodeColumnar(b.parts[0]!.data);
        const want = decodeColumnar(make().encode([a(), c()]).parts[0]!.data);
        assert.equal(got.rows, 2);
        assert.deepEqual(got.num, want.num);
        const strings = (d: typeof got): (string | null)[] =>
          [...d.txt].map((k) => (k < 0 ? null : d.strings[k]!));
        assert.deepEqual(strings(got), strings(want));
        assert.deepEqual(got.exporters, want.exporters);
      }
    });
  }
});

describe("Kafka streaming", () => {
  it("two outputs framing one refilled record each give the single-record encoders' bytes", () => {
    const pb = streaming(createKafkaEncoder("kafka://127.0.0.1:9092/pb", { batchSize: 50 }));
    const js = streaming(createKafkaEncoder("kafka://127.0.0.1:9092/js", { format: "json" }));
    const copies: FlowRecord[] = [];
    const probe = CRAFTED[2]![1]();
    const probeBytes = encodeFlowMessageDelimited(probe);
    for (const c of corpus.slice(0, 20))
      decodeRefilled(c, (r) => {
        copies.push(Object.assign(new FlowRecord(), r));
        pb.append(r);
        // another user of the protobuf module's buffer between appends changes nothing
        assert.deepEqual(encodeFlowMessageDelimited(probe), probeBytes);
        js.append(r);
      });
    assert.ok(copies.length > 100, `flows: ${copies.length}`);
    const a = pb.cut();
    const b = js.cut();
    assert.equal(a.records, copies.length);
    assert.equal(b.records, copies.length);
    assert.deepEqual(
      a.parts.map((p) => p.records),
      Array.from({ length: Math.ceil(copies.length / 50) }, (_x, i) => Math.min(50, copies.length - i * 50)),
    );
    const pbFrames = a.parts.flatMap((p) => decodeFrames(p.data));
    const jsFrames = b.parts.flatMap((p) => decodeFrames(p.data));
    for (let i = 0; i < copies.length; i++) {
      const r = copies[i]!;
      assert.equal(Buffer.from(pbFrames[i]!.key).toString(), r.sampler_address);
      assert.ok(
        Buffer.from(pbFrames[i]!.value).equals(Buffer.from(encodeFlowMessageDelimited(r))),
        `flow ${i}`,
      );
      assert.equal(Buffer.from(jsFrames[i]!.value).toString(), encodeGoflow2(r), `flow ${i}`);
    }
    assert.deepEqual(pb.cut(), { sink: "kafka://127.0.0.1:9092/pb", records: 0, parts: [], oldestMs: 0 });
  });
});

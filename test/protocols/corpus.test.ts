/**
 * Real vendor packets (test/fixtures/logstash, from logstash-codec-netflow): every case decodes, every stated
 * record count matches and every expected value of an element we decode matches. Each case is one collector
 * session with an empty template cache and one exporter address (the corpus README says why).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { DecodeError } from "../../src/core/errors.ts";
import type { DecodedElement, FlowRecord, MessageInfo, OptionsRecord } from "../../src/core/flow.ts";
import { FlowDecoder } from "../../src/protocols/decoder.ts";

const DIR = new URL("../fixtures/logstash/", import.meta.url);

interface Expected {
  record: number;
  field: string;
  kind: string;
  ie?: { enterprise: number; id: number };
  value: unknown;
  value_check: string;
  wire_value?: number | string;
  locator: { file: string; message_index: number };
}
interface Case {
  name: string;
  version: number;
  files: string[];
  expected_record_count: number | null;
  expected_record_count_min?: number;
  expect_no_crash?: boolean;
  expected: Expected[];
  file_info: { file: string; datagrams?: { offset: number; length: number }[] }[];
}

// Wire values above 2^53 stay exact: the reviver reads their source text (JSON.parse source access).
const manifest = JSON.parse(
  readFileSync(new URL("MANIFEST.json", DIR), "utf8"),
  (_k, v, ctx?: { source?: string }) =>
    typeof v === "number" && Number.isInteger(v) && !Number.isSafeInteger(v) && ctx?.source
      ? BigInt(ctx.source)
      : v,
) as Case[];

/** Values we deliberately do not compare, with the reason (none so far: add here with a reason). */
const NOT_CHECKED = new Map<string, string>();

interface Decoded {
  flow: FlowRecord | null;
  options: OptionsRecord | null;
  msg: MessageInfo;
  file: string;
  datagram: number;
}

function runCase(c: Case): { records: Decoded[]; errors: DecodeError[] } {
  const decoder = new FlowDecoder({ collectElements: true, now: () => Date.UTC(2020, 0, 1) });
  const records: Decoded[] = [];
  const errors: DecodeError[] = [];
  let msg: MessageInfo | null = null;
  let file = "";
  let datagram = 0;
  const handler = {
    message: (m: MessageInfo) => {
      msg = m;
    },
    flow: (r: FlowRecord) => records.push({ flow: r, options: null, msg: msg!, file, datagram }),
    options: (r: OptionsRecord) => records.push({ flow: null, options: r, msg: msg!, file, datagram }),
  };
  for (const f of c.files) {
    file = f;
    const data = readFileSync(new URL(f, DIR));
    const info = c.file_info.find((i) => i.file === f);
    const slices = info?.datagrams?.length ? info.datagrams : [{ offset: 0, length: data.length }];
    datagram = 0;
    for (const s of slices) {
      const payload = data.subarray(s.offset, s.offset + s.length);
      try {
        decoder.decode(
          { payload, exporter: "192.0.2.10", port: 2055, receivedAtMs: 1_600_000_000_000, listener: "" },
          handler,
        );
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
        errors.push(e);
      }
      datagram++;
    }
  }
  return { records, errors };
}

function elementOf(d: Decoded, e: Expected): DecodedElement | undefined {
  const list = d.flow?.elements ?? d.options?.elements ?? [];
  if (e.ie) return list.find((x) => x.pen === e.ie!.enterprise && x.id === e.ie!.id);
  return list.find((x) => x.name === e.field);
}

function same(actual: unknown, expected: unknown): boolean {
  if (typeof expected === "bigint")
    return (typeof actual === "string" || typeof actual === "bigint") && BigInt(actual) === expected;
  if (typeof expected === "number") {
    if (typeof actual === "number") return actual === expected;
    if (typeof actual === "string" && /^\d+$/.test(actual)) return BigInt(actual) === BigInt(expected);
    return false;
  }
  if (typeof expected === "string" && typeof actual === "string") {
    return actual === expected || actual.toLowerCase() === expected.toLowerCase();
  }
  if (typeof expected === "boolean") return actual === expected;
  return false;
}

function check(c: Case, d: Decoded, e: Expected): string | null {
  const want = e.value_check === "equal" ? e.value : e.wire_value;
  let got: unknown;
  if (e.kind === "header") {
    const key = e.field.slice("header.".length);
    if (key === "version") got = d.msg.version;
    else if (key === "sequenceNumber") got = d.msg.sequence;
    else if (key === "count") got = d.msg.count;
    else if (key === "exportTime") got = Math.floor(d.msg.exportTimeMs / 1000);
    else return `unknown header item ${key}`;
  } else if (e.kind === "set_header") {
    got = d.flow?.template_id ?? d.options?.template_id;
  } else if (e.kind === "v9_scope") {
    got = d.options?.scope.scopeSystem;
    if (typeof got === "bigint") got = Number(got);
  } else {
    const el = elementOf(d, e);
    if (!el) return `no element ${e.field} (${JSON.stringify(e.ie)}) in record ${e.record}`;
    if (e.kind === "iana" || e.kind.startsWith("iana (") || e.kind.startsWith("iana_reverse")) {
      if (el.name !== e.field)
        return `element ${JSON.stringify(e.ie)} is named ${el.name}, IANA says ${e.field}`;
    }
    got = el.value;
  }
  return same(got, want)
    ? null
    : `${c.name} record ${e.record} ${e.field}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`;
}

let compared = 0;

describe("logstash-codec-netflow corpus", () => {
  test("has all 54 cases and 1198 expected values", () => {
    assert.equal(manifest.length, 54);
    assert.equal(
      manifest.reduce((n, c) => n + c.expected.length, 0),
      1198,
    );
  });

  for (const c of manifest) {
    test(c.name, () => {
      const { records, errors } = runCase(c);
      if (c.expect_no_crash) return; // decoded to records or DecodeErrors only: runCase rethrows anything else
      assert.deepEqual(
        errors.map((e) => e.message),
        [],
        "valid samples decode without errors",
      );
      // Counts cover the first message of files that hold several (see the corpus README).
      const counted = records.filter((r) => r.datagram === 0);
      if (c.expected_record_count !== null)
        assert.equal(counted.length, c.expected_record_count, "record count");
      if (c.expected_record_count_min !== undefined) assert.ok(counted.length >= c.expected_record_count_min);
      const failures: string[] = [];
      for (const e of c.expected) {
        const reason = NOT_CHECKED.get(`${c.name}|${e.record}|${e.field}`);
        if (reason) continue;
        const d = records[e.record];
        if (!d) {
          failures.push(`record ${e.record} missing (have ${records.length})`);
          continue;
        }
        const f = check(c, d, e);
        if (f) failures.push(f);
        compared++;
      }
      assert.deepEqual(failures, []);
    });
  }

  test("every expected value was compared (none skipped but those listed with a reason)", () => {
    assert.equal(compared + NOT_CHECKED.size, 1198);
  });
});

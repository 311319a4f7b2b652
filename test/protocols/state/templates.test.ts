/**
 * Template-state bounds (issue 12 item 2): fields per template, templates per session, sessions, and a
 * memory budget with least-recently-used eviction; every refusal and eviction counted, in total and per
 * exporter. And the paged view of the store (FlowDecoder.templatePage).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { FlowRecord } from "../../../src/core/flow.ts";
import { type DecoderOptions, FlowDecoder } from "../../../src/protocols/decoder.ts";
import { FIELD_BYTES, TEMPLATE_BYTES } from "../../../src/protocols/state/templates.ts";
import { type FieldSpec, record, set, v9Packet, v9Template } from "../../helpers/netflow-builder.ts";

const FIELDS: FieldSpec[] = [
  [8, 4],
  [12, 4],
  [4, 1],
];

function collector(opts: Partial<DecoderOptions> = {}) {
  let now = 1_700_000_000_000;
  const decoder = new FlowDecoder({ now: () => now, ...opts });
  const flows: FlowRecord[] = [];
  return {
    decoder,
    flows,
    feed(payload: Buffer, exporter = "192.0.2.1", port = 40000) {
      decoder.decode(
        { payload, exporter, port, receivedAtMs: now, listener: "" },
        { flow: (r) => flows.push(r) },
      );
    },
    advance(ms: number) {
      now += ms;
    },
    exporter(name: string) {
      return decoder.exporters().find((e) => e.exporter === name)!;
    },
  };
}

/** A template of n fields (octetDeltaCount repeated: the layout is what matters). */
const wide = (n: number): FieldSpec[] => Array.from({ length: n }, () => [1, 4] as FieldSpec);

describe("template-state bounds", () => {
  test("fields per template: the default accepts 1024 fields and refuses 1025", () => {
    const c = collector();
    c.feed(v9Packet([set(0, v9Template(256, wide(1024)))]));
    c.feed(v9Packet([set(0, v9Template(257, wide(1025)))]));
    assert.deepEqual(
      c.decoder.templates().map((t) => [t.id, t.fields.length]),
      [[256, 1024]],
    );
    assert.deepEqual(c.decoder.stats.templatesRefused, { too_many_fields: 1 });
    assert.equal(c.exporter("192.0.2.1").templatesRefused, 1);
  });

  test("templates per session: new ids beyond the cap are refused, known ones still refresh and decode", () => {
    const c = collector({ templateMaxPerSession: 2 });
    c.feed(
      v9Packet([
        set(0, [...v9Template(256, FIELDS), ...v9Template(257, FIELDS), ...v9Template(258, FIELDS)]),
      ]),
    );
    c.feed(
      v9Packet([set(0, v9Template(256, FIELDS)), set(256, record(FIELDS, ["10.0.0.1", "10.0.0.2", 6]))]),
    );
    assert.deepEqual(
      c.decoder.templates().map((t) => t.id),
      [256, 257],
    );
    assert.equal(c.flows.length, 1);
    assert.deepEqual(c.decoder.stats.templatesRefused, { session_full: 1 });
    // another session (port) of the same exporter has its own room
    c.feed(v9Packet([set(0, v9Template(258, FIELDS))]), "192.0.2.1", 40001);
    assert.equal(c.decoder.templateCount(), 3);
  });

  test("sessions: a new session beyond the cap is refused, for templates and for held data", () => {
    const c = collector({ templateMaxSessions: 2 });
    for (const ex of ["192.0.2.1", "192.0.2.2", "192.0.2.3"])
      c.feed(v9Packet([set(0, v9Template(256, FIELDS))]), ex);
    c.feed(v9Packet([set(300, record(FIELDS, ["10.0.0.1", "10.0.0.2", 6]))]), "192.0.2.4");
    assert.deepEqual(
      c.decoder.templates().map((t) => t.exporter),
      ["192.0.2.1", "192.0.2.2"],
    );
    assert.deepEqual(c.decoder.stats.templatesRefused, { too_many_sessions: 2 });
    assert.equal(c.exporter("192.0.2.3").templatesRefused, 1);
    assert.equal(c.decoder.heldCount(), 0);
    assert.equal(c.decoder.stats.missingTemplateDrops, 1);
  });

  test("memory budget: the least recently used templates are evicted, and counted per exporter", () => {
    const one = TEMPLATE_BYTES + FIELD_BYTES * FIELDS.length;
    const c = collector({ templateMaxBytes: one * 3 });
    c.feed(v9Packet([set(0, v9Template(256, FIELDS))]), "192.0.2.1");
    c.advance(1000);
    c.feed(v9Packet([set(0, v9Template(256, FIELDS))]), "192.0.2.2");
    c.advance(1000);
    c.feed(v9Packet([set(0, v9Template(256, FIELDS))]), "192.0.2.3");
    c.advance(1000);
    // exporter 1 uses its template: now 2 is the least recently used
    c.feed(v9Packet([set(256, record(FIELDS, ["10.0.0.1", "10.0.0.2", 6]))]), "192.0.2.1");
    c.advance(1000);
    c.feed(v9Packet([set(0, v9Template(256, FIELDS))]), "192.0.2.4");
    const left = c.decoder.templates().map((t) => t.exporter);
    assert.ok(!left.includes("192.0.2.2"), `evicted the least recently used: ${left}`);
    assert.ok(left.includes("192.0.2.1") && left.includes("192.0.2.4"));
    assert.ok(left.length <= 3);
    assert.equal(c.decoder.stats.templatesEvicted, 4 - left.length);
    assert.equal(c.exporter("192.0.2.2").templatesEvicted, 1);
  });
});

describe("templatePage", () => {
  test("orders by exporter, port, version, domain, id; filters by exporter; pages with offset/limit", () => {
    const c = collector();
    for (const ex of ["192.0.2.3", "192.0.2.1", "192.0.2.2"])
      c.feed(v9Packet([set(0, [...v9Template(257, FIELDS), ...v9Template(256, FIELDS)])]), ex);
    const page = c.decoder.templatePage({ offset: 1, limit: 3 });
    assert.equal(page.total, 6);
    assert.deepEqual(
      page.templates.map((t) => `${t.exporter}/${t.id}`),
      ["192.0.2.1/257", "192.0.2.2/256", "192.0.2.2/257"],
    );
    const one = c.decoder.templatePage({ offset: 0, limit: 10, exporter: "192.0.2.3" });
    assert.equal(one.total, 2);
    assert.deepEqual(
      one.templates.map((t) => t.id),
      [256, 257],
    );
  });
});

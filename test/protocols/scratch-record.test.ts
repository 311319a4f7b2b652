/**
 * RecordHandler.scratch: a decoder that refills one record per flow (every protocol: NetFlow v5, v9 and
 * IPFIX data sets, sFlow flow samples) yields, flow by flow, what it yields with a new record per flow (every vendor capture of the corpus, each its own session; the records copied
 * as the parquet archive copies them, before `flow` returns). A field left over from the previous flow
 * (clear() missing one, a decoder that only sets what it saw) shows as a difference.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { DecodeError } from "../../src/core/errors.ts";
import { FlowRecord } from "../../src/core/flow.ts";
import { FlowDecoder } from "../../src/protocols/decoder.ts";

const DIR = new URL("../fixtures/logstash/", import.meta.url);
interface Case {
  name: string;
  files: string[];
  file_info: { file: string; datagrams?: { offset: number; length: number }[] }[];
}
const manifest = JSON.parse(readFileSync(new URL("MANIFEST.json", DIR), "utf8")) as Case[];

/** Every flow of a case, copied (own fields plus the address texts) when `flow` is called. */
let refilled = 0;
function decodeCase(c: Case, scratch: FlowRecord | undefined): object[] {
  const decoder = new FlowDecoder({ now: () => Date.UTC(2020, 0, 1) });
  const out: object[] = [];
  const handler = {
    flow: (r: FlowRecord) => {
      if (r === scratch) refilled++;

      out.push({ ...r, src: r.src_addr, dst: r.dst_addr, nh: r.next_hop });
    },
    ...(scratch !== undefined ? { scratch } : {}),
  };
  for (const f of c.files) {
    const data = readFileSync(new URL(f, DIR));
    const info = c.file_info.find((i) => i.file === f);
    const slices = info?.datagrams?.length ? info.datagrams : [{ offset: 0, length: data.length }];
    for (const s of slices) {
      try {
        decoder.decode(
          {
            payload: data.subarray(s.offset, s.offset + s.length),
            exporter: "192.0.2.10",
            port: 2055,
            receivedAtMs: 1_600_000_000_000,
            listener: "",
          },
          handler,
        );
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
      }
    }
  }
  return out;
}

test("a refilled scratch record yields the same flows as a new record per flow (vendor corpus)", () => {
  let flows = 0;
  for (const c of manifest) {
    const fresh = decodeCase(c, undefined);
    const reused = decodeCase(c, new FlowRecord());
    assert.deepEqual(reused, fresh, c.name);
    flows += fresh.length;
  }
  assert.ok(flows > 300, `the corpus has flows to compare (${flows})`);
  assert.equal(refilled, flows, "every flow came through the scratch record");
});

/**
 * The logstash corpus (test/fixtures/logstash, its README says how to feed it): the manifest, each case's
 * datagrams in feeding order, and a case decoded as the golden files record it (one fresh decoder per
 * case, one exporter address, fixed clocks).
 */
import { readFileSync } from "node:fs";
import { DecodeError } from "../../src/core/errors.ts";
import type { FlowRecord, OptionsRecord } from "../../src/core/flow.ts";
import { FlowDecoder } from "../../src/protocols/decoder.ts";

export const CORPUS_DIR = new URL("../fixtures/logstash/", import.meta.url);

/** A case of the corpus manifest (the fields used here; test/fixtures/logstash/README.md has them all). */
export interface CorpusCase {
  name: string;
  files: string[];
  file_info: { file: string; datagrams?: { offset: number; length: number }[] }[];
}

export function loadCorpus(): CorpusCase[] {
  return JSON.parse(readFileSync(new URL("MANIFEST.json", CORPUS_DIR), "utf8")) as CorpusCase[];
}

/** A case's datagrams in feeding order: `at` is "<file>#<index of the datagram in the file>". */
export function* caseDatagrams(c: CorpusCase): Generator<{ at: string; payload: Buffer }> {
  for (const f of c.files) {
    const data = readFileSync(new URL(f, CORPUS_DIR));
    const info = c.file_info.find((i) => i.file === f);
    const slices = info?.datagrams?.length ? info.datagrams : [{ offset: 0, length: data.length }];
    for (let i = 0; i < slices.length; i++) {
      const s = slices[i]!;
      yield { at: `${f}#${i}`, payload: data.subarray(s.offset, s.offset + s.length) };
    }
  }
}

/** One case decoded by a fresh decoder: the records in order, the decoder, the DecodeErrors thrown. */
export function decodeCase(c: CorpusCase): {
  records: { at: string; flow: FlowRecord | null; options: OptionsRecord | null }[];
  decoder: FlowDecoder;
  thrown: string[];
} {
  const decoder = new FlowDecoder({ now: () => Date.UTC(2020, 0, 1) });
  const records: { at: string; flow: FlowRecord | null; options: OptionsRecord | null }[] = [];
  const thrown: string[] = [];
  for (const { at, payload } of caseDatagrams(c)) {
    try {
      decoder.decode(
        { payload, exporter: "192.0.2.10", port: 2055, receivedAtMs: 1_600_000_000_000, listener: "" },
        {
          flow: (r) => records.push({ at, flow: r, options: null }),
          options: (r) => records.push({ at, flow: null, options: r }),
        },
      );
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      thrown.push(`${at}: ${e.code}: ${e.message}`);
    }
  }
  return { records, decoder, thrown };
}

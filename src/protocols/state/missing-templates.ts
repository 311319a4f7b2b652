/**
 * Data sets lost for want of a template (issue 11 §2), per exporter and template id: dropped (the hold
 * expired or overflowed, or holding is off) and still held (waiting in the decoder's hold). The decoder
 * front reports each drop (src/protocols/decoder.ts, marked h11-loss); its total stays
 * `DecoderStats.missingTemplateDrops`. Bounded: at most `maxEntries` (exporter, version, domain, template
 * id) keys; beyond that drops are counted under exporter "other".
 */

export interface MissingTemplateEntry {
  version: 9 | 10;
  domain: number;
  template_id: number;
  /** Data sets dropped because this template never arrived. */
  dropped: number;
  /** Data sets waiting for it now. */
  held: number;
}

export interface MissingTemplateExporterStats {
  exporter: string;
  droppedSets: number;
  heldSets: number;
  /** The templates of this exporter with the most sets dropped or held (at most `perExporter`). */
  templates: MissingTemplateEntry[];
}

/** A held data set, as the decoder lists them. */
export interface HeldSetKey {
  exporter: string;
  version: 9 | 10;
  domain: number;
  id: number;
}

interface Entry {
  exporter: string;
  version: 9 | 10;
  domain: number;
  id: number;
  dropped: number;
}

const OTHER = "other";

export class MissingTemplates {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  readonly #perExporter: number;

  constructor(opts: { maxEntries?: number; perExporter?: number } = {}) {
    this.#maxEntries = opts.maxEntries ?? 10_000;
    this.#perExporter = opts.perExporter ?? 16;
  }

  /** `n` data sets of template `id` from `exporter` were dropped. */
  dropped(exporter: string, version: 9 | 10, domain: number, id: number, n = 1): void {
    let key = `${exporter}|${version}|${domain}|${id}`;
    let e = this.#entries.get(key);
    if (e === undefined) {
      if (this.#entries.size >= this.#maxEntries) {
        key = `${OTHER}|${version}|0|0`;
        exporter = OTHER;
        domain = 0;
        id = 0;
        e = this.#entries.get(key);
      }
      if (e === undefined) {
        e = { exporter, version, domain, id, dropped: 0 };
        this.#entries.set(key, e);
      }
    }
    e.dropped += n;
  }

  /** Per exporter with a drop or a held set: totals and the templates concerned. */
  stats(held: Iterable<HeldSetKey>): MissingTemplateExporterStats[] {
    const by = new Map<string, Map<string, MissingTemplateEntry>>();
    const entry = (exporter: string, version: 9 | 10, domain: number, id: number): MissingTemplateEntry => {
      let m = by.get(exporter);
      if (m === undefined) {
        m = new Map();
        by.set(exporter, m);
      }
      const k = `${version}|${domain}|${id}`;
      let e = m.get(k);
      if (e === undefined) {
        e = { version, domain, template_id: id, dropped: 0, held: 0 };
        m.set(k, e);
      }
      return e;
    };
    for (const e of this.#entries.values()) entry(e.exporter, e.version, e.domain, e.id).dropped += e.dropped;
    for (const h of held) entry(h.exporter, h.version, h.domain, h.id).held++;
    const out: MissingTemplateExporterStats[] = [];
    for (const [exporter, m] of by) {
      const list = [...m.values()];
      let droppedSets = 0;
      let heldSets = 0;
      for (const e of list) {
        droppedSets += e.dropped;
        heldSets += e.held;
      }
      list.sort((a, b) => b.dropped + b.held - (a.dropped + a.held));
      out.push({ exporter, droppedSets, heldSets, templates: list.slice(0, this.#perExporter) });
    }
    return out;
  }
}

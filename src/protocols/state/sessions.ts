/**
 * Transport sessions (DESIGN §4): the templates and held data of one exporter address + source port (the
 * port is 0 for every session when templateScope is "exporter"), per protocol version. Looked up by
 * exporter, then version, then port, so the per-set lookup builds no key string.
 */
import type { Template } from "../template.ts";
import { HeldBudget, HeldSets } from "./held.ts";

/** Key of a template within its session: observation domain × 65536 + template id. */
export const templateKey = (domain: number, id: number): number => domain * 65536 + id;

/** One transport session (exporter + port, or exporter alone) of one version. */
export class Session {
  readonly exporter: string;
  readonly port: number;
  readonly version: 9 | 10;
  /** templateKey(domain, id) → template */
  readonly templates = new Map<number, Template>();
  readonly held: HeldSets;
  constructor(exporter: string, port: number, version: 9 | 10, budget: HeldBudget = new HeldBudget()) {
    this.exporter = exporter;
    this.port = port;
    this.version = version;
    this.held = new HeldSets(budget);
  }
}

interface ExporterSessions {
  v9: Map<number, Session>;
  v10: Map<number, Session>;
}

export class Sessions {
  readonly #byPort: boolean;
  readonly #byExporter = new Map<string, ExporterSessions>();
  /** Every session, in the order they were opened. */
  readonly #all = new Set<Session>();

  readonly #budget: HeldBudget;

  /**
   * `byPort`: the source port is part of the key (RFC 7011 §8); else one session per exporter address.
   * `budget`: the bytes all sessions' held sets may take together.
   */
  constructor(byPort: boolean, budget: HeldBudget = new HeldBudget()) {
    this.#byPort = byPort;
    this.#budget = budget;
  }

  get size(): number {
    return this.#all.size;
  }

  get(version: 9 | 10, exporter: string, port: number): Session | undefined {
    const e = this.#byExporter.get(exporter);
    if (e === undefined) return undefined;
    return (version === 9 ? e.v9 : e.v10).get(this.#byPort ? port : 0);
  }

  /** The session, opened when there is none. */
  open(version: 9 | 10, exporter: string, port: number): Session {
    const p = this.#byPort ? port : 0;
    let e = this.#byExporter.get(exporter);
    if (e === undefined) {
      e = { v9: new Map(), v10: new Map() };
      this.#byExporter.set(exporter, e);
    }
    const m = version === 9 ? e.v9 : e.v10;
    let s = m.get(p);
    if (s === undefined) {
      s = new Session(exporter, p, version, this.#budget);
      m.set(p, s);
      this.#all.add(s);
    }
    return s;
  }

  /**
   * The cross-port fallback (templateScope "fallback"): the most recently learned or refreshed template
   * `domain`/`id` of another session (source port) of the same exporter address and version.
   */
  fromOtherPort(
    version: 9 | 10,
    exporter: string,
    port: number,
    domain: number,
    id: number,
  ): { session: Session; template: Template } | undefined {
    const e = this.#byExporter.get(exporter);
    if (e === undefined) return undefined;
    const key = templateKey(domain, id);
    let best: { session: Session; template: Template } | undefined;
    for (const s of (version === 9 ? e.v9 : e.v10).values()) {
      if (s.port === port) continue;
      const t = s.templates.get(key);
      if (t !== undefined && (best === undefined || t.refreshedMs > best.template.refreshedMs))
        best = { session: s, template: t };
    }
    return best;
  }

  close(s: Session): void {
    if (!this.#all.delete(s)) return;
    const e = this.#byExporter.get(s.exporter);
    if (e === undefined) return;
    (s.version === 9 ? e.v9 : e.v10).delete(s.port);
    if (e.v9.size === 0 && e.v10.size === 0) this.#byExporter.delete(s.exporter);
  }

  /** The sessions of one exporter address and version (every source port). */
  ofExporter(version: 9 | 10, exporter: string): Iterable<Session> {
    const e = this.#byExporter.get(exporter);
    return e === undefined ? [] : (version === 9 ? e.v9 : e.v10).values();
  }

  values(): IterableIterator<Session> {
    return this.#all.values();
  }
}

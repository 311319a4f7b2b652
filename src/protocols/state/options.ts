/**
 * What options data taught us, per exporter + observation domain (+ source port when `samplingKeyByPort`):
 * sampling rates (per sampler/selector id, per PSAMP selection sequence, and without one) with the sampler
 * table they came from (what /exporters shows: each sampler's algorithm and parameters, including the
 * intervals of time-based selectors, which have no rate), interface names, the dictionaries of issue 18
 * (VRF id → name, VRF id → route distinguisher, application id → name), the exporter's system init time.
 * Keyed without the port by default because devices send options from another port (GoFlow2 #206).
 * Everything is bounded, since anyone who can reach the UDP ports can send options data: each map
 * (MAX_OPTION_ENTRIES), the entries of all maps of all states together (MAX_OPTION_TOTAL_ENTRIES: a
 * template evicted by the template budget does not take its options state with it, so the states' own total
 * is what bounds them), and the number of exporter + domain states (MAX_OPTION_STATES). A new key or state
 * beyond a bound is refused and counted (stats.optionEntriesRefused); a known key is updated.
 */

/** Entries per map of one exporter + domain (samplers, interfaces, VRFs, RDs, applications). */
export const MAX_OPTION_ENTRIES = 0xffff; // what templates.json accepts per map
/** Entries of every map of every state together (~100 bytes each: ~100 MB at the bound). */
export const MAX_OPTION_TOTAL_ENTRIES = 1_000_000;
/** Exporter + domain states (as many as template sessions: templateMaxSessions' default). */
export const MAX_OPTION_STATES = 50_000;

/** The entries every state's maps hold together, shared by the states of one store. */
export interface OptionBudget {
  entries: number;
  readonly max: number;
}

/**
 * Sets `k` → `v` in one of `os`'s maps unless a new key would grow it beyond MAX_OPTION_ENTRIES or the store
 * beyond its total; false when refused.
 */
export function setBounded<K, V>(os: OptionState, m: Map<K, V>, k: K, v: V): boolean {
  if (!m.has(k)) {
    if (m.size >= MAX_OPTION_ENTRIES || os.budget.entries >= os.budget.max) return false;
    os.budget.entries++;
  }
  m.set(k, v);
  return true;
}

/** Rows of one exporter + domain's sampler table (each row holds up to 14 parameters): real routers have a few. */
export const MAX_SAMPLER_ROWS = 4096;

/** Selection sequence (301) → selector ids (302) an options record listed: at most this many are kept. */
export const MAX_SEQUENCE_SELECTORS = 16;

/** One row of an exporter's sampler table (/exporters): what an options record said about a sampler. */
export interface SamplerInfo {
  /** What the id names: `sampler` (samplerId 48), `selector` (selectorId 302), `sequence`
   * (selectionSequenceId 301), or `domain` (no id: the observation domain's rate). */
  kind: "sampler" | "selector" | "sequence" | "domain";
  id: number;
  domain: number;
  /** The rate it announced (0: none, e.g. a time-based selector whose packets are not counted). */
  rate: number;
  /** The sampling elements it sent by IANA name (samplingTimeInterval µs, samplingPopulation …). */
  parameters: Record<string, number>;
  /** samplerName (84) / selectorName (335) when sent. */
  name?: string;
  /** For a sequence: the selectors it listed, in order. */
  selectors?: number[];
}

/** Per exporter + domain: what options data taught us. */
export class OptionState {
  readonly exporter: string;
  readonly port: number;
  readonly domain: number;
  /** Rate learned without a sampler/selector id (applies to every flow of the domain). */
  rate = 0;
  /** The last rate learned in any way: the fallback for flows naming no known sampler. */
  anyRate = 0;
  readonly bySampler = new Map<number, number>();
  /** selectionSequenceId (301) → rate announced for the sequence itself. */
  readonly bySequence = new Map<number, number>();
  /** selectionSequenceId → its selectors (302), whose rates multiply when the sequence has none itself. */
  readonly sequenceSelectors = new Map<number, number[]>();
  /** The sampler table, keyed `kind:id` (SamplerInfo); at most MAX_SAMPLER_ROWS rows. */
  readonly samplers = new Map<string, SamplerInfo>();
  readonly ifNames = new Map<number, string>();
  /** VRF id (234/235) → VRFname (236). */
  readonly vrfNames = new Map<number, string>();
  /** VRF id → mplsVpnRouteDistinguisher (90) as RFC 4364 text. */
  readonly rds = new Map<number, string>();
  /** applicationId (95, rendered as hex) → applicationName (96). */
  readonly appNames = new Map<string, string>();
  sysInitMs = 0;
  /** True once any of vrfNames, rds, appNames has an entry (one check per flow when none has). */
  dictionaries = false;
  /** The store's total, which every map of this state counts against (setBounded). */
  readonly budget: OptionBudget;
  constructor(exporter: string, port: number, domain: number, budget: OptionBudget) {
    this.exporter = exporter;
    this.port = port;
    this.domain = domain;
    this.budget = budget;
  }
}

/**
 * The rate of a selection sequence: its own when announced, else the product of its selectors' known rates
 * (selectors applied one after another, RFC 5476 §6.5.1); 0 when none is known.
 */
export function sequenceRate(os: OptionState, seq: number): number {
  const own = os.bySequence.get(seq);
  if (own !== undefined) return own;
  const selectors = os.sequenceSelectors.get(seq);
  if (selectors === undefined) return 0;
  let rate = 0;
  for (const id of selectors) {
    const r = os.bySampler.get(id);
    if (r !== undefined && r > 0) rate = (rate || 1) * r;
  }
  return rate;
}

export class OptionStore {
  readonly #byPort: boolean;
  /** exporter → (port × 2^32 + domain) → state; port 0 unless keyed by port. Exact: below 2^48. */
  readonly #byExporter = new Map<string, Map<number, OptionState>>();
  readonly #all: OptionState[] = [];
  readonly #maxStates: number;
  readonly budget: OptionBudget;

  constructor(byPort: boolean, limits: { maxStates?: number; maxEntries?: number } = {}) {
    this.#byPort = byPort;
    this.#maxStates = limits.maxStates ?? MAX_OPTION_STATES;
    this.budget = { entries: 0, max: limits.maxEntries ?? MAX_OPTION_TOTAL_ENTRIES };
  }

  get(exporter: string, port: number, domain: number): OptionState | undefined {
    return this.#byExporter.get(exporter)?.get((this.#byPort ? port : 0) * 4294967296 + domain);
  }

  /** The state, created when there is none; undefined when a new one would exceed the bound (MAX_OPTION_STATES). */
  open(exporter: string, port: number, domain: number): OptionState | undefined {
    const p = this.#byPort ? port : 0;
    let m = this.#byExporter.get(exporter);
    if (m === undefined) {
      m = new Map();
      this.#byExporter.set(exporter, m);
    }
    const key = p * 4294967296 + domain;
    let s = m.get(key);
    if (s === undefined) {
      if (this.#all.length >= this.#maxStates) {
        if (m.size === 0) this.#byExporter.delete(exporter);
        return undefined;
      }
      s = new OptionState(exporter, p, domain, this.budget);
      m.set(key, s);
      this.#all.push(s);
    }
    return s;
  }

  values(): readonly OptionState[] {
    return this.#all;
  }
}

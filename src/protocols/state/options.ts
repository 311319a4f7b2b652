/**
 * What options data taught us, per exporter + observation domain (+ source port when `samplingKeyByPort`):
 * sampling rates (per sampler/selector id and without one), interface names, the dictionaries of issue 18
 * (VRF id → name, VRF id → route distinguisher, application id → name), the exporter's system init time.
 * Keyed without the port by default because devices send options from another port (GoFlow2 #206).
 * Every map is bounded (MAX_OPTION_ENTRIES): a new key beyond it is refused and counted
 * (stats.optionEntriesRefused); a known key is updated.
 */

/** Entries per map of one exporter + domain (samplers, interfaces, VRFs, RDs, applications). */
export const MAX_OPTION_ENTRIES = 0xffff; // what templates.json accepts per map

/** Sets `k` → `v` unless that would grow `m` beyond MAX_OPTION_ENTRIES; false when refused. */
export function setBounded<K, V>(m: Map<K, V>, k: K, v: V): boolean {
  if (m.size >= MAX_OPTION_ENTRIES && !m.has(k)) return false;
  m.set(k, v);
  return true;
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
  constructor(exporter: string, port: number, domain: number) {
    this.exporter = exporter;
    this.port = port;
    this.domain = domain;
  }
}

export class OptionStore {
  readonly #byPort: boolean;
  /** exporter → (port × 2^32 + domain) → state; port 0 unless keyed by port. Exact: below 2^48. */
  readonly #byExporter = new Map<string, Map<number, OptionState>>();
  readonly #all: OptionState[] = [];

  constructor(byPort: boolean) {
    this.#byPort = byPort;
  }

  get(exporter: string, port: number, domain: number): OptionState | undefined {
    return this.#byExporter.get(exporter)?.get((this.#byPort ? port : 0) * 4294967296 + domain);
  }

  /** The state, created when there is none. */
  open(exporter: string, port: number, domain: number): OptionState {
    const p = this.#byPort ? port : 0;
    let m = this.#byExporter.get(exporter);
    if (m === undefined) {
      m = new Map();
      this.#byExporter.set(exporter, m);
    }
    const key = p * 4294967296 + domain;
    let s = m.get(key);
    if (s === undefined) {
      s = new OptionState(exporter, p, domain);
      m.set(key, s);
      this.#all.push(s);
    }
    return s;
  }

  values(): readonly OptionState[] {
    return this.#all;
  }
}

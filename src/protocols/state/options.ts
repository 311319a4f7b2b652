/**
 * What options data taught us, per exporter + observation domain (+ source port when `samplingKeyByPort`):
 * sampling rates (per sampler/selector id and without one), interface names, the exporter's system init
 * time. Keyed without the port by default because devices send options from another port (GoFlow2 #206).
 */

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
  sysInitMs = 0;
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

/**
 * The static sampling map (issue 18): sampling rates by exporter address or prefix, optionally by
 * observation domain, input interface and sampler/selector id, for exporters that never announce theirs
 * (many NetFlow v9 boxes). An announced rate (options data, the v5 header, the sFlow sample) wins unless the
 * entry says `override`.
 *
 * Entries come from the config (`sampling_map`, `--sampling-map`) as text
 * `PREFIX[@DOMAIN][%IF][#SAMPLER]=RATE[!]` (`!`: override), comma-separated, or in a config file as a list
 * of those strings or of objects `{exporter, domain?, interface?, sampler?, rate, override?}`.
 * `parseSamplingMap` validates them (the config exits 2 on a bad one).
 * - NetFlow v9 / IPFIX: PREFIX matches the exporter address, DOMAIN the observation domain (v9 source id),
 *   IF the flow's `in_if`, SAMPLER the flow's samplerId (48) or selectorId (302).
 * - NetFlow v5: the exporter address and `in_if` (the domain is 0, there is no sampler).
 * - sFlow v5: PREFIX matches the agent address, DOMAIN the sub-agent id, IF the sample's input interface,
 *   SAMPLER the data source index (source_id index; usually the ifIndex the sampler sits on).
 * The most specific entry matches: one naming a sampler before one that does not, then one naming an
 * interface, then one naming a domain, then the longest prefix (earlier in the list on a tie). The entries
 * for an exporter + domain are resolved once and cached (bounded); a flow then checks only the few naming an
 * interface or sampler.
 */
import { BlockList, isIP } from "node:net";

export interface SamplingMapEntry {
  /** Address or prefix as given ("192.0.2.1", "10.0.0.0/8", "2001:db8::/32"). */
  exporter: string;
  /** Observation domain (v9 source id; sFlow sub-agent id); null: any. */
  domain: number | null;
  /** Input interface (in_if); null: any. */
  interface: number | null;
  /** samplerId / selectorId (sFlow: data source index); null: any. */
  sampler: number | null;
  rate: number;
  override: boolean;
}

export interface StaticRate {
  rate: number;
  override: boolean;
}

/** The entries for one exporter + domain: the best one naming no interface nor sampler, and those that do. */
export interface StaticRates {
  base: StaticRate | null;
  /** Entries naming an interface and/or a sampler, most specific first; null when none matches the exporter. */
  keyed: readonly { ifIndex: number | null; sampler: number | null; value: StaticRate }[] | null;
}

/** Entries from config input, or an error message naming the bad entry. */
export function parseSamplingMap(v: unknown): SamplingMapEntry[] | string {
  if (v === null || v === undefined || v === "") return [];
  const items: unknown[] =
    typeof v === "string"
      ? v
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s !== "")
      : Array.isArray(v)
        ? v
        : [v];
  const out: SamplingMapEntry[] = [];
  for (const item of items) {
    const e = typeof item === "string" ? fromText(item) : fromObject(item);
    if (typeof e === "string") return `sampling map entry ${JSON.stringify(item)}: ${e}`;
    out.push(e);
  }
  if (out.length > 100_000) return "more than 100000 sampling map entries";
  return out;
}

const TEXT = /^([^@%#=\s]+)(?:@(\d+))?(?:%(\d+))?(?:#(\d+))?=(\d+)(!?)$/;
const SHAPE = "expected PREFIX[@DOMAIN][%IF][#SAMPLER]=RATE[!]";
const KEYS = ["exporter", "domain", "interface", "sampler", "rate", "override"];

function fromText(s: string): SamplingMapEntry | string {
  const m = TEXT.exec(s.trim());
  if (m === null) return SHAPE;
  const n = (x: string | undefined) => (x === undefined ? null : Number(x));
  return check(m[1]!, n(m[2]), n(m[3]), n(m[4]), Number(m[5]), m[6] === "!");
}

function fromObject(o: unknown): SamplingMapEntry | string {
  if (typeof o !== "object" || o === null)
    return "expected a string or {exporter, domain?, interface?, sampler?, rate, override?}";
  const r = o as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!KEYS.includes(k)) return `unknown key ${k}`;
  if (typeof r.exporter !== "string") return "exporter must be an address or prefix";
  if (r.override !== undefined && typeof r.override !== "boolean") return "override must be true or false";
  const n = (x: unknown) =>
    x === undefined || x === null
      ? null
      : typeof x === "number" || (typeof x === "string" && x !== "")
        ? Number(x)
        : Number.NaN;
  return check(r.exporter, n(r.domain), n(r.interface), n(r.sampler), Number(r.rate), r.override === true);
}

function check(
  exporter: string,
  domain: number | null,
  ifIndex: number | null,
  sampler: number | null,
  rate: number,
  override: boolean,
): SamplingMapEntry | string {
  if (prefixOf(exporter) === null) return `not an IP address or prefix: ${exporter}`;
  for (const [name, v] of [
    ["domain", domain],
    ["interface", ifIndex],
    ["sampler", sampler],
  ] as const)
    if (v !== null && !(Number.isInteger(v) && v >= 0 && v <= 0xffffffff))
      return `${name} must be an integer from 0 to 4294967295`;
  if (!(Number.isInteger(rate) && rate >= 1 && rate <= 0xffffffff))
    return "rate must be an integer from 1 to 4294967295";
  return { exporter, domain, interface: ifIndex, sampler, rate, override };
}

function prefixOf(s: string): { addr: string; len: number; family: "ipv4" | "ipv6" } | null {
  const [addr, lenText, more] = s.split("/");
  if (more !== undefined || addr === undefined) return null;
  const v = isIP(addr);
  if (v === 0) return null;
  const max = v === 4 ? 32 : 128;
  const len = lenText === undefined ? max : /^\d+$/.test(lenText) ? Number(lenText) : -1;
  if (len < 0 || len > max) return null;
  return { addr, len, family: v === 4 ? "ipv4" : "ipv6" };
}

const CACHE_MAX = 65_536;

interface CompiledEntry {
  list: BlockList;
  domain: number | null;
  ifIndex: number | null;
  sampler: number | null;
  value: StaticRate;
}

/** Entry specificity, larger first: a sampler, then an interface, then a domain, then the prefix length. */
function specificity(e: SamplingMapEntry): number {
  return (
    (e.sampler !== null ? 1024 : 0) +
    (e.interface !== null ? 512 : 0) +
    (e.domain !== null ? 256 : 0) +
    prefixOf(e.exporter)!.len
  );
}

export class SamplingMap {
  readonly #entries: CompiledEntry[] = [];
  readonly #cache = new Map<string, StaticRates | null>();

  constructor(entries: readonly SamplingMapEntry[]) {
    // stable sort: on equal specificity the earlier entry wins
    const sorted = [...entries].sort((a, b) => specificity(b) - specificity(a));
    for (const e of sorted) {
      const p = prefixOf(e.exporter)!;
      const list = new BlockList();
      list.addSubnet(p.addr, p.len, p.family);
      this.#entries.push({
        list,
        domain: e.domain,
        ifIndex: e.interface,
        sampler: e.sampler,
        value: { rate: e.rate, override: e.override },
      });
    }
  }

  /** The entries that apply to an exporter address and observation domain, or null when none does. */
  lookup(exporter: string, domain: number): StaticRates | null {
    const key = `${exporter}/${domain}`;
    let v = this.#cache.get(key);
    if (v !== undefined) return v;
    const family = isIP(exporter) === 6 ? "ipv6" : "ipv4";
    let base: StaticRate | null = null;
    const keyed: NonNullable<StaticRates["keyed"]>[number][] = [];
    for (const e of this.#entries) {
      if (e.domain !== null && e.domain !== domain) continue;
      if (!e.list.check(exporter, family)) continue;
      if (e.ifIndex === null && e.sampler === null) {
        base = e.value; // the first is the most specific; keyed ones all sort before it
        break;
      }
      keyed.push({ ifIndex: e.ifIndex, sampler: e.sampler, value: e.value });
    }
    v = base === null && keyed.length === 0 ? null : { base, keyed: keyed.length > 0 ? keyed : null };
    if (this.#cache.size >= CACHE_MAX) this.#cache.clear();
    this.#cache.set(key, v);
    return v;
  }
}

/**
 * The entry for one flow: the most specific keyed entry its input interface and sampler id match (`sampler`
 * −1: the flow names none), else the exporter + domain's base entry.
 */
export function staticRate(rates: StaticRates, inIf: number, sampler: number): StaticRate | null {
  const keyed = rates.keyed;
  if (keyed !== null)
    for (const e of keyed)
      if ((e.ifIndex === null || e.ifIndex === inIf) && (e.sampler === null || e.sampler === sampler))
        return e.value;
  return rates.base;
}

/** The effective rate: the announced one (0 when none) unless the static entry overrides or fills in. */
export function effectiveRate(announced: number, fixed: StaticRate | null): number {
  return fixed !== null && (fixed.override || announced <= 0) ? fixed.rate : announced;
}

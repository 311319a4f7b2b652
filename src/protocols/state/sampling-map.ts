/**
 * The static sampling map (issue 18): sampling rates by exporter address or prefix, optionally by
 * observation domain, for exporters that never announce theirs (many NetFlow v9 boxes). An announced rate
 * (options data, the v5 header) wins unless the entry says `override`.
 *
 * Entries come from the config (`sampling_map`, `--sampling-map`) as text `PREFIX[@DOMAIN]=RATE[!]`
 * (`!`: override), comma-separated, or in a config file as a list of those strings or of objects
 * `{exporter, domain?, rate, override?}`. `parseSamplingMap` validates them (the config exits 2 on a bad
 * one). The most specific entry matches: one naming the domain before one that does not, then the longest
 * prefix. Lookups are cached per exporter + domain (bounded).
 */
import { BlockList, isIP } from "node:net";

export interface SamplingMapEntry {
  /** Address or prefix as given ("192.0.2.1", "10.0.0.0/8", "2001:db8::/32"). */
  exporter: string;
  /** Observation domain (v9 source id); null: any. */
  domain: number | null;
  rate: number;
  override: boolean;
}

export interface StaticRate {
  rate: number;
  override: boolean;
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

const TEXT = /^([^@=\s]+)(?:@(\d+))?=(\d+)(!?)$/;

function fromText(s: string): SamplingMapEntry | string {
  const m = TEXT.exec(s.trim());
  if (m === null) return "expected PREFIX[@DOMAIN]=RATE[!]";
  return check(m[1]!, m[2] === undefined ? null : Number(m[2]), Number(m[3]), m[4] === "!");
}

function fromObject(o: unknown): SamplingMapEntry | string {
  if (typeof o !== "object" || o === null) return "expected a string or {exporter, domain?, rate, override?}";
  const r = o as Record<string, unknown>;
  for (const k of Object.keys(r))
    if (!["exporter", "domain", "rate", "override"].includes(k)) return `unknown key ${k}`;
  if (typeof r.exporter !== "string") return "exporter must be an address or prefix";
  if (r.override !== undefined && typeof r.override !== "boolean") return "override must be true or false";
  const domain = r.domain === undefined || r.domain === null ? null : Number(r.domain);
  return check(r.exporter, domain, Number(r.rate), r.override === true);
}

function check(
  exporter: string,
  domain: number | null,
  rate: number,
  override: boolean,
): SamplingMapEntry | string {
  if (prefixOf(exporter) === null) return `not an IP address or prefix: ${exporter}`;
  if (domain !== null && !(Number.isInteger(domain) && domain >= 0 && domain <= 0xffffffff))
    return "domain must be an integer from 0 to 4294967295";
  if (!(Number.isInteger(rate) && rate >= 1 && rate <= 0xffffffff))
    return "rate must be an integer from 1 to 4294967295";
  return { exporter, domain, rate, override };
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

export class SamplingMap {
  readonly #entries: { list: BlockList; domain: number | null; value: StaticRate }[] = [];
  readonly #cache = new Map<string, StaticRate | null>();

  constructor(entries: readonly SamplingMapEntry[]) {
    const sorted = [...entries].sort(
      (a, b) =>
        (a.domain === null ? 1 : 0) - (b.domain === null ? 1 : 0) ||
        prefixOf(b.exporter)!.len - prefixOf(a.exporter)!.len,
    );
    for (const e of sorted) {
      const p = prefixOf(e.exporter)!;
      const list = new BlockList();
      list.addSubnet(p.addr, p.len, p.family);
      this.#entries.push({ list, domain: e.domain, value: { rate: e.rate, override: e.override } });
    }
  }

  /** The configured rate for an exporter address and observation domain, or null. */
  lookup(exporter: string, domain: number): StaticRate | null {
    const key = `${exporter}/${domain}`;
    let v = this.#cache.get(key);
    if (v !== undefined) return v;
    v = null;
    const family = isIP(exporter) === 6 ? "ipv6" : "ipv4";
    for (const e of this.#entries) {
      if (e.domain !== null && e.domain !== domain) continue;
      if (e.list.check(exporter, family)) {
        v = e.value;
        break;
      }
    }
    if (this.#cache.size >= CACHE_MAX) this.#cache.clear();
    this.#cache.set(key, v);
    return v;
  }
}

/** The effective rate: the announced one (0 when none) unless the static entry overrides or fills in. */
export function effectiveRate(announced: number, fixed: StaticRate | null): number {
  return fixed !== null && (fixed.override || announced <= 0) ? fixed.rate : announced;
}

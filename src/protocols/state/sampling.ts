/**
 * The sampling rate an options data record announces (issue 18), one rule for every way routers say it:
 * - RFC 5477 PSAMP selectors: `selectorAlgorithm` (304) decides which elements count — 1 systematic
 *   count-based (`samplingPacketInterval`/`samplingPacketSpace` 305/306 → (interval + space) / interval),
 *   2 systematic time-based (`samplingTimeInterval`/`samplingTimeSpace` 307/308: no packet rate, so none is
 *   announced and what is known stays, unless the packets are counted: `selectorIdTotalPktsObserved` /
 *   `selectorIdTotalPktsSelected` 318/319 → observed / selected), 3 random n-out-of-N (`samplingSize` n 309 / `samplingPopulation` N
 *   310 → N / n), 4 uniform probabilistic (`samplingProbability` 311 → 1 / p); filtering algorithms (5–8)
 *   announce no rate. Cisco IOS XR sends `samplingPacketInterval` = 1 next to n-out-of-N: the algorithm
 *   says it does not count.
 * - Without a selectorAlgorithm, the most specific elements present: 309/310, 311, 305/306, then NetFlow v9
 *   / Cisco `samplingInterval` (34, with `samplingAlgorithm` 35 deterministic or random: 1 in N either
 *   way), then `flowSamplerRandomInterval` (50, with `flowSamplerMode` 49).
 * `numbers` maps IANA element ids to their numeric values (v9 scope fields are not in it under these ids).
 * The result is 0 when the record announces no usable rate; rates below 1 are refused (0). A fractional
 * rate (1000 out of 3, interval 3 + space 7) is rounded to the nearest integer: `sampling_rate` is an
 * integer in every output (GoFlow2's uint64, the SQLite INTEGER column).
 */

/** RFC 5477 / IANA PSAMP selector algorithms. */
export const SELECTOR = {
  SYSTEMATIC_COUNT: 1,
  SYSTEMATIC_TIME: 2,
  RANDOM_N_OUT_OF_N: 3,
  UNIFORM_PROBABILISTIC: 4,
} as const;

export function announcedRate(numbers: ReadonlyMap<number, number>): number {
  const alg = numbers.get(304);
  let rate = 0;
  switch (alg) {
    case undefined:
      rate = nOutOfN(numbers) || probabilistic(numbers) || countBased(numbers) || legacy(numbers);
      break;
    case SELECTOR.SYSTEMATIC_COUNT:
      rate = countBased(numbers);
      break;
    case SELECTOR.RANDOM_N_OUT_OF_N:
      rate = nOutOfN(numbers);
      break;
    case SELECTOR.UNIFORM_PROBABILISTIC:
      rate = probabilistic(numbers);
      break;
    case SELECTOR.SYSTEMATIC_TIME:
      rate = counted(numbers);
      break;
    default: // the filtering algorithms: no packet rate
      return 0;
  }
  return Number.isFinite(rate) && rate >= 1 ? Math.round(rate) : 0;
}

function countBased(n: ReadonlyMap<number, number>): number {
  const interval = n.get(305) ?? 0;
  return interval > 0 ? (interval + (n.get(306) ?? 0)) / interval : 0;
}

function nOutOfN(n: ReadonlyMap<number, number>): number {
  const size = n.get(309) ?? 0;
  const population = n.get(310) ?? 0;
  return size > 0 && population > 0 ? population / size : 0;
}

function probabilistic(n: ReadonlyMap<number, number>): number {
  const p = n.get(311) ?? 0;
  return p > 0 && p <= 1 ? 1 / p : 0;
}

/** Time-based selection has a rate only as counted: packets observed / packets selected (318/319). */
function counted(n: ReadonlyMap<number, number>): number {
  const observed = n.get(318) ?? 0;
  const selected = n.get(319) ?? 0;
  return observed > 0 && selected > 0 ? observed / selected : 0;
}

function legacy(n: ReadonlyMap<number, number>): number {
  return n.get(34) || n.get(50) || 0;
}

/** The sampling elements a sampler table shows (/exporters), by IANA id → name. */
const PARAMETERS: ReadonlyMap<number, string> = new Map([
  [34, "samplingInterval"],
  [35, "samplingAlgorithm"],
  [49, "flowSamplerMode"],
  [50, "flowSamplerRandomInterval"],
  [304, "selectorAlgorithm"],
  [305, "samplingPacketInterval"],
  [306, "samplingPacketSpace"],
  [307, "samplingTimeInterval"],
  [308, "samplingTimeSpace"],
  [309, "samplingSize"],
  [310, "samplingPopulation"],
  [311, "samplingProbability"],
  [318, "selectorIdTotalPktsObserved"],
  [319, "selectorIdTotalPktsSelected"],
]);

/** The sampling elements of an options record by name (time intervals in µs as sent), or null if none. */
export function samplingParameters(numbers: ReadonlyMap<number, number>): Record<string, number> | null {
  let out: Record<string, number> | null = null;
  for (const [id, name] of PARAMETERS) {
    const v = numbers.get(id);
    if (v === undefined) continue;
    out ??= {};
    out[name] = v;
  }
  return out;
}

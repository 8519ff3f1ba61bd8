/**
 * The statistics of the benchmark: medians with bootstrap confidence intervals, paired win rates and
 * the Wilcoxon signed-rank test over (task, seed) units. Pure functions, deterministic for a seed.
 *
 *   bootstrapCi([1.2, 0.4, 2.5], median)            // { estimate: 1.2, low: ..., high: ... }
 *   wilcoxonSignedRank([0.3, -0.1, 0.8, 0.5]).p      // two-sided p of "the median difference is 0"
 */
import { seededRandom } from '../src/core/planner';
import { normalCdf } from '../src/core/search/inference';

export function mean(values: readonly number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
}

export function median(values: readonly number[]): number {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** The q-quantile (0..1) with linear interpolation between order statistics (numpy's default). */
export function quantile(values: readonly number[], q: number): number {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = Math.min(1, Math.max(0, q)) * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (s[lo] as number) + ((s[hi] as number) - (s[lo] as number)) * (pos - lo);
}

export interface Interval {
  estimate: number;
  low: number;
  high: number;
}

/**
 * Percentile bootstrap: the statistic on `resamples` resamples (with replacement) of `values`; the
 * interval is their (1 − level)/2 and (1 + level)/2 quantiles. NaN bounds for fewer than 2 values.
 */
export function bootstrapCi(
  values: readonly number[],
  statistic: (xs: readonly number[]) => number = median,
  opts: { resamples?: number; level?: number; seed?: number } = {},
): Interval {
  const estimate = statistic(values);
  if (values.length < 2) return { estimate, low: NaN, high: NaN };
  const { resamples = 10_000, level = 0.95, seed = 20261130 } = opts;
  const random = seededRandom(seed);
  const stats: number[] = new Array<number>(resamples);
  const sample: number[] = new Array<number>(values.length);
  for (let b = 0; b < resamples; b++) {
    for (let i = 0; i < values.length; i++)
      sample[i] = values[Math.floor(random() * values.length)] as number;
    stats[b] = statistic(sample);
  }
  const alpha = (1 - level) / 2;
  return { estimate, low: quantile(stats, alpha), high: quantile(stats, 1 - alpha) };
}

/** How often `a` beats `b` over paired units (higher is better); a tie counts half. */
export function pairedWinRate(
  a: readonly number[],
  b: readonly number[],
): { wins: number; losses: number; ties: number; n: number; rate: number } {
  if (a.length !== b.length) throw new Error(`paired samples differ in length (${a.length} vs ${b.length})`);
  let wins = 0;
  let losses = 0;
  let ties = 0;
  a.forEach((x, i) => {
    const y = b[i] as number;
    if (x > y) wins += 1;
    else if (x < y) losses += 1;
    else ties += 1;
  });
  const n = a.length;
  return { wins, losses, ties, n, rate: n ? (wins + ties / 2) / n : NaN };
}

export interface WilcoxonResult {
  /** Non-zero differences (zeros are dropped, as in Wilcoxon's original test and SciPy's default). */
  n: number;
  /** Sum of the ranks of the positive differences. */
  rPlus: number;
  rMinus: number;
  /** min(R+, R−), the statistic SciPy reports. */
  statistic: number;
  /** Two-sided p-value. */
  p: number;
  method: 'exact' | 'normal';
}

/** Average ranks (1-based) of |values|, ties sharing the mean of their ranks. */
function absRanks(values: readonly number[]): { ranks: number[]; tieGroups: number[] } {
  const order = values.map((v, i) => ({ a: Math.abs(v), i })).sort((x, y) => x.a - y.a);
  const ranks = new Array<number>(values.length);
  const tieGroups: number[] = [];
  for (let start = 0; start < order.length;) {
    let end = start;
    while (
      end + 1 < order.length &&
      (order[end + 1] as { a: number }).a === (order[start] as { a: number }).a
    )
      end += 1;
    const rank = (start + end) / 2 + 1;
    for (let k = start; k <= end; k++) ranks[(order[k] as { i: number }).i] = rank;
    if (end > start) tieGroups.push(end - start + 1);
    start = end + 1;
  }
  return { ranks, tieGroups };
}

/**
 * The Wilcoxon signed-rank test of paired differences against a zero median. Exact (the sign-flip
 * distribution of the observed ranks, ties included) up to 50 non-zero differences; above that the
 * normal approximation with the tie correction and no continuity correction (SciPy's defaults).
 */
export function wilcoxonSignedRank(differences: readonly number[]): WilcoxonResult {
  const d = differences.filter((x) => x !== 0 && Number.isFinite(x));
  const n = d.length;
  if (n === 0) return { n, rPlus: 0, rMinus: 0, statistic: 0, p: 1, method: 'exact' };
  const { ranks, tieGroups } = absRanks(d);
  let rPlus = 0;
  d.forEach((x, i) => {
    if (x > 0) rPlus += ranks[i] as number;
  });
  const total = (n * (n + 1)) / 2;
  const rMinus = total - rPlus;
  const statistic = Math.min(rPlus, rMinus);
  if (n <= 50) {
    // Ranks are integers or halves: count the sign assignments by twice-rank sums.
    const twice = ranks.map((r) => Math.round(2 * r));
    const max = twice.reduce((a, b) => a + b, 0);
    let counts = new Float64Array(max + 1);
    counts[0] = 1;
    for (const r of twice) {
      const next = new Float64Array(max + 1);
      for (let s = 0; s <= max; s++) {
        const c = counts[s] as number;
        if (!c) continue;
        next[s] = (next[s] as number) + c;
        if (s + r <= max) next[s + r] = (next[s + r] as number) + c;
      }
      counts = next;
    }
    const all = 2 ** n;
    const observed = Math.round(2 * rPlus);
    let below = 0;
    let above = 0;
    for (let s = 0; s <= max; s++) {
      if (s <= observed) below += counts[s] as number;
      if (s >= observed) above += counts[s] as number;
    }
    return {
      n,
      rPlus,
      rMinus,
      statistic,
      p: Math.min(1, (2 * Math.min(below, above)) / all),
      method: 'exact',
    };
  }
  const mu = total / 2;
  const variance = (n * (n + 1) * (2 * n + 1)) / 24 - tieGroups.reduce((a, t) => a + (t ** 3 - t), 0) / 48;
  const z = (statistic - mu) / Math.sqrt(variance);
  return { n, rPlus, rMinus, statistic, p: Math.min(1, 2 * normalCdf(z)), method: 'normal' };
}

/** The standard normal CDF: the engine's own (src/core/search/inference.ts). */
export { normalCdf };

/** Share of `values` below zero (answers worse than the baseline). */
export function shareBelowZero(values: readonly number[]): number {
  return values.length ? values.filter((v) => v < 0).length / values.length : NaN;
}

/**
 * Share of units where this method found no gain (≤ 0) while another method on the same unit found
 * at least `threshold`. `others[u]` holds the other methods' gains on unit u.
 */
export function shareMissed(
  own: readonly number[],
  others: readonly (readonly number[])[],
  threshold = 1,
): number {
  if (!own.length) return NaN;
  const missed = own.filter((g, u) => g <= 0 && (others[u] ?? []).some((o) => o >= threshold)).length;
  return missed / own.length;
}

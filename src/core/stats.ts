/**
 * Small statistics for noise-aware decisions: means, sample standard deviations, and a confidence
 * interval for the difference of two means (Welch). Sandbox-safe.
 *
 *   diffInterval([0.80, 0.81, 0.79], [0.77, 0.78]) // → { diff: 0.025, low: ..., high: ... }
 */

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('mean of no values');
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

export function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/** Two-sided 95% Student-t quantiles by degrees of freedom (1..30); beyond that, the normal's. */
const T95 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
  2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];
export function t95(df: number): number {
  if (df < 1) return T95[0] as number;
  return df <= 30 ? (T95[Math.floor(df) - 1] as number) : 1.96;
}

export interface DiffInterval {
  /** mean(a) - mean(b) */
  diff: number;
  low: number;
  high: number;
  /** Half-width of the 95% interval. */
  halfWidth: number;
}

/**
 * 95% interval of mean(a) - mean(b). `noiseFloor` is a standard deviation to assume where a sample
 * has a single value (measured on the baseline's replicates), so that one lucky run is never a win.
 */
export function diffInterval(a: readonly number[], b: readonly number[], noiseFloor = 0): DiffInterval {
  const sa = Math.max(sampleStd(a), noiseFloor);
  const sb = Math.max(sampleStd(b), noiseFloor);
  const va = (sa * sa) / a.length;
  const vb = (sb * sb) / b.length;
  const se = Math.sqrt(va + vb);
  // Welch–Satterthwaite degrees of freedom, guarded for zero variance.
  const denom =
    (a.length > 1 ? (va * va) / (a.length - 1) : 0) + (b.length > 1 ? (vb * vb) / (b.length - 1) : 0);
  const df = denom > 0 ? ((va + vb) * (va + vb)) / denom : Math.max(1, a.length + b.length - 2);
  const diff = mean(a) - mean(b);
  const halfWidth = t95(df) * se;
  return { diff, low: diff - halfWidth, high: diff + halfWidth, halfWidth };
}

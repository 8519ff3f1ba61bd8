/**
 * What rea concludes from noisy, paired measurements: a pooled noise model of paired differences, a
 * skeptical posterior of each config's gain over the baseline (empirical-Bayes shrinkage toward 0,
 * so that picking the best of many noisy candidates does not make a win), the probability that a
 * gain exceeds the minimum practical gain, a sign-flip rank test for configs whose differences
 * scatter more than the pooled noise says, and Spearman's rank correlation. Sandbox-safe.
 *
 *   const p = posterior(diffs, noise, tau2);
 *   probAbove(p, 0.1) >= 0.95 // a confirmed win over 0.1 %
 */

export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** Sample variance (n − 1); NaN below two values. */
export function variance(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  return xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1);
}

// ---- distributions ------------------------------------------------------------------------------

function logGamma(x: number): number {
  // Lanczos approximation (g = 7, n = 9).
  const c = [
    0.9999999999998099, 676.5203681218851, -1259.1392167224028, 771.3234287776531, -176.61503916999186,
    12.507343278686905, -0.13857109526572012, 9.984369578019572e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let a = c[0] as number;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += (c[i] as number) / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (Numerical Recipes' betacf). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-12) break;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2)
    ? (front * betaContinuedFraction(a, b, x)) / a
    : 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** P(T ≤ t) for Student's t with `df` degrees of freedom (the normal's CDF for infinite df). */
export function studentTCdf(t: number, df: number): number {
  if (!Number.isFinite(df) || df > 1e6) return normalCdf(t);
  const x = df / (df + t * t);
  const tail = 0.5 * incompleteBeta(x, df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** P(F ≤ f) for Fisher's F with (d1, d2) degrees of freedom. */
export function fisherFCdf(f: number, d1: number, d2: number): number {
  if (!(f > 0)) return 0;
  return incompleteBeta((d1 * f) / (d1 * f + d2), d1 / 2, d2 / 2);
}

/**
 * Two-sided p-value that two variances are equal (the F test of s2a with dfa and s2b with dfb
 * degrees of freedom): small when one scatters far more than the other.
 */
export function varianceRatioP(s2a: number, dfa: number, s2b: number, dfb: number): number {
  if (!(s2a > 0) || !(s2b > 0) || dfa < 1 || dfb < 1) return 1;
  const lower = fisherFCdf(s2a / s2b, dfa, dfb);
  return Math.min(1, 2 * Math.min(lower, 1 - lower));
}

/**
 * The standard normal CDF, through the complementary error function of Numerical Recipes (erfcc:
 * a Chebyshev fit with relative error below 1.2e-7 everywhere, so tail p-values stay accurate).
 */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const erfc =
    t *
    Math.exp(
      -x * x -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return z >= 0 ? 1 - 0.5 * erfc : 0.5 * erfc;
}

// ---- the noise model ----------------------------------------------------------------------------

/** Pooled variance of paired differences: sum of squares and degrees of freedom. */
export interface NoiseEstimate {
  ss: number;
  df: number;
}

export const noiseVariance = (n: NoiseEstimate): number => (n.df > 0 ? n.ss / n.df : NaN);

/** Pools the within-config scatter of each set of paired differences (each set: one config's diffs). */
export function poolDifferences(sets: readonly (readonly number[])[], prior?: NoiseEstimate): NoiseEstimate {
  let ss = prior?.ss ?? 0;
  let df = prior?.df ?? 0;
  for (const d of sets) {
    if (d.length < 2) continue;
    ss += variance(d) * (d.length - 1);
    df += d.length - 1;
  }
  return { ss, df };
}

export interface Posterior {
  /** Posterior mean of the gain (%). */
  mean: number;
  sd: number;
  /** Degrees of freedom of the noise estimate (the posterior is Student-t). */
  df: number;
  /** Paired differences it rests on. */
  n: number;
  /** Their raw mean. */
  raw: number;
}

/**
 * The posterior of a config's mean gain from its paired differences `d` (%), with the pooled noise
 * variance `noise` and a skeptical prior N(0, tau2): tau2 is how far gains of candidates spread from
 * zero, so that when nothing differs the best of many draws is shrunk back to nothing.
 */
export function posterior(
  d: readonly number[],
  noise: { variance: number; df: number },
  tau2: number,
): Posterior {
  const n = d.length;
  const raw = n ? mean(d) : 0;
  const sigma2 = Math.max(noise.variance, 1e-12);
  const precision = n / sigma2 + 1 / Math.max(tau2, 1e-12);
  return {
    mean: (n * raw) / sigma2 / precision,
    sd: Math.sqrt(1 / precision),
    df: Math.max(1, noise.df),
    n,
    raw,
  };
}

/** P(gain > threshold) under the posterior. */
export function probAbove(p: Posterior, threshold: number): number {
  return 1 - studentTCdf((threshold - p.mean) / p.sd, p.df);
}

/**
 * Empirical-Bayes prior variance of true gains around zero: the second moment of the candidates'
 * mean gains minus what noise alone gives them (each gain's own `noise` variance where given, else
 * `noiseVar`), floored at `floor`.
 */
export function priorVariance(
  gains: readonly { mean: number; n: number; noise?: number }[],
  noiseVar: number,
  floor: number,
): number {
  if (!gains.length) return Infinity;
  const second = mean(gains.map((g) => g.mean * g.mean));
  const fromNoise = mean(gains.map((g) => (g.noise ?? noiseVar) / Math.max(1, g.n)));
  return Math.max(floor, second - fromNoise);
}

/**
 * One-sided exact sign-flip (Wilcoxon signed-rank) p-value that the differences' centre exceeds
 * `shift`: small when nearly all of `d − shift` are positive and large.
 */
export function signedRankP(d: readonly number[], shift = 0): number {
  const x = d.map((v) => v - shift).filter((v) => v !== 0);
  const n = x.length;
  if (!n) return 1;
  const order = x.map((v, i) => ({ a: Math.abs(v), i })).sort((p, q) => p.a - q.a);
  const ranks = new Array<number>(n);
  for (let s = 0; s < n;) {
    let e = s;
    while (e + 1 < n && (order[e + 1] as { a: number }).a === (order[s] as { a: number }).a) e += 1;
    for (let k = s; k <= e; k++) ranks[(order[k] as { i: number }).i] = s + (e - s) / 2 + 1;
    s = e + 1;
  }
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
  const observed = x.reduce((a, v, i) => (v > 0 ? a + (twice[i] as number) : a), 0);
  let above = 0;
  for (let s = observed; s <= max; s++) above += counts[s] as number;
  return above / 2 ** n;
}

/** Spearman's rank correlation (average ranks for ties); NaN below three pairs. */
export function spearman(xs: readonly number[], ys: readonly number[]): number {
  const n = Math.min(xs.length, ys.length);
  if (n < 3) return NaN;
  const rank = (v: readonly number[]) => {
    const order = v.map((x, i) => ({ x, i })).sort((a, b) => a.x - b.x);
    const r = new Array<number>(v.length);
    for (let s = 0; s < order.length;) {
      let e = s;
      while (e + 1 < order.length && (order[e + 1] as { x: number }).x === (order[s] as { x: number }).x)
        e += 1;
      for (let k = s; k <= e; k++) r[(order[k] as { i: number }).i] = (s + e) / 2;
      s = e + 1;
    }
    return r;
  };
  const rx = rank(xs.slice(0, n));
  const ry = rank(ys.slice(0, n));
  const mx = mean(rx);
  const my = mean(ry);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const a = (rx[i] as number) - mx;
    const b = (ry[i] as number) - my;
    sxy += a * b;
    sxx += a * a;
    syy += b * b;
  }
  return sxx && syy ? sxy / Math.sqrt(sxx * syy) : NaN;
}

// ---- moderated noise: each config's own scatter, pulled toward the others' ----------------------

/** ψ(x), the digamma function (x > 0). */
export function digamma(x: number): number {
  let r = 0;
  while (x < 6) {
    r -= 1 / x;
    x += 1;
  }
  const f = 1 / (x * x);
  return r + Math.log(x) - 0.5 / x - f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f * (1 / 240 - f / 132))));
}

/** ψ′(x), the trigamma function (x > 0). */
export function trigamma(x: number): number {
  let r = 0;
  while (x < 6) {
    r += 1 / (x * x);
    x += 1;
  }
  const f = 1 / (x * x);
  return r + 1 / x + f / 2 + (f / x) * (1 / 6 - f * (1 / 30 - f * (1 / 42 - f / 30)));
}

/** The x > 0 with trigamma(x) = y (trigamma falls from ∞ to 0), by bisection on log x. */
export function trigammaInverse(y: number): number {
  let lo = -20;
  let hi = 20;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (trigamma(Math.exp(mid)) > y) lo = mid;
    else hi = mid;
  }
  return Math.exp((lo + hi) / 2);
}

/** How the configs' own variances scatter around a common one: prior df `d0` and variance `s0sq`. */
export interface Moderation {
  d0: number;
  s0sq: number;
}

/**
 * Fits the configs' sample variances of paired differences (each set: one config's diffs) to a
 * scaled inverse-χ² prior, as limma does for genes: where the variances agree, `d0` is large and
 * each config's noise is the pool's; where they differ (some knobs re-seed the run and unpair it
 * from the baseline, others leave it paired), `d0` is small and each config's own scatter counts.
 * Undefined with fewer than 3 replicated sets with some scatter, or when the variances agree
 * (then the pooled noise is the right one).
 */
export function fitModeration(sets: readonly (readonly number[])[]): Moderation | undefined {
  const fits = sets
    .filter((d) => d.length >= 2)
    .map((d) => ({ s2: variance(d), df: d.length - 1 }))
    .filter((x) => x.s2 > 1e-12);
  if (fits.length < 3) return undefined;
  const e = fits.map((x) => Math.log(x.s2) - digamma(x.df / 2) + Math.log(x.df / 2));
  const emean = mean(e);
  const evar =
    e.reduce((a, v) => a + (v - emean) ** 2, 0) / (e.length - 1) - mean(fits.map((x) => trigamma(x.df / 2)));
  if (!(evar > 0)) return undefined;
  const d0 = 2 * trigammaInverse(evar);
  return { d0, s0sq: Math.exp(emean + digamma(d0 / 2) - Math.log(d0 / 2)) };
}

/** A config's moderated noise: its own variance (n − 1 df) and the prior's (d0 df), weighted by df. */
export function moderatedNoise(d: readonly number[], m: Moderation): { variance: number; df: number } {
  const df = Math.max(0, d.length - 1);
  const own = df ? variance(d) : 0;
  return { variance: (m.d0 * m.s0sq + df * own) / (m.d0 + df), df: m.d0 + df };
}

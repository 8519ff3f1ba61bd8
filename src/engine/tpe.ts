/**
 * The model-based planner: a Tree-structured Parzen Estimator over a ModelSpec's mixed knob space
 * (float, log-float, integer, categorical, bool), warm-started from observations of earlier runs and
 * deterministic for a seed. Scores are "higher is better" (rea passes the gain over the baseline, in
 * percent, at the run's fidelity, so that runs at different fidelities are comparable).
 *
 *   const planner = new TpePlanner(spec, { seed: 7 });
 *   const slate = planner.propose(observations, 6); // six configs, each a full config
 */
import { baselineConfig, type Config, type Knob, type KnobValue, type ModelSpec } from '../core/model-spec';
import { seededRandom } from '../core/planner';
import { dimOf, fromUnit, toUnit, type Dim } from '../core/search/space';

export interface Observation {
  config: Config;
  /** Higher is better. */
  score: number;
  /** How much this observation counts (history from other campaigns counts less). Default 1. */
  weight?: number;
}

export interface TpeOptions {
  seed: number;
  /** Below this many observations the planner explores sparsely instead of modelling. */
  startup?: number;
  /** Candidates drawn from the good-config density per proposal. */
  candidates?: number;
  /** Share of observations counted as good. */
  gamma?: number;
  /** Share of model-based proposals replaced by a uniform draw, so the model cannot starve a region. */
  epsilon?: number;
  /** Knobs to leave at their baseline (an engineer excluded them). */
  frozen?: readonly string[];
}

const SQRT2 = Math.SQRT2;
function erf(x: number): number {
  // Abramowitz and Stegun 7.1.26: enough for truncation masses.
  const s = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-a * a);
  return s * y;
}
const cdf = (x: number, mu: number, sigma: number) => 0.5 * (1 + erf((x - mu) / (sigma * SQRT2)));

function gaussian(random: () => number): number {
  const u = Math.max(1e-12, random());
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** A weighted mixture of Gaussians truncated to [0, 1], with a wide prior component. */
class NumericParzen {
  private readonly mus: number[];
  private readonly sigmas: number[];
  private readonly weights: number[];

  constructor(points: { u: number; w: number }[], prior: number) {
    const n = points.length;
    const mean = n ? points.reduce((a, p) => a + p.u, 0) / n : 0.5;
    const sd = n > 1 ? Math.sqrt(points.reduce((a, p) => a + (p.u - mean) ** 2, 0) / (n - 1)) : 0.25;
    // Scott's rule, kept between a fine step and a quarter of the range.
    const sigma = Math.min(0.25, Math.max(0.04, 1.06 * Math.max(sd, 0.05) * Math.pow(Math.max(n, 1), -0.2)));
    this.mus = [...points.map((p) => p.u), prior];
    this.sigmas = [...points.map(() => sigma), 0.5];
    const total = points.reduce((a, p) => a + p.w, 0);
    const priorWeight = Math.max(1, total) / (n + 1);
    this.weights = [...points.map((p) => p.w), priorWeight];
  }

  density(u: number): number {
    let sum = 0;
    let wsum = 0;
    for (let i = 0; i < this.mus.length; i++) {
      const mu = this.mus[i] as number;
      const s = this.sigmas[i] as number;
      const w = this.weights[i] as number;
      const mass = Math.max(1e-12, cdf(1, mu, s) - cdf(0, mu, s));
      sum += (w * Math.exp(-0.5 * ((u - mu) / s) ** 2)) / (s * Math.sqrt(2 * Math.PI) * mass);
      wsum += w;
    }
    return sum / wsum;
  }

  sample(random: () => number): number {
    const wsum = this.weights.reduce((a, b) => a + b, 0);
    let r = random() * wsum;
    let i = 0;
    for (; i < this.weights.length - 1; i++) {
      r -= this.weights[i] as number;
      if (r <= 0) break;
    }
    const mu = this.mus[i] as number;
    const s = this.sigmas[i] as number;
    for (let tries = 0; tries < 20; tries++) {
      const x = mu + s * gaussian(random);
      if (x >= 0 && x <= 1) return x;
    }
    return Math.min(1, Math.max(0, mu));
  }
}

/** Smoothed, weighted choice frequencies. */
class ChoiceParzen {
  private readonly p: number[];

  constructor(indices: { i: number; w: number }[], k: number) {
    const counts = Array.from({ length: k }, () => 1 / k); // one pseudo-observation spread evenly
    for (const { i, w } of indices) counts[i] = (counts[i] as number) + w;
    const total = counts.reduce((a, b) => a + b, 0);
    this.p = counts.map((c) => c / total);
  }

  density(i: number): number {
    return this.p[i] ?? 0;
  }

  sample(random: () => number): number {
    let r = random();
    for (let i = 0; i < this.p.length; i++) {
      r -= this.p[i] as number;
      if (r <= 0) return i;
    }
    return this.p.length - 1;
  }
}

export class TpePlanner {
  private readonly dims: Dim[];
  private readonly baseline: Config;
  private readonly random: () => number;
  private readonly startup: number;
  private readonly candidates: number;
  private readonly gamma: number;
  private readonly epsilon: number;

  constructor(
    readonly spec: ModelSpec,
    opts: TpeOptions,
  ) {
    const frozen = new Set(opts.frozen ?? []);
    this.dims = Object.keys(spec.knobs)
      .sort()
      .filter((name) => !frozen.has(name))
      .map((name) => dimOf(name, spec.knobs[name] as Knob));
    this.baseline = baselineConfig(spec);
    this.random = seededRandom(opts.seed ^ 0x7e9e);
    this.startup = opts.startup ?? 4;
    this.candidates = opts.candidates ?? 64;
    this.gamma = opts.gamma ?? 0.25;
    this.epsilon = opts.epsilon ?? 0.15;
  }

  /**
   * `count` new full configs, none equal to an observed one or to each other. Each pick is added to
   * the observations as a pessimistic "liar" so that the next pick looks elsewhere.
   */
  propose(observations: readonly Observation[], count: number): Config[] {
    const obs = observations.filter((o) => Number.isFinite(o.score));
    const seen = new Set(obs.map((o) => this.key(o.config)));
    seen.add(this.key(this.baseline));
    const out: Config[] = [];
    const liar = obs.length ? Math.min(...obs.map((o) => o.score)) : 0;
    const working = [...obs];
    for (let attempt = 0; out.length < count && attempt < count * 20; attempt++) {
      const config =
        this.effectiveCount(obs) < this.startup
          ? this.sparseRandom(out.length + attempt)
          : this.random() < this.epsilon
            ? this.uniform()
            : this.bestCandidate(working, () => this.sampleGood(working));
      const k = this.key(config);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(config);
      working.push({ config, score: liar, weight: 1 });
    }
    return out;
  }

  /**
   * `count` configs near `around` (exploitation): one or two knobs moved a small step, ranked by the
   * model once it has enough observations.
   */
  refine(observations: readonly Observation[], around: Config, count: number): Config[] {
    const obs = observations.filter((o) => Number.isFinite(o.score));
    const seen = new Set(obs.map((o) => this.key(o.config)));
    seen.add(this.key(around));
    const centre = { ...this.baseline, ...around };
    const out: Config[] = [];
    const working = [...obs];
    const liar = obs.length ? Math.min(...obs.map((o) => o.score)) : 0;
    for (let attempt = 0; out.length < count && attempt < count * 30; attempt++) {
      const perturb = () => this.perturb(centre);
      const config =
        this.effectiveCount(obs) < this.startup ? perturb() : this.bestCandidate(working, perturb);
      const k = this.key(config);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(config);
      working.push({ config, score: liar, weight: 1 });
    }
    return out;
  }

  private effectiveCount(obs: readonly Observation[]): number {
    return obs.reduce((a, o) => a + (o.weight ?? 1), 0);
  }

  private key(config: Config): string {
    return this.dims.map((d) => `${d.name}=${String(config[d.name] ?? this.baseline[d.name])}`).join(',');
  }

  /** Exploration: one or two knobs away from the baseline, visiting knobs in a seeded round-robin. */
  private sparseRandom(i: number): Config {
    const config = { ...this.baseline };
    const changes = 1 + (i % 2);
    for (let c = 0; c < changes; c++) {
      const d = this.dims[Math.floor(this.random() * this.dims.length)] as Dim;
      config[d.name] = this.randomValue(d, config[d.name] as KnobValue);
    }
    return config;
  }

  private randomValue(d: Dim, avoid: KnobValue): KnobValue {
    for (let tries = 0; tries < 10; tries++) {
      const v =
        d.kind === 'numeric'
          ? fromUnit(d, this.random())
          : (d.choices[Math.floor(this.random() * d.choices.length)] as KnobValue);
      if (v !== avoid) return v;
    }
    return avoid;
  }

  private uniform(): Config {
    const config = { ...this.baseline };
    for (const d of this.dims) config[d.name] = this.randomValue(d, Number.NaN);
    return config;
  }

  private perturb(centre: Config): Config {
    const config = { ...centre };
    const changes = this.random() < 0.6 ? 1 : 2;
    for (let c = 0; c < changes; c++) {
      const d = this.dims[Math.floor(this.random() * this.dims.length)] as Dim;
      const current = config[d.name] as KnobValue;
      if (d.kind === 'numeric') {
        const u = toUnit(d, current) + 0.08 * gaussian(this.random);
        config[d.name] = fromUnit(d, u);
      } else {
        config[d.name] = this.randomValue(d, current);
      }
    }
    return config;
  }

  /** Splits observations into good (top gamma) and the rest, weighted. */
  private split(obs: readonly Observation[]): { good: Observation[]; bad: Observation[] } {
    const sorted = [...obs].sort((a, b) => b.score - a.score);
    const nGood = Math.max(1, Math.ceil(this.gamma * sorted.length));
    return { good: sorted.slice(0, nGood), bad: sorted.slice(nGood) };
  }

  private densities(obs: readonly Observation[]) {
    const { good, bad } = this.split(obs);
    const build = (set: Observation[]) =>
      this.dims.map((d) => {
        if (d.kind === 'numeric') {
          const pts = set.map((o) => ({
            u: toUnit(d, o.config[d.name] ?? this.baseline[d.name] ?? 0),
            w: o.weight ?? 1,
          }));
          return new NumericParzen(pts, toUnit(d, this.baseline[d.name] as KnobValue));
        }
        const idx = set.map((o) => ({
          i: Math.max(0, d.choices.indexOf(o.config[d.name] ?? (this.baseline[d.name] as KnobValue))),
          w: o.weight ?? 1,
        }));
        return new ChoiceParzen(idx, d.choices.length);
      });
    return { l: build(good), g: build(bad) };
  }

  private sampleGood(obs: readonly Observation[]): Config {
    const { l } = this.densities(obs);
    const config = { ...this.baseline };
    this.dims.forEach((d, i) => {
      const density = l[i] as NumericParzen | ChoiceParzen;
      config[d.name] =
        d.kind === 'numeric'
          ? fromUnit(d, (density as NumericParzen).sample(this.random))
          : (d.choices[(density as ChoiceParzen).sample(this.random)] as KnobValue);
    });
    return config;
  }

  /** Draws candidates and keeps the one with the highest l(x)/g(x). */
  private bestCandidate(obs: readonly Observation[], draw: () => Config): Config {
    const { l, g } = this.densities(obs);
    let best: Config | undefined;
    let bestScore = -Infinity;
    for (let c = 0; c < this.candidates; c++) {
      const config = draw();
      let score = 0;
      this.dims.forEach((d, i) => {
        const v = config[d.name] as KnobValue;
        if (d.kind === 'numeric') {
          const u = toUnit(d, v);
          score +=
            Math.log((l[i] as NumericParzen).density(u)) - Math.log((g[i] as NumericParzen).density(u));
        } else {
          const idx = Math.max(0, d.choices.indexOf(v));
          score +=
            Math.log((l[i] as ChoiceParzen).density(idx)) - Math.log((g[i] as ChoiceParzen).density(idx));
        }
      });
      if (score > bestScore) {
        bestScore = score;
        best = config;
      }
    }
    return best ?? draw();
  }

  /** Uniform random configs over the whole space: the baseline the planner must beat. */
  static randomSearch(spec: ModelSpec, seed: number, count: number): Config[] {
    const random = seededRandom(seed ^ 0xa11);
    const dims = Object.keys(spec.knobs)
      .sort()
      .map((name) => dimOf(name, spec.knobs[name] as Knob));
    return Array.from({ length: count }, () =>
      Object.fromEntries(
        dims.map((d) => [
          d.name,
          d.kind === 'numeric'
            ? fromUnit(d, random())
            : (d.choices[Math.floor(random() * d.choices.length)] as KnobValue),
        ]),
      ),
    );
  }
}

/**
 * A multivariate Tree-structured Parzen Estimator over a spec's mixed, conditional knob space (the
 * idea of Optuna's `TPESampler(multivariate=True, group=True, constant_liar=True)`, written here for
 * rea): the observations are split into good and bad; each set's density is a mixture of product
 * kernels, one per observation, over the knobs active in it, plus a uniform prior component;
 * candidates are drawn from the good density and the one with the highest l(x)/g(x) is proposed.
 * Pending configs count as bad ("constant liar"), so parallel proposals spread out. Sandbox-safe.
 *
 *   new TpePlanner(space).propose(observations, running, 1, seededRandom(7))
 */
import type { Config, KnobValue } from '../model-spec';
import type { Observation, Planner } from './planner';
import { fromUnit, gaussian, toUnit, type Dim, type Random, type SearchSpace } from './space';

export interface TpeOptions {
  /** Below this much observation weight, proposals are uniform random (the space-filling start). */
  startup?: number;
  /** Candidates drawn from the good density per proposal. */
  candidates?: number;
  /** Share of observations counted as good (at least 2 when there are 4 or more). */
  gamma?: number;
  /** Weight of the uniform prior component in each density. */
  priorWeight?: number;
}

const SQRT2 = Math.SQRT2;
function erf(x: number): number {
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
const normalCdf = (x: number, mu: number, sigma: number) => 0.5 * (1 + erf((x - mu) / (sigma * SQRT2)));

/** One observation's coordinates: unit values for numeric knobs, choice indices; undefined where inactive. */
type Point = (number | undefined)[];

interface Component {
  point: Point | undefined; // undefined: the uniform prior
  weight: number;
}

export class TpePlanner implements Planner {
  readonly name = 'tpe';
  private readonly startup: number;
  private readonly candidates: number;
  private readonly gamma: number;
  private readonly priorWeight: number;

  constructor(
    private readonly space: SearchSpace,
    opts: TpeOptions = {},
  ) {
    this.startup = opts.startup ?? Math.max(6, Math.min(12, space.dims.length + 2));
    this.candidates = opts.candidates ?? 24;
    this.gamma = opts.gamma ?? 0.15;
    this.priorWeight = opts.priorWeight ?? 1;
  }

  propose(
    observations: readonly Observation[],
    pending: readonly Config[],
    n: number,
    random: Random,
  ): Config[] {
    const obs = observations.filter((o) => Number.isFinite(o.score));
    const seen = new Set([
      ...obs.map((o) => this.space.key(o.config)),
      ...pending.map((c) => this.space.key(c)),
    ]);
    seen.add(this.space.key({}));
    const liar = obs.length ? Math.min(...obs.map((o) => o.score)) : 0;
    const working: Observation[] = [...obs, ...pending.map((config) => ({ config, score: liar, weight: 1 }))];
    const out: Config[] = [];
    const weightSum = obs.reduce((a, o) => a + (o.weight ?? 1), 0);
    for (let attempt = 0; out.length < n && attempt < n * 20; attempt++) {
      const config =
        weightSum < this.startup ? this.space.random(random) : this.bestCandidate(working, random);
      const k = this.space.key(config);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(config);
      working.push({ config, score: liar, weight: 1 });
    }
    return out;
  }

  /**
   * `candidates` ordered by l(x)/g(x), best first (the model's ranking of configs someone else
   * generated, e.g. local moves); in the given order while the model has too little data.
   */
  rank(
    observations: readonly Observation[],
    pending: readonly Config[],
    candidates: readonly Config[],
  ): Config[] {
    const obs = observations.filter((o) => Number.isFinite(o.score));
    if (obs.reduce((a, o) => a + (o.weight ?? 1), 0) < this.startup) return [...candidates];
    const liar = Math.min(...obs.map((o) => o.score));
    const working = [...obs, ...pending.map((config) => ({ config, score: liar, weight: 1 }))];
    const sorted = [...working].sort((a, b) => b.score - a.score);
    const nGood = Math.min(
      sorted.length - 1,
      Math.max(sorted.length >= 4 ? 2 : 1, Math.ceil(this.gamma * sorted.length)),
    );
    const good = this.components(sorted.slice(0, nGood));
    const bad = this.components(sorted.slice(nGood));
    const bwGood = this.bandwidth(good.length - 1);
    const bwBad = this.bandwidth(bad.length - 1);
    return candidates
      .map((config) => {
        const point = this.point(config);
        return {
          config,
          score: Math.log(this.density(good, bwGood, point)) - Math.log(this.density(bad, bwBad, point)),
        };
      })
      .sort((a, b) => b.score - a.score)
      .map((c) => c.config);
  }

  /** The candidate with the highest l(x)/g(x), drawn from l; a random config if every draw was seen. */
  private bestCandidate(working: readonly Observation[], random: Random): Config {
    const sorted = [...working].sort((a, b) => b.score - a.score);
    const nGood = Math.min(
      sorted.length - 1,
      Math.max(sorted.length >= 4 ? 2 : 1, Math.ceil(this.gamma * sorted.length)),
    );
    const good = this.components(sorted.slice(0, nGood));
    const bad = this.components(sorted.slice(nGood));
    const bwGood = this.bandwidth(good.length - 1);
    const bwBad = this.bandwidth(bad.length - 1);
    let best: Config | undefined;
    let bestScore = -Infinity;
    for (let c = 0; c < this.candidates; c++) {
      const config = this.sample(good, bwGood, random);
      const point = this.point(config);
      const score = Math.log(this.density(good, bwGood, point)) - Math.log(this.density(bad, bwBad, point));
      if (score > bestScore) {
        bestScore = score;
        best = config;
      }
    }
    return best ?? this.space.random(random);
  }

  private point(config: Config): Point {
    const full = this.space.effective(config);
    return this.space.dims.map((d) => {
      if (!this.space.active(d.name, full)) return undefined;
      const v = full[d.name] as KnobValue;
      return d.kind === 'numeric' ? toUnit(d, v) : Math.max(0, d.choices.indexOf(v));
    });
  }

  private components(set: readonly Observation[]): Component[] {
    return [
      ...set.map((o) => ({ point: this.point(o.config), weight: o.weight ?? 1 })),
      { point: undefined, weight: this.priorWeight },
    ];
  }

  /** Scott-like bandwidth in unit space for a mixture of `n` observations (Optuna's multivariate rule). */
  private bandwidth(n: number): number {
    const d = Math.max(1, this.space.dims.length);
    const sigma = 0.2 * Math.pow(Math.max(1, n), -1 / (d + 4));
    return Math.min(1, Math.max(1 / Math.min(100, n + 1), sigma));
  }

  private choiceEpsilon(d: Extract<Dim, { kind: 'choice' }>): number {
    return Math.min(0.5, 1 / d.choices.length + 0.1);
  }

  private density(components: readonly Component[], sigma: number, x: Point): number {
    let sum = 0;
    let wsum = 0;
    for (const c of components) {
      let k = 1;
      this.space.dims.forEach((d, i) => {
        const xv = x[i];
        if (xv === undefined) return; // the knob does not matter for x: no information either way
        const cv = c.point?.[i];
        if (d.kind === 'numeric') {
          if (cv === undefined) return; // uniform over [0, 1]: density 1
          const mass = Math.max(1e-12, normalCdf(1, cv, sigma) - normalCdf(0, cv, sigma));
          k *= Math.exp(-0.5 * ((xv - cv) / sigma) ** 2) / (sigma * Math.sqrt(2 * Math.PI) * mass);
        } else {
          const kk = d.choices.length;
          if (cv === undefined) {
            k *= 1 / kk;
            return;
          }
          const eps = this.choiceEpsilon(d);
          k *= (xv === cv ? 1 - eps : 0) + eps / kk;
        }
      });
      sum += c.weight * k;
      wsum += c.weight;
    }
    return Math.max(1e-300, sum / wsum);
  }

  /** A draw from the mixture: pick a component by weight, then each active knob near its value. */
  private sample(components: readonly Component[], sigma: number, random: Random): Config {
    const wsum = components.reduce((a, c) => a + c.weight, 0);
    let r = random() * wsum;
    let pick = components[components.length - 1] as Component;
    for (const c of components) {
      r -= c.weight;
      if (r <= 0) {
        pick = c;
        break;
      }
    }
    if (!pick.point) return this.space.random(random);
    const config: Config = { ...this.space.baseline };
    this.space.dims.forEach((d, i) => {
      if (!this.space.active(d.name, config)) return;
      const cv = pick.point?.[i];
      if (d.kind === 'numeric') {
        if (cv === undefined) {
          config[d.name] = fromUnit(d, random());
          return;
        }
        let u = cv;
        for (let tries = 0; tries < 20; tries++) {
          u = cv + sigma * gaussian(random);
          if (u >= 0 && u <= 1) break;
        }
        config[d.name] = fromUnit(d, Math.min(1, Math.max(0, u)));
      } else {
        const eps = this.choiceEpsilon(d);
        config[d.name] =
          cv !== undefined && random() >= eps
            ? (d.choices[cv] as KnobValue)
            : (d.choices[Math.floor(random() * d.choices.length)] as KnobValue);
      }
    });
    return this.space.effective(config);
  }
}

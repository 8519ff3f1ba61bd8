/**
 * The search space of a model spec, as the planners see it: each knob mapped to [0, 1] (numeric,
 * log-scaled where its range is wide) or to choice indices, with the spec's `activeWhen` conditions
 * applied, so that every config has one canonical, effective form. Sandbox-safe and deterministic.
 *
 *   const space = new SearchSpace(spec);
 *   space.key({ model_form: 'linear', latent_rank: 16 }) === space.key({}) // rank is inactive
 */
import {
  baselineConfig,
  effectiveConfig,
  isActive,
  knobOrder,
  type Config,
  type Knob,
  type KnobValue,
  type ModelSpec,
} from '../model-spec';

/** A seeded source of uniform numbers in [0, 1). */
export type Random = () => number;

/** mulberry32: a small, well-distributed 32-bit PRNG. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit mix of several integers: independent streams from (seed, counter, ...). */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x01000193) >>> 0;
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
  }
  return h >>> 0;
}

export function gaussian(random: Random): number {
  const u = Math.max(1e-12, random());
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export type Dim =
  | { name: string; kind: 'numeric'; knob: Knob; log: boolean; lo: number; hi: number; int: boolean }
  | { name: string; kind: 'choice'; knob: Knob; choices: KnobValue[] };

export type NumericDim = Extract<Dim, { kind: 'numeric' }>;

export function dimOf(name: string, knob: Knob): Dim {
  switch (knob.type) {
    case 'float':
      return { name, kind: 'numeric', knob, log: false, lo: knob.min, hi: knob.max, int: false };
    case 'logfloat':
      return {
        name,
        kind: 'numeric',
        knob,
        log: true,
        lo: Math.log(knob.min),
        hi: Math.log(knob.max),
        int: false,
      };
    case 'int': {
      // Wide positive integer ranges (sizes, counts, widths) are searched in log space.
      const log = knob.min > 0 && knob.max / knob.min >= 16;
      return log
        ? { name, kind: 'numeric', knob, log, lo: Math.log(knob.min), hi: Math.log(knob.max), int: true }
        : { name, kind: 'numeric', knob, log, lo: knob.min, hi: knob.max, int: true };
    }
    case 'categorical':
      return { name, kind: 'choice', knob, choices: knob.choices };
    case 'bool':
      return { name, kind: 'choice', knob, choices: [false, true] };
  }
}

export function toUnit(d: NumericDim, value: KnobValue): number {
  const v = d.log ? Math.log(value as number) : (value as number);
  return d.hi === d.lo ? 0.5 : Math.min(1, Math.max(0, (v - d.lo) / (d.hi - d.lo)));
}

export function fromUnit(d: NumericDim, u: number): number {
  const raw = d.lo + Math.min(1, Math.max(0, u)) * (d.hi - d.lo);
  const v = d.log ? Math.exp(raw) : raw;
  const knob = d.knob as { min: number; max: number };
  if (d.int) return Math.min(knob.max, Math.max(knob.min, Math.round(v)));
  return Math.min(knob.max, Math.max(knob.min, Number(v.toPrecision(4))));
}

/** The id of the empty delta: the model as it is. */
export const BASELINE_ID = 'baseline';

export function hypothesisId(delta: Config): string {
  const parts = Object.keys(delta)
    .sort()
    .map((k) => `${k}=${String(delta[k])}`);
  return parts.length ? parts.join(',') : BASELINE_ID;
}

export class SearchSpace {
  /** Searchable knobs (not frozen), parents before the knobs whose `activeWhen` names them. */
  readonly dims: Dim[];
  readonly baseline: Config;

  constructor(
    readonly spec: ModelSpec,
    frozen: readonly string[] = [],
  ) {
    const skip = new Set(frozen);
    this.dims = knobOrder(spec)
      .filter((name) => !skip.has(name))
      .map((name) => dimOf(name, spec.knobs[name] as Knob));
    this.baseline = baselineConfig(spec);
  }

  /** Full, effective config: baseline values under `config`, inactive knobs back at their baseline. */
  effective(config: Config): Config {
    return effectiveConfig(this.spec, config);
  }

  /** The effective delta over the baseline (knobs at their baseline values left out). */
  delta(config: Config): Config {
    const full = this.effective(config);
    return Object.fromEntries(Object.entries(full).filter(([k, v]) => this.baseline[k] !== v));
  }

  /** The canonical id of a config: equal ids for equal effective configs. */
  key(config: Config): string {
    return hypothesisId(this.delta(config));
  }

  active(name: string, config: Config): boolean {
    return isActive(this.spec, name, config);
  }

  randomValue(d: Dim, random: Random): KnobValue {
    return d.kind === 'numeric'
      ? fromUnit(d, random())
      : (d.choices[Math.floor(random() * d.choices.length)] as KnobValue);
  }

  /** A uniform random config over the active knobs. */
  random(random: Random): Config {
    const config: Config = { ...this.baseline };
    for (const d of this.dims) if (this.active(d.name, config)) config[d.name] = this.randomValue(d, random);
    return this.effective(config);
  }

  /**
   * A Latin hypercube of `n` configs: each numeric knob's range cut into n strata, one draw per
   * stratum, strata shuffled per knob; each categorical knob cycles its choices in a shuffled order.
   */
  latinHypercube(n: number, random: Random): Config[] {
    if (n <= 0) return [];
    const columns = new Map<string, KnobValue[]>();
    for (const d of this.dims) {
      const values: KnobValue[] =
        d.kind === 'numeric'
          ? Array.from({ length: n }, (_, i) => fromUnit(d, (i + random()) / n))
          : Array.from({ length: n }, (_, i) => d.choices[i % d.choices.length] as KnobValue);
      columns.set(d.name, shuffle(values, random));
    }
    return Array.from({ length: n }, (_, i) => {
      const config: Config = { ...this.baseline };
      for (const d of this.dims) config[d.name] = (columns.get(d.name) as KnobValue[])[i] as KnobValue;
      return this.effective(config);
    });
  }

  /**
   * One-knob-at-a-time moves from `around`: every searchable knob moved at least once — numeric
   * knobs a third of their range each way (where there is room), categorical knobs to each other
   * choice (up to `maxChoices`), booleans flipped. Knobs inactive at `around` are skipped: their
   * parents' moves reach them.
   */
  oneAtATime(around: Config, maxChoices = 3): Config[] {
    const centre = this.effective(around);
    const out: Config[] = [];
    for (const d of this.dims) {
      if (!this.active(d.name, centre)) continue;
      const values: KnobValue[] = [];
      if (d.kind === 'numeric') {
        const u = toUnit(d, centre[d.name] as KnobValue);
        for (const step of [1 / 3, -1 / 3]) {
          const target = u + step;
          if (target > 1.02 || target < -0.02) continue;
          values.push(fromUnit(d, target));
        }
        // At an end of its range a knob still moves once: two thirds of the way across.
        if (!values.length) values.push(fromUnit(d, u > 0.5 ? u - 2 / 3 : u + 2 / 3));
      } else {
        values.push(...d.choices.filter((c) => c !== centre[d.name]).slice(0, maxChoices));
      }
      for (const v of new Set(values)) {
        if (v === centre[d.name]) continue;
        out.push(this.effective({ ...centre, [d.name]: v }));
      }
    }
    return out;
  }

  /** A small move from `around`: one or two active knobs, numeric ones by `scale` of their range. */
  perturb(around: Config, random: Random, scale = 0.1): Config {
    const config = this.effective(around);
    const activeDims = this.dims.filter((d) => this.active(d.name, config));
    if (!activeDims.length) return config;
    const changes = random() < 0.6 ? 1 : 2;
    for (let c = 0; c < changes; c++) {
      const d = activeDims[Math.floor(random() * activeDims.length)] as Dim;
      const current = config[d.name] as KnobValue;
      if (d.kind === 'numeric') {
        let v = current;
        for (let tries = 0; tries < 8 && v === current; tries++)
          v = fromUnit(d, toUnit(d, current) + scale * gaussian(random));
        config[d.name] = v;
      } else {
        const others = d.choices.filter((x) => x !== current);
        if (others.length) config[d.name] = others[Math.floor(random() * others.length)] as KnobValue;
      }
    }
    return this.effective(config);
  }
}

export function shuffle<T>(items: readonly T[], random: Random): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

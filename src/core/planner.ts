/**
 * The offline planner: proposes single-knob changes around the baseline, spread over as many knobs
 * as the slate allows, in an order fixed by the seed. A first hypothesis source; the model-based
 * planner replaces it. Sandbox-safe and deterministic.
 *
 *   proposeSingleKnobSlate(spec, 5, 42) // → 5 hypotheses, each changing one knob
 */
import { baselineConfig, type Config, type Knob, type KnobValue, type ModelSpec } from './model-spec';
import type { Hypothesis } from './types';

/** mulberry32: a small, well-distributed 32-bit PRNG; enough for ordering proposals. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
const roundSig = (v: number) => Number(v.toPrecision(3));

/**
 * Candidate values for one knob around `around`, nearest first, never `around` itself. Coarse steps
 * explore (validation); fine steps refine (exploitation).
 */
export function neighbours(
  knob: Knob,
  around: KnobValue = knob.baseline,
  scale: 'coarse' | 'fine' = 'coarse',
): KnobValue[] {
  let values: KnobValue[];
  const fine = scale === 'fine';
  switch (knob.type) {
    case 'int': {
      const b = around as number;
      const step = Math.max(1, Math.round((knob.max - knob.min) / (fine ? 16 : 8)));
      const ratios = fine ? [1.5, 1 / 1.5] : [2, 0.5, 4, 0.25];
      values = b > 0 ? ratios.map((r) => Math.round(b * r)) : [b + step, b - step];
      values = values.map((v) => clamp(v as number, knob.min, knob.max));
      break;
    }
    case 'float': {
      const span = knob.max - knob.min;
      const b = around as number;
      const steps = fine ? [span / 8, -span / 8] : [span / 4, -span / 4, span / 2, -span / 2];
      values = steps.map((d) => roundSig(clamp(b + d, knob.min, knob.max)));
      break;
    }
    case 'logfloat': {
      const b = around as number;
      const ratios = fine ? [1.5, 1 / 1.5] : [3, 1 / 3, 10, 1 / 10];
      values = ratios.map((r) => roundSig(clamp(b * r, knob.min, knob.max)));
      break;
    }
    case 'categorical':
      values = fine ? [] : knob.choices.filter((c) => c !== around);
      break;
    case 'bool':
      values = fine ? [] : [!around];
      break;
  }
  return [...new Set(values)].filter((v) => v !== around);
}

/** The id of the empty delta: the model as it is. */
export const BASELINE_ID = 'baseline';

/** Drops entries equal to the baseline, so that equal configs get equal ids. */
export function withoutBaselineValues(spec: ModelSpec, delta: Config): Config {
  return Object.fromEntries(Object.entries(delta).filter(([k, v]) => spec.knobs[k]?.baseline !== v));
}

export function hypothesisId(delta: Config): string {
  const parts = Object.keys(delta)
    .sort()
    .map((k) => `${k}=${String(delta[k])}`);
  return parts.length ? parts.join(',') : BASELINE_ID;
}

/**
 * Up to `count` single-knob hypotheses. Knobs are visited round-robin in a seeded order so that the
 * slate is diverse before it is deep; `exclude` holds hypothesis ids already tried.
 */
export function proposeSingleKnobSlate(
  spec: ModelSpec,
  count: number,
  seed: number,
  exclude: ReadonlySet<string> = new Set(),
): Hypothesis[] {
  const random = seededRandom(seed);
  const knobNames = shuffle(Object.keys(spec.knobs).sort(), random);
  const queues = knobNames.map((name) => ({ name, values: neighbours(spec.knobs[name] as Knob) }));
  return roundRobin(spec, queues, count, exclude, {}, (name, value, depth) => {
    const baseline = (spec.knobs[name] as Knob).baseline;
    return `single-knob probe: ${name} ${String(baseline)} → ${String(value)} (planner round ${depth + 1})`;
  });
}

/**
 * Local refinement around `config` (exploitation): fine single-knob steps from the current best,
 * each hypothesis carrying the whole delta of the best plus the step.
 */
export function proposeRefinements(
  spec: ModelSpec,
  bestDelta: Config,
  count: number,
  seed: number,
  exclude: ReadonlySet<string> = new Set(),
): Hypothesis[] {
  const random = seededRandom(seed ^ 0x5eed);
  const current = { ...baselineConfig(spec), ...bestDelta };
  const knobNames = shuffle(Object.keys(spec.knobs).sort(), random);
  const queues = knobNames.map((name) => ({
    name,
    values: neighbours(spec.knobs[name] as Knob, current[name], 'fine'),
  }));
  return roundRobin(spec, queues, count, exclude, bestDelta, (name, value) => {
    return `refine the best: ${name} ${String(current[name])} → ${String(value)}`;
  });
}

function roundRobin(
  spec: ModelSpec,
  queues: { name: string; values: KnobValue[] }[],
  count: number,
  exclude: ReadonlySet<string>,
  baseDelta: Config,
  rationale: (name: string, value: KnobValue, depth: number) => string,
): Hypothesis[] {
  const slate: Hypothesis[] = [];
  const seen = new Set(exclude);
  for (let depth = 0; slate.length < count; depth++) {
    let offered = false;
    for (const { name, values } of queues) {
      const value = values[depth];
      if (value === undefined) continue;
      offered = true;
      const delta = withoutBaselineValues(spec, { ...baseDelta, [name]: value });
      const id = hypothesisId(delta);
      if (seen.has(id) || id === BASELINE_ID) continue;
      seen.add(id);
      slate.push({ id, source: 'planner', rationale: rationale(name, value, depth), delta });
      if (slate.length >= count) break;
    }
    if (!offered) break;
  }
  return slate;
}

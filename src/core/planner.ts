/**
 * The offline planner: proposes single-knob changes around the baseline, spread over as many knobs
 * as the slate allows, in an order fixed by the seed. A first hypothesis source; the model-based
 * planner replaces it. Sandbox-safe and deterministic.
 *
 *   proposeSingleKnobSlate(spec, 5, 42) // → 5 hypotheses, each changing one knob
 */
import type { Config, Knob, KnobValue, ModelSpec } from './model-spec';
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

/** Candidate values for one knob, nearest first, never the baseline itself. */
export function neighbours(knob: Knob): KnobValue[] {
  let values: KnobValue[];
  switch (knob.type) {
    case 'int': {
      const b = knob.baseline;
      const step = Math.max(1, Math.round((knob.max - knob.min) / 8));
      values = b > 0 ? [b * 2, Math.round(b / 2), b * 4, Math.round(b / 4)] : [b + step, b - step];
      values = values.map((v) => clamp(v as number, knob.min, knob.max));
      break;
    }
    case 'float': {
      const span = knob.max - knob.min;
      const b = knob.baseline;
      values = [b + span / 4, b - span / 4, b + span / 2, b - span / 2].map((v) =>
        roundSig(clamp(v, knob.min, knob.max)),
      );
      break;
    }
    case 'logfloat': {
      const b = knob.baseline;
      values = [b * 3, b / 3, b * 10, b / 10].map((v) => roundSig(clamp(v, knob.min, knob.max)));
      break;
    }
    case 'categorical':
      values = knob.choices.filter((c) => c !== knob.baseline);
      break;
    case 'bool':
      values = [!knob.baseline];
      break;
  }
  return [...new Set(values)].filter((v) => v !== knob.baseline);
}

export function hypothesisId(delta: Config): string {
  const parts = Object.keys(delta)
    .sort()
    .map((k) => `${k}=${String(delta[k])}`);
  return parts.length ? parts.join(',') : 'baseline';
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
  const slate: Hypothesis[] = [];
  for (let depth = 0; slate.length < count; depth++) {
    let offered = false;
    for (const { name, values } of queues) {
      const value = values[depth];
      if (value === undefined) continue;
      offered = true;
      const delta = { [name]: value };
      const id = hypothesisId(delta);
      if (exclude.has(id)) continue;
      const baseline = (spec.knobs[name] as Knob).baseline;
      slate.push({
        id,
        source: 'planner',
        rationale: `single-knob probe: ${name} ${String(baseline)} → ${String(value)} (planner round ${depth + 1})`,
        delta,
      });
      if (slate.length >= count) break;
    }
    if (!offered) break;
  }
  return slate;
}

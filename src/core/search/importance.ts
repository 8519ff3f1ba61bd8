/**
 * Which knobs the campaign's own measurements say matter: for each knob, whether the configs' scores
 * differ between the knob's values (its choices, or four bins of its range) more than they would if
 * the scores were dealt out at random: a one-way analysis of variance with a permutation test, so
 * that the answer means the same for 10 configs or 200 and for a sampler that has already
 * concentrated on some values. Pure and deterministic.
 *
 *   const p = knobEvidence(space, scored, ['step_size', 'shuffle_stream'], seededRandom(7));
 *   // → Map { 'step_size' => 0.005, 'shuffle_stream' => 0.62 }: step_size matters, shuffle_stream shows no sign
 *
 * Marginal: a knob that does nothing but was sampled together with one that matters can look as if
 * it mattered too (the caller then keeps it, which costs only a simplification).
 */
import type { Config } from '../model-spec';
import { shuffle, toUnit, type Random, type SearchSpace } from './space';

/** Bins of a numeric knob's range (in its search scale: log where the space searches in log). */
const BINS = 4;
/** Random deals of the scores that calibrate the statistic. */
const PERMUTATIONS = 199;

/** A measured config and its score, higher is better. */
export interface Scored {
  config: Config;
  score: number;
}

/**
 * The permutation p-value, per knob, of "the scores do not depend on this knob": small means the
 * knob matters. Knobs the space does not search, knobs that took one value only, and sets of fewer
 * than 8 configs get 1.
 */
export function knobEvidence(
  space: SearchSpace,
  scored: readonly Scored[],
  knobs: readonly string[],
  random: Random,
): Map<string, number> {
  const out = new Map<string, number>();
  const n = scored.length;
  const scores = scored.map((s) => s.score);
  // The same random deals for every knob, so that knobs are compared on equal terms.
  const deals = Array.from({ length: PERMUTATIONS }, () => shuffle(scores, random));
  for (const name of knobs) {
    const dim = space.dims.find((d) => d.name === name);
    if (!dim || n < 8) {
      out.set(name, 1);
      continue;
    }
    const groups = new Map<string, number>();
    const group = scored.map(({ config }) => {
      let key = 'inactive';
      const v = config[name];
      if (space.active(name, config) && v !== undefined)
        key =
          dim.kind === 'choice'
            ? JSON.stringify(v)
            : String(Math.min(BINS - 1, Math.floor(toUnit(dim, v) * BINS)));
      if (!groups.has(key)) groups.set(key, groups.size);
      return groups.get(key) as number;
    });
    if (groups.size < 2) {
      out.set(name, 1);
      continue;
    }
    const between = (values: readonly number[]) => {
      const sum = new Array<number>(groups.size).fill(0);
      const count = new Array<number>(groups.size).fill(0);
      let total = 0;
      values.forEach((v, i) => {
        const g = group[i] as number;
        sum[g] = (sum[g] as number) + v;
        count[g] = (count[g] as number) + 1;
        total += v;
      });
      const grand = total / n;
      let ss = 0;
      for (let g = 0; g < groups.size; g++) {
        const c = count[g] as number;
        if (c) ss += c * ((sum[g] as number) / c - grand) ** 2;
      }
      return ss;
    };
    const observed = between(scores);
    let asLarge = 0;
    for (const deal of deals) if (between(deal) >= observed - 1e-12) asLarge += 1;
    out.set(name, (1 + asLarge) / (1 + PERMUTATIONS));
  }
  return out;
}

/**
 * The planner interface: given what was measured (observations, higher score is better) and what is
 * still running (pending), propose the next configs — like Optuna's Sampler, swappable without
 * touching the campaign. Sandbox-safe and deterministic for a random source.
 *
 *   const planner: Planner = new TpePlanner(space);
 *   planner.propose(observations, pending, 1, random) // → [config]
 */
import type { Config } from '../model-spec';
import type { Random, SearchSpace } from './space';

export interface Observation {
  /** A full, effective config. */
  config: Config;
  /** Higher is better (rea passes gains over the baseline, in %). */
  score: number;
  /** How much this observation counts (earlier campaigns and lower fidelities count less). Default 1. */
  weight?: number;
}

export interface Planner {
  readonly name: string;
  /**
   * Up to `n` new configs, none equal (in effect) to an observed or pending one or to each other;
   * fewer when the space has no more.
   */
  propose(
    observations: readonly Observation[],
    pending: readonly Config[],
    n: number,
    random: Random,
  ): Config[];
}

/** Uniform random search over the space: the planner every other must beat. */
export class RandomPlanner implements Planner {
  readonly name = 'random';
  constructor(private readonly space: SearchSpace) {}

  propose(
    observations: readonly Observation[],
    pending: readonly Config[],
    n: number,
    random: Random,
  ): Config[] {
    const seen = new Set([
      ...observations.map((o) => this.space.key(o.config)),
      ...pending.map((c) => this.space.key(c)),
    ]);
    seen.add(this.space.key({}));
    const out: Config[] = [];
    for (let tries = 0; out.length < n && tries < n * 50; tries++) {
      const config = this.space.random(random);
      const k = this.space.key(config);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(config);
    }
    return out;
  }
}

/**
 * Noise checks for rea. False confirmations: cold campaigns on a task where no change can move the
 * model's expected quality (every knob only re-randomizes or is bookkeeping); the share that confirm
 * a "win". Power: cold campaigns on a task with one planted real effect; the share that confirm it.
 * The planted effect is measured here too, in noise SDs (the baseline's SD across trainer seeds).
 */
import { say } from './common';
import { score, type Config } from './evaluate';
import { taskSpec } from './search';
import { budgetUnits, forget, reaSearch, type SearchRecord } from './searches';
import type { Stack } from './stack';
import { mean } from './stats';
import type { Tier } from './tiers';

export interface NoiseRaw {
  tier: string;
  header: string;
  nullTask: string;
  plantedTask: string;
  planted: Config;
  null: SearchRecord[];
  power: SearchRecord[];
  effect?: { seeds: number; baselineMean: number; noiseSd: number; effectPct: number; effectSds: number };
}

/** Whether `answer` makes every change in `planted`. */
export const hasPlanted = (answer: Config, planted: Config): boolean =>
  Object.entries(planted).every(([k, v]) => answer[k] === v);

export async function noiseChecks(
  stack: Stack,
  tier: Tier,
  save: (raw: Omit<NoiseRaw, 'tier' | 'header'>) => void,
): Promise<void> {
  const noise = tier.noise;
  if (!noise) return;
  const nullSpec = taskSpec(noise.nullTask);
  const plantedSpec = taskSpec(noise.plantedTask);
  const raw: Omit<NoiseRaw, 'tier' | 'header'> = {
    nullTask: noise.nullTask,
    plantedTask: noise.plantedTask,
    planted: noise.planted,
    null: [],
    power: [],
  };
  say(`noise: measuring the planted effect on ${noise.plantedTask} over ${noise.effectSeeds} seeds`);
  const seeds = Array.from({ length: noise.effectSeeds }, (_, i) => 500_000 + i);
  const base: number[] = [];
  const planted: number[] = [];
  for (const s of seeds) {
    base.push((await score(plantedSpec, {}, s, 'valid')).value);
    planted.push((await score(plantedSpec, noise.planted, s, 'valid')).value);
  }
  const baselineMean = mean(base);
  const sd = Math.sqrt(base.reduce((a, v) => a + (v - baselineMean) ** 2, 0) / Math.max(1, base.length - 1));
  const sign = plantedSpec.metric.direction === 'minimize' ? 1 : -1;
  const diff = mean(base.map((b, i) => sign * (b - (planted[i] as number))));
  raw.effect = {
    seeds: seeds.length,
    baselineMean,
    noiseSd: sd,
    effectPct: (diff / Math.abs(baselineMean)) * 100,
    effectSds: diff / sd,
  };
  save(raw);
  for (let i = 0; i < noise.campaigns; i++) {
    for (const [which, spec] of [
      ['null', nullSpec],
      ['power', plantedSpec],
    ] as const) {
      await forget(stack, [spec.name]);
      const r = await reaSearch(stack, 'rea', spec, spec.name, i, budgetUnits(spec, noise.budgetRuns), {
        idPrefix: `bench-${which}`,
      });
      raw[which].push(r);
      say(
        `noise: ${which} campaign ${i}: answer ${r.answerLabel}${r.confirmed ? ' (confirmed)' : ''}, ${r.used}/${r.budget} used`,
      );
      save(raw);
    }
  }
}

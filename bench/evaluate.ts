/**
 * What a user gets from a search: the config it hands back, re-trained at full fidelity on fresh
 * seeds and scored on the held-out test split, beside the baseline on the same seeds. Runs the
 * spec's own trainer through rea's trainer protocol (src/trainer/run.ts), so any model works;
 * results are cached on disk (the trainers are deterministic for a config and seed).
 *
 *   const scores = await evaluateConfigs(spec, [baseline, answer], EVAL_SEEDS, 'test');
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { runTrainer } from '../src/trainer/run';
import { hash, inLanes, PYTHON, ROOT, WORK, type Spec } from './common';

export type Config = Record<string, string | number | boolean>;

/** Seeds no search ever trains with: every method's answer and the baseline are scored on these. */
export const EVAL_SEEDS = [1_000_003, 1_000_033, 1_000_037, 1_000_039, 1_000_081];

export interface Score {
  value: number;
  /** The trainer's Bayes-optimal value of the primary metric on the same rows (synthetic data). */
  bayes?: number;
}

const CACHE = path.join(WORK, 'evals');
const cache = new Map<string, Score>();
let loaded = false;

function loadCache(): void {
  if (loaded) return;
  loaded = true;
  mkdirSync(CACHE, { recursive: true });
  const file = path.join(CACHE, 'scores.jsonl');
  if (!existsSync(file)) return;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      const { key, score } = JSON.parse(line) as { key: string; score: Score };
      cache.set(key, score);
    } catch {
      // a line cut short by a killed run: measured again when needed
    }
  }
}

/** The full config a run trains: baseline values with `config` on top (unknown knobs refused). */
export function fullConfig(spec: Spec, config: Config): Config {
  const unknown = Object.keys(config).filter((k) => !(k in spec.knobs));
  if (unknown.length) throw new Error(`config names knobs ${unknown.join(', ')} that ${spec.name} lacks`);
  return { ...Object.fromEntries(Object.entries(spec.knobs).map(([k, v]) => [k, v.baseline])), ...config };
}

function keyOf(spec: Spec, config: Config, fidelity: number, seed: number, split: string): string {
  const sorted = Object.fromEntries(
    Object.entries(fullConfig(spec, config)).sort(([a], [b]) => a.localeCompare(b)),
  );
  return hash(JSON.stringify([spec.trainer, spec.fixed, spec.metric.primary, sorted, fidelity, seed, split]));
}

let runCounter = 0;

/** Trains `config` at `fidelity` with `seed`, scored on `split`; cached. Throws when the run fails. */
export async function score(
  spec: Spec,
  config: Config,
  seed: number,
  split: 'valid' | 'test',
  fidelity = spec.fidelity.high,
): Promise<Score> {
  loadCache();
  const key = keyOf(spec, config, fidelity, seed, split);
  const known = cache.get(key);
  if (known) return known;
  const runDir = path.join(WORK, 'eval-runs', `${process.pid}-${runCounter++}`);
  const { outcome, logTail } = await runTrainer({
    argv: spec.trainer.argv,
    cwd: path.resolve(ROOT, spec.trainer.cwd ?? '.'),
    ...(spec.trainer.env ? { env: spec.trainer.env } : {}),
    config: {
      ...spec.fixed,
      ...fullConfig(spec, config),
      [spec.fidelity.knob]: fidelity,
      seed,
      eval_split: split,
    },
    runDir,
    python: PYTHON,
    timeLimitSec: Number(spec.resources.timeLimitSec ?? 600),
    primaryMetric: spec.metric.primary,
  });
  if (outcome.status !== 'succeeded')
    throw new Error(
      `${spec.name}: scoring ${JSON.stringify(config)} (seed ${seed}, ${split}) failed: ${outcome.failureClass}: ${outcome.message}\n${logTail.slice(-5).join('\n')}`,
    );
  const value = outcome.metrics[spec.metric.primary] as number;
  const bayes = outcome.metrics[`bayes_${spec.metric.primary}`];
  const result: Score = { value, ...(typeof bayes === 'number' ? { bayes } : {}) };
  cache.set(key, result);
  appendFileSync(path.join(CACHE, 'scores.jsonl'), `${JSON.stringify({ key, score: result })}\n`);
  return result;
}

/** Scores of each config on each seed (configs × seeds), `lanes` runs at a time. */
export async function scoreAll(
  spec: Spec,
  configs: Config[],
  seeds: readonly number[],
  split: 'valid' | 'test',
  lanes = 2,
): Promise<Score[][]> {
  const jobs = configs.flatMap((c) => seeds.map((s) => () => score(spec, c, s, split)));
  const flat = await inLanes(lanes, jobs);
  return configs.map((_, i) => flat.slice(i * seeds.length, (i + 1) * seeds.length));
}

/** +1 when lower is better: (baseline − answer) × sign is an improvement. */
export const signOf = (spec: Spec): number => (spec.metric.direction === 'minimize' ? 1 : -1);

/**
 * The answer's paired gain over the baseline (%): the mean over seeds of
 * sign × (baseline − answer) / |baseline|, each seed's answer against the baseline on that seed.
 */
export function pairedGainPct(spec: Spec, baseline: Score[], answer: Score[]): number {
  const s = signOf(spec);
  const gains = answer.map((a, i) => {
    const b = (baseline[i] as Score).value;
    return ((s * (b - a.value)) / Math.abs(b)) * 100;
  });
  return gains.reduce((x, y) => x + y, 0) / gains.length;
}

/** Share (%) of the baseline's gap to the Bayes-optimal value that the answer closes, paired by seed. */
export function gapClosedPct(spec: Spec, baseline: Score[], answer: Score[]): number | undefined {
  if (baseline.some((b) => b.bayes === undefined)) return undefined;
  const s = signOf(spec);
  const closed = answer.map((a, i) => {
    const b = baseline[i] as Score;
    return ((s * (b.value - a.value)) / (s * (b.value - (b.bayes as number)))) * 100;
  });
  return closed.reduce((x, y) => x + y, 0) / closed.length;
}

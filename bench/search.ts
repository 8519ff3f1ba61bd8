/**
 * The search-quality part: for every task, search seed and method, one search at equal compute;
 * then every answer re-trained at full fidelity on the evaluation seeds and scored on the test split,
 * beside the baseline on the same seeds; and per task an oracle (multivariate TPE at 10× the budget).
 * Raw results go to bench/results/raw/search.json after every search.
 */
import path from 'node:path';
import { inLanes, modelSpec, say, WORK, writeSpec, type Spec } from './common';
import {
  EVAL_SEEDS,
  gapClosedPct,
  pairedGainPct,
  score,
  scoreAll,
  type Config,
  type Score,
} from './evaluate';
import { budgetUnits, forget, peerSearch, reaSearch, type SearchRecord } from './searches';
import type { ReaMethod, Stack } from './stack';
import type { Method, Tier } from './tiers';

/** A search's answer as scored: its paired test gain over the baseline on the evaluation seeds. */
export interface ScoredRecord extends SearchRecord {
  /** Mean test value of the answer over the evaluation seeds. */
  answerTest: number;
  baselineTest: number;
  gainPct: number;
  gapClosedPct?: number;
  bayesTest?: number;
  /** The best run seen during the search, as a gain over the baseline at that run's seed (validation). */
  bestSearchGainPct?: number;
}

export interface TaskRaw {
  task: string;
  header?: string;
  budget: number;
  records: SearchRecord[];
  oracle?: SearchRecord;
  /** Test scores on the evaluation seeds, by answer key (JSON of the sorted delta). */
  scores: Record<string, Score[]>;
  /** Validation scores of the baseline at each search seed (for the secondary column). */
  baselineValid: Record<string, Score>;
}

export interface SearchRaw {
  /** 2: this benchmark's shape (earlier files are ignored). */
  format: 2;
  tier: string;
  header: string;
  complete: boolean;
  evalSeeds: number[];
  tasks: TaskRaw[];
}

export const answerKey = (delta: Config): string =>
  JSON.stringify(Object.fromEntries(Object.entries(delta).sort(([a], [b]) => a.localeCompare(b))));

/** The spec as searched: models/<task>.json unchanged (the fast tasks need no caps). */
export function taskSpec(task: string): Spec {
  return modelSpec(task);
}

/** Writes the spec where the peers read it (never the worker's folder, which transfer drifts). */
export function peerSpecFile(spec: Spec): string {
  return writeSpec(spec, undefined, path.join(WORK, 'specs'));
}

const isRea = (m: Method): m is ReaMethod => m === 'rea' || m === 'rea-llm';

/**
 * Runs the searches of `tier` (rea's campaigns one at a time in one lane, the peers' studies in the
 * other, then everything left in both), the oracles, and the scoring. `save` gets every change.
 */
export async function searchQuality(
  stack: Stack,
  tier: Tier,
  methods: Method[],
  save: (tasks: TaskRaw[], complete: boolean) => void,
  earlier: TaskRaw[] = [],
): Promise<TaskRaw[]> {
  const tasks: TaskRaw[] = tier.tasks.map((task) => {
    const spec = taskSpec(task);
    const kept = earlier.find((t) => t.task === task);
    return {
      task,
      budget: budgetUnits(spec, tier.budgetRuns),
      records: kept?.records ?? [],
      ...(kept?.oracle ? { oracle: kept.oracle } : {}),
      scores: kept?.scores ?? {},
      baselineValid: kept?.baselineValid ?? {},
    };
  });
  const done = (t: TaskRaw, m: Method, seed: number) =>
    t.records.some((r) => r.method === m && r.seed === seed);
  const reaJobs: (() => Promise<void>)[] = [];
  const peerJobs: (() => Promise<void>)[] = [];
  for (const seed of tier.seeds) {
    for (const t of tasks) {
      const spec = taskSpec(t.task);
      for (const m of methods) {
        if (m === 'rea-llm' && !(tier.llm?.tasks.includes(t.task) && tier.llm.seeds.includes(seed))) continue;
        if (done(t, m, seed)) continue;
        const job = async () => {
          say(`${t.task}: ${m} seed ${seed} (${t.budget} ${spec.fidelity.knob})`);
          let record: SearchRecord;
          if (isRea(m)) {
            await forget(stack, [spec.name]);
            record = await reaSearch(stack, m, spec, t.task, seed, t.budget);
          } else {
            record = await peerSearch(m, spec, peerSpecFile(spec), t.task, seed, t.budget);
          }
          say(
            `  ${t.task} ${m} s${seed}: ${record.used}/${record.budget} used, ${record.runs} runs, answer ${record.answerLabel}${record.confirmed ? ' (confirmed)' : ''} in ${record.wallSec.toFixed(0)} s`,
          );
          t.records.push(record);
          save(tasks, false);
        };
        (isRea(m) ? reaJobs : peerJobs).push(job);
      }
    }
  }
  if (tier.oracle) {
    const { multiple, seed } = tier.oracle;
    for (const t of tasks) {
      if (t.oracle) continue;
      peerJobs.push(async () => {
        const spec = taskSpec(t.task);
        say(`${t.task}: oracle (multivariate TPE, ${multiple}× the budget)`);
        t.oracle = await peerSearch('tpe-mv', spec, peerSpecFile(spec), t.task, seed, t.budget * multiple);
        save(tasks, false);
      });
    }
  }
  let next = 0;
  const takePeers = async () => {
    while (next < peerJobs.length) await (peerJobs[next++] as () => Promise<void>)();
  };
  await Promise.all([
    (async () => {
      for (const job of reaJobs) await job();
    })().then(takePeers),
    takePeers(),
  ]);
  say('scoring every answer on the test split');
  for (const t of tasks) await scoreTask(t);
  save(tasks, true);
  return tasks;
}

/**
 * Whether `tasks` hold every search `tier` asks for: each task, each method at each seed (rea + LLM
 * on its subset), the oracle where the tier has one, and every answer scored. The report's
 * "partial" banner reads this, so a run that only fills in the rest (--resume, --methods) of an
 * interrupted one is complete once nothing is missing.
 */
export function searchComplete(tier: Tier, tasks: TaskRaw[]): boolean {
  return tier.tasks.every((name) => {
    const t = tasks.find((x) => x.task === name);
    if (!t || (tier.oracle && !t.oracle)) return false;
    const wanted = tier.methods.flatMap((m) =>
      tier.seeds
        .filter(
          (seed) => m !== 'rea-llm' || (tier.llm?.tasks.includes(name) && tier.llm.seeds.includes(seed)),
        )
        .map((seed) => [m, seed] as const),
    );
    const answers = [{}, ...t.records.map((r) => r.answer), ...(t.oracle ? [t.oracle.answer] : [])];
    return (
      wanted.every(([m, seed]) => t.records.some((r) => r.method === m && r.seed === seed)) &&
      answers.every((a) => t.scores[answerKey(a)] !== undefined)
    );
  });
}

/** Scores the task's answers (and the baseline) on the evaluation seeds; known scores are kept. */
export async function scoreTask(t: TaskRaw): Promise<void> {
  const spec = taskSpec(t.task);
  const answers = [{}, ...t.records.map((r) => r.answer), ...(t.oracle ? [t.oracle.answer] : [])];
  const todo = [...new Map(answers.map((a) => [answerKey(a), a])).entries()].filter(([k]) => !t.scores[k]);
  const scored = await scoreAll(
    spec,
    todo.map(([, a]) => a),
    EVAL_SEEDS,
    'test',
  );
  todo.forEach(([k], i) => (t.scores[k] = scored[i] as Score[]));
  const seeds = [...new Set(t.records.flatMap((r) => (r.best ? [r.best.seed] : [])))].filter(
    (s) => !t.baselineValid[String(s)],
  );
  const valid = await inLanes(
    2,
    seeds.map((s) => () => score(spec, {}, s, 'valid')),
  );
  seeds.forEach((s, i) => (t.baselineValid[String(s)] = valid[i] as Score));
}

/** A record with its test gain (and the secondary best-during-search gain), from the task's scores. */
export function scored(t: TaskRaw, r: SearchRecord): ScoredRecord {
  const spec = taskSpec(t.task);
  const base = t.scores[answerKey({})];
  const ans = t.scores[answerKey(r.answer)];
  if (!base || !ans) throw new Error(`${t.task}: ${r.method} seed ${r.seed}: its answer was not scored`);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const gap = gapClosedPct(spec, base, ans);
  const bayes = base.every((b) => b.bayes !== undefined)
    ? mean(base.map((b) => b.bayes as number))
    : undefined;
  const bv = r.best ? t.baselineValid[String(r.best.seed)] : undefined;
  const sign = spec.metric.direction === 'minimize' ? 1 : -1;
  return {
    ...r,
    answerTest: mean(ans.map((s) => s.value)),
    baselineTest: mean(base.map((s) => s.value)),
    gainPct: pairedGainPct(spec, base, ans),
    ...(gap === undefined ? {} : { gapClosedPct: gap }),
    ...(bayes === undefined ? {} : { bayesTest: bayes }),
    ...(r.best && bv
      ? { bestSearchGainPct: ((sign * (bv.value - r.best.value)) / Math.abs(bv.value)) * 100 }
      : {}),
  };
}

/**
 * Transfer: a campaign on a task, then the same model on drifted data (a new data seed: a new world
 * and rows for the synthetic generator, a new split for real data) — once warm, with the first
 * campaign's history in PostgreSQL, once cold, with none — at the same campaign seed and budget.
 * Every answer along each campaign's trail is scored on the drifted task's test split.
 */
import { say, writeSpec } from './common';
import { EVAL_SEEDS, pairedGainPct, scoreAll, type Config, type Score } from './evaluate';
import { answerKey, taskSpec } from './search';
import { budgetUnits, forget, reaSearch, type SearchRecord } from './searches';
import type { Stack } from './stack';
import type { Tier, TransferPair } from './tiers';

export interface TransferPairRaw extends TransferPair {
  budget: number;
  first: SearchRecord;
  warm: SearchRecord;
  cold: SearchRecord;
  /** Test scores on the drifted task, by answer key. */
  scores: Record<string, Score[]>;
}

export interface TransferRaw {
  tier: string;
  header: string;
  pairs: TransferPairRaw[];
}

export interface TransferOutcome {
  pair: TransferPairRaw;
  coldGainPct: number;
  /** The warm campaign's answer gain at the cold campaign's final spend. */
  warmGainPct: number;
  /** Units the warm campaign spent before its answer first reached the cold campaign's final gain. */
  warmUnitsToCold?: number;
  /** warmUnitsToCold / the units the cold campaign spent (Infinity when never reached). */
  unitsRatio: number;
}

export async function transfer(
  stack: Stack,
  tier: Tier,
  save: (pairs: TransferPairRaw[]) => void,
  earlier: TransferPairRaw[] = [],
): Promise<TransferPairRaw[]> {
  const plan = tier.transfer;
  if (!plan) return [];
  const pairs: TransferPairRaw[] = [];
  for (const p of plan.pairs) {
    const kept = earlier.find(
      (e) => e.task === p.task && e.driftDataSeed === p.driftDataSeed && e.campaignSeed === p.campaignSeed,
    );
    if (kept) {
      pairs.push(kept);
      continue;
    }
    const spec = taskSpec(p.task);
    const budget = budgetUnits(spec, plan.budgetRuns);
    await forget(stack, [spec.name]);
    say(`transfer: ${p.task}, first campaign on the original data`);
    const first = await reaSearch(stack, 'rea', spec, p.task, p.campaignSeed + 1000, budget, {
      idPrefix: 'bench-tr-first',
    });
    say(`transfer: ${p.task}, warm campaign on data seed ${p.driftDataSeed}`);
    const warm = await reaSearch(stack, 'rea', spec, p.task, p.campaignSeed, budget, {
      dataSeed: p.driftDataSeed,
      idPrefix: 'bench-tr-warm',
    });
    await forget(stack, [spec.name]);
    say(`transfer: ${p.task}, cold campaign on data seed ${p.driftDataSeed}`);
    const cold = await reaSearch(stack, 'rea', spec, p.task, p.campaignSeed, budget, {
      dataSeed: p.driftDataSeed,
      idPrefix: 'bench-tr-cold',
    });
    writeSpec(spec);
    await forget(stack, [spec.name]);
    const pair: TransferPairRaw = { ...p, budget, first, warm, cold, scores: {} };
    await scorePair(pair);
    pairs.push(pair);
    save(pairs);
  }
  return pairs;
}

/** The drifted task's spec: the original with the new data seed. */
function driftedSpec(p: TransferPair) {
  const spec = taskSpec(p.task);
  const copy = JSON.parse(JSON.stringify(spec)) as typeof spec;
  if (!copy.fixed.dataset) throw new Error(`${p.task}: its spec has no fixed.dataset to drift`);
  copy.fixed.dataset.data_seed = p.driftDataSeed;
  return copy;
}

export async function scorePair(pair: TransferPairRaw): Promise<void> {
  const spec = driftedSpec(pair);
  const answers: Config[] = [
    {},
    ...pair.warm.trail.map((t) => t.answer),
    ...pair.cold.trail.map((t) => t.answer),
  ];
  const todo = [...new Map(answers.map((a) => [answerKey(a), a])).entries()].filter(([k]) => !pair.scores[k]);
  const scored = await scoreAll(
    spec,
    todo.map(([, a]) => a),
    EVAL_SEEDS,
    'test',
  );
  todo.forEach(([k], i) => (pair.scores[k] = scored[i] as Score[]));
}

/** The answer a campaign would have handed back after spending `units`. */
function answerAt(r: SearchRecord, units: number): Config {
  let answer: Config = {};
  for (const t of r.trail) if (t.used <= units) answer = t.answer;
  return answer;
}

export function transferOutcome(pair: TransferPairRaw): TransferOutcome {
  const spec = driftedSpec(pair);
  const base = pair.scores[answerKey({})] as Score[];
  const gain = (a: Config) => pairedGainPct(spec, base, pair.scores[answerKey(a)] as Score[]);
  const coldGainPct = gain(answerAt(pair.cold, Infinity));
  const warmGainPct = gain(answerAt(pair.warm, pair.cold.used));
  const reached = pair.warm.trail.find((t) => gain(t.answer) >= coldGainPct);
  return {
    pair,
    coldGainPct,
    warmGainPct,
    ...(reached ? { warmUnitsToCold: reached.used } : {}),
    unitsRatio: reached ? reached.used / Math.max(1, pair.cold.used) : Infinity,
  };
}

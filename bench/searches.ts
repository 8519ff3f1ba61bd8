/**
 * One search, by any method, reduced to what the benchmark scores: the config it hands back, the
 * budget it spent, and the best it saw along the way. rea runs as a real campaign on the stack;
 * the peers run through bench/peers.py (Optuna, ask/tell, the spec's own trainer).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { CampaignInput } from '../src/core/campaign-input';
import { slotGaps, utilization } from './analysis';
import { PYTHON, ROOT, WORK, writeSpec, type Spec } from './common';
import type { Config } from './evaluate';
import { memoryHistory, reaInProcess } from './inprocess';
import { clearHistory, runCampaign, type ReaMethod, type Stack } from './stack';
import type { Method, Peer } from './tiers';

export interface SearchRecord {
  task: string;
  method: Method;
  seed: number;
  /** Budget and spend in units of the spec's fidelity knob. */
  budget: number;
  used: number;
  /** Training runs the search started. */
  runs: number;
  /** The config the method hands back, as a delta over the baseline ({} = the baseline). */
  answer: Config;
  answerLabel: string;
  /** rea: whether its result calls the answer a confirmed win. */
  confirmed?: boolean;
  /** The best primary-metric value any full-fidelity run of the search reached on validation. */
  best?: { value: number; seed: number; delta: Config };
  /** How the answer changed with spend: (units used, answer). */
  trail: { used: number; answer: Config }[];
  wallSec: number;
  campaignId?: string;
  /** rea: slot hand-over gaps (s) and slot utilization from the gpu-agent's journal. */
  timing?: { gaps: number[]; utilization: number };
  /** rea: runs by the source of their hypothesis. */
  sources?: Record<string, number>;
  /** rea: distinct hypotheses by source, and those that took the lead (became the incumbent). */
  proposed?: Record<string, number>;
  led?: Record<string, number>;
}

const better = (spec: Spec, a: number, b: number) => (spec.metric.direction === 'minimize' ? a < b : a > b);

/** How rea runs: a real campaign on the stack (the default), or its state machine in this process. */
export const reaMode: { value: 'stack' | 'inprocess' } = { value: 'stack' };

/**
 * Forgets every campaign, so that the next one starts cold: the history of *similar* models counts as
 * evidence too (the fast tasks share their knobs), and a benchmark search must not inherit another's.
 * Only the models the bench runs are touched in PostgreSQL (their rows are the bench's own).
 */
export async function forget(stack: Stack, models: string[]): Promise<void> {
  await clearHistory(stack.pool, [...new Set([...models, ...benchModels()])]);
  memoryHistory.clear();
}

/** Every model spec the bench may run (models/ and bench/models/). */
function benchModels(): string[] {
  return [path.join(ROOT, 'models'), path.join(ROOT, 'bench', 'models')].flatMap((dir) =>
    existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => f.endsWith('.json'))
          .map((f) => f.slice(0, -5))
      : [],
  );
}

/** The budget of one search in fidelity units. */
export const budgetUnits = (spec: Spec, runs: number): number => Math.round(runs * spec.fidelity.high);

/** GPU-hours that buy exactly `units` of the fidelity knob under the spec's cost model. */
const gpuHoursFor = (spec: Spec, units: number) =>
  units * spec.cost.gpuHoursPerUnit * Math.max(1, spec.resources.gpus);

/**
 * A rea campaign with the user's defaults: the spec's fidelity range, parallelism 2, the campaign
 * seed, a GPU-hour budget that buys `budget` fidelity units. The spec is written where the bench
 * worker reads models (`dataSeed` makes it the drifted task).
 */
export async function reaSearch(
  stack: Stack,
  method: ReaMethod,
  spec: Spec,
  task: string,
  seed: number,
  budget: number,
  opts: { dataSeed?: number; idPrefix?: string; input?: Partial<CampaignInput> } = {},
): Promise<SearchRecord> {
  if (reaMode.value === 'inprocess' && method === 'rea')
    return reaInProcess(spec, task, seed, budget, {
      ...(opts.dataSeed !== undefined ? { dataSeed: opts.dataSeed } : {}),
      ...(opts.input ? { input: opts.input } : {}),
    });
  writeSpec(spec, opts.dataSeed);
  const input: CampaignInput = {
    model: spec.name,
    budget: { gpuHours: gpuHoursFor(spec, budget) },
    parallelism: 2,
    seed,
    pollIntervalSec: 30,
    // The local model answers in one to two minutes here: one evidence call and two mid-campaign ones.
    ...(method === 'rea-llm' ? { llm: { maxCalls: 3, maxTokens: 30_000 } } : {}),
    ...opts.input,
  };
  const id = `${opts.idPrefix ?? 'bench'}-${method}-${task}-s${seed}-${Date.now().toString(36)}`;
  const run = await runCampaign(stack, method, input, id);
  const unit = gpuHoursFor(spec, 1);
  const high = spec.fidelity.high;
  let best: SearchRecord['best'];
  for (const e of run.experiments) {
    if (e.role !== 'candidate' || e.status !== 'succeeded' || e.fidelity !== high || e.primary_value === null)
      continue;
    if (!best || better(spec, e.primary_value, best.value))
      best = { value: e.primary_value, seed: e.seed, delta: e.delta };
  }
  const sources: Record<string, number> = {};
  const sourceOf = new Map<string, string>();
  for (const e of run.experiments) {
    sources[e.source] = (sources[e.source] ?? 0) + 1;
    sourceOf.set(e.hypothesis_id, e.source);
  }
  const proposed: Record<string, number> = {};
  for (const src of sourceOf.values()) proposed[src] = (proposed[src] ?? 0) + 1;
  const led: Record<string, number> = {};
  for (const w of run.result.wins) {
    const src = sourceOf.get(w.hypothesisId) ?? 'unknown';
    led[src] = (led[src] ?? 0) + 1;
  }
  const r = run.result;
  return {
    task,
    method,
    seed,
    budget,
    used: Math.round(r.budget.used.gpuHours / unit),
    runs: run.experiments.length,
    answer: r.best.delta,
    answerLabel: r.best.hypothesisId,
    confirmed: r.significant,
    ...(best ? { best } : {}),
    trail: [
      { used: 0, answer: {} },
      ...(r.answerTrail ?? []).map((t) => ({ used: Math.round(t.gpuHours / unit), answer: t.delta })),
    ],
    wallSec: run.wallSec,
    campaignId: id,
    timing: { gaps: slotGaps(run.jobs, 2), utilization: utilization(run.jobs, 2) },
    sources,
    proposed,
    led,
  };
}

interface TrialLine {
  trial: number;
  status: 'ok' | 'failed' | 'pruned';
  value?: number;
  units: number;
  spent: number;
  delta: Config;
  failure?: string;
}

/** Runs bench/peers.py; resolves when the study is over. */
function runPeers(args: string[], logFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [path.join(ROOT, 'bench', 'peers.py'), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' },
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`bench/peers.py ${args.join(' ')} exited ${code} (trials: ${logFile}):\n${err}`)),
    );
  });
}

/**
 * A peer's study on `specFile`: every trial at full fidelity (Hyperband prunes), trainer seed = the
 * study seed, the baseline first. Its answer is its best trial.
 */
export async function peerSearch(
  method: Peer,
  spec: Spec,
  specFile: string,
  task: string,
  seed: number,
  budget: number,
): Promise<SearchRecord> {
  const dir = path.join(WORK, 'trials');
  mkdirSync(dir, { recursive: true });
  const out = path.join(dir, `${task}-${method}-b${budget}-s${seed}.jsonl`);
  rmSync(out, { force: true });
  const started = Date.now();
  await runPeers(
    [
      '--method',
      method,
      '--spec',
      specFile,
      '--budget',
      String(budget),
      '--seed',
      String(seed),
      '--out',
      out,
    ],
    out,
  );
  const trials = existsSync(out)
    ? readFileSync(out, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as TrialLine)
    : [];
  trials.sort((a, b) => a.spent - b.spent || a.trial - b.trial);
  let best: SearchRecord['best'];
  let answerLabel = 'baseline';
  const trail: SearchRecord['trail'] = [{ used: 0, answer: {} }];
  for (const t of trials) {
    if (t.status !== 'ok' || t.value === undefined || t.units !== spec.fidelity.high) continue;
    if (!best || better(spec, t.value, best.value)) {
      best = { value: t.value, seed, delta: t.delta };
      answerLabel = `trial ${t.trial}`;
      trail.push({ used: t.spent, answer: t.delta });
    }
  }
  return {
    task,
    method,
    seed,
    budget,
    used: trials.reduce((a, t) => Math.max(a, t.spent), 0),
    runs: trials.length,
    answer: best?.delta ?? {},
    answerLabel,
    ...(best ? { best } : {}),
    trail,
    wallSec: (Date.now() - started) / 1000,
  };
}

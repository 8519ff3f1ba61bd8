/**
 * rea's campaign logic without Temporal or PostgreSQL (`--rea-mode inprocess`): the same state
 * machine the workflow carries out, its runs trained by the spec's own trainer through the trainer
 * protocol, its history kept in memory. For quick iterations on the search engine, and for the
 * committed default tier on 2 cores (the real stack's workers and queue would share those cores with
 * the trainers); the report says which mode each search ran in.
 */
import path from 'node:path';
import { runCampaignInProcess } from '../src/campaign/inprocess';
import type { CampaignInput } from '../src/core/campaign-input';
import { parseModelSpec } from '../src/core/model-spec';
import { gatherEvidence } from '../src/engine/evidence';
import { MemoryHistory, MemoryKnowledge } from '../src/engine/sources';
import { runTrainer } from '../src/trainer/run';
import { PYTHON, ROOT, WORK, type Spec } from './common';
import type { SearchRecord } from './searches';

let runs = 0;
const knowledge = MemoryKnowledge.fromDir(path.join(ROOT, 'knowledge'));
export const memoryHistory = new MemoryHistory();

export async function reaInProcess(
  raw: Spec,
  task: string,
  seed: number,
  budget: number,
  opts: { dataSeed?: number; input?: Partial<CampaignInput>; history?: MemoryHistory } = {},
): Promise<SearchRecord> {
  const copy = JSON.parse(JSON.stringify(raw)) as Spec;
  if (opts.dataSeed !== undefined && copy.fixed.dataset) copy.fixed.dataset.data_seed = opts.dataSeed;
  const spec = parseModelSpec(copy);
  const history = opts.history ?? memoryHistory;
  const unit = spec.cost.gpuHoursPerUnit * Math.max(1, spec.resources.gpus);
  const campaignId = `inproc-${task}-s${seed}-${Date.now().toString(36)}-${runs++}`;
  const started = Date.now();
  const { result, launches } = await runCampaignInProcess({
    spec,
    campaignId,
    input: { model: spec.name, budget: { gpuHours: budget * unit }, parallelism: 2, seed, ...opts.input },
    evidence: (req) =>
      gatherEvidence(
        { history, knowledge },
        {
          campaignId,
          spec,
          highFidelity: spec.fidelity.high,
          excludeKnobs: req.excludeKnobs,
          feedback: req.feedback,
          count: req.count,
        },
      ).then((r) => r.evidence),
    train: async (l) => {
      const { outcome } = await runTrainer({
        argv: spec.trainer.argv,
        cwd: path.resolve(ROOT, spec.trainer.cwd ?? '.'),
        ...(spec.trainer.env ? { env: spec.trainer.env } : {}),
        config: { ...spec.fixed, ...l.config, [spec.fidelity.knob]: l.fidelity, seed: l.seed },
        runDir: path.join(WORK, 'inprocess-runs', `${process.pid}-${runs++}`),
        python: PYTHON,
        timeLimitSec: spec.resources.timeLimitSec,
        primaryMetric: spec.metric.primary,
      });
      const value = outcome.status === 'succeeded' ? outcome.metrics[spec.metric.primary] : undefined;
      history.record({
        campaignId,
        model: spec.name,
        hypothesisId: l.hypothesis.id,
        role: l.role,
        fidelity: l.fidelity,
        seed: l.seed,
        config: l.config,
        ...(value !== undefined ? { value } : {}),
        ...(outcome.status === 'failed' ? { failureClass: outcome.failureClass } : {}),
      });
      return outcome.status === 'succeeded'
        ? { value: value ?? NaN }
        : { failure: { failureClass: outcome.failureClass, message: outcome.message } };
    },
  });
  history.finish(result);
  const high = spec.fidelity.high;
  let best: SearchRecord['best'];
  const sign = spec.metric.direction === 'minimize' ? 1 : -1;
  const values = new Map<string, number>();
  for (const r of history.runs)
    if (r.campaignId === campaignId && r.value !== undefined)
      values.set(`${r.hypothesisId}@${r.fidelity}:${r.seed}`, r.value);
  for (const l of launches) {
    const v = values.get(`${l.hypothesis.id}@${l.fidelity}:${l.seed}`);
    if (l.role !== 'candidate' || l.fidelity !== high || v === undefined) continue;
    if (!best || sign * v < sign * best.value) best = { value: v, seed: l.seed, delta: l.hypothesis.delta };
  }
  const sources: Record<string, number> = {};
  const sourceOf = new Map<string, string>();
  for (const l of launches) {
    sources[l.hypothesis.source] = (sources[l.hypothesis.source] ?? 0) + 1;
    sourceOf.set(l.hypothesis.id, l.hypothesis.source);
  }
  const proposed: Record<string, number> = {};
  for (const src of sourceOf.values()) proposed[src] = (proposed[src] ?? 0) + 1;
  const led: Record<string, number> = {};
  for (const w of result.wins)
    led[sourceOf.get(w.hypothesisId) ?? 'unknown'] =
      (led[sourceOf.get(w.hypothesisId) ?? 'unknown'] ?? 0) + 1;
  return {
    task,
    method: 'rea',
    seed,
    budget,
    used: Math.round(result.budget.used.gpuHours / unit),
    runs: launches.length,
    answer: result.best.delta,
    answerLabel: result.best.hypothesisId,
    confirmed: result.significant,
    ...(best ? { best } : {}),
    trail: [
      { used: 0, answer: {} },
      ...(result.answerTrail ?? []).map((t) => ({ used: Math.round(t.gpuHours / unit), answer: t.delta })),
    ],
    wallSec: (Date.now() - started) / 1000,
    campaignId,
    sources,
    proposed,
    led,
  };
}

/**
 * What must hold after any fault, checked once for every chaos scenario, and the figures that
 * docs/reliability.md reports. `checkCampaigns` reads Temporal (the campaign and its child
 * experiment workflows), PostgreSQL (experiments, campaigns, job_events) and the report files, and
 * counts what was lost, duplicated and overspent; the caller asserts that those counts are zero.
 *
 *   const figures = await checkCampaigns(stack, [{ id, mayFail: /every baseline run failed/ }]);
 *   assert.deepEqual([figures.lost, figures.duplicated, figures.overruns], [0, 0, 0], figures.problems.join('\n'));
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Budget } from '../../src/core/campaign-input';
import type { CampaignResult } from '../../src/core/types';
import { loadConfig } from '../../src/config';
import { writeReport } from '../../src/report';
import { sleep, type ChaosStack } from './chaos-stack';

export interface CampaignExpectation {
  id: string;
  /** A failure of the campaign is acceptable only when its message matches this. */
  mayFail?: RegExp;
  /** How long the campaign may take from now. */
  timeoutMs?: number;
}

export interface CampaignOutcome {
  id: string;
  status: 'completed' | 'failed' | 'aborted';
  reason?: string;
  result?: CampaignResult;
}

/** One scenario's figures, as docs/reliability.md shows them. */
export interface ScenarioFigures {
  scenario: string;
  seed: number;
  seconds: number;
  faults: Record<string, number>;
  campaigns: number;
  completed: number;
  failed: number;
  experiments: number;
  trainerRuns: number;
  lost: number;
  duplicated: number;
  overruns: number;
  badInputs: number;
  /** One line per violation: what, where, why. Empty when the scenario passed. */
  problems: string[];
  /** What happened, for the record: failures by class and the runbook's answers. */
  notes: string[];
}

interface ExperimentRow {
  id: string;
  role: string;
  status: string;
  failure_class: string | null;
  runbook_action: string | null;
  cost_gpu_hours: number;
}

interface JobEventRow {
  experiment_id: string;
  run_id: string;
  agent: string;
  event: string;
  at: Date;
  detail: { status?: string };
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

interface RunSpan {
  agent: string;
  start: number | undefined;
  end: number | undefined;
  run: Map<string, JobEventRow>;
}

/**
 * What an experiment workflow did, from its latest run's history: its activities in
 * order and the jobFinished signals it got, e.g. "workflow: submitTrainingJob, pollTrainingJob ×3,
 * submitTrainingJob, signal, recordExperimentOutcome".
 */
async function experimentStory(stack: ChaosStack, id: string): Promise<string> {
  try {
    const steps: string[] = [];
    const history = await stack.client.workflow.getHandle(id).fetchHistory();
    for (const e of history.events ?? []) {
      const name =
        e.activityTaskScheduledEventAttributes?.activityType?.name ??
        (e.workflowExecutionSignaledEventAttributes ? 'signal' : undefined) ??
        (e.markerRecordedEventAttributes?.markerName === 'core_local_activity'
          ? 'local activity'
          : undefined);
      if (!name) continue;
      const last = steps[steps.length - 1];
      const m = last ? /^(.*?)(?: ×(\d+))?$/.exec(last) : null;
      if (m && m[1] === name) steps[steps.length - 1] = `${name} ×${Number(m[2] ?? 1) + 1}`;
      else steps.push(name);
    }
    return `workflow (its last run): ${steps.join(', ')}`;
  } catch (err) {
    return `workflow: history unreadable (${(err as Error).message})`;
  }
}

/**
 * One experiment's trainer runs and the faults injected from its first start to its last end, in
 * seconds from the first start: what a duplicated run is explained by.
 *
 *   explainRuns(stack, spans) // "runs: [0.0 s → 3.1 s on a1: started, finished, completed] ...; faults: redis-flushall at 3.4 s"
 */
function explainRuns(stack: ChaosStack, spans: RunSpan[]): string {
  const t0 = Math.min(...spans.map((s) => s.start ?? Infinity));
  const t1 = Math.max(...spans.map((s) => s.end ?? s.start ?? -Infinity));
  const sec = (t: number | undefined) => (t === undefined ? '?' : `${((t - t0) / 1000).toFixed(1)} s`);
  const runs = spans
    .map((s) => `[${sec(s.start)} → ${sec(s.end)} on ${s.agent}: ${[...s.run.keys()].join(', ')}]`)
    .join(' ');
  const faults = stack.timeline
    .filter((f) => f.to >= t0 - 10_000 && f.from <= t1 + 10_000)
    .map((f) => `${f.what} at ${sec(f.from)}–${sec(f.to)}`);
  return `runs: ${runs}; faults near them: ${faults.join(', ') || 'none'}`;
}

/** Waits for a campaign's end through Temporal restarts: connection errors are retried until the deadline. */
export async function campaignOutcome(
  stack: ChaosStack,
  id: string,
  timeoutMs: number,
): Promise<CampaignOutcome> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const result = (await stack.client.workflow.getHandle(id).result()) as CampaignResult;
      return { id, status: result.status === 'aborted' ? 'aborted' : 'completed', result };
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        return { id, status: 'failed', reason: err.cause?.message ?? err.message };
      }
      last = (err as Error).message;
      await sleep(1000);
    }
  }
  throw new Error(`campaign ${id} did not end within ${timeoutMs / 1000}s (last error: ${last})`);
}

/** Experiment workflows by campaign id (their ids are `<campaign>.eNNNN`), from Temporal's visibility. */
async function childWorkflows(stack: ChaosStack): Promise<Map<string, { id: string; status: string }[]>> {
  const byCampaign = new Map<string, { id: string; status: string }[]>();
  for await (const wf of stack.client.workflow.list({ query: `WorkflowType = 'experiment'` })) {
    const campaignId = wf.workflowId.replace(/\.e\d+$/, '');
    const list = byCampaign.get(campaignId) ?? [];
    list.push({ id: wf.workflowId, status: wf.status.name });
    byCampaign.set(campaignId, list);
  }
  return byCampaign;
}

/**
 * Checks every campaign and counts violations. `journalMayHaveGaps`: PostgreSQL was restarted, so
 * the agents' best-effort journal may miss events; runs without a known end are then left to the
 * fast trainer's flock witness instead of failing the overlap check.
 */
export async function checkCampaigns(
  stack: ChaosStack,
  expectations: CampaignExpectation[],
  opts: { journalMayHaveGaps?: boolean } = {},
): Promise<Omit<ScenarioFigures, 'scenario' | 'seed' | 'seconds' | 'faults' | 'badInputs'>> {
  const problems: string[] = [];
  const notes: string[] = [];
  let lost = 0;
  let duplicated = 0;
  let overruns = 0;
  let experiments = 0;
  let trainerRuns = 0;
  const outcomes: CampaignOutcome[] = [];
  for (const e of expectations) outcomes.push(await campaignOutcome(stack, e.id, e.timeoutMs ?? 20 * 60_000));
  // Visibility is eventually consistent: give the last experiments' closes a moment to show.
  await sleep(1500);
  const children = await childWorkflows(stack);
  const overlapping = stack.overlaps();

  for (const [i, outcome] of outcomes.entries()) {
    const { id } = outcome;
    const expectation = expectations[i] as CampaignExpectation;
    if (outcome.status === 'failed') {
      if (!expectation.mayFail?.test(outcome.reason ?? ''))
        problems.push(`${id}: failed without an accepted reason: ${outcome.reason ?? '(none)'}`);
      else notes.push(`${id}: failed, as allowed: ${outcome.reason ?? ''}`);
    }

    const { rows: campaignRows } = await stack.db.query<{
      status: string;
      input: { budget: Budget };
      error: string | null;
    }>('SELECT status, input, error FROM campaigns WHERE id = $1', [id]);
    const campaign = campaignRows[0];
    if (!campaign) {
      problems.push(`${id}: no campaigns row`);
      continue;
    }
    if (campaign.status !== outcome.status)
      problems.push(`${id}: PostgreSQL says ${campaign.status}, Temporal says ${outcome.status}`);

    const { rows } = await stack.db.query<ExperimentRow>(
      `SELECT id, role, status, failure_class, runbook_action, cost_gpu_hours FROM experiments
       WHERE campaign_id = $1 ORDER BY id`,
      [id],
    );
    experiments += rows.length;
    const rowIds = new Set(rows.map((r) => r.id));

    // Every experiment ends with a final status, once; every child workflow has its row.
    for (const r of rows) {
      if (!FINAL.has(r.status)) {
        lost++;
        problems.push(`${r.id}: left ${r.status}`);
      }
    }
    const kids = children.get(id) ?? [];
    for (const kid of kids) {
      if (!rowIds.has(kid.id)) {
        lost++;
        problems.push(`${kid.id}: an experiment workflow without a row in PostgreSQL`);
      }
      if (kid.status === 'RUNNING') problems.push(`${kid.id}: still running after its campaign ended`);
    }
    if (kids.length !== rows.length)
      problems.push(`${id}: ${kids.length} experiment workflows, ${rows.length} experiment rows`);
    const indices = rows.map((r) => Number(r.id.slice(id.length + 2))).sort((a, b) => a - b);
    indices.forEach((n, k) => {
      if (n !== k) {
        lost++;
        problems.push(`${id}: experiment index ${k} is missing (found ${n})`);
      }
    });
    if (outcome.result && outcome.result.experiments.total !== rows.length)
      problems.push(
        `${id}: the result counts ${outcome.result.experiments.total} experiments, PostgreSQL ${rows.length}`,
      );

    // The journal: never two runs of one experiment at once, at most one accepted result, none dropped.
    const { rows: events } = await stack.db.query<JobEventRow>(
      `SELECT experiment_id, run_id, agent, event, at, detail FROM job_events
       WHERE experiment_id LIKE $1 ORDER BY at`,
      [`${id}.e%`],
    );
    const runs = new Map<string, Map<string, Map<string, JobEventRow>>>();
    for (const ev of events) {
      const byRun = runs.get(ev.experiment_id) ?? new Map<string, Map<string, JobEventRow>>();
      const run = byRun.get(ev.run_id) ?? new Map<string, JobEventRow>();
      run.set(ev.event, ev);
      byRun.set(ev.run_id, run);
      runs.set(ev.experiment_id, byRun);
    }
    for (const r of rows) {
      const byRun = [...(runs.get(r.id)?.values() ?? [])];
      trainerRuns += byRun.length;
      const spans = byRun
        .map((run) => {
          const first = [...run.values()][0] as JobEventRow;
          const start = run.get('started')?.at.getTime();
          const endEvent = ['finished', 'lost', 'completed', 'failed']
            .map((e) => run.get(e)?.at.getTime())
            .find((t) => t !== undefined);
          const died = stack.agentDeaths.get(first.agent);
          return { agent: first.agent, start, end: endEvent ?? died, run };
        })
        .sort((a, b) => (a.start ?? 0) - (b.start ?? 0));
      for (const [k, span] of spans.entries()) {
        const next = spans[k + 1];
        if (span.end === undefined) {
          if (!opts.journalMayHaveGaps) problems.push(`${r.id}: a run on ${span.agent} has no known end`);
          continue;
        }
        if (next?.start !== undefined && next.start < span.end) {
          duplicated++;
          problems.push(
            `${r.id}: two trainer runs at once (${span.agent} and ${next.agent}): ${explainRuns(stack, spans)}`,
          );
        }
      }
      const accepted = spans.filter((s) => s.run.has('completed'));
      if (accepted.length > 1) {
        duplicated++;
        problems.push(
          `${r.id}: ${accepted.length} results accepted by the queue: ${explainRuns(stack, spans)}; ` +
            (await experimentStory(stack, r.id)),
        );
      }
      const succeeded = accepted.find((s) => s.run.get('finished')?.detail.status === 'succeeded');
      if (succeeded && r.status !== 'succeeded' && r.status !== 'cancelled') {
        lost++;
        problems.push(
          `${r.id}: its trainer succeeded and the queue took the result, but the experiment is ${r.status}`,
        );
      }
      if (overlapping.includes(r.id)) {
        duplicated++;
        problems.push(`${r.id}: the trainer's flock found a second live run`);
      }
    }

    // The budget: what the campaign charged never passes its limit, retries included.
    const limit = outcome.result?.budget.limit ?? campaign.input.budget;
    const cost = rows.reduce((sum, r) => sum + r.cost_gpu_hours, 0);
    const used = outcome.result?.budget.used;
    if (
      limit.experiments !== undefined &&
      (rows.length > limit.experiments || (used?.experiments ?? 0) > limit.experiments)
    ) {
      overruns++;
      problems.push(`${id}: ${rows.length} experiments for a budget of ${limit.experiments}`);
    }
    if (
      limit.gpuHours !== undefined &&
      (cost > limit.gpuHours * (1 + 1e-9) || (used?.gpuHours ?? 0) > limit.gpuHours * (1 + 1e-9))
    ) {
      overruns++;
      problems.push(`${id}: ${cost} GPU-h for a budget of ${limit.gpuHours}`);
    }

    // The report says what happened: every failure with its class and the runbook's answer.
    let reportFile = outcome.result?.report?.markdown;
    if (!reportFile) {
      // A failed campaign writes no report itself; `rea campaign report` writes one from PostgreSQL.
      reportFile = (await writeReport(stack.db, id, stack.reportsDir)).markdown;
    }
    if (!existsSync(reportFile)) {
      problems.push(`${id}: no report at ${reportFile}`);
    } else {
      const report = readFileSync(reportFile, 'utf8');
      const failuresSection = report.split('## Failures and what was done')[1]?.split('\n## ')[0] ?? '';
      for (const r of rows.filter((x) => x.status !== 'succeeded')) {
        const line = failuresSection.split('\n').find((l) => l.includes(r.id));
        const verb = r.runbook_action?.split(':')[0];
        if (!line || !line.includes(r.failure_class ?? '') || (verb && !line.includes(verb)))
          problems.push(
            `${id}: the report does not show ${r.id} (${r.failure_class ?? '?'}, ${r.runbook_action ?? 'no action'})`,
          );
      }
    }
    const classes = new Map<string, number>();
    for (const r of rows.filter((x) => x.failure_class))
      classes.set(
        `${r.failure_class} → ${r.runbook_action?.split(':')[0] ?? 'none'}`,
        (classes.get(`${r.failure_class} → ${r.runbook_action?.split(':')[0] ?? 'none'}`) ?? 0) + 1,
      );
    if (classes.size) notes.push(`${id}: failures ${[...classes].map(([k, n]) => `${n}× ${k}`).join(', ')}`);
  }
  return {
    campaigns: outcomes.length,
    completed: outcomes.filter((o) => o.status === 'completed').length,
    failed: outcomes.filter((o) => o.status !== 'completed').length,
    experiments,
    trainerRuns,
    lost,
    duplicated,
    overruns,
    problems,
    notes,
  };
}

/** Where scenarios append their figures (JSON lines); `npm run test:chaos` renders them. */
export function figuresFile(): string {
  return process.env.REA_CHAOS_FIGURES ?? path.join(loadConfig().root, '.rea', 'chaos', 'figures.jsonl');
}

export function recordFigures(figures: ScenarioFigures): void {
  const file = figuresFile();
  mkdirSync(path.dirname(file), { recursive: true });
  appendFileSync(file, `${JSON.stringify(figures)}\n`);
}

/** Is `err` the campaign workflow's own refusal of its input (or of its model spec)? */
export function refusalOf(err: unknown): { type: string; message: string } | undefined {
  if (!(err instanceof WorkflowFailedError) || !(err.cause instanceof ApplicationFailure)) return undefined;
  return { type: err.cause.type ?? '', message: err.cause.message };
}

/**
 * What a report is made of, read from the results store in one place: the campaign row and every
 * experiment it started. The rest of src/report/ is pure functions of this record.
 *
 *   const data = await loadReportData(pool, 'ctr-1'); // throws UnknownCampaignError for a wrong id
 */
import type { Pool } from 'pg';
import { z } from 'zod';
import type { Config } from '../core/model-spec';
import type { CampaignResult, Metrics, Phase } from '../core/types';

/** The primary metric a campaign optimizes; known from its result once it has one. */
export interface PrimaryMetric {
  name: string;
  direction: 'minimize' | 'maximize';
}

/** One training run, as recorded by the experiment workflow (times are ISO 8601 strings). */
export interface ReportExperiment {
  id: string;
  phase: Phase;
  role: 'baseline' | 'candidate';
  hypothesisId: string;
  source: string;
  /** Untrusted: written by an LLM, a human or the runbook. Escape before display. */
  rationale: string;
  delta: Config;
  config: Config;
  fidelity: number;
  seed: number;
  attempt: number;
  costGpuHours: number;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  primaryValue: number | null;
  metrics: Metrics | null;
  failureClass: string | null;
  /** Untrusted: the trainer's last words. */
  error: string | null;
  runbookAction: string | null;
  wallTimeSec: number | null;
  createdAt: string;
  finishedAt: string | null;
}

export interface ReportCampaign {
  id: string;
  model: string;
  /** terminated / timed_out: Temporal ended the workflow from outside (src/temporal/reconcile.ts). */
  status: 'running' | 'completed' | 'aborted' | 'failed' | 'terminated' | 'timed_out';
  phase: string;
  /** The campaign input as validated at start (budget, split, replicates, ...). */
  input: Record<string, unknown>;
  /** The plan that was approved (or is waiting), when one was written and could be read. */
  plan: StoredPlan | null;
  /** Why a stored plan could not be read (written by an incompatible version). */
  planError?: string;
  result: CampaignResult | null;
  /** Why a failed campaign failed. */
  error: string | null;
  startedAt: string;
  finishedAt: string | null;
}

/** One call to the LLM, as src/engine/llm.ts recorded it. */
export interface ReportLlmCall {
  purpose: string;
  model: string;
  status: 'ok' | 'invalid' | 'error' | 'refused';
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  latencyMs: number;
  proposed: number;
  accepted: number;
  /** Untrusted: the endpoint's words. */
  error: string | null;
}

/** A hypothesis the LLM wrote for this campaign, run or not. */
export interface ReportLlmHypothesis {
  id: string;
  /** Untrusted: written by the LLM. Escape before display. */
  rationale: string;
  delta: Config;
}

export interface ReportData {
  campaign: ReportCampaign;
  /** Every experiment, in launch order. */
  experiments: ReportExperiment[];
  /** Every LLM call of the campaign, in order (absent: not read). */
  llmCalls?: ReportLlmCall[];
  /** Every hypothesis the LLM wrote for the campaign, proposed or run (absent: not read). */
  llmHypotheses?: ReportLlmHypothesis[];
  /** The baseline's full config, from a baseline run; undefined before one was launched. */
  baselineConfig: Config | undefined;
  /** The primary metric; undefined while a campaign without a result is running (see writeReport). */
  metric: PrimaryMetric | undefined;
  /** When the record was read: the "now" of a running campaign's duration. */
  readAt: string;
}

/** The parts of a stored plan that a report shows; checked, since the column is free-form jsonb. */
const storedPlanSchema = z.object({
  slate: z.array(z.object({ id: z.string(), rationale: z.string() })),
  estimate: z.object({ experiments: z.number(), gpuHours: z.number() }),
  strategy: z.array(z.string()),
  split: z.record(z.string(), z.number()),
  fidelity: z.object({ low: z.number(), mid: z.number(), high: z.number() }),
  round: z.number(),
});
export type StoredPlan = z.infer<typeof storedPlanSchema>;

export class UnknownCampaignError extends Error {
  override readonly name = 'UnknownCampaignError';
}

interface CampaignRow {
  id: string;
  model: string;
  status: ReportCampaign['status'];
  phase: string;
  input: Record<string, unknown>;
  plan: unknown;
  result: CampaignResult | null;
  error: string | null;
  started_at: Date;
  finished_at: Date | null;
}

interface ExperimentRow {
  id: string;
  phase: Phase;
  role: 'baseline' | 'candidate';
  hypothesis_id: string;
  source: string;
  rationale: string;
  delta: Config;
  config: Config;
  fidelity: number;
  seed: number;
  attempt: number;
  cost_gpu_hours: number;
  status: ReportExperiment['status'];
  primary_value: number | null;
  metrics: Metrics | null;
  failure_class: string | null;
  error: string | null;
  runbook_action: string | null;
  wall_time_s: number | null;
  created_at: Date;
  finished_at: Date | null;
}

/**
 * Reads campaign `campaignId` and its experiments. `metric` names the primary metric for a campaign
 * that has no result yet (a finished campaign's result names its own).
 */
export async function loadReportData(
  pool: Pool,
  campaignId: string,
  metric?: PrimaryMetric,
): Promise<ReportData> {
  const campaigns = await pool.query<CampaignRow>(
    `SELECT id, model, status, phase, input, plan, result, error, started_at, finished_at
     FROM campaigns WHERE id = $1`,
    [campaignId],
  );
  const c = campaigns.rows[0];
  if (!c) {
    throw new UnknownCampaignError(
      `no campaign with id "${campaignId}" in the results store; check the id (the campaign's workflow id) and REA_DATABASE_URL`,
    );
  }
  const { rows } = await pool.query<ExperimentRow>(
    `SELECT id, phase, role, hypothesis_id, source, rationale, delta, config, fidelity, seed, attempt, cost_gpu_hours,
       status, primary_value, metrics, failure_class, error, runbook_action, wall_time_s, created_at, finished_at
     FROM experiments WHERE campaign_id = $1 ORDER BY created_at, id`,
    [campaignId],
  );
  const experiments = rows.map((r): ReportExperiment => ({
    id: r.id,
    phase: r.phase,
    role: r.role,
    hypothesisId: r.hypothesis_id,
    source: r.source,
    rationale: r.rationale,
    delta: r.delta,
    config: r.config,
    fidelity: r.fidelity,
    seed: r.seed,
    attempt: r.attempt,
    costGpuHours: r.cost_gpu_hours,
    status: r.status,
    primaryValue: r.primary_value,
    metrics: r.metrics,
    failureClass: r.failure_class,
    error: r.error,
    runbookAction: r.runbook_action,
    wallTimeSec: r.wall_time_s,
    createdAt: r.created_at.toISOString(),
    finishedAt: r.finished_at?.toISOString() ?? null,
  }));
  const calls = await pool.query<{
    purpose: string;
    model: string;
    status: ReportLlmCall['status'];
    prompt_tokens: number;
    completion_tokens: number;
    cost_usd: number;
    latency_ms: number;
    proposed: number;
    accepted: number;
    error: string | null;
  }>(
    `SELECT purpose, model, status, prompt_tokens, completion_tokens, cost_usd, latency_ms, proposed, accepted, error
     FROM llm_calls WHERE campaign_id = $1 ORDER BY id`,
    [campaignId],
  );
  const llmHypotheses = await pool.query<ReportLlmHypothesis>(
    `SELECT id, rationale, delta FROM hypotheses WHERE campaign_id = $1 AND source = 'llm' ORDER BY proposed_at, id`,
    [campaignId],
  );
  const result = c.result;
  const plan = c.plan === null ? undefined : storedPlanSchema.safeParse(c.plan);
  return {
    campaign: {
      id: c.id,
      model: c.model,
      status: c.status,
      phase: c.phase,
      input: c.input,
      plan: plan?.success ? plan.data : null,
      ...(plan && !plan.success
        ? {
            planError: `the stored plan does not have the expected shape (${plan.error.issues[0]?.message ?? ''})`,
          }
        : {}),
      result,
      error: c.error,
      startedAt: c.started_at.toISOString(),
      finishedAt: c.finished_at?.toISOString() ?? null,
    },
    experiments,
    llmCalls: calls.rows.map((r) => ({
      purpose: r.purpose,
      model: r.model,
      status: r.status,
      promptTokens: r.prompt_tokens,
      completionTokens: r.completion_tokens,
      costUsd: Number(r.cost_usd),
      latencyMs: r.latency_ms,
      proposed: r.proposed,
      accepted: r.accepted,
      error: r.error,
    })),
    llmHypotheses: llmHypotheses.rows,
    // Every baseline run trains the same config (only fidelity and seed differ).
    baselineConfig: experiments.find((e) => e.role === 'baseline')?.config,
    metric: result ? { name: result.metric, direction: result.direction } : metric,
    readAt: new Date().toISOString(),
  };
}

/**
 * The results store: campaigns and experiments in PostgreSQL. Every write is idempotent, so a
 * retried activity never doubles a row or loses one.
 */
import type { Pool } from 'pg';
import type {
  CampaignResult,
  ExperimentOutcome,
  ExperimentRequest,
  Hypothesis,
  Metrics,
} from '../core/types';

export interface ExperimentRow {
  id: string;
  campaign_id: string;
  phase: string;
  role: string;
  fidelity: number;
  seed: number;
  attempt: number;
  cost_gpu_hours: number;
  runbook_action: string | null;
  hypothesis_id: string;
  source: string;
  status: string;
  primary_value: number | null;
  metrics: Metrics | null;
  failure_class: string | null;
  config: Record<string, unknown>;
}

export type CampaignEnd =
  { status: 'completed' | 'aborted'; result: CampaignResult } | { status: 'failed'; error: string };

export class CampaignIdReusedError extends Error {
  override readonly name = 'CampaignIdReusedError';
}

export class Store {
  constructor(private readonly pool: Pool) {}

  async recordCampaignStarted(c: {
    id: string;
    firstRunId: string;
    model: string;
    input: unknown;
  }): Promise<void> {
    await this.pool.query(
      `INSERT INTO campaigns (id, first_run_id, model, input, status) VALUES ($1, $2, $3, $4, 'running')
       ON CONFLICT (id) DO NOTHING`,
      [c.id, c.firstRunId, c.model, JSON.stringify(c.input)],
    );
    const row = await this.pool.query<{ first_run_id: string }>(
      'SELECT first_run_id FROM campaigns WHERE id = $1',
      [c.id],
    );
    if (row.rows[0]?.first_run_id !== c.firstRunId) {
      throw new CampaignIdReusedError(
        `campaign id "${c.id}" was already used by an earlier campaign (run ${row.rows[0]?.first_run_id}); start this one with a new workflow id`,
      );
    }
  }

  async recordCampaignPhase(id: string, phase: string, plan: unknown): Promise<void> {
    await this.pool.query('UPDATE campaigns SET phase = $2, plan = COALESCE($3, plan) WHERE id = $1', [
      id,
      phase,
      plan === undefined ? null : JSON.stringify(plan),
    ]);
  }

  async recordCampaignFinished(id: string, end: CampaignEnd): Promise<void> {
    await this.pool.query(
      `UPDATE campaigns SET status = $2, result = $3, error = $4, phase = CASE WHEN $2 = 'failed' THEN phase ELSE 'done' END,
         finished_at = COALESCE(finished_at, now()) WHERE id = $1`,
      [
        id,
        end.status,
        end.status === 'failed' ? null : JSON.stringify(end.result),
        end.status === 'failed' ? end.error : null,
      ],
    );
  }

  async recordRunbookAction(experimentId: string, action: string): Promise<void> {
    await this.pool.query('UPDATE experiments SET runbook_action = $2, updated_at = now() WHERE id = $1', [
      experimentId,
      action,
    ]);
  }

  /** Every hypothesis a campaign considered, once (the first proposal wins; a retry changes nothing). */
  async recordHypotheses(
    campaignId: string,
    hypotheses: readonly Hypothesis[],
    proposedFor: 'slate' | 'refinement' | 'experiment',
  ): Promise<void> {
    if (!hypotheses.length) return;
    await this.pool.query(
      `INSERT INTO hypotheses (campaign_id, id, source, rationale, delta, proposed_for)
       SELECT $1, h.id, h.source, h.rationale, h.delta, $3
       FROM jsonb_to_recordset($2::jsonb) AS h(id text, source text, rationale text, delta jsonb)
       ON CONFLICT (campaign_id, id) DO NOTHING`,
      [campaignId, JSON.stringify(hypotheses), proposedFor],
    );
  }

  async recordExperimentQueued(req: ExperimentRequest): Promise<void> {
    await this.recordHypotheses(req.campaignId, [req.hypothesis], 'experiment');
    await this.pool.query(
      `INSERT INTO experiments (id, campaign_id, model, hypothesis_id, source, rationale, delta, config, fidelity, seed,
         phase, role, attempt, cost_gpu_hours, status)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'queued')
       ON CONFLICT (id) DO NOTHING`,
      [
        req.experimentId,
        req.campaignId,
        req.model,
        req.hypothesis.id,
        req.hypothesis.source,
        req.hypothesis.rationale,
        JSON.stringify(req.hypothesis.delta),
        JSON.stringify(req.config),
        req.fidelity,
        req.seed,
        req.phase,
        req.role,
        req.attempt,
        req.costGpuHours,
      ],
    );
  }

  async recordExperimentOutcome(
    id: string,
    outcome: ExperimentOutcome,
    primaryMetric: string,
  ): Promise<void> {
    const ok = outcome.status === 'succeeded';
    const status = ok ? 'succeeded' : outcome.failureClass === 'cancelled' ? 'cancelled' : 'failed';
    const result = await this.pool.query(
      `UPDATE experiments SET status = $2, metrics = $3, primary_value = $4, failure_class = $5, error = $6,
         wall_time_s = $7, updated_at = now(), finished_at = COALESCE(finished_at, now())
       WHERE id = $1`,
      [
        id,
        status,
        ok ? JSON.stringify(outcome.metrics) : null,
        ok ? (outcome.metrics[primaryMetric] ?? null) : null,
        ok ? null : outcome.failureClass,
        ok ? null : outcome.message,
        outcome.wallTimeSec,
      ],
    );
    if (result.rowCount === 0) throw new Error(`experiment ${id} was never recorded as queued`);
  }

  async experiments(campaignId: string): Promise<ExperimentRow[]> {
    const { rows } = await this.pool.query<ExperimentRow>(
      `SELECT id, campaign_id, phase, role, fidelity, seed, attempt, cost_gpu_hours, runbook_action, hypothesis_id, source,
         status, primary_value, metrics, failure_class, config
       FROM experiments WHERE campaign_id = $1 ORDER BY id`,
      [campaignId],
    );
    return rows;
  }

  async campaign(
    id: string,
  ): Promise<{ id: string; model: string; status: string; result: CampaignResult | null } | undefined> {
    const { rows } = await this.pool.query<{
      id: string;
      model: string;
      status: string;
      result: CampaignResult | null;
    }>('SELECT id, model, status, result FROM campaigns WHERE id = $1', [id]);
    return rows[0];
  }
}

/**
 * rea's own metrics, computed from PostgreSQL at scrape time, so that they are right across worker
 * restarts and the same from every worker: experiments by outcome, GPU-hours, LLM calls, tokens and
 * cost, campaigns by status.
 *
 *   renderExposition(await collectReaMetrics(pool))
 *
 * Labels are low-cardinality on purpose: the ranking model (`model`), the LLM (`llm_model`), a status
 * or failure class; never a campaign or an experiment id, which grow without bound.
 */
import type { Pool } from 'pg';
import type { MetricFamily, Sample } from './exposition';

const CAMPAIGN_STATUSES = ['running', 'completed', 'aborted', 'failed', 'terminated', 'timed_out'] as const;
const ACTIVE_EXPERIMENT_STATUSES = ['queued', 'running'] as const;

interface ExperimentGroup {
  model: string;
  status: string;
  failure_class: string | null;
  n: number;
  gpu_hours: number | null;
  wall_s: number | null;
}

/** Every family, in a fixed order; families with no rows yet are exposed empty. */
export async function collectReaMetrics(pool: Pool): Promise<MetricFamily[]> {
  const [experiments, llm, campaigns] = await Promise.all([
    pool.query<ExperimentGroup>(
      `SELECT model, status, failure_class, count(*)::int AS n,
         sum(cost_gpu_hours)::float8 AS gpu_hours, sum(wall_time_s)::float8 AS wall_s
       FROM experiments GROUP BY model, status, failure_class ORDER BY model, status, failure_class`,
    ),
    pool.query<{
      model: string;
      status: string;
      n: number;
      prompt: string;
      completion: string;
      cost: number;
    }>(
      `SELECT model, status, count(*)::int AS n, sum(prompt_tokens)::bigint AS prompt,
         sum(completion_tokens)::bigint AS completion, sum(cost_usd)::float8 AS cost
       FROM llm_calls GROUP BY model, status ORDER BY model, status`,
    ),
    pool.query<{ model: string; status: string; n: number }>(
      'SELECT model, status, count(*)::int AS n FROM campaigns GROUP BY model, status ORDER BY model, status',
    ),
  ]);

  const finished: Sample[] = [];
  const active = new Map<string, Record<string, number>>();
  const gpuHours = new Map<string, number>();
  const wallSeconds = new Map<string, number>();
  for (const r of experiments.rows) {
    // Charged when the experiment is launched, as the campaign's budget counts it.
    gpuHours.set(r.model, (gpuHours.get(r.model) ?? 0) + (r.gpu_hours ?? 0));
    wallSeconds.set(r.model, (wallSeconds.get(r.model) ?? 0) + (r.wall_s ?? 0));
    if (r.status === 'queued' || r.status === 'running') {
      const counts = active.get(r.model) ?? { queued: 0, running: 0 };
      counts[r.status] = (counts[r.status] ?? 0) + r.n;
      active.set(r.model, counts);
    } else if (r.status === 'failed') {
      finished.push({
        labels: { model: r.model, outcome: 'failed', failure_class: r.failure_class ?? 'unknown' },
        value: r.n,
      });
    } else {
      finished.push({ labels: { model: r.model, outcome: r.status }, value: r.n });
    }
  }
  for (const model of gpuHours.keys()) if (!active.has(model)) active.set(model, {});

  const tokens: Sample[] = [];
  const cost = new Map<string, number>();
  const calls: Sample[] = [];
  const tokenSums = new Map<string, { prompt: number; completion: number }>();
  for (const r of llm.rows) {
    calls.push({ labels: { llm_model: r.model, status: r.status }, value: r.n });
    cost.set(r.model, (cost.get(r.model) ?? 0) + (r.cost ?? 0));
    const t = tokenSums.get(r.model) ?? { prompt: 0, completion: 0 };
    t.prompt += Number(r.prompt ?? 0);
    t.completion += Number(r.completion ?? 0);
    tokenSums.set(r.model, t);
  }
  for (const [model, t] of tokenSums) {
    tokens.push({ labels: { llm_model: model, type: 'prompt' }, value: t.prompt });
    tokens.push({ labels: { llm_model: model, type: 'completion' }, value: t.completion });
  }

  const byModel = new Map<string, Record<string, number>>();
  for (const r of campaigns.rows) {
    const counts = byModel.get(r.model) ?? {};
    counts[r.status] = r.n;
    byModel.set(r.model, counts);
  }

  return [
    {
      name: 'rea_experiments_total',
      help: 'Finished experiments by ranking model and outcome (succeeded, failed with its failure_class, cancelled).',
      type: 'counter',
      samples: finished,
    },
    {
      name: 'rea_experiments',
      help: 'Experiments queued or running now, by ranking model.',
      type: 'gauge',
      samples: [...active].flatMap(([model, counts]) =>
        ACTIVE_EXPERIMENT_STATUSES.map((status) => ({
          labels: { model, status },
          value: counts[status] ?? 0,
        })),
      ),
    },
    {
      name: 'rea_gpu_hours_used_total',
      help: 'GPU-hours charged to campaign budgets (when each experiment is launched), by ranking model.',
      type: 'counter',
      samples: [...gpuHours].map(([model, value]) => ({ labels: { model }, value })),
    },
    {
      name: 'rea_training_seconds_total',
      help: 'Wall-clock seconds of finished training runs, by ranking model.',
      type: 'counter',
      samples: [...wallSeconds].map(([model, value]) => ({ labels: { model }, value })),
    },
    {
      name: 'rea_llm_calls_total',
      help: 'Calls to the hypothesis LLM by LLM model and status (ok, invalid, error, refused).',
      type: 'counter',
      samples: calls,
    },
    {
      name: 'rea_llm_tokens_total',
      help: 'LLM tokens by LLM model and type (prompt, completion).',
      type: 'counter',
      samples: tokens,
    },
    {
      name: 'rea_llm_cost_usd_total',
      help: 'LLM cost in USD (REA_LLM_PRICE_INPUT / REA_LLM_PRICE_OUTPUT at call time), by LLM model.',
      type: 'counter',
      samples: [...cost].map(([model, value]) => ({ labels: { llm_model: model }, value })),
    },
    {
      name: 'rea_campaigns',
      help: 'Campaigns by ranking model and status (running, completed, aborted, failed).',
      type: 'gauge',
      samples: [...byModel].flatMap(([model, counts]) =>
        CAMPAIGN_STATUSES.map((status) => ({ labels: { model, status }, value: counts[status] ?? 0 })),
      ),
    },
  ];
}

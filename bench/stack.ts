/**
 * The real stack the benchmark runs rea on: a Temporal dev server (in memory), PostgreSQL (database
 * rea_bench, or REA_BENCH_DATABASE_URL), Redis, rea's worker and a gpu-agent in this process.
 */
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { Pool } from 'pg';
import { startGpuAgent, type GpuAgent } from '../src/cluster/gpu-agent';
import { loadConfig, type ReaConfig } from '../src/config';
import type { CampaignInput } from '../src/core/campaign-input';
import { searchAttributes } from '../src/core/messages';
import type { CampaignResult } from '../src/core/types';
import { migrate } from '../src/db/migrate';
import { createPool, ensureDatabase } from '../src/db/pool';
import { startCampaign } from '../src/temporal/client';
import { installTemporalRuntime } from '../src/temporal/runtime';
import { workflowBundleOptions } from '../src/temporal/bundle';
import { startWorker, type RunningWorker } from '../src/temporal/worker';
import type { JobSpan } from './analysis';
import { log, MODELS, PYTHON, ROOT, WORK } from './common';

export type ReaMethod = 'rea' | 'rea-llm';

export interface Stack {
  env: TestWorkflowEnvironment;
  config: ReaConfig;
  pool: Pool;
  workers: Partial<Record<ReaMethod, { worker: RunningWorker; config: ReaConfig }>>;
  agent?: GpuAgent;
  client: Client;
}

export const DATABASE_URL =
  process.env.REA_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/rea_bench';
export const unique = (p: string): string => `${p}-${process.pid}-${Date.now().toString(36)}`;

export function benchConfig(overrides: Record<string, string>): ReaConfig {
  return loadConfig({
    ...process.env,
    REA_DATABASE_URL: DATABASE_URL,
    REA_MODELS_DIR: MODELS,
    REA_WORK_DIR: path.join(WORK, 'work'),
    REA_LOG_LEVEL: process.env.REA_LOG_LEVEL ?? 'warn',
    ...overrides,
  });
}

/**
 * Starts the dev server, migrates the bench database and starts the planner-only worker; a second
 * worker with the LLM settings starts when `llmBaseUrl` (or REA_LLM_BASE_URL) names an endpoint.
 */
export async function startStack(opts: { llmEnv?: Record<string, string> } = {}): Promise<Stack> {
  installTemporalRuntime('warn');
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: loadConfig().REA_TEMPORAL_CLI },
      searchAttributes: Object.values(searchAttributes),
    },
  });
  await ensureDatabase(DATABASE_URL);
  const pool = createPool(DATABASE_URL, 3);
  await migrate(pool, path.join(ROOT, 'migrations'));
  const prefix = unique('reabench');
  const base = { REA_TEMPORAL_ADDRESS: env.address, REA_QUEUE_PREFIX: prefix };
  const bundle = await bundleWorkflowCode({ ...workflowBundleOptions(), logger: undefined });
  const workers: Stack['workers'] = {};
  // The planner-only worker never sees the LLM settings; a second worker gets them when configured.
  const plain = benchConfig({
    ...base,
    REA_TASK_QUEUE: unique('bench-rea'),
    REA_LLM_BASE_URL: '',
    REA_LLM_API_KEY: '',
  });
  workers.rea = { config: plain, worker: await startWorker(plain, log, { workflowBundle: bundle }) };
  const llmEnv =
    opts.llmEnv ??
    (process.env.REA_LLM_BASE_URL ? { REA_LLM_BASE_URL: process.env.REA_LLM_BASE_URL } : undefined);
  if (llmEnv) {
    const withLlm = benchConfig({ ...base, REA_TASK_QUEUE: unique('bench-rea-llm'), ...llmEnv });
    workers['rea-llm'] = {
      config: withLlm,
      worker: await startWorker(withLlm, log, { workflowBundle: bundle }),
    };
  }
  return { env, config: plain, pool, workers, client: env.client };
}

export async function stopStack(stack: Stack): Promise<void> {
  await stack.agent?.close();
  for (const w of Object.values(stack.workers)) await w?.worker.shutdown();
  await stack.pool.end();
  await stack.env.teardown();
}

export function startAgent(config: ReaConfig, slots: number): Promise<GpuAgent> {
  return startGpuAgent({
    redisUrl: config.REA_REDIS_URL,
    prefix: config.REA_QUEUE_PREFIX,
    slots: Array.from({ length: slots }, () => ''),
    python: PYTHON,
    projectRoot: ROOT,
    workDir: config.REA_WORK_DIR,
    log,
    lockSec: config.REA_POOL_LOCK_SEC,
    databaseUrl: config.REA_DATABASE_URL,
  });
}

/**
 * Forgets the campaigns on `models`, so that the next one starts without history (the engine reads
 * every recent campaign). Other models' rows stay: an orchestration run may be using them.
 */
export async function clearHistory(pool: Pool, models: string[]): Promise<void> {
  await pool.query('DELETE FROM experiments WHERE model = ANY($1)', [models]);
  await pool.query('DELETE FROM insights WHERE model = ANY($1)', [models]);
  await pool.query(
    'DELETE FROM hypotheses WHERE campaign_id IN (SELECT id FROM campaigns WHERE model = ANY($1))',
    [models],
  );
  await pool.query(
    'DELETE FROM llm_calls WHERE campaign_id IN (SELECT id FROM campaigns WHERE model = ANY($1))',
    [models],
  );
  await pool.query('DELETE FROM campaigns WHERE model = ANY($1)', [models]);
}

/** Start and finish of every job of the campaigns whose ids start with `campaignPrefix` (job_events). */
export async function jobTimes(pool: Pool, campaignPrefix: string): Promise<JobSpan[]> {
  const { rows } = await pool.query<{ start: Date; finish: Date }>(
    `SELECT s.at AS start, f.at AS finish FROM job_events s JOIN job_events f ON f.run_id = s.run_id AND f.event = 'finished'
     WHERE s.event = 'started' AND s.experiment_id LIKE $1 ORDER BY s.at`,
    [`${campaignPrefix}%`],
  );
  return rows.map((r) => ({ start: r.start.getTime(), end: r.finish.getTime() }));
}

/** One experiment of a campaign, as PostgreSQL recorded it, in the order the runs finished. */
export interface ExperimentRow {
  id: string;
  role: 'baseline' | 'candidate';
  phase: string;
  hypothesis_id: string;
  source: string;
  delta: Record<string, string | number | boolean>;
  fidelity: number;
  seed: number;
  status: string;
  primary_value: number | null;
  failure_class: string | null;
}

export interface CampaignRun {
  id: string;
  result: CampaignResult;
  experiments: ExperimentRow[];
  wallSec: number;
  jobs: JobSpan[];
}

/** Runs one campaign to its end on the stack's `method` worker and reads back what it recorded. */
export async function runCampaign(
  stack: Stack,
  method: ReaMethod,
  input: CampaignInput,
  id: string,
): Promise<CampaignRun> {
  const w = stack.workers[method];
  if (!w) throw new Error(`no ${method} worker: it needs an LLM endpoint`);
  const started = Date.now();
  const handle = await startCampaign(stack.client, w.config, input, id);
  const result = await handle.result();
  const wallSec = (Date.now() - started) / 1000;
  const { rows } = await stack.pool.query<ExperimentRow>(
    `SELECT id, role, phase, hypothesis_id, source, delta, fidelity, seed, status, primary_value, failure_class
       FROM experiments WHERE campaign_id = $1 ORDER BY finished_at NULLS LAST, id`,
    [id],
  );
  return { id, result, experiments: rows, wallSec, jobs: await jobTimes(stack.pool, id) };
}

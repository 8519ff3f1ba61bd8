/**
 * The rea worker: serves the campaign and experiment workflows and their activities on one task
 * queue, and runs the event bridge that wakes experiments when their jobs finish.
 */
import { rmSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { claimPoolSettings } from '../cluster/pool-settings';
import { JobJournalReader } from '../cluster/job-journal';
import { createClusters } from '../cluster/registry';
import { HypothesisEngine } from '../engine';
import { indexKnowledgeOnStart, llmFromConfig } from '../engine/setup';
import { startEventBridge } from '../cluster/event-bridge';
import { redactUrl, type ReaConfig } from '../config';
import { createPool } from '../db/pool';
import { Store } from '../db/store';
import type { Logger } from '../logging';
import { collectReaMetrics } from '../metrics/rea-metrics';
import { ActivityFailures } from './activity-failures';
import { startMetricsServer } from '../metrics/server';
import { describeTemporalConnection, temporalConnectionError, temporalConnectionOptions } from './connection';
import { startReconciler } from './reconcile';
import { bundleInChildProcess } from './bundle';

export interface RunningWorker {
  worker: Worker;
  /** Resolves when the worker has stopped; rejects when it failed. */
  done: Promise<void>;
  shutdown(): Promise<void>;
  /** Where rea's metrics are served (REA_METRICS_ADDRESS); undefined when off. */
  metricsUrl?: string;
}

export { workflowsPath } from './bundle';

/**
 * Memory one cached workflow holds in the worker, in MB: a campaign or experiment workflow waiting
 * for its next event (its own copy of rea's modules, its state and its history's bookkeeping; zod is
 * shared). Measured by `npm run bench -- --only hibernation`: 300 campaigns (900 workflows, 200
 * cached) took 226 MB above the idle worker, about 1.1 MB per cached workflow.
 */
export const CACHED_WORKFLOW_MB = 1;

/** How many workflows the worker keeps cached within REA_WORKFLOW_CACHE_MB (at least 2, Temporal's minimum). */
export function workflowCacheSize(cacheMb: number): number {
  return Math.max(2, Math.floor(cacheMb / CACHED_WORKFLOW_MB));
}

export async function startWorker(
  config: ReaConfig,
  log: Logger,
  opts: { workflowBundle?: WorkflowBundleWithSourceMap; maxConcurrentActivities?: number } = {},
): Promise<RunningWorker> {
  // A bad TLS setting fails here, before anything is started.
  const temporal = temporalConnectionOptions(config);
  // Before anything starts: a worker whose REA_POOL_LOCK_SEC disagrees with the pool's is refused.
  const settingsRedis = new Redis(config.REA_REDIS_URL, { maxRetriesPerRequest: 1 });
  settingsRedis.on('error', () => undefined);
  const settings = await claimPoolSettings({
    redis: settingsRedis,
    prefix: config.REA_QUEUE_PREFIX,
    lockSec: config.REA_POOL_LOCK_SEC,
    who: `worker ${process.pid}@${hostname()}`,
    log,
  }).catch((err: unknown) => {
    settingsRedis.disconnect();
    throw err;
  });
  const releaseSettings = async () => {
    await settings.close();
    settingsRedis.disconnect();
  };
  return serve(config, log, opts, temporal, releaseSettings).catch(async (err: unknown) => {
    await releaseSettings();
    throw err;
  });
}

async function serve(
  config: ReaConfig,
  log: Logger,
  opts: { workflowBundle?: WorkflowBundleWithSourceMap; maxConcurrentActivities?: number },
  temporal: ReturnType<typeof temporalConnectionOptions>,
  releaseSettings: () => Promise<void>,
): Promise<RunningWorker> {
  const pool = createPool(config.REA_DATABASE_URL);
  const activityFailures = new ActivityFailures(log);
  const metrics = config.REA_METRICS_ADDRESS
    ? await startMetricsServer({
        address: config.REA_METRICS_ADDRESS,
        collect: async () => [...(await collectReaMetrics(pool)), activityFailures.family()],
        log,
      }).catch(async (err: unknown) => {
        await pool.end().catch(() => undefined);
        throw err;
      })
    : undefined;
  const clusters = createClusters(config, log, new JobJournalReader(pool));
  const llm = llmFromConfig(config, pool, log);
  await indexKnowledgeOnStart(pool, config.REA_KNOWLEDGE_DIR, log);
  const connection = await NativeConnection.connect(temporal).catch((err: unknown) => {
    throw temporalConnectionError(config, err);
  });
  const clientConnection = await Connection.connect(temporal);
  const client = new Client({ connection: clientConnection, namespace: config.REA_TEMPORAL_NAMESPACE });
  const bridge = await startEventBridge({
    redisUrl: config.REA_REDIS_URL,
    prefix: config.REA_QUEUE_PREFIX,
    client,
    log,
  });
  // Bundled in a child process: webpack would leave about 115 MB behind in this one (src/temporal/bundle.ts).
  const bundleFile = opts.workflowBundle
    ? undefined
    : await bundleInChildProcess(path.join(config.REA_WORK_DIR, 'bundles'));
  const workflowCache = workflowCacheSize(config.REA_WORKFLOW_CACHE_MB);
  const worker = await Worker.create({
    connection,
    namespace: config.REA_TEMPORAL_NAMESPACE,
    taskQueue: config.REA_TASK_QUEUE,
    workflowBundle: opts.workflowBundle ?? { codePath: bundleFile as string },
    activities: createActivities({
      store: new Store(pool),
      pool,
      engine: new HypothesisEngine({ pool, log, ...(llm ? { llm } : {}) }),
      temporal: client,
      clusters,
      modelsDir: config.REA_MODELS_DIR,
      reportsDir: path.join(config.REA_WORK_DIR, 'reports'),
      log,
    }),
    interceptors: { activity: [activityFailures.interceptor] },
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivities ?? 20,
    maxCachedWorkflows: workflowCache,
  }).finally(() => {
    // The worker holds the code it read; the file is not needed again.
    if (bundleFile) rmSync(bundleFile, { force: true });
  });
  const reconciler =
    config.REA_RECONCILE_SEC > 0
      ? startReconciler(client, pool, log, config.REA_RECONCILE_SEC, {
          reportsDir: path.join(config.REA_WORK_DIR, 'reports'),
          modelsDir: config.REA_MODELS_DIR,
        })
      : undefined;
  log.info(
    {
      taskQueue: config.REA_TASK_QUEUE,
      namespace: config.REA_TEMPORAL_NAMESPACE,
      temporal: describeTemporalConnection(config),
      database: redactUrl(config.REA_DATABASE_URL),
      redis: redactUrl(config.REA_REDIS_URL),
      workflowCache,
      // glibc's malloc arenas (docs/operations.md, "Memory"): 2 in the image and under `rea dev`.
      mallocArenaMax: process.env.MALLOC_ARENA_MAX ?? 'unset (glibc: 8 per core)',
      ...(metrics ? { metrics: metrics.url } : {}),
    },
    'worker ready',
  );
  const done = worker.run().finally(async () => {
    await releaseSettings();
    await reconciler?.stop().catch(() => undefined);
    await metrics?.close().catch(() => undefined);
    await bridge.close().catch(() => undefined);
    await clusters.close().catch(() => undefined);
    await pool.end().catch(() => undefined);
    await clientConnection.close().catch(() => undefined);
    await connection.close().catch(() => undefined);
  });
  return {
    worker,
    done,
    ...(metrics ? { metricsUrl: metrics.url } : {}),
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
}

/**
 * The rea worker: serves the campaign and experiment workflows and their activities on one task
 * queue, and runs the event bridge that wakes experiments when their jobs finish.
 */
import { hostname } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { claimPoolSettings } from '../cluster/pool-settings';
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

export interface RunningWorker {
  worker: Worker;
  /** Resolves when the worker has stopped; rejects when it failed. */
  done: Promise<void>;
  shutdown(): Promise<void>;
  /** Where rea's metrics are served (REA_METRICS_ADDRESS); undefined when off. */
  metricsUrl?: string;
}

export function workflowsPath(): string {
  return require.resolve('../../workflows');
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
  const clusters = createClusters(config, log);
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
  const worker = await Worker.create({
    connection,
    namespace: config.REA_TEMPORAL_NAMESPACE,
    taskQueue: config.REA_TASK_QUEUE,
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: workflowsPath() }),
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
    maxCachedWorkflows: 500,
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

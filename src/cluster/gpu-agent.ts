/**
 * `rea gpu-agent`: takes training jobs from the BullMQ pool and runs one trainer per GPU slot, with
 * CUDA_VISIBLE_DEVICES set to that slot. Progress and log lines go back to the job; a cancel
 * published by the adapter kills the trainer's process group.
 *
 *   const agent = await startGpuAgent({ redisUrl, prefix: 'rea', slots: ['0', '1'], lockSec: 30, ... });
 *   await agent.close();
 *
 * A job is this agent's only while it holds the job's lock in Redis. When the lock is gone (Redis
 * lost its data, or the job was re-queued after this agent stalled) or cannot be renewed in time
 * (Redis unreachable), the agent kills the trainer and drops its result: the pool runs the job
 * elsewhere, and two trainers never run one experiment at once. A trainer also dies with its agent
 * (see src/trainer/supervisor.ts). docs/clusters.md has the whole story and the timings.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import { WaitingError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { ExperimentOutcome } from '../core/types';
import type { Logger } from '../logging';
import { runTrainer } from '../trainer/run';
import type { TrainingJob } from './adapter';
import {
  cancelChannel,
  cancelledKey,
  DEFAULT_LOCK_SEC,
  MAX_STALLS,
  poolTimings,
  redisConnection,
  TRAINING_QUEUE,
} from './bullmq-pool';
import { JobJournal } from './job-journal';
import { claimPoolSettings } from './pool-settings';

export interface GpuAgentOptions {
  redisUrl: string;
  prefix: string;
  /** One entry per concurrent job: a GPU index, or '' for a CPU slot. */
  slots: string[];
  python: string;
  /** Where relative trainer working directories are resolved. */
  projectRoot: string;
  workDir: string;
  log: Logger;
  /** The pool's job lock (REA_POOL_LOCK_SEC); default 30. */
  lockSec?: number;
  /** Where the journal of trainer runs (job_events) goes; none when omitted. */
  databaseUrl?: string;
  /** This agent's name in logs, the journal and the job's processedBy; default host:pid. */
  name?: string;
}

export interface GpuAgent {
  name: string;
  worker: Worker<TrainingJob, ExperimentOutcome>;
  close(): Promise<void>;
}

/** A job this agent is running: its trainer run, and when its lock was last renewed. */
interface RunningJob {
  runId: string;
  lastRenewed: number;
}

export async function startGpuAgent(opts: GpuAgentOptions): Promise<GpuAgent> {
  const name = opts.name ?? `${hostname()}:${process.pid}`;
  const timings = poolTimings(opts.lockSec ?? DEFAULT_LOCK_SEC);
  const free = [...opts.slots];
  const running = new Map<string, RunningJob>();
  /** Why this agent gave up a running job (it no longer holds it), by job id. */
  const givenUp = new Map<string, string>();
  /** The run whose result the queue is about to accept, by job id. */
  const finishing = new Map<string, string>();
  const journal = opts.databaseUrl
    ? new JobJournal({ databaseUrl: opts.databaseUrl, agent: name, log: opts.log })
    : undefined;
  const redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  const subscriber = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  // Connection errors are the worker's to report (below); ioredis reconnects, and re-subscribes.
  redis.on('error', () => undefined);
  subscriber.on('error', () => undefined);
  // Before any job is taken: an agent whose REA_POOL_LOCK_SEC disagrees with the pool's is refused.
  const settings = await claimPoolSettings({
    redis,
    prefix: opts.prefix,
    lockSec: timings.lockMs / 1000,
    who: `gpu-agent ${name}`,
    log: opts.log,
  }).catch(async (err: unknown) => {
    redis.disconnect();
    subscriber.disconnect();
    await journal?.close();
    throw err;
  });

  const processJob = async (
    job: Job<TrainingJob, ExperimentOutcome>,
    token?: string,
    signal?: AbortSignal,
  ) => {
    const jobId = job.id as string;
    if (await redis.exists(cancelledKey(opts.prefix, jobId))) {
      return {
        status: 'failed',
        failureClass: 'cancelled',
        message: 'cancelled before it started',
        wallTimeSec: 0,
      } as const;
    }
    const slot = free.shift();
    if (slot === undefined) throw new Error('gpu-agent took more jobs than it has slots (a bug)');
    const { trainer, config, resources, primaryMetric } = job.data;
    const runId = randomUUID();
    const { experimentId, campaignId } = job.data;
    const log = opts.log.child({ experimentId, campaignId, jobId, slot, runId });
    running.set(jobId, { runId, lastRenewed: Date.now() });
    journal?.record(jobId, runId, 'started', { slot, token });
    log.info({ model: job.data.model }, 'training job started');
    try {
      const { outcome } = await runTrainer({
        argv: trainer.argv,
        cwd: path.resolve(opts.projectRoot, trainer.cwd ?? '.'),
        env: { ...trainer.env, CUDA_VISIBLE_DEVICES: slot },
        config,
        runDir: path.join(opts.workDir, 'runs', jobId.replace(/[^A-Za-z0-9._-]/g, '_'), runId),
        python: opts.python,
        timeLimitSec: resources.timeLimitSec,
        memoryCapMb: resources.memoryMb,
        primaryMetric,
        signal,
        staleAfterSec: timings.trainerStaleSec,
        onProgress: (p) => void job.updateProgress({ ...p }).catch(() => undefined),
        onLog: (line) => void job.log(line).catch(() => undefined),
      });
      // The whole outcome: once the queue accepts it, this row is where the result outlives a Redis
      // that loses its data (JobJournalReader.acceptedOutcome).
      journal?.record(jobId, runId, 'finished', { ...outcome });
      // A trainer killed by its supervisor means this agent stalled: the lock may be gone too.
      if (!givenUp.has(jobId) && token && (await redis.get(`${worker.toKey(jobId)}:lock`)) !== token) {
        givenUp.set(
          jobId,
          'its lock is gone (Redis lost it, or the job was re-queued while this agent stalled)',
        );
      }
      const why = givenUp.get(jobId);
      if (why !== undefined) {
        journal?.record(jobId, runId, 'lost', { reason: why });
        log.warn({ reason: why }, 'gave the training job up: killed its trainer and dropped its result');
        // Not ours any more: BullMQ would refuse a completion, and a failure would be wrong. Another
        // agent runs the job, or the experiment workflow submits it again.
        throw new WaitingError(`gpu-agent ${name} gave job ${jobId} up: ${why}`);
      }
      log.info({ status: outcome.status, wallTimeSec: outcome.wallTimeSec }, 'training job finished');
      return outcome;
    } finally {
      // The queue now completes (or fails) the job with this run's end, unless it was given up.
      if (!givenUp.has(jobId)) finishing.set(jobId, runId);
      free.push(slot);
      running.delete(jobId);
      givenUp.delete(jobId);
    }
  };

  const worker = new Worker<TrainingJob, ExperimentOutcome>(TRAINING_QUEUE, processJob, {
    connection: redisConnection(opts.redisUrl),
    prefix: opts.prefix,
    name,
    concurrency: opts.slots.length,
    autorun: true,
    lockDuration: timings.lockMs,
    lockRenewTime: timings.renewMs,
    stalledInterval: timings.stalledCheckMs,
    maxStalledCount: MAX_STALLS,
  });
  worker.on('error', (err) => opts.log.warn({ err: err.message }, 'gpu-agent queue error'));

  const giveUp = (jobId: string, why: string) => {
    if (!running.has(jobId) || givenUp.has(jobId)) return;
    givenUp.set(jobId, why);
    opts.log.warn(
      { experimentId: jobId, jobId, reason: why },
      'giving the training job up: killing its trainer',
    );
    worker.cancelJob(jobId, why);
  };
  worker.on('lockRenewalFailed', (jobIds) => {
    for (const jobId of jobIds)
      giveUp(jobId, 'its lock is gone (Redis lost it, or the job was re-queued while this agent stalled)');
  });
  worker.on('locksRenewed', ({ jobIds }) => {
    const now = Date.now();
    for (const jobId of jobIds) {
      const job = running.get(jobId);
      if (job) job.lastRenewed = now;
    }
  });
  // Cut off from Redis, the agent cannot know whether its lock still holds: it stops the trainer
  // well before the lock can expire and the stalled-job check hands the job to another agent.
  const deadlineCheck = setInterval(
    () => {
      const now = Date.now();
      for (const [jobId, job] of running) {
        if (now - job.lastRenewed > timings.renewDeadlineMs) {
          giveUp(
            jobId,
            `could not renew its lock for ${((now - job.lastRenewed) / 1000).toFixed(1)}s (Redis unreachable?)`,
          );
        }
      }
    },
    Math.min(1000, timings.renewMs / 2),
  );
  worker.on('completed', (job) => {
    const runId = finishing.get(job.id as string);
    finishing.delete(job.id as string);
    if (runId) journal?.record(job.id as string, runId, 'completed');
  });
  worker.on('failed', (job, err) => {
    if (!job) return;
    const runId = finishing.get(job.id as string);
    finishing.delete(job.id as string);
    if (runId) journal?.record(job.id as string, runId, 'failed', { reason: err.message });
  });

  const cancel = (jobId: string) => {
    if (worker.cancelJob(jobId, 'cancelled by rea'))
      opts.log.info({ experimentId: jobId, jobId }, 'training job cancelled');
  };
  await subscriber.subscribe(cancelChannel(opts.prefix));
  subscriber.on('message', (_channel, jobId: string) => cancel(jobId));
  // A cancel published while the subscription was down is still in its key: catch up on reconnect.
  subscriber.on('ready', () => {
    for (const jobId of running.keys()) {
      redis
        .exists(cancelledKey(opts.prefix, jobId))
        .then((found) => found && cancel(jobId))
        .catch(() => undefined);
    }
  });
  await worker.waitUntilReady();
  opts.log.info(
    { name, slots: opts.slots, prefix: opts.prefix, lockSec: timings.lockMs / 1000 },
    'gpu-agent ready',
  );

  return {
    name,
    worker,
    async close() {
      clearInterval(deadlineCheck);
      await settings.close();
      await worker.close();
      subscriber.disconnect();
      redis.disconnect();
      await journal?.close();
    },
  };
}

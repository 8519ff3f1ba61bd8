/**
 * The BullMQ GPU pool adapter: training jobs go to a Redis queue that `rea gpu-agent` processes
 * consume. Job ids are experiment ids, so BullMQ itself refuses a second job for one experiment.
 * docs/clusters.md says how the pool survives dead, stopped and cut-off agents and a Redis that
 * loses its data, and why the timings below are what they are.
 *
 *   const pool = new BullmqPool({ redisUrl, prefix: 'rea', lockSec: 30 });
 *   await pool.submit(job); // { jobId: job.experimentId, created: true }, then created: false
 */
import { Job, Queue, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { z } from 'zod';
import type { ExperimentOutcome } from '../core/types';
import type { Progress } from '../trainer/protocol';
import type { ClusterAdapter, JobStatus, TrainingJob } from './adapter';
import type { JobJournalReader } from './job-journal';

export const TRAINING_QUEUE = 'training';
/** Completed and failed jobs are kept this long, so that a late poll still finds the result. */
const KEEP_FINISHED_SEC = 14 * 24 * 3600;

/** REA_POOL_LOCK_SEC's default. */
export const DEFAULT_LOCK_SEC = 30;
/** How often a job may lose its agent (killed, stopped, cut off) and be re-queued before it counts as lost. */
export const MAX_STALLS = 3;
/** BullMQ's reason for a job that stalled more than `maxStalledCount` times. */
const STALLED_TOO_OFTEN = 'job stalled more than allowable limit';

/**
 * The pool's timings, all derived from one number, the job lock (REA_POOL_LOCK_SEC), so that their
 * order always holds: every copy of a trainer is dead before the lock that protects its job can
 * expire, and before the experiment workflow resubmits a job that Redis forgot.
 *
 *   poolTimings(30) // → { lockMs: 30000, renewMs: 7500, stalledCheckMs: 15000, trainerStaleSec: 15, ... }
 */
export function poolTimings(lockSec: number) {
  const lockMs = lockSec * 1000;
  return {
    /** A job's lock lasts this long past its agent's last renewal. */
    lockMs,
    /** Agents renew every lock at least this often: three tries before it can expire. */
    renewMs: lockMs / 4,
    /** How often the agents look for jobs whose lock expired (and re-queue them). */
    stalledCheckMs: lockMs / 2,
    /** A trainer whose agent sent no heartbeat this long (stopped, hung) is killed by its supervisor. */
    trainerStaleSec: lockSec / 2,
    /** An agent that could not renew a job's lock this long (Redis unreachable) kills its trainer. */
    renewDeadlineMs: lockMs * 0.6,
    /** A job Redis forgot is submitted again only this long after it was first seen missing. */
    resubmitAfterSec: lockSec,
  };
}

export function cancelChannel(prefix: string): string {
  return `${prefix}:${TRAINING_QUEUE}:cancel`;
}
export function cancelledKey(prefix: string, jobId: string): string {
  return `${prefix}:${TRAINING_QUEUE}:cancelled:${jobId}`;
}

export function redisConnection(redisUrl: string): ConnectionOptions {
  const u = new URL(redisUrl);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    username: u.username || undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: null, // required by BullMQ for blocking connections
  };
}

const outcomeSchema: z.ZodType<ExperimentOutcome> = z.union([
  z.object({
    status: z.literal('succeeded'),
    metrics: z.record(z.string(), z.number()),
    wallTimeSec: z.number(),
  }),
  z.object({
    status: z.literal('failed'),
    failureClass: z.enum(['bad_config', 'oom', 'nan', 'timeout', 'lost', 'cancelled', 'crash']),
    message: z.string(),
    wallTimeSec: z.number(),
  }),
]);

/** The outcome of a job BullMQ failed: the agent's error, or a job whose agents kept dying. */
export function outcomeOfFailedJob(failedReason: string | undefined): ExperimentOutcome {
  const message =
    failedReason === STALLED_TOO_OFTEN
      ? `the job lost its gpu-agent ${MAX_STALLS + 1} times (agent killed, stopped or cut off from Redis ` +
        "while it ran); the pool gave up on it: check the agents' logs and their hosts (OOM killer, restarts)"
      : `gpu-agent failed the job: ${failedReason ?? 'no reason given'}`;
  return { status: 'failed', failureClass: 'lost', message, wallTimeSec: 0 };
}

/** An outcome, or undefined where `value` is not one (e.g. `parseOutcome('{"status": "succeeded"}')`). */
export function parseOutcome(value: unknown): ExperimentOutcome | undefined {
  const parsed = outcomeSchema.safeParse(typeof value === 'string' ? safeJson(value) : value);
  return parsed.success ? parsed.data : undefined;
}

/** Reads a job's return value as an outcome; anything else is reported as a crash. */
export function outcomeFromReturnValue(value: unknown): ExperimentOutcome {
  return (
    parseOutcome(value) ?? {
      status: 'failed',
      failureClass: 'crash',
      message: 'gpu-agent returned no valid outcome',
      wallTimeSec: 0,
    }
  );
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function validateJobId(id: string): string {
  if (!/^[A-Za-z0-9._/-]{1,200}$/.test(id)) {
    throw new Error(`experiment id "${id}" is not a valid job id (A-Z, a-z, 0-9, . _ / -; at most 200)`);
  }
  return id;
}

export class BullmqPool implements ClusterAdapter {
  private readonly queue: Queue<TrainingJob, ExperimentOutcome>;
  private readonly redis: Redis;
  private readonly timings: ReturnType<typeof poolTimings>;

  /**
   * `lockSec` must be the agents' REA_POOL_LOCK_SEC (default 30): it says how long a job that Redis
   * forgot may still be running somewhere. `journal` reads the gpu-agents' job_events: a job Redis
   * forgot after the queue accepted its result is finished with that result, not trained again.
   */
  constructor(
    private readonly opts: {
      redisUrl: string;
      prefix: string;
      lockSec?: number;
      journal?: Pick<JobJournalReader, 'acceptedOutcome'>;
    },
  ) {
    this.queue = new Queue(TRAINING_QUEUE, {
      connection: redisConnection(opts.redisUrl),
      prefix: opts.prefix,
    });
    this.redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: 3 });
    // Connection errors surface in the calls that fail; ioredis reconnects on its own.
    this.queue.on('error', () => undefined);
    this.redis.on('error', () => undefined);
    this.timings = poolTimings(opts.lockSec ?? DEFAULT_LOCK_SEC);
  }

  async submit(job: TrainingJob): Promise<{ jobId: string; created: boolean }> {
    const jobId = validateJobId(job.experimentId);
    const existing = await Job.fromId<TrainingJob, ExperimentOutcome>(this.queue, jobId);
    if (existing) return { jobId, created: false };
    await this.queue.add('train', job, {
      jobId,
      attempts: 1, // failures are answered by the campaign's runbook, not by blind retries
      keepLogs: 200,
      removeOnComplete: { age: KEEP_FINISHED_SEC },
      removeOnFail: { age: KEEP_FINISHED_SEC },
    });
    return { jobId, created: true };
  }

  async status(jobId: string): Promise<JobStatus> {
    const job = await Job.fromId<TrainingJob, ExperimentOutcome>(this.queue, jobId);
    if (!job) return this.forgotten(jobId);
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') {
      // The job may have finished between reading it and reading its state: read it again, so that
      // its result is the one the state describes (else a success would read as an empty result).
      const done = (await Job.fromId<TrainingJob, ExperimentOutcome>(this.queue, jobId)) ?? job;
      return state === 'completed'
        ? { state: 'finished', outcome: outcomeFromReturnValue(done.returnvalue) }
        : { state: 'finished', outcome: outcomeOfFailedJob(done.failedReason) };
    }
    switch (state) {
      case 'active':
        return { state: 'running', progress: progressOf(job.progress) };
      case 'unknown':
        return this.forgotten(jobId);
      default:
        return { state: 'queued' };
    }
  }

  /**
   * A job Redis does not know: never submitted, or lost with Redis's data. If the queue had accepted
   * its result, the journal still has it (a failed read fails the poll, which is retried: answering
   * "missing" instead would train it again).
   */
  private async forgotten(jobId: string): Promise<JobStatus> {
    const kept = await this.opts.journal?.acceptedOutcome(jobId);
    if (kept) return { state: 'finished', outcome: kept };
    return { state: 'missing', resubmitAfterSec: this.timings.resubmitAfterSec };
  }

  async cancel(jobId: string): Promise<void> {
    await this.redis.set(cancelledKey(this.opts.prefix, jobId), '1', 'EX', KEEP_FINISHED_SEC);
    const job = await Job.fromId(this.queue, jobId);
    if (!job) return;
    const state = await job.getState();
    if (state === 'active') {
      await this.redis.publish(cancelChannel(this.opts.prefix), jobId);
    } else if (state !== 'completed' && state !== 'failed') {
      await job.remove().catch(() => undefined); // picked up meanwhile: the agent sees the cancelled key
    }
  }

  async logs(jobId: string): Promise<string[]> {
    const { logs } = await this.queue.getJobLogs(jobId, 0, 49, false);
    return logs.reverse();
  }

  async close(): Promise<void> {
    await this.queue.close();
    this.redis.disconnect();
  }
}

function progressOf(value: unknown): Progress | undefined {
  if (value && typeof value === 'object' && 'step' in value) return value as Progress;
  return undefined;
}

/**
 * The BullMQ GPU pool adapter: training jobs go to a Redis queue that `rea gpu-agent` processes
 * consume. Job ids are experiment ids, so BullMQ itself refuses a second job for one experiment.
 *
 *   const pool = new BullmqPool({ redisUrl, prefix: 'rea' });
 *   await pool.submit(job); // { jobId: job.experimentId, created: true }, then created: false
 */
import { Job, Queue, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { z } from 'zod';
import type { ExperimentOutcome } from '../core/types';
import type { Progress } from '../trainer/protocol';
import type { ClusterAdapter, JobStatus, TrainingJob } from './adapter';

export const TRAINING_QUEUE = 'training';
/** Completed and failed jobs are kept this long, so that a late poll still finds the result. */
const KEEP_FINISHED_SEC = 14 * 24 * 3600;

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

/** Reads a job's return value as an outcome; anything else is reported as a crash. */
export function outcomeFromReturnValue(value: unknown): ExperimentOutcome {
  const raw = typeof value === 'string' ? safeJson(value) : value;
  const parsed = outcomeSchema.safeParse(raw);
  return parsed.success
    ? parsed.data
    : {
        status: 'failed',
        failureClass: 'crash',
        message: 'gpu-agent returned no valid outcome',
        wallTimeSec: 0,
      };
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

  constructor(private readonly opts: { redisUrl: string; prefix: string }) {
    this.queue = new Queue(TRAINING_QUEUE, {
      connection: redisConnection(opts.redisUrl),
      prefix: opts.prefix,
    });
    this.redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: 3 });
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
    if (!job) return { state: 'missing' };
    const state = await job.getState();
    switch (state) {
      case 'completed':
        return { state: 'finished', outcome: outcomeFromReturnValue(job.returnvalue) };
      case 'failed':
        return {
          state: 'finished',
          outcome: {
            status: 'failed',
            failureClass: 'lost',
            message: `gpu-agent failed the job: ${job.failedReason}`,
            wallTimeSec: 0,
          },
        };
      case 'active':
        return { state: 'running', progress: progressOf(job.progress) };
      case 'unknown':
        return { state: 'missing' };
      default:
        return { state: 'queued' };
    }
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

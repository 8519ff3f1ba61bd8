/**
 * `rea gpu-agent`: takes training jobs from the BullMQ pool and runs one trainer per GPU slot, with
 * CUDA_VISIBLE_DEVICES set to that slot. Progress and log lines go back to the job; a cancel
 * published by the adapter kills the trainer's process group.
 *
 *   const agent = await startGpuAgent({ redisUrl, prefix: 'rea', slots: ['0', '1'], ... });
 *   await agent.close();
 */
import path from 'node:path';
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { ExperimentOutcome } from '../core/types';
import type { Logger } from '../logging';
import { runTrainer } from '../trainer/run';
import type { TrainingJob } from './adapter';
import { cancelChannel, cancelledKey, redisConnection, TRAINING_QUEUE } from './bullmq-pool';

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
}

export interface GpuAgent {
  worker: Worker<TrainingJob, ExperimentOutcome>;
  close(): Promise<void>;
}

export async function startGpuAgent(opts: GpuAgentOptions): Promise<GpuAgent> {
  const free = [...opts.slots];
  const redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  const subscriber = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });

  const processJob = async (
    job: Job<TrainingJob, ExperimentOutcome>,
    _token?: string,
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
    const log = opts.log.child({ jobId, slot });
    log.info({ model: job.data.model }, 'training job started');
    try {
      const { outcome } = await runTrainer({
        argv: trainer.argv,
        cwd: path.resolve(opts.projectRoot, trainer.cwd ?? '.'),
        env: { ...trainer.env, CUDA_VISIBLE_DEVICES: slot },
        config,
        runDir: path.join(opts.workDir, 'runs', jobId.replace(/[^A-Za-z0-9._-]/g, '_'), String(Date.now())),
        python: opts.python,
        timeLimitSec: resources.timeLimitSec,
        primaryMetric,
        signal,
        onProgress: (p) => void job.updateProgress({ ...p }).catch(() => undefined),
        onLog: (line) => void job.log(line).catch(() => undefined),
      });
      log.info({ status: outcome.status, wallTimeSec: outcome.wallTimeSec }, 'training job finished');
      return outcome;
    } finally {
      free.push(slot);
    }
  };

  const worker = new Worker<TrainingJob, ExperimentOutcome>(TRAINING_QUEUE, processJob, {
    connection: redisConnection(opts.redisUrl),
    prefix: opts.prefix,
    concurrency: opts.slots.length,
    autorun: true,
  });
  worker.on('error', (err) => opts.log.error({ err: err.message }, 'gpu-agent queue error'));

  await subscriber.subscribe(cancelChannel(opts.prefix));
  subscriber.on('message', (_channel, jobId: string) => {
    if (worker.cancelJob(jobId, 'cancelled by rea')) opts.log.info({ jobId }, 'training job cancelled');
  });
  await worker.waitUntilReady();
  opts.log.info({ slots: opts.slots, prefix: opts.prefix }, 'gpu-agent ready');

  return {
    worker,
    async close() {
      await worker.close();
      subscriber.disconnect();
      redis.disconnect();
    },
  };
}

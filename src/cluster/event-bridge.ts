/**
 * Turns the pool's job-finished events into the `jobFinished` signal that wakes the hibernating
 * experiment workflow (its workflow id is the job id). A missed event costs only latency: the
 * experiment also polls durably.
 *
 *   const bridge = await startEventBridge({ redisUrl, prefix: 'rea', client, log });
 *
 * Redis restarts and flushes need nothing more: BullMQ's QueueEvents retries its XREAD after a
 * connection error, and keeps reading from the last event id it saw; stream ids are times, so the
 * events of a stream recreated after a FLUSHALL or an empty restart come after it
 * (test/integration/pool.test.ts restarts Redis and checks that experiments are still woken).
 */
import type { Client } from '@temporalio/client';
import { QueueEvents } from 'bullmq';
import { jobFinishedSignalName, type JobFinished } from '../core/messages';
import type { ExperimentOutcome } from '../core/types';
import type { Logger } from '../logging';
import { outcomeFromReturnValue, outcomeOfFailedJob, redisConnection, TRAINING_QUEUE } from './bullmq-pool';

export async function startEventBridge(opts: {
  redisUrl: string;
  prefix: string;
  client: Client;
  log: Logger;
}): Promise<{ close(): Promise<void> }> {
  const events = new QueueEvents(TRAINING_QUEUE, {
    connection: redisConnection(opts.redisUrl),
    prefix: opts.prefix,
  });
  const wake = (jobId: string, outcome: ExperimentOutcome) => {
    const message: JobFinished = { jobId, outcome };
    opts.client.workflow
      .getHandle(jobId)
      .signal(jobFinishedSignalName, message)
      .then(() => opts.log.debug({ jobId }, 'experiment woken'))
      .catch((err: Error) =>
        opts.log.warn({ jobId, err: err.message }, 'could not wake experiment; it will poll'),
      );
  };
  events.on('completed', ({ jobId, returnvalue }) => wake(jobId, outcomeFromReturnValue(returnvalue)));
  events.on('failed', ({ jobId, failedReason }) => wake(jobId, outcomeOfFailedJob(failedReason)));
  events.on('error', (err) => opts.log.error({ err: err.message }, 'event bridge error'));
  await events.waitUntilReady();
  return { close: () => events.close() };
}

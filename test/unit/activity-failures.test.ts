/**
 * The worker's count of failed activity attempts (src/temporal/activity-failures.ts): a retried
 * attempt and a last one are told apart, and the last is logged with the activity and its error.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { createLogger } from '../../src/logging';
import { ActivityFailures } from '../../src/temporal/activity-failures';

/** The parts of an activity's context the counter reads. */
function context(activityType: string, attempt: number, maximumAttempts?: number): Context {
  return {
    info: {
      activityType,
      attempt,
      workflowExecution: { workflowId: 'camp-1', runId: 'r' },
      ...(maximumAttempts ? { retryPolicy: { maximumAttempts } } : {}),
    },
    cancellationSignal: new AbortController().signal,
  } as unknown as Context;
}

describe('failed activity attempts', () => {
  it('counts retried and last attempts by activity, and logs the last with its error', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const failures = new ActivityFailures(createLogger('test', 'info', sink));
    const fail = async (ctx: Context, err: Error) => {
      const { inbound } = failures.interceptor(ctx);
      await assert.rejects(
        inbound.execute?.({ args: [], headers: {} }, () => Promise.reject(err)) ?? Promise.resolve(),
        err,
      );
    };
    await fail(context('recordCampaignPhase', 1, 20), new Error('connect ECONNREFUSED'));
    await fail(context('recordCampaignPhase', 20, 20), new Error('connect ECONNREFUSED'));
    await fail(
      context('loadModelSpec', 1, 20),
      ApplicationFailure.nonRetryable('unknown model "x"', 'InvalidCampaignInput'),
    );
    const ok = failures.interceptor(context('pollTrainingJob', 1, 10)).inbound;
    assert.equal(await ok.execute?.({ args: [], headers: {} }, () => Promise.resolve(7)), 7);

    const samples = failures.family().samples;
    const value = (activity: string, last: string) =>
      samples.find((s) => s.labels.activity === activity && s.labels.last === last)?.value;
    assert.equal(value('recordCampaignPhase', 'false'), 1);
    assert.equal(value('recordCampaignPhase', 'true'), 1);
    assert.equal(value('loadModelSpec', 'true'), 1);
    assert.equal(value('pollTrainingJob', 'true'), undefined);
    const logged = lines.map((l) => JSON.parse(l) as { msg: string; activity: string; err: string });
    assert.deepEqual(
      logged.map((l) => [l.activity, l.err]),
      [
        ['recordCampaignPhase', 'connect ECONNREFUSED'],
        ['loadModelSpec', 'unknown model "x"'],
      ],
    );
    assert.match(logged[0]?.msg ?? '', /failed for good after 20 attempt/);
  });
});

/**
 * Failed activity attempts, counted on this worker by activity and by whether the attempt was the
 * last (its retry policy spent, or an error that is not retried): `rea_activity_failures_total`.
 * The last attempt's failure is also logged here, once, with the activity and its error; the
 * workflow that called it names it in its own status (workflows/activity-options.ts).
 *
 *   const failures = new ActivityFailures(log);
 *   Worker.create({ ..., interceptors: { activity: [failures.interceptor] } });
 */
import type { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityInboundCallsInterceptor } from '@temporalio/worker';
import type { Logger } from '../logging';
import type { MetricFamily } from '../metrics/exposition';

export class ActivityFailures {
  /** Failed attempts by `activity` then `last` ("true" when no retry follows). */
  private readonly counts = new Map<string, { last: number; retried: number }>();

  constructor(private readonly log: Logger) {}

  readonly interceptor = (ctx: Context): { inbound: ActivityInboundCallsInterceptor } => ({
    inbound: {
      execute: async (input, next) => {
        try {
          return await next(input);
        } catch (err) {
          this.count(ctx, err);
          throw err;
        }
      },
    },
  });

  private count(ctx: Context, err: unknown): void {
    const { activityType, attempt, retryPolicy, workflowExecution } = ctx.info;
    if (ctx.cancellationSignal.aborted) return; // cancelled on purpose, not a failure
    const notRetried = err instanceof ApplicationFailure && err.nonRetryable;
    const max = retryPolicy?.maximumAttempts;
    const last = notRetried || (max !== undefined && max > 0 && attempt >= max);
    const c = this.counts.get(activityType) ?? { last: 0, retried: 0 };
    if (last) c.last += 1;
    else c.retried += 1;
    this.counts.set(activityType, c);
    if (last)
      this.log.error(
        {
          activity: activityType,
          attempt,
          workflowId: workflowExecution?.workflowId,
          err: err instanceof Error ? err.message : String(err),
        },
        `activity ${activityType} failed for good after ${attempt} attempt(s)`,
      );
  }

  /** The counter family for the metrics endpoint. */
  family(): MetricFamily {
    return {
      name: 'rea_activity_failures_total',
      help: 'Failed activity attempts on this worker, by activity; last="true" when no retry follows (the retry policy is spent or the error is not retried).',
      type: 'counter',
      samples: [...this.counts].flatMap(([activity, c]) => [
        { labels: { activity, last: 'true' }, value: c.last },
        { labels: { activity, last: 'false' }, value: c.retried },
      ]),
    };
  }
}

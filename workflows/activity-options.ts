/** Timeouts and retries of rea's activities, named once for every workflow that proxies them. */
import type { ActivityOptions } from '@temporalio/workflow';

/** Database writes, queue calls and planning: quick, retried with backoff until they succeed. */
export const QUICK_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2 },
};

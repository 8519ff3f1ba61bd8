/** Timeouts and retries of rea's activities, named once for every workflow that proxies them. */
import type { ActivityOptions } from '@temporalio/workflow';

/** Database writes, queue calls and planning: quick, retried with backoff until they succeed. */
export const QUICK_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2 },
};

/**
 * Evidence and LLM calls (history queries, card search, an LLM — a slow local model answers in a
 * minute or two): the activity heartbeats while it waits, so a lost worker is noticed within a
 * minute; the engine fits its LLM calls inside this timeout (src/engine/llm.ts). A few attempts: a
 * campaign that gets no evidence plans without it, and the planner fills in for the LLM.
 */
export const EVIDENCE_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: {
    initialInterval: '2 seconds',
    maximumInterval: '30 seconds',
    backoffCoefficient: 2,
    maximumAttempts: 3,
  },
};

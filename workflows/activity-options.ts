/** Timeouts and retries of rea's activities, named once for every workflow that proxies them. */
import type { ActivityOptions } from '@temporalio/workflow';

/** Database writes, queue calls and planning: quick, retried with backoff until they succeed. */
export const QUICK_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2 },
};

/**
 * The hypothesis engine's calls that may ask an LLM: a slow local model answers in a minute or two,
 * with a repair request twice that. The activity heartbeats while it waits, so a lost worker is
 * noticed within a minute; the engine fits its LLM calls inside this timeout (src/engine/llm.ts),
 * whatever REA_LLM_TIMEOUT_SEC and REA_LLM_MAX_RETRIES say, and the planner fills in when they run out.
 */
export const LLM_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2 },
};

/**
 * Timeouts and retries of rea's activities, one profile per kind of work, named once for every
 * workflow that proxies them. No profile retries forever: when one gives up, the workflow says which
 * activity failed and why (`describeFailure`) in its log, its status and its result.
 *
 *   const { submitTrainingJob } = reaActivities;
 */
import {
  ActivityFailure,
  ApplicationFailure,
  ChildWorkflowFailure,
  proxyActivities,
  proxyLocalActivities,
  type ActivityOptions,
  type LocalActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ActivityFailureNote } from '../src/core/campaign/state';

/**
 * Until v2: database writes, queue calls and planning under one profile, retried until they succeed.
 * Only the v1 campaign workflow keeps it, so that v1 campaigns finish as they began.
 */
export const QUICK_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2 },
};

/**
 * Database writes (and the model spec read): each takes milliseconds. 20 attempts, backing off to a
 * minute, ride out about 15 minutes of PostgreSQL restart or failover; longer is an outage to report.
 */
export const RECORD_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    maximumInterval: '1 minute',
    backoffCoefficient: 2,
    maximumAttempts: 20,
  },
};

/**
 * Queue and cluster calls (BullMQ, Slurm's CLI, the Kubernetes API, Temporal's visibility): seconds
 * at most, idempotent on the job id. 10 attempts (about 6 minutes); the experiment polls again at
 * its next interval when a poll gives up, so a long cluster outage never ends a running job.
 */
export const CLUSTER_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    maximumInterval: '1 minute',
    backoffCoefficient: 2,
    maximumAttempts: 10,
  },
};

/**
 * Planning (v1's slates, merges and refinements): bounded CPU work that heartbeats, so that a lost
 * worker is noticed within a minute. Three attempts: a planner that fails thrice on the same input
 * will fail a fourth time.
 */
export const PLANNING_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry: {
    initialInterval: '2 seconds',
    maximumInterval: '30 seconds',
    backoffCoefficient: 2,
    maximumAttempts: 3,
  },
};

/** The campaign's report (markdown and HTML from PostgreSQL): a missing report never fails a campaign. */
export const REPORT_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  retry: {
    initialInterval: '2 seconds',
    maximumInterval: '30 seconds',
    backoffCoefficient: 2,
    maximumAttempts: 3,
  },
};

/**
 * Evidence and LLM calls (history queries, card search, an LLM — a slow local model answers in a
 * minute or two): the activity heartbeats while it waits, so a lost worker is noticed within a
 * minute; the engine fits its LLM calls, with the LLM settings' timeout and retries, inside this
 * timeout (src/engine/llm.ts). A few attempts: a campaign that gets no evidence plans without it,
 * and the planner fills in for the LLM.
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

const PROFILES = {
  record: RECORD_ACTIVITY,
  cluster: CLUSTER_ACTIVITY,
  planning: PLANNING_ACTIVITY,
  report: REPORT_ACTIVITY,
  evidence: EVIDENCE_ACTIVITY,
} as const;

/** Every activity's profile: a new activity does not compile until it has one. */
export const ACTIVITY_PROFILE: Record<keyof Activities, keyof typeof PROFILES> = {
  loadModelSpec: 'record',
  recordCampaignStarted: 'record',
  recordCampaignPhase: 'record',
  recordCampaignFinished: 'record',
  recordRunbookAction: 'record',
  recordExperimentQueued: 'record',
  recordExperimentOutcome: 'record',
  runningCampaignModels: 'cluster',
  submitTrainingJob: 'cluster',
  pollTrainingJob: 'cluster',
  cancelTrainingJob: 'cluster',
  proposeHypotheses: 'planning',
  proposeMerges: 'planning',
  proposeRefinements: 'planning',
  writeCampaignReport: 'report',
  gatherEvidence: 'evidence',
  askLlm: 'evidence',
};

type ActivityProxies = ReturnType<typeof proxyActivities<Activities>>;
const proxies = Object.fromEntries(
  Object.entries(PROFILES).map(([kind, options]) => [kind, proxyActivities<Activities>(options)]),
) as Record<keyof typeof PROFILES, ActivityProxies>;

/** rea's activities, each with its kind's profile. */
export const reaActivities = Object.fromEntries(
  (Object.keys(ACTIVITY_PROFILE) as (keyof Activities)[]).map((name) => [
    name,
    proxies[ACTIVITY_PROFILE[name]][name],
  ]),
) as ActivityProxies;

/**
 * The experiment's two hand-over records (the run queued, its outcome) as local activities: the
 * worker runs them inside the workflow task that asks for them, so a finished job reaches the next
 * job's submit with two fewer round trips through the server. Same profile, same idempotent writes
 * (a workflow task retried after a crash runs them again). The submit stays an ordinary activity:
 * a local one runs again when its workflow task is retried, and if the queue lost the job meanwhile
 * (a Redis flush) that second submit starts a second copy beside the one still training (found by
 * the chaos suite); an ordinary activity's completion is in the history and never runs again.
 */
const localRecords = proxyLocalActivities<Activities>({
  startToCloseTimeout: RECORD_ACTIVITY.startToCloseTimeout,
  retry: RECORD_ACTIVITY.retry,
} satisfies LocalActivityOptions);

/** The hand-over records, run locally with the database writes' profile. */
export const reaHandoverRecords = {
  recordExperimentQueued: localRecords.recordExperimentQueued,
  recordExperimentOutcome: localRecords.recordExperimentOutcome,
};

/** The attempts an activity gets before it fails for good. */
export function maxAttempts(activity: string): number | undefined {
  const kind = ACTIVITY_PROFILE[activity as keyof Activities];
  return kind ? PROFILES[kind].retry?.maximumAttempts : undefined;
}

/** An activity failure as the campaign's status lists it, when `err` is (or wraps) one. */
export function activityFailureNote(err: unknown, at: number): ActivityFailureNote | undefined {
  const failure = activityFailureOf(err);
  return failure ? { activity: failure.activityType, message: describeFailure(err), at } : undefined;
}

/** The activity failure at the bottom of `err` (an activity's own, or one inside a child workflow's). */
export function activityFailureOf(err: unknown): ActivityFailure | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) if (e instanceof ActivityFailure) return e;
  return undefined;
}

/**
 * What failed and why, in one line: "activity pollTrainingJob gave up after 10 attempts
 * (MAXIMUM_ATTEMPTS_REACHED): connect ECONNREFUSED 127.0.0.1:6379". Temporal's own messages say
 * only "Activity task failed" and "Child Workflow execution failed".
 */
export function describeFailure(err: unknown): string {
  const activity = activityFailureOf(err);
  if (activity) {
    const cause = activity.cause;
    const why =
      cause instanceof ApplicationFailure && cause.type ? `${cause.type}: ${cause.message}` : cause?.message;
    const attempts = maxAttempts(activity.activityType);
    const gaveUp =
      activity.retryState === 'MAXIMUM_ATTEMPTS_REACHED' && attempts !== undefined
        ? `gave up after ${attempts} attempts`
        : `failed (${activity.retryState ?? 'no retry state'})`;
    const where = err instanceof ChildWorkflowFailure ? `${err.execution.workflowId}: ` : '';
    return `${where}activity ${activity.activityType} ${gaveUp}: ${why ?? activity.message}`;
  }
  if (err instanceof Error) {
    const inner = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${inner}`;
  }
  return String(err);
}

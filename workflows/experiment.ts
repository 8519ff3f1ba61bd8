/**
 * The experiment workflow: one training run, from submit to recorded result. It hibernates on a
 * condition while the job runs, woken by the `jobFinished` signal or, failing that, by a durable
 * poll. Its workflow id is the experiment id and the job id.
 *
 * Each poll adds about 11 events to the history, so a job of weeks would pass Temporal's 51,200-event
 * limit: the workflow continues as new, carrying the job's watch state, when Temporal suggests it or
 * after MAX_POLLS_PER_RUN polls, whichever comes first (docs/operations.md has the arithmetic). The
 * poll interval stays fixed: it bounds how late a finish is seen when its signal is lost.
 */
import {
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { activityFailureOf, describeFailure, reaActivities, reaHandoverRecords } from './activity-options';
import { jobFinishedSignalName, type JobFinished } from '../src/core/messages';
import type { ModelSpec } from '../src/core/model-spec';
import type { ExperimentOutcome, ExperimentRequest, ExperimentResult } from '../src/core/types';

const {
  recordExperimentQueued,
  submitTrainingJob,
  pollTrainingJob,
  cancelTrainingJob,
  recordExperimentOutcome,
} = reaActivities;

export const jobFinishedSignal = defineSignal<[JobFinished]>(jobFinishedSignalName);
export const experimentStateQuery = defineQuery<{
  state: string;
  outcome?: ExperimentOutcome;
  /** The last poll that gave up (its retries spent), while the next has not answered yet. */
  pollFailure?: string;
}>('state');

/** Extra time past the trainer's own limit before a silent running job counts as lost. */
const LOST_GRACE_SEC = 600;
/** Marks histories that wait `resubmitAfterSec` before resubmitting a missing job. */
const RESUBMIT_AFTER_GRACE = 'resubmit-missing-after-grace';

/**
 * Marks histories whose hand-over records (the run queued, its outcome) are local activities: a
 * finished job's outcome and the next run's record then cost no activity round trip through the
 * server. Histories without the marker replay them as scheduled activities.
 */
const LOCAL_RECORDS = 'experiment-local-records';

/** Marks histories whose runs hand the job over to a new run (continue-as-new). */
const CONTINUE_AS_NEW = 'experiment-continue-as-new';
/**
 * Polls per run when Temporal does not suggest continue-as-new sooner. A poll round is about 11
 * events, 17 with a resubmit: 400 keeps a run under 7,000 events whatever the server's settings.
 */
export const MAX_POLLS_PER_RUN = 400;

/** What a run hands the next one: the job is submitted, and how long it has been seen running or missing. */
export interface ExperimentCarry {
  state: string;
  runningSince?: number;
  missingSince?: number;
  /** Runs before this one, for the logs and the tests. */
  handOffs: number;
}

/** Marks campaign histories that also cancel an experiment's current run by its workflow id. */
const CANCEL_CURRENT_RUN = 'cancel-experiment-current-run';

/**
 * Cancels the current run of experiment `experimentId`, for the campaign that started it. The
 * parent's cancellation scope targets the run it started; once that run has continued as new it is
 * closed, and the scope's cancel would not reach the job. A cancel by workflow id goes to whichever
 * run is current. Call it beside the scope's cancel (which old histories recorded).
 */
export function cancelCurrentRun(experimentId: string): void {
  if (!patched(CANCEL_CURRENT_RUN)) return;
  // Rejected when the experiment has ended already: nothing left to cancel.
  getExternalWorkflowHandle(experimentId)
    .cancel()
    .catch(() => undefined);
}

export interface ExperimentInput {
  request: ExperimentRequest;
  spec: ModelSpec;
  /** Set by a run that continued as new: the job is submitted already, keep watching it. */
  carry?: ExperimentCarry;
}

export async function experiment({ request, spec, carry }: ExperimentInput): Promise<ExperimentResult> {
  const jobId = request.experimentId;
  let outcome: ExperimentOutcome | undefined;
  let state = carry?.state ?? 'queued';
  // Registered before the first await, so that a signal sent during the hand-off reaches this run.
  setHandler(jobFinishedSignal, (event) => {
    if (event.jobId === jobId && outcome === undefined) outcome = event.outcome;
  });
  let pollFailure: string | undefined;
  setHandler(experimentStateQuery, () => ({ state, outcome, ...(pollFailure ? { pollFailure } : {}) }));

  // Asked once, before the first command, so that a run keeps one way of calling them.
  const records = patched(LOCAL_RECORDS)
    ? reaHandoverRecords
    : { recordExperimentQueued, recordExperimentOutcome };
  if (!carry) await records.recordExperimentQueued(request);
  try {
    if (!carry) await submitTrainingJob({ request, spec });
    let runningSince = carry?.runningSince;
    let missingSince = carry?.missingSince;
    let polls = 0;
    while (outcome === undefined) {
      if ((polls >= MAX_POLLS_PER_RUN || workflowInfo().continueAsNewSuggested) && patched(CONTINUE_AS_NEW)) {
        await condition(allHandlersFinished);
        // A jobFinished signal that arrives while this run hands over fails the hand-off's workflow
        // task (Temporal never closes a run over an unseen signal): the retried task sees it here.
        if (outcome !== undefined) break;
        const next: ExperimentCarry = {
          state,
          ...(runningSince !== undefined ? { runningSince } : {}),
          ...(missingSince !== undefined ? { missingSince } : {}),
          handOffs: (carry?.handOffs ?? 0) + 1,
        };
        await continueAsNew<typeof experiment>({ request, spec, carry: next });
      }
      if (await condition(() => outcome !== undefined, `${request.pollIntervalSec}s`)) break;
      polls += 1;
      let status: Awaited<ReturnType<typeof pollTrainingJob>>;
      try {
        status = await pollTrainingJob({ cluster: spec.cluster, jobId });
        pollFailure = undefined;
      } catch (err) {
        // The job trains on whatever the queue's trouble: say so, and poll again at the next interval
        // (its jobFinished signal still ends the wait). Other failures end the workflow.
        if (activityFailureOf(err)?.retryState !== 'MAXIMUM_ATTEMPTS_REACHED') throw err;
        pollFailure = describeFailure(err);
        log.warn('poll gave up; polling again at the next interval', { jobId, error: pollFailure });
        continue;
      }
      if (status.state !== 'missing') missingSince = undefined;
      if (status.state === 'finished') {
        outcome ??= status.outcome;
      } else if (status.state === 'missing') {
        // The queue lost the job (or never got it): submitting again is safe, the id is the same. A
        // node may still be running the job its queue forgot: wait until every such copy is dead.
        if (status.resubmitAfterSec !== undefined && patched(RESUBMIT_AFTER_GRACE)) {
          missingSince ??= Date.now();
          if (Date.now() - missingSince < status.resubmitAfterSec * 1000) continue;
          missingSince = undefined;
        }
        await submitTrainingJob({ request, spec });
        runningSince = undefined;
      } else if (status.state === 'running') {
        state = 'running';
        runningSince ??= Date.now();
        if (Date.now() - runningSince > (spec.resources.timeLimitSec + LOST_GRACE_SEC) * 1000) {
          await cancelTrainingJob({ cluster: spec.cluster, jobId });
          outcome = {
            status: 'failed',
            failureClass: 'lost',
            message: `no result ${spec.resources.timeLimitSec + LOST_GRACE_SEC}s after the job started running`,
            wallTimeSec: (Date.now() - runningSince) / 1000,
          };
        }
      }
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    await CancellationScope.nonCancellable(async () => {
      await cancelTrainingJob({ cluster: spec.cluster, jobId });
      await recordExperimentOutcome(
        jobId,
        { status: 'failed', failureClass: 'cancelled', message: 'experiment cancelled', wallTimeSec: 0 },
        spec.metric.primary,
      );
    });
    throw err;
  }
  const finished = outcome as ExperimentOutcome; // the loop above exits only with an outcome
  state = finished.status;
  await records.recordExperimentOutcome(jobId, finished, spec.metric.primary);
  return { experimentId: jobId, hypothesis: request.hypothesis, config: request.config, outcome: finished };
}

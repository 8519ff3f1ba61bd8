/**
 * The experiment workflow: one training run, from submit to recorded result. It hibernates on a
 * condition while the job runs, woken by the `jobFinished` signal or, failing that, by a durable
 * poll. Its workflow id is the experiment id and the job id.
 */
import {
  CancellationScope,
  condition,
  defineQuery,
  defineSignal,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { QUICK_ACTIVITY } from './activity-options';
import { jobFinishedSignalName, type JobFinished } from '../src/core/messages';
import type { ModelSpec } from '../src/core/model-spec';
import type { ExperimentOutcome, ExperimentRequest, ExperimentResult } from '../src/core/types';

const {
  recordExperimentQueued,
  submitTrainingJob,
  pollTrainingJob,
  cancelTrainingJob,
  recordExperimentOutcome,
} = proxyActivities<Activities>(QUICK_ACTIVITY);

export const jobFinishedSignal = defineSignal<[JobFinished]>(jobFinishedSignalName);
export const experimentStateQuery = defineQuery<{ state: string; outcome?: ExperimentOutcome }>('state');

/** Extra time past the trainer's own limit before a silent running job counts as lost. */
const LOST_GRACE_SEC = 600;
/** Marks histories that wait `resubmitAfterSec` before resubmitting a missing job. */
const RESUBMIT_AFTER_GRACE = 'resubmit-missing-after-grace';

export interface ExperimentInput {
  request: ExperimentRequest;
  spec: ModelSpec;
}

export async function experiment({ request, spec }: ExperimentInput): Promise<ExperimentResult> {
  const jobId = request.experimentId;
  let outcome: ExperimentOutcome | undefined;
  let state = 'queued';
  setHandler(jobFinishedSignal, (event) => {
    if (event.jobId === jobId && outcome === undefined) outcome = event.outcome;
  });
  setHandler(experimentStateQuery, () => ({ state, outcome }));

  await recordExperimentQueued(request);
  try {
    await submitTrainingJob({ request, spec });
    let runningSince: number | undefined;
    let missingSince: number | undefined;
    while (outcome === undefined) {
      if (await condition(() => outcome !== undefined, `${request.pollIntervalSec}s`)) break;
      const status = await pollTrainingJob({ cluster: spec.cluster, jobId });
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
  await recordExperimentOutcome(jobId, finished, spec.metric.primary);
  return { experimentId: jobId, hypothesis: request.hypothesis, config: request.config, outcome: finished };
}

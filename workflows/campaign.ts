/**
 * The campaign workflow: baseline, a slate of hypotheses, each run as an experiment child workflow
 * through the GPU pool, and the best config with its gain over the baseline. It waits on its
 * children, so it holds no worker slot while jobs train.
 *
 *   temporal workflow start --type campaign --task-queue rea --workflow-id ctr-1 \
 *     --input '{"model": "synthetic-ctr", "budget": {"experiments": 6}}'
 */
import {
  ActivityFailure,
  ApplicationFailure,
  defineQuery,
  executeChild,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  inputProblemsAgainstSpec,
  parseCampaignInput,
  type CampaignSettings,
} from '../src/core/campaign-input';
import { InvalidInputError } from '../src/core/errors';
import { EXPERIMENT_WORKFLOW, searchAttributes, statusQueryName } from '../src/core/messages';
import { baselineConfig } from '../src/core/model-spec';
import { Leaderboard } from '../src/core/leaderboard';
import type { CampaignResult, ExperimentRequest, ExperimentResult, Hypothesis } from '../src/core/types';
import type { experiment, ExperimentInput } from './experiment';

const { loadModelSpec, recordCampaignStarted, recordCampaignFinished, proposeHypotheses } =
  proxyActivities<Activities>({
    startToCloseTimeout: '1 minute',
    retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2 },
  });

export type CampaignPhase = 'preflight' | 'baseline' | 'validation' | 'done' | 'failed';

export interface CampaignStatus {
  phase: CampaignPhase;
  budget: { experiments: number; used: number };
  running: string[];
  best?: { experimentId: string; hypothesisId: string; value: number; gainPct: number };
  leaderboard: string;
}

export const statusQuery = defineQuery<CampaignStatus>(statusQueryName);

const CAMPAIGN_ID = /^[A-Za-z0-9._-]{1,150}$/;

function refuse(message: string, fields: string[]): never {
  throw ApplicationFailure.nonRetryable(message, 'InvalidCampaignInput', { fields });
}

export async function campaign(rawInput: unknown): Promise<CampaignResult> {
  let input: CampaignSettings;
  try {
    input = parseCampaignInput(rawInput);
  } catch (err) {
    if (err instanceof InvalidInputError) refuse(err.message, err.fields);
    throw err;
  }
  const { workflowId: campaignId, firstExecutionRunId } = workflowInfo();
  if (!CAMPAIGN_ID.test(campaignId)) {
    refuse(`workflow id "${campaignId}" is not a valid campaign id (A-Z, a-z, 0-9, . _ -; at most 150)`, [
      'workflowId',
    ]);
  }
  const spec = await loadModelSpec(input.model).catch((err: unknown) => {
    // Surface the activity's own refusal as the campaign's failure, so the CLI shows the field.
    if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) {
      throw ApplicationFailure.nonRetryable(err.cause.message, err.cause.type, ...(err.cause.details ?? []));
    }
    throw err;
  });
  const problems = inputProblemsAgainstSpec(input, spec);
  if (problems.length) refuse(`campaign input is invalid: ${problems.join('; ')}`, ['fidelity']);

  const board = new Leaderboard(spec.metric.primary, spec.metric.direction);
  let phase: CampaignPhase = 'preflight';
  const running = new Set<string>();
  let used = 0;
  setHandler(statusQuery, () => ({
    phase,
    budget: { experiments: input.budget.experiments, used },
    running: [...running],
    best: board.best(),
    leaderboard: board.markdown(10),
  }));
  const enter = (next: CampaignPhase) => {
    phase = next;
    upsertSearchAttributes([{ key: searchAttributes.phase, value: next }]);
    setCurrentDetails(`**Phase:** ${next}\n\n${board.markdown(10)}`);
  };
  upsertSearchAttributes([
    { key: searchAttributes.model, value: spec.name },
    { key: searchAttributes.budgetUsed, value: 0 },
  ]);

  await recordCampaignStarted({ id: campaignId, firstRunId: firstExecutionRunId, model: spec.name, input });
  const fidelity = input.fidelity ?? spec.fidelity.low;
  const base = baselineConfig(spec);

  const runExperiment = async (hypothesis: Hypothesis): Promise<ExperimentResult> => {
    const index = used;
    const request: ExperimentRequest = {
      campaignId,
      experimentId: `${campaignId}.e${String(index).padStart(3, '0')}`,
      model: spec.name,
      hypothesis,
      config: { ...base, ...hypothesis.delta },
      fidelity,
      seed: input.seed,
      pollIntervalSec: input.pollIntervalSec,
    };
    used += 1;
    running.add(request.experimentId);
    upsertSearchAttributes([{ key: searchAttributes.budgetUsed, value: used }]);
    try {
      const result = await executeChild<typeof experiment>(EXPERIMENT_WORKFLOW, {
        args: [{ request, spec } satisfies ExperimentInput],
        workflowId: request.experimentId,
        parentClosePolicy: 'REQUEST_CANCEL',
        staticSummary: `${spec.name}: ${hypothesis.id}`,
        staticDetails: `**Hypothesis** (${hypothesis.source}): ${hypothesis.rationale}\n\n**Fidelity:** ${spec.fidelity.knob}=${fidelity}`,
      });
      board.add(result);
      const best = board.best();
      if (best) upsertSearchAttributes([{ key: searchAttributes.bestGainPct, value: best.gainPct }]);
      setCurrentDetails(`**Phase:** ${phase}\n\n${board.markdown(10)}`);
      return result;
    } finally {
      running.delete(request.experimentId);
    }
  };

  try {
    enter('baseline');
    const baseline = await runExperiment({
      id: 'baseline',
      source: 'baseline',
      rationale: 'the model as it is today',
      delta: {},
    });
    if (baseline.outcome.status !== 'succeeded') {
      throw ApplicationFailure.nonRetryable(
        `the baseline run failed (${baseline.outcome.failureClass}): ${baseline.outcome.message}; fix the model spec or trainer before a campaign`,
        'BaselineFailed',
      );
    }
    board.setBaseline(baseline.experimentId, baseline.outcome.metrics[spec.metric.primary] as number);

    enter('validation');
    const slate = await proposeHypotheses({
      spec,
      count: input.budget.experiments - used,
      seed: input.seed,
      exclude: [],
    });
    await runInLanes(slate, input.parallelism, runExperiment);

    const result = board.result(campaignId, spec.name);
    enter('done');
    await recordCampaignFinished(campaignId, { status: 'completed', result });
    return result;
  } catch (err) {
    phase = 'failed';
    upsertSearchAttributes([{ key: searchAttributes.phase, value: 'failed' }]);
    await recordCampaignFinished(campaignId, { status: 'failed', error: (err as Error).message });
    throw err;
  }
}

/** Runs `work` over `items` with at most `lanes` in flight, in order of the items. */
async function runInLanes<T, R>(items: T[], lanes: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(lanes, items.length) }, lane));
  return results;
}

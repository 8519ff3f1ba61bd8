/**
 * The nightly kick: started by a Temporal Schedule, it starts one campaign per model that is due,
 * never two for one model at once (a model with a running campaign is skipped; ids are per day).
 *
 *   rea schedule nightly --models synthetic-ctr --cron '0 2 * * *' --input examples/nightly.json
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ApplicationFailure, startChild, workflowInfo } from '@temporalio/workflow';
import { reaActivities } from './activity-options';
import { parseCampaignInput, type CampaignInput } from '../src/core/campaign-input';
import { InvalidInputError } from '../src/core/errors';
import { CAMPAIGN_WORKFLOW } from '../src/core/messages';
import type { campaign } from './campaign';

const { runningCampaignModels } = reaActivities;

export interface NightlyInput {
  models: string[];
  /** The campaign input for every model, without `model`. */
  template: Omit<CampaignInput, 'model'>;
}

export interface NightlyResult {
  started: { model: string; campaignId: string }[];
  skipped: { model: string; why: string }[];
}

export async function nightly(input: NightlyInput): Promise<NightlyResult> {
  if (!input || !Array.isArray(input.models) || input.models.length === 0) {
    throw ApplicationFailure.nonRetryable(
      'nightly input is invalid: models: expected a non-empty list of model names',
      'InvalidNightlyInput',
    );
  }
  // Validate every campaign first: a bad template starts none of them.
  const inputs = input.models.map((model, i) => {
    try {
      parseCampaignInput({ ...input.template, model });
    } catch (err) {
      if (err instanceof InvalidInputError) {
        throw ApplicationFailure.nonRetryable(
          `nightly input is invalid: models[${i}] (${model}): ${err.message}`,
          'InvalidNightlyInput',
        );
      }
      throw err;
    }
    return { ...input.template, model };
  });
  const busy = new Set(await runningCampaignModels(input.models));
  const day = workflowInfo().startTime.toISOString().slice(0, 10).replace(/-/g, '');
  const result: NightlyResult = { started: [], skipped: [] };
  for (const campaignInput of inputs) {
    const { model } = campaignInput;
    if (busy.has(model)) {
      result.skipped.push({ model, why: 'a campaign for this model is still running' });
      continue;
    }
    const campaignId = `${model}-nightly-${day}`;
    try {
      await startChild<typeof campaign>(CAMPAIGN_WORKFLOW, {
        args: [campaignInput],
        workflowId: campaignId,
        parentClosePolicy: 'ABANDON',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        staticSummary: `Nightly campaign on ${model}`,
      });
      result.started.push({ model, campaignId });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      result.skipped.push({ model, why: `${campaignId} was already started` });
    }
  }
  return result;
}

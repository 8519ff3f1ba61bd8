/**
 * The campaign workflow: a thin shell around the campaign's state machine
 * (src/core/campaign/machine.ts). It feeds the machine every result and message as an event,
 * carries out its effects (./campaign-effects.ts), hibernates in between, and continues-as-new with
 * the compact state when Temporal suggests it. Messages: ./campaign-messages.ts.
 *
 *   temporal workflow start --type campaign --task-queue rea --workflow-id ctr-1 \
 *     --input '{"model": "fm-synthetic", "budget": {"gpuHours": 0.01}}'
 */
import * as wf from '@temporalio/workflow';
import { activityFailureOf, describeFailure, reaActivities } from './activity-options';
import { CampaignEffects } from './campaign-effects';
import { handleMessages } from './campaign-messages';
import { campaignV1, type CarriedCampaignV1 } from './campaign-v1';
import { fidelityLevels, inputProblemsAgainstSpec, parseCampaignInput } from '../src/core/campaign-input';
import { CampaignMachine, fidelityLadder, type CampaignEvent } from '../src/core/campaign/machine';
import { initialState, type CampaignState } from '../src/core/campaign/state';
import { InvalidInputError } from '../src/core/errors';
import { searchAttributes } from '../src/core/messages';
import type { ModelSpec } from '../src/core/model-spec';
import type { CampaignResult } from '../src/core/types';

export * from './campaign-messages';
const act = reaActivities;
/** Marks campaigns started with the answer's rules v3 (CampaignState.answerRules). */
const ANSWER_V3 = 'campaign-answer-v3';
/** Marks campaigns started with the answer's rules v4 (CampaignState.answerRules.v4). */
const ANSWER_V4 = 'campaign-answer-v4';
/** Marks campaigns started with the answer's rules v5 (CampaignState.answerRules.v5). */
const ANSWER_V5 = 'campaign-answer-v5';

/** What a run hands to the next at continue-as-new. */
export interface CarriedCampaign {
  state: CampaignState;
  spec: ModelSpec;
}

const refuse = (message: string, fields: string[]): never => {
  throw wf.ApplicationFailure.nonRetryable(message, 'InvalidCampaignInput', { fields });
};

export async function campaign(
  rawInput: unknown,
  carried?: CarriedCampaign | CarriedCampaignV1,
): Promise<CampaignResult> {
  // Campaigns started before v2 finish as they began (their histories carry no v2 marker).
  if (carried ? carried.state.version !== 2 : !wf.patched('campaign-v2'))
    return campaignV1(rawInput, carried as CarriedCampaignV1 | undefined);
  const prior = carried as CarriedCampaign | undefined;
  let input;
  try {
    input = parseCampaignInput(rawInput);
  } catch (err) {
    throw err instanceof InvalidInputError ? refuse(err.message, err.fields) : err;
  }
  const { workflowId: campaignId, firstExecutionRunId } = wf.workflowInfo();
  if (!/^[A-Za-z0-9._-]{1,150}$/.test(campaignId))
    refuse(`workflow id "${campaignId}" is not a valid campaign id (A-Z, a-z, 0-9, . _ -; at most 150)`, [
      'workflowId',
    ]);
  // The spec is read once and carried, so that an edit of the file never changes a running campaign.
  const spec = prior?.spec ?? (await loadSpec(input.model));
  const problems = inputProblemsAgainstSpec(input, spec);
  if (problems.length) refuse(`campaign input is invalid: ${problems.join('; ')}`, ['fidelity']);
  const rungs = fidelityLadder(fidelityLevels(input, spec), input.eta, input.budget);
  const state = prior?.state ?? initialState(input, rungs);
  // Campaigns started before the answer's rules v3 keep the rules they started with.
  if (!prior && !wf.patched(ANSWER_V3)) delete state.answerRules;
  else if (!prior && state.answerRules && !wf.patched(ANSWER_V4)) {
    delete state.answerRules.v4;
    delete state.answerRules.v5;
  } else if (!prior && state.answerRules && !wf.patched(ANSWER_V5)) delete state.answerRules.v5;
  state.draining = false;
  const machine = new CampaignMachine(state, spec, input);
  const events: CampaignEvent[] = [{ type: 'start' }];
  const effects = new CampaignEffects(machine, { campaignId, spec, input }, events);
  handleMessages(machine, campaignId, events);
  const published: { phase?: string; gain?: number; used?: number } = {};
  const publish = () => {
    const now = {
      phase: state.phase,
      gain: Number(machine.answer().gainPct.toFixed(4)),
      used: state.used.experiments,
    };
    const a = searchAttributes;
    const updates = [
      ...(published.phase !== now.phase ? [{ key: a.phase, value: now.phase }] : []),
      ...(published.gain !== now.gain ? [{ key: a.bestGainPct, value: now.gain }] : []),
      ...(published.used !== now.used ? [{ key: a.budgetUsed, value: now.used }] : []),
    ];
    if (updates.length) wf.upsertSearchAttributes(updates);
    Object.assign(published, now);
    wf.setCurrentDetails(machine.markdown());
  };

  try {
    if (!state.recordedStart) {
      await act.recordCampaignStarted({
        id: campaignId,
        firstRunId: firstExecutionRunId,
        model: spec.name,
        input,
      });
      state.recordedStart = true;
      wf.upsertSearchAttributes([{ key: searchAttributes.model, value: spec.name }]);
    }
    const idle = () => state.draining && !Object.keys(state.running).length && !effects.pending.size;
    const restNeeded = () =>
      effects.startedThisRun >= input.experimentsPerRun || wf.workflowInfo().continueAsNewSuggested;
    while (!effects.result) {
      // Hibernate until an event (a result, a message) or, while a plan waits, its approval deadline.
      const since = state.approval.status === 'waiting' ? state.approval.since : undefined;
      const woke =
        since === undefined
          ? (await wf.condition(() => events.length > 0 || idle() || effects.diverged !== undefined), true)
          : await wf.condition(
              () => events.length > 0,
              Math.max(1, since + input.approval.timeoutHours * 3_600_000 - Date.now()),
            );
      // A plain Error fails the workflow task, not the campaign: it is retried until the right code runs.
      if (effects.diverged) throw new Error(effects.diverged);
      if (!woke) events.push({ type: 'approvalTimeout' });
      if (!state.draining && restNeeded()) events.push({ type: 'drain' });
      while (events.length && !effects.result)
        for (const effect of machine.handle(events.shift() as CampaignEvent)) effects.carryOut(effect);
      publish();
      if (!effects.result && idle()) {
        await wf.condition(wf.allHandlersFinished);
        if (events.length) continue;
        state.runs += 1;
        await wf.continueAsNew<typeof campaign>(rawInput, { state, spec });
      }
    }
    const result = effects.result;
    await Promise.allSettled([...effects.pending]);
    await act.recordCampaignFinished(campaignId, { status: result.status, result });
    const report = await act.writeCampaignReport(campaignId);
    if (report) result.report = report;
    return result;
  } catch (err) {
    // A diverged replay must not act (cancel, record a failure): its task fails and is retried as it is.
    if (err instanceof wf.ContinueAsNew || effects.diverged) throw err;
    await wf.CancellationScope.nonCancellable(async () => {
      effects.cancelAll();
      await Promise.allSettled([...effects.pending]);
      const cancelled = wf.isCancellation(err);
      if (!cancelled) wf.upsertSearchAttributes([{ key: searchAttributes.phase, value: 'failed' }]);
      await act.recordCampaignFinished(
        campaignId,
        cancelled
          ? {
              status: 'aborted',
              result: machine.result(campaignId, 'aborted', 'the campaign workflow was cancelled'),
            }
          : { status: 'failed', error: describeFailure(err) },
      );
    });
    // Temporal's own message says only "Activity task failed": fail with the activity and its error.
    if (!wf.isCancellation(err) && activityFailureOf(err)) {
      wf.log.error('campaign failed', { campaignId, error: describeFailure(err) });
      throw wf.ApplicationFailure.nonRetryable(describeFailure(err), 'ActivityFailed');
    }
    throw err;
  }
}

/** Reads the model spec; the activity's refusal (unknown model, invalid spec) fails the campaign with its field. */
async function loadSpec(model: string): Promise<ModelSpec> {
  try {
    return await act.loadModelSpec(model);
  } catch (err) {
    if (err instanceof wf.ActivityFailure && err.cause instanceof wf.ApplicationFailure)
      throw wf.ApplicationFailure.nonRetryable(
        err.cause.message,
        err.cause.type,
        ...(err.cause.details ?? []),
      );
    throw err;
  }
}

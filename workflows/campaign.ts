/**
 * The campaign workflow: a thin shell that carries out the effects of the campaign's state machine
 * (src/core/campaign/machine.ts) — training runs as child workflows, evidence and LLM calls as
 * activities — feeds it every result and message as an event, hibernates in between, and
 * continues-as-new with the compact state when Temporal suggests it.
 *
 *   temporal workflow start --type campaign --task-queue rea --workflow-id ctr-1 \
 *     --input '{"model": "synthetic-ctr", "budget": {"gpuHours": 0.5}}'
 */
import * as wf from '@temporalio/workflow';
import type { Activities } from '../activities';
import { EVIDENCE_ACTIVITY, QUICK_ACTIVITY } from './activity-options';
import { campaignV1, type CarriedCampaignV1 } from './campaign-v1';
import type { experiment, ExperimentInput } from './experiment';
import {
  fidelityLevels,
  inputProblemsAgainstSpec,
  parseCampaignInput,
  type Budget,
  type CampaignSettings,
} from '../src/core/campaign-input';
import {
  CampaignMachine,
  fidelityLadder,
  type AnswerView,
  type CampaignEvent,
  type Effect,
} from '../src/core/campaign/machine';
import { initialState, type CampaignState, type Plan } from '../src/core/campaign/state';
import { InvalidInputError, parseOrThrow } from '../src/core/errors';
import * as msg from '../src/core/messages';
import { configProblems, type ModelSpec } from '../src/core/model-spec';
import { BASELINE_ID } from '../src/core/search/space';
import type { CampaignResult, Phase, Spend } from '../src/core/types';

const act = wf.proxyActivities<Activities>(QUICK_ACTIVITY);
const slow = wf.proxyActivities<Activities>(EVIDENCE_ACTIVITY);

export interface CampaignStatus {
  phase: Phase;
  stage: CampaignState['stage'];
  paused: boolean;
  aborting?: string;
  approval: CampaignState['approval'];
  plan?: Plan;
  budget: {
    limit: Budget;
    used: Spend;
    byPhase: Record<string, Spend>;
    split: CampaignSettings['split'];
    spentPct: number;
  };
  answer: AnswerView;
  incumbent: string;
  rungs: number[];
  running: { experimentId: string; hypothesisId: string; fidelity: number; seed: number; purpose: string }[];
  queued: number;
  wins: CampaignState['wins'];
  leaderboard: ReturnType<CampaignMachine['leaderboard']>;
  experiments: CampaignState['counts'];
  run: number;
}

export const statusQuery = wf.defineQuery<CampaignStatus>(msg.statusQueryName);
const m = msg.campaignMessages;
export const approvePlanUpdate = wf.defineUpdate<{ approved: true; round: number }, [unknown?]>(
  m.approvePlan,
);
export const rejectPlanUpdate = wf.defineUpdate<{ rejected: true; round: number }, [msg.RejectPlan]>(
  m.rejectPlan,
);
export const setBudgetUpdate = wf.defineUpdate<Budget, [Budget]>(m.setBudget);
export const addHypothesisUpdate = wf.defineUpdate<{ hypothesisId: string }, [msg.AddHypothesis]>(
  m.addHypothesis,
);
export const pauseSignal = wf.defineSignal(m.pause);
export const resumeSignal = wf.defineSignal(m.resume);
export const abortSignal = wf.defineSignal<[{ reason?: string }?]>(m.abort);

/** What a run hands to the next at continue-as-new. */
export interface CarriedCampaign {
  state: CampaignState;
  spec: ModelSpec;
}

const CAMPAIGN_ID = /^[A-Za-z0-9._-]{1,150}$/;
const refuse = (message: string, fields: string[]): never => {
  throw wf.ApplicationFailure.nonRetryable(message, 'InvalidCampaignInput', { fields });
};
const invalid = (message: string): never => {
  throw wf.ApplicationFailure.nonRetryable(message, 'InvalidMessage');
};
function parseMessage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof InvalidInputError) invalid(err.message);
    throw err;
  }
}

export async function campaign(
  rawInput: unknown,
  carried?: CarriedCampaign | CarriedCampaignV1,
): Promise<CampaignResult> {
  // Campaigns started before v2 finish as they began (their histories carry no v2 marker).
  if (carried ? carried.state.version !== 2 : !wf.patched('campaign-v2'))
    return campaignV1(rawInput, carried as CarriedCampaignV1 | undefined);
  let input: CampaignSettings;
  try {
    input = parseCampaignInput(rawInput);
  } catch (err) {
    if (err instanceof InvalidInputError) refuse(err.message, err.fields);
    throw err;
  }
  const { workflowId: campaignId, firstExecutionRunId } = wf.workflowInfo();
  if (!CAMPAIGN_ID.test(campaignId))
    refuse(`workflow id "${campaignId}" is not a valid campaign id (A-Z, a-z, 0-9, . _ -; at most 150)`, [
      'workflowId',
    ]);
  // The spec is read once and carried, so that an edit of the file never changes a running campaign.
  const spec = (carried as CarriedCampaign | undefined)?.spec ?? (await loadSpec(input.model));
  const problems = inputProblemsAgainstSpec(input, spec);
  if (problems.length) refuse(`campaign input is invalid: ${problems.join('; ')}`, ['fidelity']);
  const rungs = fidelityLadder(fidelityLevels(input, spec), input.eta, input.budget);
  const state = (carried as CarriedCampaign | undefined)?.state ?? initialState(input, rungs);
  state.draining = false;
  const c = new CampaignMachine(state, spec, input);
  const events: CampaignEvent[] = [{ type: 'start' }];
  const scopes = new Map<string, wf.CancellationScope>();
  const pending = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };
  let startedThisRun = 0;
  let result: CampaignResult | undefined;

  // ---- messages -----------------------------------------------------------------------------
  wf.setHandler(statusQuery, () => ({
    phase: state.phase,
    stage: state.stage,
    paused: state.paused,
    ...(state.aborting ? { aborting: state.aborting } : {}),
    approval: state.approval,
    ...(state.plan ? { plan: state.plan } : {}),
    budget: {
      limit: state.budget,
      used: state.used,
      byPhase: state.byPhase,
      split: input.split,
      spentPct: c.spentShare() * 100,
    },
    answer: c.answer(),
    incumbent: state.incumbent,
    rungs: state.rungs,
    running: Object.entries(state.running).map(([id, r]) => ({
      experimentId: `${campaignId}.e${id}`,
      hypothesisId: r.configId,
      fidelity: state.rungs[r.rung] as number,
      seed: input.seed + r.k,
      purpose: r.purpose,
    })),
    queued: state.queue.length,
    wins: state.wins,
    leaderboard: c.leaderboard(10),
    experiments: state.counts,
    run: state.runs,
  }));
  const waiting = () => {
    if (state.approval.status !== 'waiting')
      invalid(
        `no plan is waiting for approval (the campaign is in ${state.phase}/${state.stage}, approval ${state.approval.status})`,
      );
  };
  wf.setHandler(
    approvePlanUpdate,
    (_note?: unknown) => {
      events.push({ type: 'approve' });
      return { approved: true as const, round: state.plan?.round ?? 1 };
    },
    { validator: (_note?: unknown) => waiting() },
  );
  wf.setHandler(
    rejectPlanUpdate,
    (raw) => {
      const { feedback, excludeKnobs } = msg.rejectPlanSchema.parse(raw);
      events.push({ type: 'reject', feedback, excludeKnobs });
      return { rejected: true as const, round: state.plan?.round ?? 1 };
    },
    {
      validator: (raw) => {
        waiting();
        const { excludeKnobs } = parseMessage(() => parseOrThrow(msg.rejectPlanSchema, raw, 'rejectPlan'));
        const unknown = excludeKnobs.filter((k) => !(k in spec.knobs));
        if (unknown.length)
          invalid(`rejectPlan is invalid: excludeKnobs: unknown knobs ${unknown.join(', ')}`);
      },
    },
  );
  wf.setHandler(
    setBudgetUpdate,
    (raw) => {
      const budget = msg.setBudgetSchema.parse(raw);
      events.push({ type: 'setBudget', budget });
      return budget;
    },
    {
      validator: (raw) => {
        const problems = c.budgetProblems(
          parseMessage(() => parseOrThrow(msg.setBudgetSchema, raw, 'setBudget')),
        );
        if (problems.length) invalid(`setBudget is invalid: ${problems.join('; ')}`);
      },
    },
  );
  wf.setHandler(
    addHypothesisUpdate,
    (raw) => {
      const { delta, rationale } = msg.addHypothesisSchema.parse(raw);
      events.push({ type: 'addHypothesis', delta, rationale });
      return { hypothesisId: c.idOf(delta) };
    },
    {
      validator: (raw) => {
        const { delta } = parseMessage(() => parseOrThrow(msg.addHypothesisSchema, raw, 'addHypothesis'));
        const problems = configProblems(spec, delta);
        if (problems.length)
          invalid(`addHypothesis is invalid: ${problems.map((p) => `delta.${p}`).join('; ')}`);
        const id = c.idOf(delta);
        if (id === BASELINE_ID)
          invalid(
            'addHypothesis is invalid: delta: expected at least one knob that differs from the baseline (knobs inactive under the others do not count)',
          );
        if (state.stage === 'finishing' || state.stage === 'done')
          invalid('addHypothesis: the campaign is finishing');
        if (state.configs[id]) invalid(`addHypothesis: "${id}" is already part of this campaign`);
      },
    },
  );
  wf.setHandler(pauseSignal, () => void events.push({ type: 'pause' }));
  wf.setHandler(resumeSignal, () => void events.push({ type: 'resume' }));
  wf.setHandler(
    abortSignal,
    (raw) =>
      void events.push({
        type: 'abort',
        reason: msg.abortSchema.safeParse(raw ?? {}).data?.reason ?? 'aborted by an operator',
      }),
  );

  // ---- effects ------------------------------------------------------------------------------
  const published: { phase?: string; gain?: number; used?: number } = {};
  function publish(): void {
    const gain = Number(c.answer().gainPct.toFixed(4));
    const updates = [];
    if (published.phase !== state.phase)
      updates.push({ key: msg.searchAttributes.phase, value: state.phase });
    if (published.gain !== gain) updates.push({ key: msg.searchAttributes.bestGainPct, value: gain });
    if (published.used !== state.used.experiments)
      updates.push({ key: msg.searchAttributes.budgetUsed, value: state.used.experiments });
    if (updates.length) wf.upsertSearchAttributes(updates);
    Object.assign(published, { phase: state.phase, gain, used: state.used.experiments });
    wf.setCurrentDetails(c.markdown());
  }

  function carryOut(effect: Effect): void {
    switch (effect.type) {
      case 'launch': {
        const l = effect.launch;
        const experimentId = `${campaignId}.e${l.experimentId}`;
        startedThisRun += 1;
        const scope = new wf.CancellationScope();
        scopes.set(l.experimentId, scope);
        const args: ExperimentInput = {
          spec,
          request: {
            campaignId,
            experimentId,
            model: spec.name,
            phase: l.item.phase,
            role: l.role,
            attempt: l.item.attempt,
            costGpuHours: l.item.cost.gpuHours,
            hypothesis: l.hypothesis,
            config: l.config,
            fidelity: l.fidelity,
            seed: l.seed,
            pollIntervalSec: input.pollIntervalSec,
          },
        };
        const done = scope
          .run(() =>
            wf.executeChild<typeof experiment>(msg.EXPERIMENT_WORKFLOW, {
              args: [args],
              workflowId: experimentId,
              parentClosePolicy: 'REQUEST_CANCEL',
              staticSummary: `${spec.name} · ${l.item.phase} · ${l.hypothesis.id} @ ${spec.fidelity.knob}=${l.fidelity} seed ${l.seed}`,
              staticDetails: `**Hypothesis** (${l.hypothesis.source}): ${l.hypothesis.rationale}\n\n**Purpose:** ${l.item.purpose} · **attempt:** ${l.item.attempt}`,
            }),
          )
          .then(
            ({ outcome }) =>
              events.push(
                outcome.status === 'succeeded'
                  ? {
                      type: 'finished',
                      experimentId: l.experimentId,
                      value: outcome.metrics[spec.metric.primary] ?? NaN,
                    }
                  : {
                      type: 'finished',
                      experimentId: l.experimentId,
                      failure: { failureClass: outcome.failureClass, message: outcome.message },
                    },
              ),
            (err: unknown) =>
              events.push({
                type: 'finished',
                experimentId: l.experimentId,
                failure: wf.isCancellation(err)
                  ? { failureClass: 'cancelled', message: 'cancelled' }
                  : { failureClass: 'crash', message: (err as Error).message },
              }),
          )
          .finally(() => scopes.delete(l.experimentId));
        track(done);
        break;
      }
      case 'gatherEvidence':
        track(
          slow
            .gatherEvidence({
              campaignId,
              spec,
              highFidelity: state.rungs.at(-1) as number,
              excludeKnobs: effect.excludeKnobs,
              feedback: effect.feedback,
              count: effect.count,
              llmBudget: input.llm,
            })
            .then(
              (r) => events.push({ type: 'evidence', evidence: r.evidence, llmAvailable: r.llmAvailable }),
              (err: unknown) => events.push({ type: 'evidenceFailed', message: (err as Error).message }),
            ),
        );
        break;
      case 'askLlm':
        track(
          slow.askLlm({ campaignId, spec, request: effect.request, llmBudget: input.llm }).then(
            (hypotheses) => events.push({ type: 'llmSuggestions', hypotheses }),
            (err: unknown) => events.push({ type: 'llmFailed', message: (err as Error).message }),
          ),
        );
        break;
      case 'recordPhase':
        track(act.recordCampaignPhase(campaignId, effect.phase, effect.plan ?? null));
        break;
      case 'recordRunbook':
        track(act.recordRunbookAction(`${campaignId}.e${effect.experimentId}`, effect.action));
        break;
      case 'cancelAll':
        for (const scope of scopes.values()) scope.cancel();
        break;
      case 'awaitApproval':
        state.approval.since = Date.now();
        break;
      case 'finish':
        result = c.result(campaignId, effect.status, state.aborting);
        break;
      case 'fail':
        throw wf.ApplicationFailure.nonRetryable(effect.message, effect.failureType);
    }
  }

  // ---- the loop -----------------------------------------------------------------------------
  try {
    if (!state.recordedStart) {
      await act.recordCampaignStarted({
        id: campaignId,
        firstRunId: firstExecutionRunId,
        model: spec.name,
        input,
      });
      state.recordedStart = true;
      wf.upsertSearchAttributes([{ key: msg.searchAttributes.model, value: spec.name }]);
    }
    const wantRest = () =>
      startedThisRun >= input.experimentsPerRun || wf.workflowInfo().continueAsNewSuggested;
    while (!result) {
      const deadline =
        state.approval.status === 'waiting' && state.approval.since !== undefined
          ? state.approval.since + input.approval.timeoutHours * 3_600_000 - Date.now()
          : undefined;
      const ready = () =>
        events.length > 0 || (state.draining && !Object.keys(state.running).length && !pending.size);
      const woke =
        deadline === undefined
          ? (await wf.condition(ready), true)
          : await wf.condition(ready, Math.max(1, deadline));
      if (!woke) events.push({ type: 'approvalTimeout' });
      if (wantRest() && !state.draining) events.push({ type: 'drain' });
      while (events.length && !result)
        for (const effect of c.handle(events.shift() as CampaignEvent)) carryOut(effect);
      publish();
      if (!result && state.draining && !Object.keys(state.running).length && !pending.size) {
        await wf.condition(wf.allHandlersFinished);
        if (!events.length) {
          state.runs += 1;
          await wf.continueAsNew<typeof campaign>(rawInput, { state, spec });
        }
      }
    }
    await Promise.allSettled([...pending]);
    await act.recordCampaignFinished(campaignId, { status: result.status, result });
    const report = await act.writeCampaignReport(campaignId);
    if (report) result.report = report;
    return result;
  } catch (err) {
    if (err instanceof wf.ContinueAsNew) throw err;
    await wf.CancellationScope.nonCancellable(async () => {
      for (const scope of scopes.values()) scope.cancel();
      await Promise.allSettled([...pending]);
      if (wf.isCancellation(err)) {
        const r = c.result(campaignId, 'aborted', 'the campaign workflow was cancelled');
        await act.recordCampaignFinished(campaignId, { status: 'aborted', result: r });
      } else {
        wf.upsertSearchAttributes([{ key: msg.searchAttributes.phase, value: 'failed' }]);
        await act.recordCampaignFinished(campaignId, { status: 'failed', error: (err as Error).message });
      }
    });
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

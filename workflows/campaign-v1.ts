/**
 * The first campaign workflow (v1), kept so that campaigns started before the search engine v2
 * replay and finish as they began: `campaign` (./campaign.ts) hands them here (a `patched()` marker
 * tells new runs from old ones). Do not change its behaviour; delete it once no v1 campaign runs.
 *
 * It is a thin shell around `Campaign` (src/core/campaign-state.ts). It runs each
 * step's experiments as child workflows through the GPU pool, hibernates while they train, obeys
 * the ops team's messages, and continues-as-new at phase boundaries with a compact state.
 *
 *   temporal workflow start --type campaign --task-queue rea --workflow-id ctr-1 \
 *     --input '{"model": "synthetic-ctr", "budget": {"experiments": 40}}'
 */
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  ContinueAsNew,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  executeChild,
  isCancellation,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { QUICK_ACTIVITY } from './activity-options';
import {
  fidelityLevels,
  inputProblemsAgainstSpec,
  parseCampaignInput,
  type Budget,
  type CampaignSettings,
} from '../src/core/campaign-input';
import {
  BASELINE_ID,
  Campaign,
  initialState,
  type ApprovalStatus,
  type CampaignState,
  type Plan,
  type Step,
  type WorkItem,
} from '../src/core/campaign-state';
import { InvalidInputError, parseOrThrow } from '../src/core/errors';
import {
  abortSchema,
  addHypothesisSchema,
  campaignMessages,
  EXPERIMENT_WORKFLOW,
  rejectPlanSchema,
  searchAttributes,
  setBudgetSchema,
  statusQueryName,
  type AddHypothesis,
  type RejectPlan,
} from '../src/core/messages';
import { configProblems, type ModelSpec } from '../src/core/model-spec';
import { decide } from '../src/core/runbook';
import type { CampaignResult, ExperimentRequest, ExperimentResult, Phase, Spend } from '../src/core/types';
import { cancelCurrentRun, type experiment, type ExperimentInput } from './experiment';

const {
  loadModelSpec,
  recordCampaignStarted,
  recordCampaignPhase,
  recordCampaignFinished,
  recordRunbookAction,
  proposeHypotheses,
  proposeRefinements,
  proposeMerges,
  writeCampaignReport,
} = proxyActivities<Activities>(QUICK_ACTIVITY);

interface CampaignStatus {
  phase: Phase;
  step: Step;
  paused: boolean;
  aborting?: string;
  approval: { status: ApprovalStatus; feedback: string[] };
  plan?: Plan;
  budget: { limit: Budget; used: Spend; byPhase: Record<string, Spend>; split: CampaignSettings['split'] };
  best?: {
    hypothesisId: string;
    gainPct: number;
    ciLow: number;
    ciHigh: number;
    fidelity: number;
    runs: number;
  };
  running: { experimentId: string; hypothesisId: string; fidelity: number }[];
  pending: number;
  wins: CampaignState['wins'];
  leaderboard: ReturnType<Campaign['leaderboard']>;
  experiments: CampaignState['counts'];
  run: number;
}

const statusQuery = defineQuery<CampaignStatus>(statusQueryName);
const m = campaignMessages;
const approvePlanUpdate = defineUpdate<{ approved: true; round: number }, [unknown?]>(m.approvePlan);
const rejectPlanUpdate = defineUpdate<{ rejected: true; round: number }, [RejectPlan]>(m.rejectPlan);
const setBudgetUpdate = defineUpdate<Budget, [Budget]>(m.setBudget);
const addHypothesisUpdate = defineUpdate<{ hypothesisId: string }, [AddHypothesis]>(m.addHypothesis);
const pauseSignal = defineSignal(m.pause);
const resumeSignal = defineSignal(m.resume);
const abortSignal = defineSignal<[{ reason?: string }?]>(m.abort);

/** What a run hands to the next one at continue-as-new. */
export interface CarriedCampaignV1 {
  state: CampaignState;
  spec: ModelSpec;
}

const CAMPAIGN_ID = /^[A-Za-z0-9._-]{1,150}$/;

function refuse(message: string, fields: string[]): never {
  throw ApplicationFailure.nonRetryable(message, 'InvalidCampaignInput', { fields });
}

/** Update validators throw this; the caller sees the message, and nothing changes. */
function invalid(message: string): never {
  throw ApplicationFailure.nonRetryable(message, 'InvalidMessage');
}

function parseMessage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof InvalidInputError) invalid(err.message);
    throw err;
  }
}

export async function campaignV1(rawInput: unknown, carried?: CarriedCampaignV1): Promise<CampaignResult> {
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
  // The spec is read once and carried, so that an edit of the file never changes a running campaign.
  const spec =
    carried?.spec ??
    (await loadModelSpec(input.model).catch((err: unknown) => {
      // Surface the activity's own refusal as the campaign's failure, so the CLI shows the field.
      if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) {
        throw ApplicationFailure.nonRetryable(
          err.cause.message,
          err.cause.type,
          ...(err.cause.details ?? []),
        );
      }
      throw err;
    }));
  const problems = inputProblemsAgainstSpec(input, spec);
  if (problems.length) refuse(`campaign input is invalid: ${problems.join('; ')}`, ['fidelity']);

  const levels = fidelityLevels(input, spec);
  const c = new Campaign(carried?.state ?? initialState(input), spec, input, levels);
  const state = c.state;
  const running = new Map<string, WorkItem>();
  const childScopes = new Map<string, CancellationScope>();
  const inflight = new Set<Promise<void>>();
  let aborting: string | undefined;
  let startedThisRun = 0;

  // ---- messages -----------------------------------------------------------------------------
  setHandler(statusQuery, () => {
    const best =
      state.bestId === BASELINE_ID
        ? undefined
        : c.leaderboard(1000).find((r) => r.hypothesisId === state.bestId);
    const g = best && c.gain(best.hypothesisId, best.fidelity);
    return {
      phase: c.phase,
      step: state.step,
      paused: state.paused,
      ...(aborting ? { aborting } : {}),
      approval: state.approval,
      ...(state.plan ? { plan: state.plan } : {}),
      budget: { limit: state.budget, used: state.used, byPhase: state.byPhase, split: input.split },
      ...(best && g
        ? {
            best: {
              hypothesisId: best.hypothesisId,
              gainPct: g.gainPct,
              ciLow: g.low,
              ciHigh: g.high,
              fidelity: best.fidelity,
              runs: g.n,
            },
          }
        : {}),
      running: [...running].map(([experimentId, item]) => ({
        experimentId,
        hypothesisId: item.hypothesisId,
        fidelity: item.fidelity,
      })),
      pending: state.pending.length,
      wins: state.wins,
      leaderboard: c.leaderboard(10),
      experiments: state.counts,
      run: state.runs,
    };
  });

  const waitingForApproval = () => {
    if (state.step !== 'plan' || state.approval.status !== 'waiting' || !state.plan) {
      invalid(
        `no plan is waiting for approval (the campaign is in ${c.phase}/${state.step}, approval ${state.approval.status})`,
      );
    }
  };
  setHandler(
    approvePlanUpdate,
    (_note?: unknown) => {
      state.approval.status = 'approved';
      return { approved: true as const, round: state.plan?.round ?? 1 };
    },
    { validator: (_note?: unknown) => waitingForApproval() },
  );
  setHandler(
    rejectPlanUpdate,
    (raw) => {
      const { feedback, excludeKnobs } = rejectPlanSchema.parse(raw);
      state.approval = { status: 'rejected', feedback: [...state.approval.feedback, feedback] };
      state.excludedKnobs = [...new Set([...state.excludedKnobs, ...excludeKnobs])];
      return { rejected: true as const, round: state.plan?.round ?? 1 };
    },
    {
      validator: (raw) => {
        waitingForApproval();
        const { excludeKnobs } = parseMessage(() => parseOrThrow(rejectPlanSchema, raw, 'rejectPlan'));
        const unknown = excludeKnobs.filter((k) => !(k in spec.knobs));
        if (unknown.length)
          invalid(`rejectPlan is invalid: excludeKnobs: unknown knobs ${unknown.join(', ')}`);
      },
    },
  );
  setHandler(
    setBudgetUpdate,
    (raw) => {
      state.budget = setBudgetSchema.parse(raw);
      publish();
      return state.budget;
    },
    {
      validator: (raw) => {
        const next = parseMessage(() => parseOrThrow(setBudgetSchema, raw, 'setBudget'));
        const problems = c.budgetProblems(next);
        if (problems.length) invalid(`setBudget is invalid: ${problems.join('; ')}`);
      },
    },
  );
  setHandler(
    addHypothesisUpdate,
    (raw) => {
      const { delta, rationale } = addHypothesisSchema.parse(raw);
      const h = c.register({ id: '', source: 'human', rationale, delta });
      // Into the running step's work at its fidelity; before the screen, into the screen's slate.
      if (state.prepared && state.step !== 'plan' && state.step !== 'report' && state.step !== 'baseline') {
        const fidelity = c.stepFidelity(state.step);
        state.pending.push({ hypothesisId: h.id, role: 'candidate', fidelity, seed: input.seed, attempt: 1 });
      } else {
        state.humanQueue.push(h.id);
      }
      publish();
      return { hypothesisId: h.id };
    },
    {
      validator: (raw) => {
        const { delta } = parseMessage(() => parseOrThrow(addHypothesisSchema, raw, 'addHypothesis'));
        const problems = configProblems(spec, delta);
        if (problems.length)
          invalid(`addHypothesis is invalid: ${problems.map((p) => `delta.${p}`).join('; ')}`);
        const id = c.idOf(delta);
        if (id === BASELINE_ID)
          invalid(
            'addHypothesis is invalid: delta: expected at least one knob that differs from the baseline',
          );
        if (c.phase === 'done') invalid('addHypothesis: the campaign is finishing');
        // Ids are derived from the delta with sorted keys, so key order cannot hide a repeat.
        if (state.hypotheses[id]) invalid(`addHypothesis: "${id}" is already part of this campaign`);
      },
    },
  );
  setHandler(pauseSignal, () => {
    state.paused = true;
    publish();
  });
  setHandler(resumeSignal, () => {
    state.paused = false;
    publish();
  });
  setHandler(abortSignal, (raw) => {
    aborting ??= abortSchema.safeParse(raw ?? {}).data?.reason ?? 'aborted by an operator';
    for (const scope of childScopes.values()) scope.cancel();
    for (const id of childScopes.keys()) cancelCurrentRun(id);
  });

  // ---- visibility ---------------------------------------------------------------------------
  const published: { phase?: string; gain?: number; used?: number } = {};
  function publish(): void {
    // Older runs published only validated wins' gains, so a best found in exploitation showed 0.
    const best = patched('best-gain-attribute')
      ? Number(c.bestGainPct().toFixed(4))
      : state.bestId === BASELINE_ID
        ? 0
        : (state.wins.find((w) => w.hypothesisId === state.bestId)?.gainPct ?? 0);
    const updates = [];
    if (published.phase !== c.phase) updates.push({ key: searchAttributes.phase, value: c.phase });
    if (published.gain !== best) updates.push({ key: searchAttributes.bestGainPct, value: best });
    if (published.used !== state.used.experiments)
      updates.push({ key: searchAttributes.budgetUsed, value: state.used.experiments });
    if (updates.length) upsertSearchAttributes(updates);
    Object.assign(published, { phase: c.phase, gain: best, used: state.used.experiments });
    setCurrentDetails(c.markdown(running.size));
  }

  // ---- experiments --------------------------------------------------------------------------
  function launch(item: WorkItem): void {
    const costGpuHours = c.reserve(item.fidelity);
    startedThisRun += 1;
    const experimentId = `${campaignId}.e${String(state.nextIndex++).padStart(4, '0')}`;
    const hypothesis = c.hypothesis(item.hypothesisId);
    const request: ExperimentRequest = {
      campaignId,
      experimentId,
      model: spec.name,
      phase: c.phase,
      role: item.role,
      attempt: item.attempt,
      costGpuHours,
      hypothesis,
      config: c.config(hypothesis.id),
      fidelity: item.fidelity,
      seed: item.seed,
      pollIntervalSec: input.pollIntervalSec,
    };
    const scope = new CancellationScope();
    childScopes.set(experimentId, scope);
    running.set(experimentId, item);
    const done: Promise<void> = scope
      .run(() =>
        executeChild<typeof experiment>(EXPERIMENT_WORKFLOW, {
          args: [{ request, spec } satisfies ExperimentInput],
          workflowId: experimentId,
          parentClosePolicy: 'REQUEST_CANCEL',
          staticSummary: `${spec.name} · ${c.phase} · ${hypothesis.id} @ ${spec.fidelity.knob}=${item.fidelity} seed ${item.seed}`,
          staticDetails: `**Hypothesis** (${hypothesis.source}): ${hypothesis.rationale}\n\n**Role:** ${item.role} · **attempt:** ${item.attempt} · **cost:** ${costGpuHours.toFixed(4)} GPU-h`,
        }),
      )
      .then(
        (result) => settle(item, result),
        (err: unknown) => {
          if (isCancellation(err)) {
            c.noteFailure({
              experimentId,
              hypothesisId: item.hypothesisId,
              failureClass: 'cancelled',
              action: 'none: cancelled',
            });
            return;
          }
          throw err;
        },
      )
      .finally(() => {
        running.delete(experimentId);
        childScopes.delete(experimentId);
        inflight.delete(done);
        publish();
      });
    inflight.add(done);
  }

  /** Records a finished experiment, and answers a failure by the runbook. */
  async function settle(item: WorkItem, result: ExperimentResult): Promise<void> {
    const { outcome, experimentId } = result;
    const value = outcome.status === 'succeeded' ? outcome.metrics[spec.metric.primary] : undefined;
    if (value !== undefined) {
      c.record(item, value);
      return;
    }
    const failureClass = outcome.status === 'failed' ? outcome.failureClass : 'crash';
    const hypothesis = c.hypothesis(item.hypothesisId);
    // A baseline is only ever re-run as it is: a "fixed" baseline would not be the baseline.
    const decision =
      item.role === 'baseline' && failureClass !== 'lost'
        ? ({ action: 'drop', why: `baseline run failed (${failureClass})` } as const)
        : decide(spec, hypothesis.delta, failureClass, item.attempt);
    if (decision.action === 'retry') {
      const fixed = c.register({
        ...hypothesis,
        delta: decision.delta,
        rationale: `${hypothesis.rationale} [runbook: ${decision.why}]`,
      });
      state.pending.unshift({ ...item, hypothesisId: fixed.id, attempt: item.attempt + 1 });
      state.counts.retried += 1;
    } else if (decision.action === 'drop') {
      c.drop(hypothesis.id, decision.why);
    }
    const action = `${decision.action}: ${decision.why}`;
    c.noteFailure({ experimentId, hypothesisId: hypothesis.id, failureClass, action });
    await recordRunbookAction(experimentId, action);
  }

  /** Runs the pending work with `parallelism` lanes; stops early for continue-as-new or abort. */
  async function drain(): Promise<'done' | 'continue-as-new' | 'aborted'> {
    const wantContinueAsNew = () =>
      startedThisRun >= input.experimentsPerRun || workflowInfo().continueAsNewSuggested;
    for (;;) {
      await condition(
        () =>
          aborting !== undefined ||
          (inflight.size === 0 && (state.pending.length === 0 || wantContinueAsNew())) ||
          (!state.paused &&
            !wantContinueAsNew() &&
            state.pending.length > 0 &&
            inflight.size < input.parallelism),
      );
      if (aborting !== undefined) return 'aborted';
      if (inflight.size === 0 && state.pending.length === 0) return 'done';
      if (inflight.size === 0 && wantContinueAsNew()) return 'continue-as-new';
      const item = state.pending.shift() as WorkItem;
      const why = c.unaffordable(item.fidelity);
      if (why) {
        state.counts.skipped += 1;
        c.drop(item.hypothesisId, `not run: ${why}`);
        continue;
      }
      launch(item);
      publish();
    }
  }

  /** Continues-as-new, unless an abort arrived meanwhile: then this run goes on to its report. */
  async function handOver(): Promise<void> {
    await condition(allHandlersFinished);
    if (aborting !== undefined) return;
    state.runs += 1;
    await continueAsNew<typeof campaignV1>(rawInput, { state, spec });
  }

  // Handlers change these between awaits; reading through a function keeps TypeScript from narrowing.
  const approvalStatus = (): ApprovalStatus => state.approval.status;
  const currentStep = (): Step => state.step;

  /** Preflight's second half: a slate, its written plan and cost, and the approval gate. */
  async function planStep(): Promise<void> {
    if (!state.plan || state.approval.status === 'rejected') {
      const round = state.approval.feedback.length;
      const slate = await proposeHypotheses({
        campaignId,
        spec,
        highFidelity: levels.high,
        llmBudget: input.llm,
        count: input.slateSize,
        seed: input.seed + round * 7919,
        exclude: Object.keys(state.hypotheses),
        excludeKnobs: state.excludedKnobs,
        feedback: state.approval.feedback,
      });
      c.setSlate(slate);
      if (input.approval.required) state.approval.status = 'waiting';
      await recordCampaignPhase(campaignId, c.phase, state.plan);
    }
    if (state.approval.status === 'waiting') {
      publish();
      const decided = await condition(
        () => state.approval.status !== 'waiting' || aborting !== undefined,
        input.approval.timeoutHours * 3600 * 1000,
      );
      if (aborting !== undefined || approvalStatus() === 'rejected') return;
      if (!decided) {
        if (input.approval.onTimeout === 'approve') {
          state.approval.status = 'approved';
        } else {
          state.approval.status = 'timed-out';
          aborting = `the plan was not approved within ${input.approval.timeoutHours} hours`;
          return;
        }
      }
    }
    c.conclude();
  }

  // ---- main loop ----------------------------------------------------------------------------
  try {
    if (!state.recordedStart) {
      await recordCampaignStarted({
        id: campaignId,
        firstRunId: firstExecutionRunId,
        model: spec.name,
        input,
      });
      state.recordedStart = true;
      upsertSearchAttributes([{ key: searchAttributes.model, value: spec.name }]);
    }
    publish();
    while (state.step !== 'report' && aborting === undefined) {
      const phaseBefore = c.phase;
      if (state.step === 'plan') {
        await planStep();
      } else {
        if (!state.prepared) {
          const refinements =
            state.step === 'refine'
              ? await proposeRefinements({
                  campaignId,
                  spec,
                  highFidelity: levels.high,
                  excludeKnobs: state.excludedKnobs,
                  bestDelta: state.hypotheses[state.bestId]?.delta ?? {},
                  count: input.refinements,
                  seed: input.seed,
                  exclude: Object.keys(state.hypotheses),
                })
              : [];
          // Which wins to merge is the engine's call (an LLM when configured); older runs used the rule.
          const merges =
            state.step === 'combine' && state.wins.length >= 2 && patched('engine-merges')
              ? await proposeMerges({
                  campaignId,
                  spec,
                  wins: state.wins.map((w) => ({
                    hypothesisId: w.hypothesisId,
                    delta: c.hypothesis(w.hypothesisId).delta,
                    gainPct: w.gainPct,
                  })),
                  maxMerges: 4,
                  llmBudget: input.llm,
                })
              : [];
          c.prepare(refinements, merges);
        }
        const drained = await drain();
        if (drained === 'continue-as-new') await handOver();
        if (drained === 'aborted' || aborting !== undefined) break;
        if (state.step === 'baseline' && !c.values(BASELINE_ID, levels.low).length) {
          throw ApplicationFailure.nonRetryable(
            `every baseline run failed (${state.failures.map((f) => f.action).join('; ')}); fix the model spec or the trainer first`,
            'BaselineFailed',
          );
        }
        c.conclude();
      }
      publish();
      if (c.phase !== phaseBefore) {
        await recordCampaignPhase(campaignId, c.phase, state.plan);
        if (currentStep() !== 'report') await handOver();
      }
    }
    if (aborting !== undefined) {
      for (const scope of childScopes.values()) scope.cancel();
      for (const id of childScopes.keys()) cancelCurrentRun(id);
      await Promise.allSettled([...inflight]);
    }
    const result = c.result(campaignId, aborting === undefined ? 'completed' : 'aborted', aborting);
    publish();
    await recordCampaignFinished(campaignId, { status: result.status, result });
    if (patched('campaign-report')) {
      const report = await writeCampaignReport(campaignId);
      if (report) result.report = report;
    }
    return result;
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    await CancellationScope.nonCancellable(async () => {
      await Promise.allSettled([...inflight]);
      if (isCancellation(err)) {
        const result = c.result(campaignId, 'aborted', 'the campaign workflow was cancelled');
        await recordCampaignFinished(campaignId, { status: 'aborted', result });
      } else {
        upsertSearchAttributes([{ key: searchAttributes.phase, value: 'failed' }]);
        await recordCampaignFinished(campaignId, { status: 'failed', error: (err as Error).message });
      }
    });
    throw err;
  }
}

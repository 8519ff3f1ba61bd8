/**
 * Carries out the state machine's effects inside the campaign workflow: a launch is a child
 * workflow (the experiment), evidence and LLM calls are activities, records are activities; every
 * outcome comes back to the machine as an event. Tracks what is in flight, for the drain before
 * continue-as-new and for cancellation.
 */
import * as wf from '@temporalio/workflow';
import { activityFailureNote, describeFailure, reaActivities } from './activity-options';
import { cancelCurrentRun, type experiment, type ExperimentInput } from './experiment';
import type { CampaignSettings } from '../src/core/campaign-input';
import type { CampaignEvent, CampaignMachine, Effect, Launch } from '../src/core/campaign/machine';
import * as msg from '../src/core/messages';
import type { ModelSpec } from '../src/core/model-spec';
import type { CampaignResult, ExperimentOutcome } from '../src/core/types';

const act = reaActivities;

export class CampaignEffects {
  private readonly scopes = new Map<string, wf.CancellationScope>();
  readonly pending = new Set<Promise<unknown>>();
  startedThisRun = 0;
  result?: CampaignResult;
  /** Set when a replay launches another config than the history recorded (see `divergence`). */
  diverged?: string;

  constructor(
    private readonly c: CampaignMachine,
    private readonly ctx: { campaignId: string; spec: ModelSpec; input: CampaignSettings },
    private readonly events: CampaignEvent[],
  ) {}

  private track(p: Promise<unknown>): void {
    const tracked = p.finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  cancelAll(): void {
    this.scopes.forEach((scope) => scope.cancel());
    for (const id of this.scopes.keys()) cancelCurrentRun(`${this.ctx.campaignId}.e${id}`);
  }

  /**
   * An activity (or child) that failed for good: the log and the campaign's status say which and
   * why. Returns the one-line reason.
   */
  private failed(err: unknown, what: string): string {
    const message = describeFailure(err);
    const note = activityFailureNote(err, Date.now());
    if (note) this.c.noteActivityFailure(note);
    wf.log.warn(`${what} failed`, { campaignId: this.ctx.campaignId, error: message });
    return message;
  }

  /** An activity whose answer (or failure) becomes an event. */
  private call<T>(
    p: Promise<T>,
    ok: (v: T) => CampaignEvent,
    failed: (message: string) => CampaignEvent,
    what: string,
  ): void {
    this.track(
      p.then(
        (v) => this.events.push(ok(v)),
        (err: unknown) => this.events.push(failed(this.failed(err, what))),
      ),
    );
  }

  /**
   * A record whose failure the campaign outlives: the row is missing from PostgreSQL, which the
   * status and the log say; the campaign's own state (and its result, recorded at the end) has it.
   */
  private record(p: Promise<unknown>, what: string): void {
    this.track(p.catch((err: unknown) => this.failed(err, what)));
  }

  carryOut(effect: Effect): void {
    const { campaignId, spec, input } = this.ctx;
    const state = this.c.state;
    switch (effect.type) {
      case 'launch':
        return this.launch(effect.launch);
      case 'gatherEvidence': {
        const { excludeKnobs, feedback, count } = effect;
        const highFidelity = state.rungs.at(-1) as number;
        const req = { campaignId, spec, highFidelity, excludeKnobs, feedback, count, llmBudget: input.llm };
        return this.call(
          act.gatherEvidence(req),
          (r) => ({ type: 'evidence', ...r }),
          (message) => ({ type: 'evidenceFailed', message }),
          'gathering evidence',
        );
      }
      case 'askLlm':
        return this.call(
          act.askLlm({ campaignId, spec, request: effect.request, llmBudget: input.llm }),
          (hypotheses) => ({ type: 'llmSuggestions', hypotheses }),
          (message) => ({ type: 'llmFailed', message }),
          'the LLM call',
        );
      case 'recordPhase':
        return this.record(
          act.recordCampaignPhase(campaignId, effect.phase, effect.plan ?? null),
          `recording phase ${effect.phase}`,
        );
      case 'recordRunbook':
        return this.record(
          act.recordRunbookAction(`${campaignId}.e${effect.experimentId}`, effect.action),
          `recording the runbook action for experiment ${effect.experimentId}`,
        );
      case 'cancelAll':
        return this.cancelAll();
      case 'awaitApproval':
        state.approval.since = Date.now();
        return;
      case 'finish':
        this.result = this.c.result(campaignId, effect.status, state.aborting);
        return;
      case 'fail':
        throw wf.ApplicationFailure.nonRetryable(effect.message, effect.failureType);
    }
  }

  /** One training run as a child workflow; its outcome (or cancellation) comes back as `finished`. */
  private launch(l: Launch): void {
    const { campaignId, spec, input } = this.ctx;
    const experimentId = `${campaignId}.e${l.experimentId}`;
    const { phase, attempt, cost, purpose } = l.item;
    const scope = new wf.CancellationScope();
    this.scopes.set(l.experimentId, scope);
    this.startedThisRun += 1;
    const args: ExperimentInput = {
      spec,
      request: {
        campaignId,
        experimentId,
        model: spec.name,
        phase,
        role: l.role,
        attempt,
        costGpuHours: cost.gpuHours,
        hypothesis: l.hypothesis,
        config: l.config,
        fidelity: l.fidelity,
        seed: l.seed,
        pollIntervalSec: input.pollIntervalSec,
      },
    };
    const settled = (outcome: ExperimentOutcome): number =>
      this.events.push(
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
      );
    const run = scope.run(() =>
      wf.executeChild<typeof experiment>(msg.EXPERIMENT_WORKFLOW, {
        args: [args],
        workflowId: experimentId,
        parentClosePolicy: 'REQUEST_CANCEL',
        staticSummary: `${spec.name} · ${phase} · ${l.hypothesis.id} @ ${spec.fidelity.knob}=${l.fidelity} seed ${l.seed}`,
        staticDetails: `**Hypothesis** (${l.hypothesis.source}): ${l.hypothesis.rationale}\n\n**Purpose:** ${purpose} · **attempt:** ${attempt}`,
      }),
    );
    this.track(
      run
        .then(
          (r) => {
            // Experiment ids are indices, so Temporal's own replay check cannot see a worker whose
            // campaign rules changed without a patch marker launch another config under a recorded id.
            // The campaign fails its workflow task (retried until the right code runs) rather than mix
            // two configs' results: campaign.ts throws `diverged`.
            if (r.hypothesis.id !== l.hypothesis.id) {
              this.diverged ??= divergence(experimentId, r.hypothesis.id, l.hypothesis.id);
              return;
            }
            settled(r.outcome);
          },
          (err: unknown) =>
            settled(
              wf.isCancellation(err)
                ? {
                    status: 'failed',
                    failureClass: 'cancelled',
                    message: (err as Error).message,
                    wallTimeSec: 0,
                  }
                : {
                    status: 'failed',
                    failureClass: 'crash',
                    message: this.failed(err, `experiment ${experimentId}`),
                    wallTimeSec: 0,
                  },
            ),
        )
        .finally(() => this.scopes.delete(l.experimentId)),
    );
  }
}

/** Why a replayed campaign stopped: its rules now choose another config for a recorded experiment. */
export function divergence(experimentId: string, recorded: string, now: string): string {
  return (
    `replay diverged: experiment ${experimentId} ran hypothesis ${recorded}, but this worker's campaign rules ` +
    `launch ${now} there. A worker runs campaign code whose decisions changed without a patch marker ` +
    '(workflow versioning): deploy the code this campaign started with, or mark the change with patched(); ' +
    'the workflow task is retried until then'
  );
}

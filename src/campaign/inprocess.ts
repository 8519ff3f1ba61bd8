/**
 * Runs a campaign's rules (src/core/campaign/machine.ts) in this process, without Temporal or
 * PostgreSQL: the same machine the workflow carries out, fed by any trainer function and evidence
 * source. Unit tests drive it with synthetic objectives; the bench's fast mode with real trainers.
 *
 *   const result = await runCampaignInProcess({ spec, input, train: async (l) => ({ value: 0.8 }) });
 */
import { parseCampaignInput, fidelityLevels, type CampaignInput } from '../core/campaign-input';
import {
  CampaignMachine,
  fidelityLadder,
  type Effect,
  type Launch,
  type LlmRequest,
} from '../core/campaign/machine';
import { initialState, type CampaignState, type Evidence } from '../core/campaign/state';
import type { ModelSpec } from '../core/model-spec';
import type { CampaignResult, FailureClass } from '../core/types';

export interface TrainOutcome {
  value?: number;
  failure?: { failureClass: FailureClass; message: string };
}

export interface InProcessOptions {
  spec: ModelSpec;
  input: CampaignInput;
  /** Trains one run; the machine's launch says what (config, fidelity, seed). */
  train: (launch: Launch) => Promise<TrainOutcome>;
  /** Evidence for the plan (history, research, LLM picks); none by default. */
  evidence?: (req: {
    round: number;
    excludeKnobs: string[];
    feedback: string[];
    count: number;
  }) => Promise<Evidence>;
  /** The LLM mid-campaign; absent: no LLM. */
  llm?: (req: LlmRequest) => Promise<Evidence['hypotheses']>;
  campaignId?: string;
  /** Called after every event with the machine (for tests that watch the state). */
  onEvent?: (machine: CampaignMachine, effects: Effect[]) => void;
}

export interface InProcessRun {
  result: CampaignResult;
  state: CampaignState;
  launches: Launch[];
}

/** Runs the campaign to its end and returns its result, its final state and every launch in order. */
export async function runCampaignInProcess(opts: InProcessOptions): Promise<InProcessRun> {
  const input = parseCampaignInput(opts.input);
  const rungs = fidelityLadder(fidelityLevels(input, opts.spec), input.eta, input.budget);
  const machine = new CampaignMachine(initialState(input, rungs), opts.spec, input);
  const launches: Launch[] = [];
  const events: Parameters<CampaignMachine['handle']>[0][] = [{ type: 'start' }];
  let wake: (() => void) | undefined;
  const push = (e: Parameters<CampaignMachine['handle']>[0]) => {
    events.push(e);
    wake?.();
  };
  let status: 'completed' | 'aborted' | undefined;
  let failed: string | undefined;
  const llmAvailable = opts.llm !== undefined;
  while (status === undefined && failed === undefined) {
    if (!events.length) await new Promise<void>((r) => (wake = r));
    wake = undefined;
    const event = events.shift();
    if (!event) continue;
    const effects = machine.handle(event);
    opts.onEvent?.(machine, effects);
    for (const effect of effects) {
      switch (effect.type) {
        case 'launch': {
          const l = effect.launch;
          launches.push(l);
          opts.train(l).then(
            (o) => push({ type: 'finished', experimentId: l.experimentId, ...o }),
            (err: unknown) =>
              push({
                type: 'finished',
                experimentId: l.experimentId,
                failure: { failureClass: 'crash', message: (err as Error).message },
              }),
          );
          break;
        }
        case 'gatherEvidence':
          (opts.evidence
            ? opts.evidence(effect)
            : Promise.resolve<Evidence>({ prior: [], hypotheses: [], notes: [] })
          ).then(
            (evidence) => push({ type: 'evidence', evidence, llmAvailable }),
            (err: unknown) => push({ type: 'evidenceFailed', message: (err as Error).message }),
          );
          break;
        case 'askLlm':
          if (!opts.llm) push({ type: 'llmFailed', message: 'no LLM' });
          else
            opts.llm(effect.request).then(
              (hypotheses) => push({ type: 'llmSuggestions', hypotheses }),
              (err: unknown) => push({ type: 'llmFailed', message: (err as Error).message }),
            );
          break;
        case 'awaitApproval':
          // No one to ask in process: the plan is approved as written.
          push({ type: 'approve' });
          break;
        case 'finish':
          status = effect.status;
          break;
        case 'fail':
          failed = effect.message;
          break;
        case 'cancelAll':
        case 'recordPhase':
        case 'recordRunbook':
          break;
      }
    }
  }
  if (failed !== undefined) throw new Error(failed);
  return {
    result: machine.result(opts.campaignId ?? 'inprocess', status ?? 'completed'),
    state: machine.state,
    launches,
  };
}

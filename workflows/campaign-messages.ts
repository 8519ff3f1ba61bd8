/**
 * The campaign's messages as the Temporal CLI and `rea` send them — the status query, the updates
 * (approvePlan, rejectPlan, setBudget, addHypothesis) and the signals (pause, resume, abort) — wired
 * to the state machine: each message becomes an event, and an update the machine would refuse is
 * refused up front with the field named, changing nothing.
 */
import * as wf from '@temporalio/workflow';
import type { Budget } from '../src/core/campaign-input';
import type { CampaignEvent, CampaignMachine, CampaignStatus } from '../src/core/campaign/machine';
import { InvalidInputError, parseOrThrow } from '../src/core/errors';
import * as msg from '../src/core/messages';

const m = msg.campaignMessages;
export type { CampaignStatus };
export const statusQuery = wf.defineQuery<CampaignStatus>(msg.statusQueryName);
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

/** A message's payload as an event, or the update refused with the field named. */
function eventOf(parse: () => CampaignEvent, machine: CampaignMachine): CampaignEvent {
  let event: CampaignEvent;
  try {
    event = parse();
  } catch (err) {
    if (err instanceof InvalidInputError)
      throw wf.ApplicationFailure.nonRetryable(err.message, 'InvalidMessage');
    throw err;
  }
  const why = machine.refusal(event);
  if (why) throw wf.ApplicationFailure.nonRetryable(why, 'InvalidMessage');
  return event;
}

/** Sets every handler: messages go to `events`, in the order they arrive. */
export function handleMessages(machine: CampaignMachine, campaignId: string, events: CampaignEvent[]): void {
  const round = () => machine.state.plan?.round ?? 1;
  const reject = (raw: unknown) => (): CampaignEvent => ({
    type: 'reject',
    ...parseOrThrow(msg.rejectPlanSchema, raw, 'rejectPlan'),
  });
  const budget = (raw: unknown) => (): CampaignEvent => ({
    type: 'setBudget',
    budget: parseOrThrow(msg.setBudgetSchema, raw, 'setBudget'),
  });
  const hypothesis = (raw: unknown) => (): CampaignEvent => ({
    type: 'addHypothesis',
    ...parseOrThrow(msg.addHypothesisSchema, raw, 'addHypothesis'),
  });
  wf.setHandler(statusQuery, () => machine.status(campaignId));
  wf.setHandler(
    approvePlanUpdate,
    (_note?: unknown) => {
      events.push({ type: 'approve' });
      return { approved: true as const, round: round() };
    },
    { validator: (_note?: unknown) => void eventOf(() => ({ type: 'approve' }), machine) },
  );
  wf.setHandler(
    rejectPlanUpdate,
    (raw) => {
      events.push(reject(raw)());
      return { rejected: true as const, round: round() };
    },
    { validator: (raw) => void eventOf(reject(raw), machine) },
  );
  wf.setHandler(
    setBudgetUpdate,
    (raw) => {
      const event = budget(raw)();
      events.push(event);
      return event.type === 'setBudget' ? event.budget : raw;
    },
    { validator: (raw) => void eventOf(budget(raw), machine) },
  );
  wf.setHandler(
    addHypothesisUpdate,
    (raw) => {
      const event = hypothesis(raw)();
      events.push(event);
      return { hypothesisId: event.type === 'addHypothesis' ? machine.idOf(event.delta) : '' };
    },
    { validator: (raw) => void eventOf(hypothesis(raw), machine) },
  );
  wf.setHandler(pauseSignal, () => void events.push({ type: 'pause' }));
  wf.setHandler(resumeSignal, () => void events.push({ type: 'resume' }));
  wf.setHandler(abortSignal, (raw) => {
    const reason = msg.abortSchema.safeParse(raw ?? {}).data?.reason ?? 'aborted by an operator';
    events.push({ type: 'abort', reason });
  });
}

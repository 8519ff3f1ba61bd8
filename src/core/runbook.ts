/**
 * The failure runbook: what a campaign does about a failed training job. Routine failures are fixed
 * and retried without a human; every retry is a new experiment that the budget pays for.
 * Sandbox-safe.
 *
 *   decide(spec, { batch_size: 256 }, 'oom', 1) // → { action: 'retry', delta: { batch_size: 128 }, ... }
 */
import { baselineConfig, knobsWithRole, type Config, type Knob, type ModelSpec } from './model-spec';
import type { FailureClass } from './types';

export const MAX_ATTEMPTS = 3;
/** Runs a `lost` run gets (v2): the first and one more; a second loss drops it. */
export const LOST_ATTEMPTS = 2;

export type RunbookDecision =
  | { action: 'retry'; delta: Config; why: string }
  | { action: 'drop'; why: string }
  | { action: 'none'; why: string };

function scaled(knob: Knob | undefined, value: unknown, factor: number): number | undefined {
  if (
    !knob ||
    (knob.type !== 'int' && knob.type !== 'float' && knob.type !== 'logfloat') ||
    typeof value !== 'number'
  ) {
    return undefined;
  }
  let next = value * factor;
  if (knob.type === 'int') next = Math.floor(next);
  if (knob.type !== 'int') next = Number(next.toPrecision(3));
  return next >= knob.min && next !== value ? next : undefined;
}

/**
 * `delta` is the failed experiment's delta over the baseline; `attempt` counts from 1.
 * Knob names follow the example trainers' conventions (batch_size, lr).
 */
export function decide(
  spec: ModelSpec,
  delta: Config,
  failure: FailureClass,
  attempt: number,
): RunbookDecision {
  const config: Config = {
    ...baselineConfig(spec),
    ...delta,
  };
  if (failure === 'cancelled') return { action: 'none', why: 'cancelled on purpose' };
  if (attempt >= MAX_ATTEMPTS) return { action: 'drop', why: `failed ${attempt} times (last: ${failure})` };
  switch (failure) {
    case 'oom': {
      const smaller = scaled(spec.knobs.batch_size, config.batch_size, 0.5);
      return smaller === undefined
        ? { action: 'drop', why: 'out of memory and no smaller batch size is allowed' }
        : {
            action: 'retry',
            delta: { ...delta, batch_size: smaller },
            why: `out of memory: batch_size ${String(config.batch_size)} → ${smaller}`,
          };
    }
    case 'nan': {
      const lower = scaled(spec.knobs.lr, config.lr, 1 / 3);
      return lower === undefined
        ? { action: 'drop', why: 'loss exploded and no lower learning rate is allowed' }
        : {
            action: 'retry',
            delta: { ...delta, lr: lower },
            why: `loss exploded: lr ${String(config.lr)} → ${lower}`,
          };
    }
    case 'lost':
      return { action: 'retry', delta, why: 'the job or its node was lost: run it again' };
    case 'timeout':
      return { action: 'drop', why: 'ran past its time limit' };
    case 'bad_config':
      return { action: 'drop', why: 'the trainer refused the config: tell the planner' };
    case 'crash':
      return { action: 'drop', why: 'the trainer crashed: a bug, not a result' };
  }
}

/**
 * The runbook by knob roles (model specs declare them; no knob name is assumed): out of memory →
 * half the `batch_size` knob, else half a `capacity` knob; loss explosion → a third of the
 * `learning_rate` knob; a lost job → the same run again; the rest → dropped, with the reason. A spec
 * without the role gets a reason that says which role to declare. `config` is the full config that
 * failed; the returned delta is the full fixed config.
 */
export function decideByRole(
  spec: ModelSpec,
  config: Config,
  failure: FailureClass,
  attempt: number,
): RunbookDecision {
  const full: Config = { ...baselineConfig(spec), ...config };
  if (failure === 'cancelled') return { action: 'none', why: 'cancelled on purpose' };
  if (attempt >= MAX_ATTEMPTS) return { action: 'drop', why: `failed ${attempt} times (last: ${failure})` };
  const shrink = (roles: ('batch_size' | 'capacity' | 'learning_rate')[], factor: number, what: string) => {
    for (const role of roles) {
      for (const knob of knobsWithRole(spec, role)) {
        const next = scaled(spec.knobs[knob], full[knob], factor);
        if (next !== undefined)
          return {
            action: 'retry' as const,
            delta: { ...full, [knob]: next },
            why: `${what}: ${knob} (role ${role}) ${String(full[knob])} → ${next}`,
          };
      }
    }
    const declared = roles.flatMap((r) => knobsWithRole(spec, r));
    return {
      action: 'drop' as const,
      why: declared.length
        ? `${what}, and ${declared.join(', ')} cannot go lower`
        : `${what}, and no knob declares role ${roles.map((r) => `"${r}"`).join(' or ')}: declare it in the model spec so the runbook can fix this`,
    };
  };
  switch (failure) {
    case 'oom':
      return shrink(['batch_size', 'capacity'], 0.5, 'out of memory');
    case 'nan':
      return shrink(['learning_rate'], 1 / 3, 'loss exploded');
    case 'lost':
      // A kill rea did not send, or a node the cluster lost: once is bad luck, twice is the config.
      return attempt >= LOST_ATTEMPTS
        ? { action: 'drop', why: `lost ${attempt} times: not retried again` }
        : { action: 'retry', delta: full, why: 'the job or its node was lost: run it again' };
    case 'timeout':
      return { action: 'drop', why: 'ran past its time limit' };
    case 'bad_config':
      return { action: 'drop', why: 'the trainer refused the config: tell the planner' };
    case 'crash':
      return { action: 'drop', why: 'the trainer crashed: a bug, not a result' };
  }
}

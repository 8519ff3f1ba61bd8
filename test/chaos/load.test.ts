/**
 * The full chaos suite, load: many campaigns at once, each with many parallel experiments, against
 * the fast trainer, with a gpu-agent killed in the middle. Run by `npm run test:chaos`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { faultScenario, fastCampaign } from '../helpers/chaos-scenarios';
import { ChaosStack } from '../helpers/chaos-stack';

const SEED = Number(process.env.REA_CHAOS_SEED ?? 2025);

describe('chaos: load', () => {
  let stack: ChaosStack;
  before(async () => {
    stack = await ChaosStack.start({ name: 'load', agents: 3, slots: 6, fastSeconds: 0.3 });
  });
  after(async () => {
    await stack?.stop();
  });

  it('6 campaigns at once, 6 experiments in parallel each, keep every result and their budgets', async () => {
    const f = await faultScenario(stack, {
      scenario: 'load: 6 campaigns x 6 parallel',
      seed: SEED + 30,
      campaigns: 6,
      input: fastCampaign({ budget: { experiments: 24 }, parallelism: 6, slateSize: 8 }),
      faults: ['agent-kill'],
      pauseMs: [5000, 15_000],
      timeoutMs: 40 * 60_000,
    });
    assert.deepEqual(
      { lost: f.lost, duplicated: f.duplicated, overruns: f.overruns, problems: f.problems },
      { lost: 0, duplicated: 0, overruns: 0, problems: [] },
      f.notes.join('; '),
    );
    assert.equal(f.completed, 6);
  });
});

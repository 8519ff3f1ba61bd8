/**
 * The full chaos suite, bad input: hundreds of fuzzed campaign inputs and model specs (seeded,
 * test/helpers/fuzz.ts) through `rea campaign start` and `temporal workflow start --type campaign`.
 * Run by `npm run test:chaos`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { badInputScenario } from '../helpers/chaos-scenarios';
import { ChaosStack } from '../helpers/chaos-stack';

const SEED = Number(process.env.REA_CHAOS_SEED ?? 2025);

describe('chaos: bad input', () => {
  let stack: ChaosStack;
  before(async () => {
    stack = await ChaosStack.start({ name: 'input', agents: 1, slots: 1 });
  });
  after(async () => {
    await stack?.stop();
  });

  it('refuses every fuzzed input through rea and the Temporal CLI, naming the field, starting nothing', async () => {
    const f = await badInputScenario(stack, {
      scenario: 'bad input (fuzzed)',
      seed: SEED + 20,
      reaInputs: 80,
      temporalInputs: 30,
      reaSpecs: 20,
      temporalSpecs: 10,
    });
    assert.deepEqual(f.problems, [], f.notes.join('; '));
  });
});

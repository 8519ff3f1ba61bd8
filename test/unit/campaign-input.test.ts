import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_CAMPAIGN_INPUT_BYTES, parseCampaignInput } from '../../src/core/campaign-input';
import { InvalidInputError } from '../../src/core/errors';

function refusal(value: unknown): InvalidInputError {
  try {
    parseCampaignInput(value);
  } catch (err) {
    assert.ok(err instanceof InvalidInputError, `expected InvalidInputError, got ${String(err)}`);
    return err;
  }
  assert.fail('input was accepted');
}

describe('campaign input', () => {
  it('accepts a minimal input and fills the defaults', () => {
    const input = parseCampaignInput({ model: 'synthetic-ctr', budget: { experiments: 4 } });
    assert.deepEqual(input, {
      model: 'synthetic-ctr',
      budget: { experiments: 4 },
      split: { validation: 0.5, combination: 0.2, exploitation: 0.3 },
      parallelism: 2,
      seed: 0,
      replicates: 3,
      minGainPct: 0.1,
      planner: 'tpe',
      slateSize: 8,
      eta: 3,
      refinements: 4,
      fidelity: {},
      approval: { required: false, timeoutHours: 72, onTimeout: 'abort' },
      pollIntervalSec: 60,
      experimentsPerRun: 500,
      llm: { maxCalls: 20, maxTokens: 200_000 },
    });
  });

  it('names a missing field', () => {
    const err = refusal({ budget: { experiments: 4 } });
    assert.deepEqual(err.fields, ['model']);
    assert.match(err.message, /^campaign input is invalid: model: expected the name of a model spec/);
  });

  it('names a nested field and what is allowed', () => {
    const err = refusal({ model: 'synthetic-ctr', budget: { experiments: 1 } });
    assert.deepEqual(err.fields, ['budget.experiments']);
    assert.match(err.message, /budget\.experiments: expected at least 2/);
  });

  it('names a wrongly typed field', () => {
    const err = refusal({ model: 'synthetic-ctr', budget: { experiments: 'six' } });
    assert.match(err.message, /budget\.experiments: expected an integer count/);
  });

  it('refuses unknown fields by name, so that typos never pass silently', () => {
    const err = refusal({ model: 'synthetic-ctr', budget: { experiments: 3 }, paralelism: 4 });
    assert.deepEqual(err.fields, ['paralelism']);
    assert.match(err.message, /paralelism: unknown field/);
  });

  it('refuses a model name that could escape the models folder', () => {
    const err = refusal({ model: '../etc/passwd', budget: { experiments: 3 } });
    assert.deepEqual(err.fields, ['model']);
  });

  it('names a budget without any limit, and a split that does not add up', () => {
    assert.match(
      refusal({ model: 'm', budget: {} }).message,
      /budget: expected experiments, gpuHours or both/,
    );
    const err = refusal({
      model: 'm',
      budget: { gpuHours: 1 },
      split: { validation: 0.5, combination: 0.5, exploitation: 0.5 },
    });
    assert.match(err.message, /split: expected the three shares to add up to 1/);
  });

  it('refuses input that is not an object', () => {
    assert.match(refusal('go').message, /campaign input is invalid: \(root\)/);
    assert.match(refusal(null).message, /campaign input is invalid/);
  });

  it('refuses oversized input before parsing it', () => {
    const err = refusal({
      model: 'synthetic-ctr',
      budget: { experiments: 3 },
      pad: 'x'.repeat(MAX_CAMPAIGN_INPUT_BYTES),
    });
    assert.match(err.message, /at most 65536 are accepted/);
  });

  it('counts the size in UTF-8 bytes, as the CLI does', () => {
    const err = refusal({ model: 'synthetic-ctr', budget: { experiments: 3 }, pad: 'é'.repeat(40_000) });
    assert.match(err.message, /input is 8\d{4} bytes; at most 65536 are accepted/);
  });

  it('refuses deeply nested input naming the field, without overflowing the stack', () => {
    let nested = '1';
    for (let i = 0; i < 20_000; i++) nested = `{"a":${nested}}`;
    const raw: unknown = JSON.parse(`{"model": "synthetic-ctr", "budget": {"experiments": ${nested}}}`);
    const err = refusal(raw);
    assert.match(err.message, /budget\.experiments: nested more than 16 levels deep/);
    assert.deepEqual(err.fields, ['budget.experiments']);
  });

  it('refuses a __proto__ key, naming it, and leaves Object.prototype alone', () => {
    const raw: unknown = JSON.parse(
      '{"model": "synthetic-ctr", "budget": {"experiments": 3, "__proto__": {"polluted": 1}}}',
    );
    const err = refusal(raw);
    assert.deepEqual(err.fields, ['budget.__proto__']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

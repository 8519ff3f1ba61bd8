import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config';
import { InvalidInputError } from '../../src/core/errors';
import { baselineConfig, configProblems, parseModelSpec } from '../../src/core/model-spec';

const specJson = JSON.parse(
  readFileSync(path.join(loadConfig().root, 'models', 'synthetic-ctr.json'), 'utf8'),
) as Record<string, unknown>;

function refusalOf(value: unknown): InvalidInputError {
  try {
    parseModelSpec(value);
  } catch (err) {
    assert.ok(err instanceof InvalidInputError);
    return err;
  }
  assert.fail('spec was accepted');
}

describe('model spec', () => {
  it('parses the shipped synthetic-ctr spec', () => {
    const spec = parseModelSpec(specJson);
    assert.equal(spec.metric.primary, 'ne');
    assert.equal(baselineConfig(spec).lr, 0.01);
  });

  it('names a baseline outside its knob range', () => {
    const knobs = {
      ...(specJson.knobs as object),
      lr: { type: 'logfloat', min: 0.001, max: 0.1, baseline: 0.5 },
    };
    const err = refusalOf({ ...specJson, knobs });
    assert.deepEqual(err.fields, ['knobs.lr.baseline']);
    assert.match(err.message, /knobs\.lr\.baseline: expected 0\.001\.\.0\.1, got 0\.5/);
  });

  it('names a categorical baseline that is not a choice', () => {
    const knobs = {
      ...(specJson.knobs as object),
      optimizer: { type: 'categorical', choices: ['adam', 'sgd'], baseline: 'rmsprop' },
    };
    assert.match(
      refusalOf({ ...specJson, knobs }).message,
      /knobs\.optimizer\.baseline: expected one of "adam", "sgd"/,
    );
  });

  it('refuses a fidelity knob that is also a search knob', () => {
    const err = refusalOf({ ...specJson, fidelity: { knob: 'lr', low: 1, high: 2 } });
    assert.deepEqual(err.fields, ['fidelity.knob']);
  });

  it('checks proposed deltas: unknown knobs and bad values are reported by name', () => {
    const spec = parseModelSpec(specJson);
    assert.deepEqual(configProblems(spec, { lr: 0.05, interaction: 'fm' }), []);
    const problems = configProblems(spec, { lr: 5, warp_drive: 1, mlp_depth: 1.5 });
    assert.equal(problems.length, 3);
    assert.match(problems.join('\n'), /lr: expected 0\.0001\.\.0\.3, got 5/);
    assert.match(problems.join('\n'), /warp_drive: unknown knob/);
    assert.match(problems.join('\n'), /mlp_depth: expected an integer, got 1\.5/);
  });

  it('refuses a __proto__ key anywhere, naming it (JSON.parse makes it an own key that zod would drop)', () => {
    const text = JSON.stringify(specJson).replace(
      '"knobs":{',
      '"knobs":{"__proto__":{"type":"bool","baseline":true},',
    );
    const err = refusalOf(JSON.parse(text));
    assert.deepEqual(err.fields, ['knobs.__proto__']);
  });

  it('refuses deeply nested fixed values naming the field, without overflowing the stack', () => {
    let nested = '1';
    for (let i = 0; i < 20_000; i++) nested = `[${nested}]`;
    const raw: unknown = JSON.parse(
      JSON.stringify(specJson).replace('"fixed":{', `"fixed":{"deep":${nested},`),
    );
    const err = refusalOf(raw);
    assert.deepEqual(err.fields, ['fixed.deep']);
    assert.match(err.message, /nested more than 64 levels deep/);
  });

  it('does not take names that Object.prototype carries for knobs', () => {
    const spec = parseModelSpec(specJson);
    assert.match(configProblems(spec, { constructor: 1 }).join('\n'), /constructor: unknown knob/);
    const [name] = Object.keys(spec.knobs);
    const raw = structuredClone(specJson) as { knobs: Record<string, Record<string, unknown>> };
    (raw.knobs[name as string] as Record<string, unknown>).activeWhen = { constructor: [1] };
    assert.deepEqual(refusalOf(raw).fields, [`knobs.${name}.activeWhen.constructor`]);
  });
});

/** The gate between proposals and trainers: repairs what it can, drops the rest, never lets an invalid value through. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configProblems, parseModelSpec } from '../../src/core/model-spec';
import type { Hypothesis } from '../../src/core/types';
import { pickDiverse, repairChanges } from '../../src/engine/validate';

const spec = parseModelSpec({
  name: 'gate',
  trainer: { argv: ['true'] },
  knobs: {
    lr: { type: 'logfloat', min: 1e-4, max: 0.3, baseline: 0.01 },
    mlp_depth: { type: 'int', min: 0, max: 4, baseline: 2 },
    optimizer: { type: 'categorical', choices: ['adam', 'adagrad', 'sgd'], baseline: 'adam' },
    buckets: { type: 'categorical', choices: [1000, 10000], baseline: 1000 },
    shuffle: { type: 'bool', baseline: false },
  },
  metric: { primary: 'ne', direction: 'minimize' },
  fidelity: { knob: 'steps', low: 10, high: 100 },
});

describe('repairChanges', () => {
  it('clamps, rounds and reads numbers and booleans written as text', () => {
    const r = repairChanges(spec, [
      { knob: 'lr', value: 5 },
      { knob: 'mlp_depth', value: '3.4' },
      { knob: 'shuffle', value: 'true' },
      { knob: 'buckets', value: '10000' },
    ]);
    assert.deepEqual(r.delta, { lr: 0.3, mlp_depth: 3, shuffle: true, buckets: 10000 });
    assert.equal(r.notes.length, 4);
    assert.deepEqual(configProblems(spec, r.delta), []);
  });

  it('fixes the case of knob names and choices', () => {
    assert.deepEqual(
      repairChanges(spec, [
        { knob: 'MLP-Depth', value: 1 },
        { knob: 'Optimizer', value: 'SGD' },
      ]).delta,
      {
        mlp_depth: 1,
        optimizer: 'sgd',
      },
    );
  });

  it('drops unknown knobs, unknown choices, non-numbers and excluded knobs, saying why', () => {
    const r = repairChanges(
      spec,
      [
        { knob: '$(rm -rf /)', value: 1 },
        { knob: 'optimizer', value: 'lion' },
        { knob: 'lr', value: 'fast' },
        { knob: 'mlp_depth', value: Number.NaN },
        { knob: 'shuffle', value: true },
      ],
      ['shuffle'],
    );
    assert.deepEqual(r.delta, {});
    assert.equal(r.notes.length, 5);
    assert.match(r.notes.join('\n'), /not a knob of gate/);
    assert.match(r.notes.join('\n'), /expected one of "adam", "adagrad", "sgd"/);
    assert.match(r.notes.join('\n'), /excluded/);
  });

  it('drops values equal to the baseline, so a no-op is not a hypothesis', () => {
    assert.deepEqual(repairChanges(spec, [{ knob: 'optimizer', value: 'adam' }]).delta, {});
  });

  it('drops names that Object.prototype carries (constructor, toString, __proto__) as unknown knobs, without throwing', () => {
    const names = ['constructor', 'toString', '__proto__', 'hasOwnProperty'];
    const r = repairChanges(
      spec,
      names.map((knob) => ({ knob, value: 1 })),
    );
    assert.deepEqual(r.delta, {});
    assert.deepEqual(
      r.notes,
      names.map((n) => `${n}: dropped (not a knob of gate)`),
    );
    assert.equal(configProblems(spec, { constructor: 1, toString: 'x' }).length, 2);
  });
});

describe('pickDiverse', () => {
  const h = (delta: Hypothesis['delta']): Hypothesis => ({
    id: '',
    source: 'planner',
    rationale: 'r',
    delta,
  });
  it('prefers new knob sets, skips excluded and repeated ids', () => {
    const picked = pickDiverse(
      [h({ lr: 0.1 }), h({ lr: 0.2 }), h({ lr: 0.1 }), h({ mlp_depth: 3 }), h({ optimizer: 'sgd' })],
      3,
      new Set(['optimizer=sgd']),
    );
    assert.deepEqual(
      picked.map((p) => p.id),
      ['lr=0.1', 'mlp_depth=3', 'lr=0.2'],
    );
  });
});

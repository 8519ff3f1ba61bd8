import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config';
import { configProblems, parseModelSpec } from '../../src/core/model-spec';
import { proposeSingleKnobSlate } from '../../src/core/planner';

const spec = parseModelSpec(
  JSON.parse(readFileSync(path.join(loadConfig().root, 'models', 'synthetic-ctr.json'), 'utf8')),
);

describe('offline planner', () => {
  it('proposes only valid, distinct, single-knob changes', () => {
    const slate = proposeSingleKnobSlate(spec, 25, 1);
    assert.equal(slate.length, 25);
    assert.equal(new Set(slate.map((h) => h.id)).size, 25);
    for (const h of slate) {
      assert.equal(Object.keys(h.delta).length, 1);
      assert.deepEqual(configProblems(spec, h.delta), [], h.id);
      const [knob, value] = Object.entries(h.delta)[0] as [string, unknown];
      assert.notEqual(value, spec.knobs[knob]?.baseline, `${h.id} repeats the baseline`);
      assert.equal(h.source, 'planner');
    }
  });

  it('covers every knob before going deeper on any', () => {
    const knobs = Object.keys(spec.knobs).length;
    const slate = proposeSingleKnobSlate(spec, knobs, 3);
    assert.equal(new Set(slate.map((h) => Object.keys(h.delta)[0])).size, knobs);
  });

  it('is deterministic for a seed and varies with it', () => {
    assert.deepEqual(proposeSingleKnobSlate(spec, 6, 42), proposeSingleKnobSlate(spec, 6, 42));
    assert.notDeepEqual(
      proposeSingleKnobSlate(spec, 6, 42).map((h) => h.id),
      proposeSingleKnobSlate(spec, 6, 43).map((h) => h.id),
    );
  });

  it('skips hypotheses already tried and stops when the space is exhausted', () => {
    const first = proposeSingleKnobSlate(spec, 3, 5);
    const next = proposeSingleKnobSlate(spec, 3, 5, new Set(first.map((h) => h.id)));
    assert.equal(next.filter((h) => first.some((f) => f.id === h.id)).length, 0);
    const all = proposeSingleKnobSlate(spec, 10_000, 5);
    assert.ok(all.length < 10_000 && all.length > 20);
  });
});

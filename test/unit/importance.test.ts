/**
 * Knob evidence (src/core/search/importance.ts): a permutation analysis of variance of measured
 * configs' scores by each knob's values.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseModelSpec, type Config } from '../../src/core/model-spec';
import { knobEvidence, type Scored } from '../../src/core/search/importance';
import { gaussian, SearchSpace, seededRandom } from '../../src/core/search/space';

const spec = parseModelSpec({
  name: 'evidence',
  trainer: { argv: ['{python}', 'train.py'] },
  knobs: {
    step: { type: 'categorical', choices: [0.05, 0.064], baseline: 0.05 },
    stream: { type: 'int', min: 0, max: 1000, baseline: 0 },
    width: { type: 'logfloat', min: 1e-3, max: 1, baseline: 0.01 },
    head: { type: 'categorical', choices: ['dot', 'mlp'], baseline: 'dot' },
    depth: { type: 'int', min: 1, max: 8, baseline: 2, activeWhen: { head: ['mlp'] } },
  },
  metric: { primary: 'ne', direction: 'minimize' },
  fidelity: { knob: 'steps', low: 1, high: 9 },
});
const space = new SearchSpace(spec);

/** Configs drawn at random (a sampler that favours step 0.064 3:1), scored by `score` plus noise. */
function measured(n: number, score: (c: Config) => number, seed = 1): Scored[] {
  const random = seededRandom(seed);
  return Array.from({ length: n }, () => {
    const config = space.random(random);
    if (random() < 0.5) config.step = 0.064;
    return { config, score: score(config) + 0.3 * gaussian(random) };
  });
}

describe('knob evidence', () => {
  it('finds the knob that moves the score and no sign of one that only re-randomizes, even where the sampler favoured the good value', () => {
    let falseSigns = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const scored = measured(60, (c) => (c.step === 0.064 ? 0.5 : 0), seed);
      const p = knobEvidence(space, scored, ['step', 'stream', 'width'], seededRandom(seed));
      assert.ok((p.get('step') ?? 1) <= 0.01, `data ${seed}: step: p ${p.get('step')}`);
      for (const k of ['stream', 'width']) if ((p.get(k) ?? 1) <= 0.1) falseSigns += 1;
    }
    assert.ok(falseSigns <= 5, `${falseSigns} of 20 knobs without effect had p ≤ 0.1 (about 2 expected)`);
  });

  it('reads a numeric knob in its search scale, and an inactive knob as a value of its own', () => {
    const scored = measured(
      80,
      (c) => -Math.abs(Math.log10(c.width as number) + 1) + (c.head === 'mlp' ? 0 : 0),
    );
    const p = knobEvidence(space, scored, ['width', 'depth'], seededRandom(3));
    assert.ok((p.get('width') ?? 1) <= 0.01, `width: p ${p.get('width')}`);
    assert.ok((p.get('depth') ?? 0) > 0.05, `depth: p ${p.get('depth')}`);
  });

  it('is deterministic, says nothing from fewer than 8 configs, and calibrates to about uniform p-values under no effect', () => {
    const scored = measured(40, () => 0);
    const a = knobEvidence(space, scored, ['step', 'stream'], seededRandom(5));
    const b = knobEvidence(space, scored, ['step', 'stream'], seededRandom(5));
    assert.deepEqual([...a], [...b]);
    assert.deepEqual([...knobEvidence(space, scored.slice(0, 7), ['step'], seededRandom(5))], [['step', 1]]);
    assert.deepEqual([...knobEvidence(space, scored, ['not-a-knob'], seededRandom(5))], [['not-a-knob', 1]]);
    let small = 0;
    for (let seed = 0; seed < 40; seed++) {
      const p = knobEvidence(
        space,
        measured(30, () => 0, 100 + seed),
        ['stream'],
        seededRandom(seed),
      );
      if ((p.get('stream') ?? 1) <= 0.1) small += 1;
    }
    assert.ok(small <= 9, `${small} of 40 null knobs had p ≤ 0.1 (expected about 4)`);
  });
});

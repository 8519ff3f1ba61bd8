/**
 * The model-based planner on known functions: at equal budget it finds better configs than random
 * search over many seeds, it is deterministic for a seed, and it only proposes valid configs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configProblems, parseModelSpec, type Config } from '../../src/core/model-spec';
import { TpePlanner, type Observation } from '../../src/engine/tpe';

const spec = parseModelSpec({
  name: 'known-function',
  trainer: { argv: ['true'] },
  knobs: {
    lr: { type: 'logfloat', min: 1e-4, max: 0.3, baseline: 0.05 },
    width: { type: 'int', min: 8, max: 512, baseline: 16 },
    depth: { type: 'int', min: 0, max: 4, baseline: 0 },
    dropout: { type: 'float', min: 0, max: 0.5, baseline: 0.4 },
    optimizer: { type: 'categorical', choices: ['adam', 'adagrad', 'sgd'], baseline: 'sgd' },
    norm: { type: 'categorical', choices: ['none', 'batchnorm', 'layernorm'], baseline: 'none' },
    shuffle: { type: 'bool', baseline: false },
  },
  metric: { primary: 'loss', direction: 'minimize' },
  fidelity: { knob: 'steps', low: 1, high: 1 },
});

/** A smooth mixed-space objective with one optimum (lr 0.003, width 128, depth 2, dropout 0.1, adam, layernorm). */
function objective(c: Config): number {
  const lr = Math.log10(c.lr as number) - Math.log10(0.003);
  const width = Math.log2(c.width as number) - 7;
  const depth = (c.depth as number) - 2;
  const dropout = ((c.dropout as number) - 0.1) * 4;
  const opt = { adam: 0, adagrad: 0.4, sgd: 1 }[c.optimizer as string] ?? 1;
  const norm = { none: 0.5, batchnorm: 0.3, layernorm: 0 }[c.norm as string] ?? 1;
  return (
    lr * lr +
    (width * width) / 4 +
    (depth * depth) / 2 +
    dropout * dropout +
    opt +
    norm +
    (c.shuffle ? 0 : 0.1)
  );
}

function runTpe(seed: number, budget: number, batch: number): number {
  const planner = new TpePlanner(spec, { seed });
  const obs: Observation[] = [];
  while (obs.length < budget) {
    for (const config of planner.propose(obs, Math.min(batch, budget - obs.length)))
      obs.push({ config, score: -objective(config) });
  }
  return Math.min(...obs.map((o) => -o.score));
}

function runRandom(seed: number, budget: number): number {
  return Math.min(...TpePlanner.randomSearch(spec, seed, budget).map(objective));
}

describe('TPE planner', () => {
  it('beats random search at equal budget over 20 seeds (slates of 4, 48 evaluations)', () => {
    let wins = 0;
    let tpeSum = 0;
    let randomSum = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const t = runTpe(seed, 48, 4);
      const r = runRandom(seed, 48);
      tpeSum += t;
      randomSum += r;
      if (t < r) wins += 1;
    }
    assert.ok(wins >= 14, `TPE beat random on ${wins}/20 seeds (mean ${tpeSum / 20} vs ${randomSum / 20})`);
    assert.ok(tpeSum < randomSum * 0.8, `mean best ${tpeSum / 20} vs random ${randomSum / 20}`);
  });

  it('is deterministic for a seed', () => {
    const obs: Observation[] = TpePlanner.randomSearch(spec, 3, 12).map((config) => ({
      config,
      score: -objective(config),
    }));
    assert.deepEqual(
      new TpePlanner(spec, { seed: 9 }).propose(obs, 5),
      new TpePlanner(spec, { seed: 9 }).propose(obs, 5),
    );
    assert.notDeepEqual(
      new TpePlanner(spec, { seed: 9 }).propose(obs, 5),
      new TpePlanner(spec, { seed: 10 }).propose(obs, 5),
    );
  });

  it('proposes only valid, distinct configs, and never an observed one', () => {
    const obs: Observation[] = TpePlanner.randomSearch(spec, 4, 20).map((config) => ({
      config,
      score: -objective(config),
    }));
    const slate = new TpePlanner(spec, { seed: 1 }).propose(obs, 10);
    assert.equal(slate.length, 10);
    const keys = new Set([
      ...obs.map((o) => JSON.stringify(o.config)),
      ...slate.map((c) => JSON.stringify(c)),
    ]);
    assert.equal(keys.size, 30);
    for (const c of slate) assert.deepEqual(configProblems(spec, c), []);
  });

  it('explores sparsely around the baseline before it has observations', () => {
    const slate = new TpePlanner(spec, { seed: 2 }).propose([], 6);
    for (const c of slate) {
      const changed = Object.keys(c).filter((k) => c[k] !== spec.knobs[k]?.baseline);
      assert.ok(changed.length >= 1 && changed.length <= 2, `changed ${changed.join(', ')}`);
    }
  });

  it('leaves frozen knobs at their baseline', () => {
    const planner = new TpePlanner(spec, { seed: 5, frozen: ['lr', 'optimizer'] });
    const obs: Observation[] = TpePlanner.randomSearch(spec, 6, 16).map((config) => ({
      config,
      score: -objective(config),
    }));
    for (const c of [...planner.propose([], 4), ...planner.propose(obs, 4)]) {
      assert.equal(c.lr, 0.05);
      assert.equal(c.optimizer, 'sgd');
    }
  });

  it('refines near the best config once it has a model', () => {
    const obs: Observation[] = TpePlanner.randomSearch(spec, 8, 24).map((config) => ({
      config,
      score: -objective(config),
    }));
    const best = [...obs].sort((a, b) => b.score - a.score)[0]?.config as Config;
    const steps = new TpePlanner(spec, { seed: 3 }).refine(obs, best, 5);
    assert.equal(steps.length, 5);
    for (const c of steps) {
      const changed = Object.keys(c).filter((k) => c[k] !== best[k]);
      assert.ok(changed.length >= 1 && changed.length <= 2);
    }
  });
});

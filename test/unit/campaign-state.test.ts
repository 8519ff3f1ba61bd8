/**
 * The campaign's rules without Temporal: a simulated objective stands in for the trainer, so that
 * phases, noise-aware wins, combinations, budgets and the runbook can be checked exactly.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config';
import { fidelityLevels, parseCampaignInput, type CampaignInput } from '../../src/core/campaign-input';
import { BASELINE_ID, Campaign, initialState, phaseOf, type WorkItem } from '../../src/core/campaign-state';
import { jobCost, parseModelSpec, type Config } from '../../src/core/model-spec';
import { proposeRefinements, proposeSingleKnobSlate, seededRandom } from '../../src/core/planner';
import { decide } from '../../src/core/runbook';

const spec = parseModelSpec(
  JSON.parse(readFileSync(path.join(loadConfig().root, 'models', 'synthetic-ctr.json'), 'utf8')),
);

/** NE as a function of the config: lr=0.03 and embedding_dim=16 help and add up; noise ~0.001. */
function objective(config: Config, fidelity: number, seed: number): number {
  const noise = (seededRandom(seed * 7919 + fidelity)() - 0.5) * 0.002;
  let ne = 0.9 - fidelity / 100_000;
  if (config.lr === 0.03) ne -= 0.01;
  if (config.embedding_dim === 16) ne -= 0.008;
  if (config.optimizer === 'sgd') ne += 0.05;
  return ne + noise;
}

/** Runs the campaign's steps to the end, as the workflow does, with `fail` deciding failures. */
function simulate(overrides: Partial<CampaignInput> = {}, fail: (item: WorkItem) => boolean = () => false) {
  const input = parseCampaignInput({
    model: 'synthetic-ctr',
    budget: { experiments: 200 },
    seed: 1,
    ...overrides,
  });
  const c = new Campaign(initialState(input), spec, input, fidelityLevels(input, spec));
  const runs: WorkItem[] = [];
  let guard = 0;
  while (c.state.step !== 'report' && guard++ < 100) {
    if (c.state.step === 'plan') {
      // A slate that contains the planted wins, as the planner would propose them.
      const slate = proposeSingleKnobSlate(spec, input.slateSize, input.seed);
      c.setSlate([
        { id: '', source: 'planner', rationale: 'planted', delta: { lr: 0.03 } },
        { id: '', source: 'planner', rationale: 'planted', delta: { embedding_dim: 16 } },
        ...slate,
      ]);
      c.conclude();
      continue;
    }
    const refinements =
      c.state.step === 'refine'
        ? proposeRefinements(spec, c.state.hypotheses[c.state.bestId]?.delta ?? {}, input.refinements, 1)
        : [];
    c.prepare(refinements);
    while (c.state.pending.length) {
      const item = c.state.pending.shift() as WorkItem;
      if (c.unaffordable(item.fidelity)) {
        c.state.counts.skipped += 1;
        continue;
      }
      c.reserve(item.fidelity);
      runs.push(item);
      if (fail(item)) {
        c.noteFailure({
          experimentId: `e${runs.length}`,
          hypothesisId: item.hypothesisId,
          failureClass: 'crash',
          action: 'drop',
        });
        continue;
      }
      c.record(item, objective(c.config(item.hypothesisId), item.fidelity, item.seed));
    }
    c.conclude();
  }
  return { c, runs, input };
}

describe('campaign rules', () => {
  it('walks the three phases in order and finds the planted wins and their combination', () => {
    const { c, runs } = simulate({ slateSize: 6, eta: 2, replicates: 3 });
    const phases = [...new Set(runs.map((r) => r.fidelity))];
    const levels = fidelityLevels(
      parseCampaignInput({ model: 'synthetic-ctr', budget: { experiments: 2 } }),
      spec,
    );
    assert.deepEqual(phases, [levels.low, levels.mid, levels.high]);
    const wins = c.state.wins.map((w) => w.hypothesisId).sort();
    assert.ok(wins.includes('lr=0.03'), JSON.stringify(c.state.wins));
    assert.ok(wins.includes('embedding_dim=16'), JSON.stringify(c.state.wins));
    const combo = c.state.wins.find((w) => w.phase === 'combination');
    assert.equal(combo?.hypothesisId, 'embedding_dim=16,lr=0.03');
    assert.ok((combo?.synergyPct ?? 0) > 0, 'the two planted effects add up');
    const result = c.result('camp', 'completed');
    assert.equal(result.fidelity, levels.high);
    assert.equal(result.best.config.lr, 0.03);
    assert.equal(result.best.config.embedding_dim, 16);
    assert.ok(result.significant);
    assert.ok(
      result.gainCi.low > 0 && result.gainCi.low < result.gainPct && result.gainPct < result.gainCi.high,
    );
    assert.equal(result.best.replicates, 3);
  });

  it('never calls a difference within the noise a win', () => {
    const input = parseCampaignInput({ model: 'synthetic-ctr', budget: { experiments: 50 } });
    const c = new Campaign(initialState(input), spec, input, fidelityLevels(input, spec));
    const mid = c.levels.mid;
    const h = c.register({ id: '', source: 'planner', rationale: '', delta: { dropout: 0.1 } });
    const item = (id: string, seed: number): WorkItem => ({
      hypothesisId: id,
      role: 'candidate',
      fidelity: mid,
      seed,
      attempt: 1,
    });
    for (const [i, v] of [0.9, 0.91, 0.89].entries()) c.record(item(BASELINE_ID, i), v);
    for (const [i, v] of [0.895, 0.9, 0.897].entries()) c.record(item(h.id, i), v);
    const g = c.gain(h.id, mid);
    assert.ok(g && g.gainPct > 0 && g.low < 0, JSON.stringify(g));
    c.state.step = 'validate';
    c.state.survivors = [h.id];
    c.conclude();
    assert.deepEqual(c.state.wins, []);
  });

  it('never spends more than the budget, and keeps to each phase share', () => {
    for (const experiments of [5, 12, 30]) {
      const { c, runs } = simulate({ budget: { experiments }, slateSize: 8 });
      assert.ok(runs.length <= experiments, `${runs.length} > ${experiments}`);
      assert.equal(c.state.used.experiments, runs.length);
      const validation =
        (c.state.byPhase.preflight?.experiments ?? 0) + (c.state.byPhase.validation?.experiments ?? 0);
      assert.ok(
        validation <= Math.round(experiments * 0.5),
        `validation spent ${validation} of ${experiments}`,
      );
    }
    const gpuHours = 40 * jobCost(spec, 300);
    const { c } = simulate({ budget: { gpuHours } });
    assert.ok(c.state.used.gpuHours <= gpuHours + 1e-12);
    assert.ok(c.state.counts.skipped > 0, 'a small budget skips work instead of overspending');
  });

  it('refuses a new budget below what is already spent, by field', () => {
    const { c } = simulate({ budget: { experiments: 10 } });
    assert.deepEqual(c.budgetProblems({ experiments: 3 }), [
      'experiments: expected at least 10 (already used)',
    ]);
    assert.deepEqual(c.budgetProblems({ experiments: 100 }), []);
  });

  it('reports the baseline as best, with zero gain, when nothing wins', () => {
    const { c, runs } = simulate({ slateSize: 3 }, (item) => item.role === 'candidate');
    assert.equal(
      runs.filter((r) => r.fidelity === c.levels.mid).length,
      0,
      'no survivors: nothing to validate',
    );
    const result = c.result('camp', 'completed');
    assert.equal(result.best.hypothesisId, BASELINE_ID);
    assert.equal(result.gainPct, 0);
    assert.equal(result.significant, false);
    assert.ok(result.experiments.failed > 0);
  });

  it('keeps the baseline when the final candidate fails its confirmation', () => {
    const input = parseCampaignInput({ model: 'synthetic-ctr', budget: { experiments: 50 } });
    const c = new Campaign(initialState(input), spec, input, fidelityLevels(input, spec));
    const high = c.levels.high;
    const h = c.register({ id: '', source: 'planner', rationale: '', delta: { dropout: 0.1 } });
    const item = (id: string, seed: number): WorkItem => ({
      hypothesisId: id,
      role: 'candidate',
      fidelity: high,
      seed,
      attempt: 1,
    });
    for (const [i, v] of [0.85, 0.86, 0.855].entries()) c.record(item(BASELINE_ID, i), v);
    for (const [i, v] of [0.84, 0.862, 0.858].entries()) c.record(item(h.id, i), v);
    c.state.step = 'confirm';
    c.state.bestId = h.id;
    c.conclude();
    const result = c.result('camp', 'completed');
    assert.equal(result.best.hypothesisId, BASELINE_ID);
    assert.equal(result.unconfirmed?.hypothesisId, 'dropout=0.1');
    assert.ok((result.unconfirmed?.low ?? 0) < 0);
  });

  it('maps steps to phases', () => {
    assert.deepEqual(
      ['baseline', 'plan', 'screen', 'validate', 'combine', 'exploit', 'refine', 'confirm', 'report'].map(
        (s) => phaseOf(s as never),
      ),
      [
        'preflight',
        'preflight',
        'validation',
        'validation',
        'combination',
        'exploitation',
        'exploitation',
        'exploitation',
        'done',
      ],
    );
  });
});

describe('failure runbook', () => {
  it('halves the batch on out-of-memory and lowers the learning rate on NaN', () => {
    assert.deepEqual(decide(spec, { embedding_dim: 64 }, 'oom', 1), {
      action: 'retry',
      delta: { embedding_dim: 64, batch_size: 128 },
      why: 'out of memory: batch_size 256 → 128',
    });
    const nan = decide(spec, { lr: 0.3 }, 'nan', 1);
    assert.equal(nan.action, 'retry');
    assert.equal(nan.action === 'retry' && nan.delta.lr, 0.1);
  });

  it('retries a lost job as it was, drops bad configs and crashes, and gives up after 3 attempts', () => {
    assert.deepEqual(decide(spec, { lr: 0.03 }, 'lost', 1), {
      action: 'retry',
      delta: { lr: 0.03 },
      why: 'the job or its node was lost: run it again',
    });
    assert.equal(decide(spec, {}, 'bad_config', 1).action, 'drop');
    assert.equal(decide(spec, {}, 'crash', 1).action, 'drop');
    assert.equal(decide(spec, {}, 'lost', 3).action, 'drop');
    assert.equal(decide(spec, { batch_size: 32 }, 'oom', 1).action, 'drop');
    assert.equal(decide(spec, {}, 'cancelled', 1).action, 'none');
  });
});

describe('combinations', () => {
  function withWins() {
    const input = parseCampaignInput({ model: 'synthetic-ctr', budget: { experiments: 50 } });
    const c = new Campaign(initialState(input), spec, input, fidelityLevels(input, spec));
    for (const [delta, gainPct] of [
      [{ lr: 0.03 }, 2],
      [{ embedding_dim: 16 }, 1.5],
      [{ lr: 0.02, dropout: 0.1 }, 1],
    ] as [Config, number][]) {
      const h = c.register({ id: '', source: 'planner', rationale: 'r', delta });
      c.state.wins.push({ hypothesisId: h.id, gainPct, phase: 'validation' });
    }
    return c;
  }

  it('merges all wins and the pairs of the best three when the engine chose nothing', () => {
    const merges = withWins().combinations();
    assert.deepEqual(
      merges.map((m) => m.parts.length),
      [3, 2, 2, 2],
    );
    assert.ok(merges.every((m) => m.hypothesis.source === 'planner'));
  });

  it("follows the engine's choice, keeping only real wins, the better win's value on a shared knob", () => {
    const merges = withWins().combinations([
      { parts: ['dropout=0.1,lr=0.02', 'lr=0.03', 'not-a-win'], rationale: 'optimizer and regularization' },
      { parts: ['embedding_dim=16', 'not-a-win'], rationale: 'one real win is no merge' },
    ]);
    assert.equal(merges.length, 1);
    assert.deepEqual(merges[0]?.parts, ['lr=0.03', 'dropout=0.1,lr=0.02']);
    assert.deepEqual(merges[0]?.hypothesis.delta, { lr: 0.03, dropout: 0.1 });
    assert.equal(merges[0]?.hypothesis.source, 'llm');
    assert.match(merges[0]?.hypothesis.rationale ?? '', /optimizer and regularization/);
  });
});

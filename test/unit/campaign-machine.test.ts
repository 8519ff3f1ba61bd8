/**
 * The campaign's state machine (src/core/campaign/machine.ts), run in process on synthetic models
 * whose truth is known: what it spends, what it runs, what it concludes, how it answers messages.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCampaignInProcess, type TrainOutcome } from '../../src/campaign/inprocess';
import type { CampaignInput } from '../../src/core/campaign-input';
import { CampaignMachine, fidelityLadder, type Effect, type Launch } from '../../src/core/campaign/machine';
import { initialState } from '../../src/core/campaign/state';
import { parseCampaignInput } from '../../src/core/campaign-input';
import { parseModelSpec, type Config, type ModelSpec } from '../../src/core/model-spec';
import { gaussian, mixSeed, seededRandom } from '../../src/core/search/space';

const spec = parseModelSpec({
  name: 'sim',
  trainer: { argv: ['{python}', 'train.py'] },
  knobs: {
    step: { type: 'logfloat', min: 1e-4, max: 1, baseline: 0.003, role: 'learning_rate' },
    reg: { type: 'logfloat', min: 1e-6, max: 1e-1, baseline: 1e-6, role: 'regularization' },
    form: { type: 'categorical', choices: ['linear', 'fm'], baseline: 'linear', role: 'architecture' },
    rank: { type: 'int', min: 2, max: 64, baseline: 8, activeWhen: { form: ['fm'] } },
    batch: { type: 'int', min: 16, max: 1024, baseline: 128, role: 'batch_size' },
    quiet: { type: 'float', min: 0, max: 1, baseline: 0.5 },
  },
  metric: { primary: 'ne', direction: 'minimize' },
  fidelity: { knob: 'steps', low: 3, high: 27 },
  cost: { gpuHoursPerUnit: 0.001 },
});
const FULL_RUN = 27 * 0.001;

const hashText = (t: string) => {
  let h = 2166136261;
  for (let i = 0; i < t.length; i++) h = Math.imul(h ^ t.charCodeAt(i), 16777619) >>> 0;
  return h;
};

/** NE of a config: a bowl in log step and log reg, an FM term that pays at rank ~16, no effect of `quiet`. */
function truth(c: Config, fidelity: number): number {
  let ne =
    0.85 +
    0.01 * (Math.log10(c.step as number) + 1.5) ** 2 +
    0.00125 * (Math.log10(c.reg as number) + 3) ** 2;
  if (c.form === 'fm') ne -= 0.03 - 0.0012 * (Math.log2(c.rank as number) - 4) ** 2;
  ne += 0.002 * Math.abs(Math.log2((c.batch as number) / 128));
  return ne + 0.05 / fidelity;
}

/** A run: the truth, a seed effect shared by every config at that seed, and the run's own noise. */
function trainer(objective: (c: Config, f: number) => number, ownSd = 0.0012) {
  return (l: Launch): Promise<TrainOutcome> => {
    const seedEffect = (seededRandom(mixSeed(l.seed, 77))() - 0.5) * 0.02;
    const own =
      ownSd * gaussian(seededRandom(mixSeed(l.seed, hashText(JSON.stringify(l.config)), l.fidelity)));
    return new Promise((resolve) =>
      setImmediate(() => resolve({ value: objective(l.config, l.fidelity) + seedEffect + own })),
    );
  };
}

const baseInput = (over: Partial<CampaignInput> = {}): CampaignInput => ({
  model: 'sim',
  budget: { gpuHours: 30 * FULL_RUN },
  parallelism: 2,
  seed: 0,
  ...over,
});

const baseline: Config = Object.fromEntries(Object.entries(spec.knobs).map(([k, v]) => [k, v.baseline]));
const trueGain = (c: Config) => ((truth(baseline, 27) - truth(c, 27)) / truth(baseline, 27)) * 100;

describe('the campaign state machine', () => {
  it('builds a fidelity ladder a factor eta apart, only when lower fidelity is cheaper in the budget', () => {
    assert.deepEqual(fidelityLadder({ low: 3, high: 27 }, 3, { gpuHours: 1 }), [3, 9, 27]);
    assert.deepEqual(fidelityLadder({ low: 100, high: 2700 }, 3, { gpuHours: 1 }), [100, 300, 900, 2700]);
    assert.deepEqual(fidelityLadder({ low: 3, high: 27 }, 3, { experiments: 30 }), [27]);
    assert.deepEqual(fidelityLadder({ low: 300, high: 1200 }, 3, { gpuHours: 1 }), [1200]);
  });

  it('finds a real gain, confirms it, and spends the budget without ever exceeding it', async () => {
    for (const seed of [0, 1, 2]) {
      const { result, launches } = await runCampaignInProcess({
        spec,
        input: baseInput({ seed }),
        train: trainer(truth),
      });
      const spent = launches.reduce((a, l) => a + l.item.cost.gpuHours, 0);
      assert.ok(spent <= 30 * FULL_RUN + 1e-9, `spent ${spent} of ${30 * FULL_RUN}`);
      assert.ok((result.spentPct ?? 0) >= 97, `spent only ${result.spentPct}%`);
      assert.equal(result.confirmed, true, `seed ${seed}: ${JSON.stringify(result.best.delta)}`);
      assert.ok(trueGain(result.best.config) > 3, `seed ${seed}: true gain ${trueGain(result.best.config)}`);
      assert.ok(result.best.replicates >= 3);
    }
  });

  it('runs the k-th evaluation of every config with the campaign seed + k, and the baseline only where it is compared', async () => {
    const { launches } = await runCampaignInProcess({
      spec,
      input: baseInput({ seed: 40 }),
      train: trainer(truth),
    });
    for (const l of launches) assert.equal(l.seed, 40 + l.item.k);
    const afterPreflight = launches.filter((l) => l.item.phase !== 'preflight');
    const baselineCost = afterPreflight
      .filter((l) => l.role === 'baseline')
      .reduce((a, l) => a + l.item.cost.gpuHours, 0);
    const total = launches.reduce((a, l) => a + l.item.cost.gpuHours, 0);
    assert.ok(
      baselineCost <= 0.05 * total,
      `baseline after preflight: ${((baselineCost / total) * 100).toFixed(1)}% of the budget`,
    );
  });

  it('moves every knob early, never varies an inactive knob, and never runs one effective config twice at one rung and seed', async () => {
    const { launches } = await runCampaignInProcess({
      spec,
      input: baseInput({ seed: 3 }),
      train: trainer(truth),
    });
    // Every knob that matters at the baseline is moved before the model's first proposal runs.
    const firstModel = launches.findIndex((l) => /TPE pick|random point/.test(l.hypothesis.rationale));
    assert.ok(firstModel > 0, 'no model proposal ran');
    const early = launches.slice(0, firstModel);
    for (const knob of Object.keys(spec.knobs).filter((k) => k !== 'rank'))
      assert.ok(
        early.some((l) => knob in l.hypothesis.delta),
        `knob ${knob} not moved before the first model proposal (run ${firstModel})`,
      );
    const seen = new Set<string>();
    for (const l of launches) {
      if (l.config.form !== 'fm') assert.equal(l.config.rank, 8, 'rank varied while form is linear');
      const key = `${l.hypothesis.id}@${l.fidelity}:${l.seed}`;
      assert.ok(!seen.has(key) || l.item.attempt > 1, `ran ${key} twice`);
      seen.add(key);
    }
  });

  it('simplifies an answer that carries knobs which only re-randomize the run, and confirms the part that matters', async () => {
    // One knob holds a real gain; two only re-seed the run (their runs no longer pair with the
    // baseline's) and two do nothing at all. The search sets every knob, so answers carry all five.
    const planted = parseModelSpec({
      name: 'planted',
      trainer: { argv: ['{python}', 'train.py'] },
      knobs: {
        step: { type: 'categorical', choices: [0.05, 0.064], baseline: 0.05 },
        shuffle_stream: { type: 'int', min: 0, max: 1000, baseline: 0 },
        init_stream: { type: 'int', min: 0, max: 1000, baseline: 0 },
        log_every: { type: 'int', min: 1, max: 50, baseline: 10 },
        eval_chunk: { type: 'int', min: 256, max: 65536, baseline: 8192 },
      },
      metric: { primary: 'ne', direction: 'minimize' },
      fidelity: { knob: 'steps', low: 30, high: 300 },
      cost: { gpuHoursPerUnit: 0.001 },
    });
    const train = (simplify: boolean) => ({
      spec: planted,
      onEvent: (m: CampaignMachine) => {
        if (!simplify) delete m.state.answerRules;
      },
      train: (l: Launch): Promise<TrainOutcome> => {
        const c = l.config;
        const stream = mixSeed(l.seed, c.shuffle_stream as number, c.init_stream as number, l.fidelity);
        const gain = c.step === 0.064 ? 0.007 * Math.min(1, l.fidelity / 100) : 0;
        const value = 0.86 - gain + 0.05 / l.fidelity + 0.004 * gaussian(seededRandom(stream));
        return new Promise((resolve) => setImmediate(() => resolve({ value })));
      },
    });
    const tally = { with: { confirmed: 0, bare: 0, raced: 0 }, without: { confirmed: 0, bare: 0, raced: 0 } };
    for (let seed = 0; seed < 12; seed++) {
      for (const simplify of [true, false]) {
        const { result, launches } = await runCampaignInProcess({
          ...train(simplify),
          input: { model: 'planted', budget: { gpuHours: 20 * 0.3 }, parallelism: 2, seed: 1000 + seed },
        });
        const t = simplify ? tally.with : tally.without;
        const simplified = launches.filter((l) => /simplify /.test(l.hypothesis.rationale));
        if (simplified.length) t.raced += 1;
        for (const l of simplified) {
          // A simplification keeps some of an incumbent's changes, with their values, and adds none.
          const from = /simplify ([^:]+):/.exec(l.hypothesis.rationale)?.[1] ?? '';
          for (const part of l.hypothesis.id.split(','))
            assert.ok(from.split(',').includes(part), `${part} not in ${from}`);
        }
        if (result.confirmed && result.best.delta.step === 0.064) {
          t.confirmed += 1;
          if (Object.keys(result.best.delta).length === 1) t.bare += 1;
        }
      }
    }
    assert.equal(tally.without.raced, 0, 'campaigns started before the rule never simplify');
    assert.ok(tally.with.raced >= 6, `simplified in ${tally.with.raced} of 12 campaigns`);
    assert.ok(tally.with.confirmed >= tally.without.confirmed, JSON.stringify(tally));
    assert.ok(tally.with.bare > tally.without.bare, JSON.stringify(tally));
  });

  it('gives a reference that drew far ahead at a low rung a second look instead of starving the rungs above', async () => {
    // The baseline's first short run draws far better than any config can: the promotion bar, if it
    // were that one run, would hold almost every config at the bottom rung.
    const lucky = trainer(truth);
    const train = (l: Launch) =>
      lucky(l).then((o) =>
        l.role === 'baseline' && l.fidelity === 3 && l.item.k === 0
          ? { value: (o.value as number) - 0.05 }
          : o,
      );
    const reached = { v4: 0, v3: 0, looks: 0 };
    for (let seed = 0; seed < 4; seed++)
      for (const v4 of [true, false]) {
        const { launches } = await runCampaignInProcess({
          spec,
          input: baseInput({ seed: 300 + seed }),
          onEvent: (m) => {
            if (!v4 && m.state.answerRules) delete m.state.answerRules.v4;
          },
          train,
        });
        const top = new Set(
          launches.filter((l) => l.role === 'candidate' && l.fidelity === 27).map((l) => l.hypothesis.id),
        );
        reached[v4 ? 'v4' : 'v3'] += top.size;
        if (v4)
          reached.looks += launches.filter(
            (l) => l.role === 'baseline' && l.fidelity === 3 && l.item.k > 0,
          ).length;
      }
    assert.ok(reached.looks >= 4, `second looks: ${JSON.stringify(reached)}`);
    assert.ok(reached.v4 > reached.v3, `configs at full fidelity: ${JSON.stringify(reached)}`);
  });

  it('spends the end of the budget on the races that lead, and opens no race it cannot finish', async () => {
    // At the end of a campaign, a challenger ahead of the incumbent on the seeds they share but with
    // fewer seeds cannot become the answer (it needs R): a race the budget cut off bought nothing.
    const unfinished = { v5: 0, v4: 0, leadsV5: [] as string[] };
    for (let seed = 0; seed < 8; seed++)
      for (const v5 of [true, false]) {
        const { result, state } = await runCampaignInProcess({
          spec,
          input: baseInput({ seed: 500 + seed, budget: { gpuHours: 20 * FULL_RUN } }),
          onEvent: (m) => {
            if (!v5 && m.state.answerRules) delete m.state.answerRules.v5;
          },
          train: trainer(truth, 0.004),
        });
        assert.ok((result.spentPct ?? 0) >= 97, `seed ${seed}: spent only ${result.spentPct}%`);
        const top = `${state.rungs.length - 1}:`;
        const seedsOf = (id: string) =>
          Object.entries(state.results[id] ?? {}).filter(([key]) => key.startsWith(top));
        const inc = new Map(seedsOf(state.incumbent));
        for (const id of Object.keys(state.configs)) {
          if (id === state.incumbent || id === 'baseline') continue;
          const mine = seedsOf(id);
          const shared = mine.filter(([key]) => inc.has(key));
          if (!mine.length || mine.length >= inc.size || state.configs[id]?.closed) continue;
          const lead = shared.reduce((a, [key, v]) => a + ((inc.get(key) as number) - v), 0);
          if (shared.length < mine.length || lead > 0) {
            unfinished[v5 ? 'v5' : 'v4'] += 1;
            if (v5) unfinished.leadsV5.push(`seed ${seed}: ${id} (${mine.length} of ${inc.size} seeds)`);
          }
        }
      }
    assert.equal(unfinished.v5, 0, `races left unfinished: ${unfinished.leadsV5.join('; ')}`);
    assert.ok(
      unfinished.v4 > 0,
      `without the endgame no race was cut off either: ${JSON.stringify(unfinished)}`,
    );
  });

  it('does not run again a config whose seeds all give the same number, and still confirms its win', async () => {
    // A deterministic trainer for configs without the noisy knob (gradient boosting without bagging,
    // say): `quiet` above 0.5 re-randomizes the run, below it every seed gives the same number.
    const deterministic = (l: Launch): Promise<TrainOutcome> => {
      const noisy = (l.config.quiet as number) > 0.5;
      const jitter = noisy ? 0.002 * gaussian(seededRandom(mixSeed(l.seed, 31, l.fidelity))) : 0;
      return Promise.resolve({ value: truth(l.config, l.fidelity) + 1e-9 * Math.PI + jitter });
    };
    for (const seed of [0, 1]) {
      const { result, launches, state } = await runCampaignInProcess({
        spec,
        input: baseInput({ seed: 700 + seed }),
        train: deterministic,
      });
      const runs = new Map<string, number>();
      for (const l of launches)
        if (!((l.config.quiet as number) > 0.5)) {
          const key = `${l.hypothesis.id}@${l.fidelity}`;
          runs.set(key, (runs.get(key) ?? 0) + 1);
        }
      const thrice = [...runs].filter(([, n]) => n > 2);
      assert.deepEqual(thrice, [], `seed ${seed}: deterministic configs run more than twice at one fidelity`);
      assert.ok(state.counts.skipped > 0, `seed ${seed}: no run was found unnecessary`);
      assert.ok(result.best.replicates >= 3, `seed ${seed}: ${result.best.replicates} seeds`);
      assert.equal(result.confirmed, true, `seed ${seed}: ${JSON.stringify(result.best)}`);
      assert.ok((result.spentPct ?? 0) >= 97, `seed ${seed}: spent only ${result.spentPct}%`);
    }
  });

  it("judges a paired config by its own scatter when too few configs are replicated to moderate, and reads the prior with each config's noise", () => {
    const two = parseModelSpec({
      name: 'two',
      trainer: { argv: ['{python}', 'train.py'] },
      knobs: {
        step: { type: 'categorical', choices: [0.05, 0.064], baseline: 0.05 },
        stream: { type: 'int', min: 0, max: 1000, baseline: 0 },
      },
      metric: { primary: 'ne', direction: 'minimize' },
      fidelity: { knob: 'steps', low: 300, high: 300 },
      cost: { gpuHoursPerUnit: 0.001 },
    });
    const input = parseCampaignInput({ model: 'two', budget: { gpuHours: 6 }, seed: 0 });
    const probability = (v4: boolean) => {
      const state = initialState(input, [300]);
      if (!v4) delete state.answerRules?.v4;
      const m = new CampaignMachine(state, two, input);
      const base = [0.88, 0.884, 0.878, 0.882, 0.887];
      // The planted change alone stays paired with the baseline (gains 0.3-0.8 %); the same change
      // with another stream re-seeds the run (gains scatter by a whole percent).
      const paired = m.register({ step: 0.064 }, 'planner', 'simplify', 'test').id;
      const unpaired = m.register({ step: 0.064, stream: 7 }, 'planner', 'design', 'test').id;
      const gains: Record<string, number[]> = {
        [paired]: [0.72, 0.42, 0.61, 0.32, 0.76],
        [unpaired]: [1.37, 0.41, -0.62],
      };
      state.results.baseline = Object.fromEntries(base.map((v, k) => [`0:${k}`, v]));
      for (const [id, g] of Object.entries(gains))
        state.results[id] = Object.fromEntries(
          g.map((pct, k) => [`0:${k}`, (base[k] as number) - (0.882 * pct) / 100]),
        );
      return m.confirmation(paired);
    };
    const v3 = probability(false);
    const v4 = probability(true);
    assert.ok(!v3.confirmed && v3.probability < 0.95, `v3: ${JSON.stringify(v3)}`);
    assert.ok(v4.confirmed && v4.probability > 0.99, `v4: ${JSON.stringify(v4)}`);
  });

  it('confirms nothing when no knob matters', async () => {
    let confirmed = 0;
    for (let seed = 0; seed < 12; seed++) {
      const { result } = await runCampaignInProcess({
        spec,
        input: baseInput({ seed: 100 + seed }),
        train: trainer(() => 0.86),
      });
      if (result.confirmed) confirmed += 1;
    }
    assert.ok(confirmed <= 1, `${confirmed} of 12 null campaigns confirmed a win`);
  });

  it('drops a rung whose ranks do not predict the next rung', async () => {
    // Short runs reward a high step that diverges in full runs: the low rungs mislead.
    const flipped = (c: Config, f: number) =>
      f < 27
        ? 0.9 - 0.02 * Math.log10(c.step as number)
        : truth(c, f) + ((c.step as number) > 0.01 ? 0.05 : 0);
    let state;
    const { result } = await runCampaignInProcess({
      spec,
      input: baseInput({ seed: 5 }),
      train: trainer(flipped, 0.0002),
      onEvent: (m) => (state = m.state),
    });
    assert.ok(state, 'no state');
    const s = state as { bottom: number; rankChecks: Record<string, number> };
    assert.ok(s.bottom >= 1, `bottom rung stayed at ${s.bottom}; checks ${JSON.stringify(s.rankChecks)}`);
    assert.ok((result.spentPct ?? 0) >= 97);
  });

  it('counts experiments when the budget is experiments, at full fidelity only', async () => {
    const { result, launches } = await runCampaignInProcess({
      spec,
      input: baseInput({ budget: { experiments: 20 }, seed: 7 }),
      train: trainer(truth),
    });
    assert.equal(launches.length, 20);
    assert.ok(launches.every((l) => l.fidelity === 27));
    assert.equal(result.budget.used.experiments, 20);
  });

  it('fixes failures by role: out of memory halves the batch_size knob; a spec without the role drops with a reason', async () => {
    const oomAbove = (l: Launch): Promise<TrainOutcome> =>
      (l.config.batch as number) > 300
        ? Promise.resolve({ failure: { failureClass: 'oom', message: 'too big' } })
        : trainer(truth)(l);
    const { state } = await runCampaignInProcess({ spec, input: baseInput({ seed: 9 }), train: oomAbove });
    const fixes = Object.values(state.configs).filter((c) => c.origin === 'runbook');
    assert.ok(fixes.length >= 1, 'no runbook fix');
    assert.ok(
      state.failures.some((f) => /batch \(role batch_size\) \d+ → \d+/.test(f.action)),
      JSON.stringify(state.failures.slice(0, 3)),
    );
    const bare = parseModelSpec({
      ...spec,
      knobs: Object.fromEntries(Object.entries(spec.knobs).map(([k, v]) => [k, { ...v, role: undefined }])),
    });
    const run = await runCampaignInProcess({ spec: bare, input: baseInput({ seed: 9 }), train: oomAbove });
    assert.ok(
      run.state.failures.some((f) => /no knob declares role "batch_size" or "capacity"/.test(f.action)),
    );
  });

  it('runs a lost job again once, and drops it when it is lost a second time', async () => {
    // Every run of an FM config with a large rank is killed by something rea did not send.
    const lostWhen = (c: Config) => c.form === 'fm' && (c.rank as number) >= 24;
    const losing = (l: Launch): Promise<TrainOutcome> =>
      lostWhen(l.config)
        ? Promise.resolve({ failure: { failureClass: 'lost', message: 'killed by SIGKILL' } })
        : trainer(truth)(l);
    const { state } = await runCampaignInProcess({ spec, input: baseInput({ seed: 4 }), train: losing });
    const lost = state.failures.filter((f) => f.failureClass === 'lost');
    assert.ok(lost.length >= 2, `expected lost runs, got ${JSON.stringify(state.failures.slice(0, 3))}`);
    const byConfig = new Map<string, string[]>();
    for (const f of lost) byConfig.set(f.hypothesisId, [...(byConfig.get(f.hypothesisId) ?? []), f.action]);
    for (const [config, actions] of byConfig) {
      assert.ok(
        actions.filter((a) => a.startsWith('retry')).length <=
          actions.filter((a) => a.startsWith('drop')).length,
        `${config}: every retry of a lost run is followed by at most one more loss: ${actions.join(' | ')}`,
      );
    }
    assert.ok(
      lost.some((f) => /lost 2 times: not retried again/.test(f.action)),
      lost.map((f) => f.action).join(' | '),
    );
  });

  it('says the space is exhausted when nothing new is left to try', async () => {
    const tiny: ModelSpec = parseModelSpec({
      ...spec,
      knobs: { form: { type: 'categorical', choices: ['linear', 'fm'], baseline: 'linear' } },
    });
    const { result } = await runCampaignInProcess({
      spec: tiny,
      input: baseInput({ budget: { experiments: 40 }, seed: 1 }),
      train: trainer((c) => (c.form === 'fm' ? 0.84 : 0.86)),
    });
    assert.match(result.stopReason ?? '', /exhausted/);
    assert.equal(result.best.hypothesisId, 'form=fm');
  });
});

describe('the campaign state machine, messages', () => {
  const input = parseCampaignInput({ ...baseInput(), approval: { required: true, onTimeout: 'abort' } });
  const machine = () => new CampaignMachine(initialState(input, [3, 9, 27]), spec, input);
  const launches = (effects: Effect[]) => effects.filter((e) => e.type === 'launch').length;

  it('waits for approval with a plan that says what the budget buys, and re-plans without an excluded knob', () => {
    const m = machine();
    let effects = m.handle({ type: 'start' });
    assert.ok(effects.some((e) => e.type === 'gatherEvidence'));
    assert.equal(launches(effects), 2);
    // Preflight: 3 baseline seeds at 27 and one run at 3 and 9.
    const done = (id: string, value = 0.87) => m.handle({ type: 'finished', experimentId: id, value });
    effects = [...done('0000'), ...done('0001')];
    effects = [...effects, ...done('0002'), ...done('0003'), ...done('0004')];
    effects = [
      ...effects,
      ...m.handle({
        type: 'evidence',
        evidence: { prior: [], hypotheses: [], notes: [] },
        llmAvailable: false,
      }),
    ];
    assert.equal(m.state.stage, 'approval');
    assert.ok(effects.some((e) => e.type === 'awaitApproval'));
    assert.match(m.state.plan?.strategy.join('\n') ?? '', /runs at full fidelity/);
    assert.ok((m.state.plan?.estimate.gpuHours ?? Infinity) <= 30 * FULL_RUN + 1e-9);
    effects = m.handle({ type: 'reject', feedback: 'leave batch alone', excludeKnobs: ['batch'] });
    assert.equal(launches(effects), 0);
    assert.ok(effects.some((e) => e.type === 'gatherEvidence'));
    effects = m.handle({
      type: 'evidence',
      evidence: { prior: [], hypotheses: [], notes: [] },
      llmAvailable: false,
    });
    assert.equal(m.state.approval.status, 'waiting');
    effects = m.handle({ type: 'approve' });
    assert.equal(launches(effects), 2);
    const planned = m.state.queue.map((q) => m.state.configs[q.configId]);
    assert.ok(planned.length > 0, 'nothing planned after the rejection');
    assert.ok(
      planned.every((c) => c && !('batch' in c.delta)),
      'the new plan moves the excluded knob',
    );
    const launched = effects.flatMap((e) => (e.type === 'launch' ? [e.launch] : []));
    assert.ok(launched.every((l) => l.config.batch === 128));
    // A person's hypothesis that moves the excluded knob is refused, naming it, not silently dropped.
    assert.match(
      m.refusal({ type: 'addHypothesis', delta: { batch: 256 }, rationale: 'bigger batches' }) ?? '',
      /delta\.batch: a rejected plan excluded this knob/,
    );
  });

  it("pauses, resumes, adds a person's hypothesis as a race at full fidelity, and aborts with its jobs cancelled", () => {
    const m = new CampaignMachine(
      initialState(parseCampaignInput(baseInput()), [3, 9, 27]),
      spec,
      parseCampaignInput(baseInput()),
    );
    m.handle({ type: 'start' });
    m.handle({ type: 'evidence', evidence: { prior: [], hypotheses: [], notes: [] }, llmAvailable: false });
    for (const id of ['0000', '0001', '0002', '0003', '0004'])
      m.handle({ type: 'finished', experimentId: id, value: 0.87 });
    assert.equal(m.state.stage, 'running');
    m.handle({ type: 'pause' });
    const running = Object.keys(m.state.running);
    const after = m.handle({ type: 'finished', experimentId: running[0] as string, value: 0.86 });
    assert.equal(launches(after), 0, 'launched while paused');
    let effects = m.handle({ type: 'resume' });
    assert.equal(launches(effects), 1);
    m.handle({ type: 'addHypothesis', delta: { form: 'fm', rank: 16 }, rationale: 'FM should help' });
    const id = Object.keys(m.state.running).find((x) => m.state.running[x]?.configId === 'form=fm,rank=16');
    const next = Object.keys(m.state.running)[0] as string;
    effects = m.handle({ type: 'finished', experimentId: next, value: 0.86 });
    const human = effects.flatMap((e) =>
      e.type === 'launch' && e.launch.hypothesis.source === 'human' ? [e.launch] : [],
    );
    assert.ok(id !== undefined || human.length === 1, 'the human hypothesis did not start');
    if (human[0]) assert.equal(human[0].fidelity, 27);
    effects = m.handle({ type: 'abort', reason: 'enough' });
    assert.ok(effects.some((e) => e.type === 'cancelAll'));
    for (const x of Object.keys(m.state.running))
      effects = m.handle({
        type: 'finished',
        experimentId: x,
        failure: { failureClass: 'cancelled', message: 'cancelled' },
      });
    assert.ok(effects.some((e) => e.type === 'finish' && e.status === 'aborted'));
  });

  it('refuses a budget below what is spent, and resumes a finishing campaign when the budget grows', () => {
    const m = machine();
    m.handle({ type: 'start' });
    assert.deepEqual(m.budgetProblems({ experiments: 1 }), [
      'experiments: expected at least 2 (already used)',
    ]);
  });
});

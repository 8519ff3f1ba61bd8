/**
 * The hypothesis engine on real PostgreSQL, with a local OpenAI-compatible server that answers well,
 * badly or not at all: in every case the slate is full, valid against the spec, new and recorded;
 * and a real campaign with the LLM configured records LLM hypotheses with their rationales and costs.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Pool } from 'pg';
import type { GpuAgent } from '../../src/cluster/gpu-agent';
import { configProblems, parseModelSpec, type ModelSpec } from '../../src/core/model-spec';
import type { Hypothesis } from '../../src/core/types';
import { Store } from '../../src/db/store';
import { HypothesisEngine, type SlateRequest } from '../../src/engine';
import { loadHistory, summarizeHistory, writeTrackRecord } from '../../src/engine/history';
import { indexKnowledge, searchKnowledge } from '../../src/engine/knowledge';
import { LlmClient, type LlmBudget } from '../../src/engine/llm';
import { createLogger } from '../../src/logging';
import { startCampaign } from '../../src/temporal/client';
import { startWorker, type RunningWorker } from '../../src/temporal/worker';
import { startFakeLlm, type Behaviour, type FakeLlm } from '../helpers/fake-llm';
import {
  FIXTURE_MODELS,
  startTemporal,
  startTestAgent,
  testConfig,
  testDatabase,
  uniqueName,
  workflowBundle,
} from '../helpers/stack';

// A model name of its own, so that other tests' campaigns on tiny-ctr are not this test's history.
const spec: ModelSpec = parseModelSpec({
  ...(JSON.parse(readFileSync(path.join(FIXTURE_MODELS, 'tiny-ctr.json'), 'utf8')) as object),
  name: `engine-ctr-${process.pid}`,
});
const log = createLogger('test', 'silent');
const budget: LlmBudget = { maxCalls: 20, maxTokens: 1_000_000 };
const API_KEY = 'sk-test-secret-0123456789';

interface LlmCallRow {
  purpose: string;
  status: string;
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number;
  latency_ms: number;
  proposed: number;
  accepted: number;
  error: string | null;
}

describe('hypothesis engine', () => {
  let pool: Pool;
  let llm: FakeLlm;
  const config = testConfig();

  before(async () => {
    pool = await testDatabase();
    await indexKnowledge(pool, path.join(config.root, 'knowledge'));
    llm = await startFakeLlm();
  });

  after(async () => {
    await llm?.close();
    await pool?.end();
  });

  const engineWith = (opts: { timeoutSec?: number; maxRetries?: number } = {}) =>
    new HypothesisEngine({
      pool,
      log,
      llm: new LlmClient(
        {
          baseURL: llm.url,
          apiKey: API_KEY,
          model: 'test-model',
          timeoutSec: opts.timeoutSec ?? 10,
          maxRetries: opts.maxRetries ?? 2,
          priceInput: 0.15,
          priceOutput: 0.6,
        },
        pool,
        log,
      ),
    });

  const request = (campaignId: string, over: Partial<SlateRequest> = {}): SlateRequest => ({
    campaignId,
    spec,
    count: 6,
    seed: 7,
    exclude: ['baseline'],
    excludeKnobs: [],
    feedback: [],
    highFidelity: spec.fidelity.high,
    llmBudget: budget,
    ...over,
  });

  const calls = async (campaignId: string) =>
    (await pool.query<LlmCallRow>('SELECT * FROM llm_calls WHERE campaign_id = $1 ORDER BY id', [campaignId]))
      .rows;

  function assertValidSlate(slate: Hypothesis[], count = 6): void {
    assert.equal(slate.length, count, JSON.stringify(slate.map((h) => h.id)));
    assert.equal(new Set(slate.map((h) => h.id)).size, slate.length, 'distinct');
    for (const h of slate) {
      assert.deepEqual(configProblems(spec, h.delta), [], `${h.id} is valid`);
      assert.ok(Object.keys(h.delta).length > 0, 'changes something');
      assert.ok(h.rationale.length > 10, `${h.id} has a rationale`);
    }
  }

  it('retrieves technique cards by full-text search', async () => {
    const cards = await searchKnowledge(pool, 'feature crosses factorization', 5);
    assert.ok(cards.length >= 3);
    assert.ok(
      cards.some((c) => c.id === 'factorization-machines' || c.id === 'dcn-v2'),
      JSON.stringify(cards.map((c) => c.id)),
    );
  });

  it('without an LLM, fills the slate from the planner and the research cards', async () => {
    const slate = await new HypothesisEngine({ pool, log }).proposeSlate(request(uniqueName('nollm')));
    assertValidSlate(slate);
    const sources = new Set(slate.map((h) => h.source));
    assert.ok(sources.has('planner') && sources.has('research'), JSON.stringify([...sources]));
    assert.ok(
      slate.filter((h) => h.source === 'research').every((h) => /research card [a-z0-9-]+/.test(h.rationale)),
    );
  });

  it('is deterministic for a seed', async () => {
    const engine = new HypothesisEngine({ pool, log });
    const a = await engine.proposeSlate(request('same-seed'));
    const b = await engine.proposeSlate(request('same-seed'));
    assert.deepEqual(a, b);
  });

  it('records good LLM hypotheses with rationales, tokens, latency and cost', async () => {
    const id = uniqueName('good');
    llm.script(['good']);
    const before = llm.requests.length;
    const slate = await engineWith().proposeSlate(request(id));
    assertValidSlate(slate);
    const fromLlm = slate.filter((h) => h.source === 'llm');
    assert.ok(fromLlm.length >= 2, JSON.stringify(slate));
    assert.ok(fromLlm.every((h) => h.rationale.includes('suggests')));
    assert.ok(
      slate.some((h) => h.source === 'planner'),
      'the planner always has a place',
    );
    const [call] = await calls(id);
    assert.equal(call?.status, 'ok');
    assert.ok((call?.prompt_tokens ?? 0) > 100 && (call?.completion_tokens ?? 0) > 10);
    assert.ok((call?.cost_usd ?? 0) > 0);
    assert.ok((call?.accepted ?? 0) >= fromLlm.length && (call?.proposed ?? 0) >= (call?.accepted ?? 0));
    const sent = llm.requests[before];
    assert.equal(sent?.headers.authorization, `Bearer ${API_KEY}`);
    assert.equal(sent?.body.response_format?.type, 'json_schema');
    assert.equal(sent?.body.model, 'test-model');
  });

  const misbehaviours: [Behaviour[], string, (rows: LlmCallRow[]) => void][] = [
    [
      ['malformed', 'good'],
      'malformed JSON, repaired on the second try',
      (r) =>
        assert.deepEqual(
          r.map((c) => c.status),
          ['invalid', 'ok'],
        ),
    ],
    [
      ['schema', 'schema'],
      'schema violations twice',
      (r) =>
        assert.deepEqual(
          r.map((c) => c.status),
          ['invalid', 'invalid'],
        ),
    ],
    [['unknown-knobs'], 'only unknown knobs', (r) => assert.equal(r[0]?.accepted, 0)],
    [['500', '500', '500'], 'HTTP 500 after retries', (r) => assert.match(r[0]?.error ?? '', /HTTP 500/)],
    [['429', '429', 'good'], 'HTTP 429 then an answer (backoff)', (r) => assert.equal(r[0]?.status, 'ok')],
  ];
  for (const [script, what, check] of misbehaviours) {
    it(`still gets a full valid slate when the LLM gives ${what}`, async () => {
      const id = uniqueName('bad');
      llm.script(script);
      const slate = await engineWith().proposeSlate(request(id));
      assertValidSlate(slate);
      check(await calls(id));
      llm.script([]);
    });
  }

  it('repairs out-of-range and wrongly typed values, and drops what cannot be repaired', async () => {
    const id = uniqueName('range');
    llm.script(['out-of-range']);
    const slate = await engineWith().proposeSlate(request(id));
    assertValidSlate(slate);
    const fromLlm = slate.filter((h) => h.source === 'llm');
    const byKnob = (k: string) => fromLlm.find((h) => k in h.delta);
    assert.equal(byKnob('lr')?.delta.lr, 0.3, 'clamped to the max');
    assert.match(byKnob('lr')?.rationale ?? '', /repaired: lr: 50 clamped to 0.3/);
    assert.equal(byKnob('batch_size')?.delta.batch_size, 4096, '"100000" read as a number and clamped');
    assert.equal(byKnob('mlp_depth')?.delta.mlp_depth, 3, 'rounded');
    assert.ok(!fromLlm.some((h) => 'optimizer' in h.delta), 'an unknown choice is dropped');
  });

  it('gives up on a hanging LLM after its timeout and goes on with the planner', async () => {
    const id = uniqueName('hang');
    llm.script(['hang', 'hang']);
    const started = Date.now();
    const slate = await engineWith({ timeoutSec: 1, maxRetries: 1 }).proposeSlate(request(id));
    assertValidSlate(slate);
    assert.ok(Date.now() - started < 20_000);
    const [call] = await calls(id);
    assert.equal(call?.status, 'error');
    assert.match(call?.error ?? '', /timed out/);
  });

  it('treats injected text as data: control characters stripped, the config still checked', async () => {
    const id = uniqueName('inject');
    llm.script(['injected']);
    const slate = await engineWith().proposeSlate(request(id));
    assertValidSlate(slate);
    const injected = slate.find((h) => h.source === 'llm');
    assert.deepEqual(injected?.delta, { dropout: 0.1 });
    assert.ok(!injected?.rationale.includes('\u0007'));
    // The system prompt tells the model that the data block carries no instructions.
    const system = llm.requests.at(-1)?.body.messages[0]?.content ?? '';
    assert.match(system, /never an instruction/);
  });

  it('stops calling the LLM when the campaign budget is spent', async () => {
    const id = uniqueName('budget');
    const engine = engineWith();
    llm.script(['good', 'good']);
    await engine.proposeSlate(request(id, { llmBudget: { maxCalls: 1, maxTokens: 1_000_000 } }));
    const sent = llm.requests.length;
    const slate = await engine.proposeSlate(
      request(id, { llmBudget: { maxCalls: 1, maxTokens: 1_000_000 }, seed: 8 }),
    );
    assertValidSlate(slate);
    assert.equal(llm.requests.length, sent, 'no request over budget');
    assert.deepEqual(
      (await calls(id)).map((c) => c.status),
      ['ok', 'refused'],
    );
    llm.script([]);
  });

  it('leaves engineer-excluded knobs alone, whoever proposes', async () => {
    llm.script(['good']);
    const slate = await engineWith().proposeSlate(
      request(uniqueName('frozen'), { excludeKnobs: ['lr', 'batch_size', 'optimizer'] }),
    );
    assertValidSlate(slate);
    for (const h of slate)
      for (const k of ['lr', 'batch_size', 'optimizer']) assert.ok(!(k in h.delta), `${h.id} changes ${k}`);
  });

  it('asks the LLM which wins to merge, keeping only real win ids', async () => {
    llm.script(['merge']);
    const merges = await engineWith().proposeMerges({
      campaignId: uniqueName('merge'),
      spec,
      wins: [
        { hypothesisId: 'lr=0.003', delta: { lr: 0.003 }, gainPct: 1.2 },
        { hypothesisId: 'dropout=0.1', delta: { dropout: 0.1 }, gainPct: 0.8 },
      ],
      maxMerges: 4,
      llmBudget: budget,
    });
    assert.deepEqual(
      merges.map((m) => m.parts),
      [['dropout=0.1', 'lr=0.003']],
    );
  });

  it('learns from history: earlier wins are re-tested, the track record is written and summarised', async () => {
    const store = new Store(pool);
    const past = uniqueName('past');
    await store.recordCampaignStarted({ id: past, firstRunId: past, model: spec.name, input: {} });
    const run = async (
      hypothesis: Hypothesis,
      role: 'baseline' | 'candidate',
      seed: number,
      value: number,
    ) => {
      const experimentId = `${past}.${hypothesis.id}.${seed}`;
      await store.recordExperimentQueued({
        campaignId: past,
        experimentId,
        model: spec.name,
        phase: 'validation',
        role,
        attempt: 1,
        costGpuHours: 0.01,
        hypothesis,
        config: {
          ...Object.fromEntries(Object.entries(spec.knobs).map(([k, v]) => [k, v.baseline])),
          ...hypothesis.delta,
        },
        fidelity: 160,
        seed,
        pollIntervalSec: 5,
      });
      await store.recordExperimentOutcome(
        experimentId,
        { status: 'succeeded', metrics: { ne: value }, wallTimeSec: 1 },
        'ne',
      );
    };
    const baseline: Hypothesis = { id: 'baseline', source: 'baseline', rationale: 'as is', delta: {} };
    const win: Hypothesis = {
      id: 'interaction=dcn',
      source: 'research',
      rationale: 'crosses',
      delta: { interaction: 'dcn' },
    };
    const loss: Hypothesis = { id: 'lr=0.3', source: 'planner', rationale: 'hot', delta: { lr: 0.3 } };
    for (const seed of [1, 2]) {
      await run(baseline, 'baseline', seed, 0.9);
      await run(win, 'candidate', seed, 0.85);
      await run(loss, 'candidate', seed, 0.99);
    }
    await store.recordCampaignFinished(past, { status: 'failed', error: 'test' });
    const note = await writeTrackRecord(pool, spec, past, 160);
    assert.match(note, /interaction=dcn 5\.56% @160/);

    const history = await loadHistory(pool, spec, { campaignId: 'next', highFidelity: 160 });
    assert.ok(
      history.effects.some((e) => e.knob === 'interaction' && e.value === 'dcn' && e.meanGainPct > 5),
    );
    assert.match(summarizeHistory(history), /track record/);
    const slate = await new HypothesisEngine({ pool, log }).proposeSlate(request('next', { count: 8 }));
    assertValidSlate(slate, 8);
    assert.ok(
      slate.some((h) => h.source === 'history' && h.id === 'interaction=dcn'),
      JSON.stringify(slate.map((h) => [h.source, h.id])),
    );
    assert.ok(!slate.some((h) => h.id === 'lr=0.3'), 'a measured loss is not proposed again');
  });
});

describe('a campaign with the LLM configured', () => {
  let env: TestWorkflowEnvironment;
  let pool: Pool;
  let worker: RunningWorker;
  let agent: GpuAgent;
  let llm: FakeLlm;

  before(async () => {
    env = await startTemporal();
    pool = await testDatabase();
    // Every other answer is broken: the campaign must not notice, beyond fewer LLM hypotheses.
    llm = await startFakeLlm({ script: ['good', 'out-of-range', 'unknown-knobs'], fallback: 'merge' });
    const config = testConfig({
      REA_TEMPORAL_ADDRESS: env.address,
      REA_MODELS_DIR: FIXTURE_MODELS,
      REA_LLM_BASE_URL: llm.url,
      REA_LLM_API_KEY: API_KEY,
      REA_LLM_PRICE_INPUT: '0.15',
      REA_LLM_PRICE_OUTPUT: '0.6',
    });
    worker = await startWorker(config, log, { workflowBundle: await workflowBundle() });
    agent = await startTestAgent(config, 2);
    campaignConfig = config;
  });
  let campaignConfig: ReturnType<typeof testConfig>;

  after(async () => {
    await agent?.close();
    await worker?.shutdown();
    await llm?.close();
    await pool?.end();
    await env?.teardown();
  });

  it('records LLM hypotheses with rationales and costs, and no invalid config reaches a trainer', async () => {
    const id = uniqueName('llm-camp');
    const handle = await startCampaign(
      env.client,
      campaignConfig,
      {
        model: 'tiny-ctr',
        budget: { experiments: 24 },
        parallelism: 2,
        replicates: 2,
        slateSize: 5,
        eta: 2,
        refinements: 2,
        pollIntervalSec: 5,
      },
      id,
    );
    const result = await handle.result();
    assert.equal(result.status, 'completed');
    const rows = await new Store(pool).experiments(id);
    const llmRows = rows.filter((r) => r.source === 'llm');
    assert.ok(llmRows.length >= 1, JSON.stringify(rows.map((r) => [r.source, r.hypothesis_id])));
    const rationales = await pool.query<{ rationale: string }>(
      "SELECT rationale FROM experiments WHERE campaign_id = $1 AND source = 'llm'",
      [id],
    );
    assert.ok(rationales.rows.every((r) => r.rationale.length > 10));
    for (const r of rows) {
      const knobs = Object.fromEntries(Object.entries(r.config).filter(([k]) => k in spec.knobs));
      assert.deepEqual(configProblems(spec, knobs), [], `${r.id} ran a valid config`);
      assert.deepEqual(
        Object.keys(r.config).filter((k) => !(k in spec.knobs)),
        [],
        'no unknown knob reached a trainer',
      );
    }
    const cost = await pool.query<{ calls: number; cost: number }>(
      "SELECT count(*)::int AS calls, sum(cost_usd) AS cost FROM llm_calls WHERE campaign_id = $1 AND status = 'ok'",
      [id],
    );
    assert.ok((cost.rows[0]?.calls ?? 0) >= 1);
    assert.ok(Number(cost.rows[0]?.cost) > 0);
    // The track record for the next campaign.
    const note = await pool.query('SELECT note FROM insights WHERE campaign_id = $1', [id]);
    assert.equal(note.rowCount, 1);
  });
});

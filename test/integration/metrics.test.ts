/**
 * Prometheus metrics: rea's own, computed from PostgreSQL at scrape time, and the Temporal SDK's,
 * each on its own endpoint of a real worker.
 */
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Pool } from 'pg';
import { createPool } from '../../src/db/pool';
import { Store } from '../../src/db/store';
import { createLogger } from '../../src/logging';
import { EXPOSITION_CONTENT_TYPE } from '../../src/metrics/exposition';
import { collectReaMetrics } from '../../src/metrics/rea-metrics';
import { startMetricsServer, type MetricsServer } from '../../src/metrics/server';
import { installTemporalRuntime } from '../../src/temporal/runtime';
import { startWorker } from '../../src/temporal/worker';
import type { ExperimentOutcome, ExperimentRequest } from '../../src/core/types';
import {
  startTemporal,
  testConfig,
  testDatabase,
  uniqueName,
  waitFor,
  workflowBundle,
} from '../helpers/stack';

interface ParsedFamily {
  help: string;
  type: string;
  samples: { labels: Record<string, string>; value: number }[];
}

/** Parses the text exposition format strictly: HELP and TYPE before samples, escaped label values. */
function parseExposition(text: string): Map<string, ParsedFamily> {
  const families = new Map<string, ParsedFamily>();
  assert.ok(text.endsWith('\n'), 'the exposition ends with a line feed');
  for (const line of text.split('\n').filter(Boolean)) {
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      const family = families.get(name) ?? { help: '', type: '', samples: [] };
      if (kind === 'HELP') family.help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      else family.type = rest;
      families.set(name, family);
      continue;
    }
    if (line.startsWith('#')) continue;
    const head = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{)?/.exec(line);
    assert.ok(head, `not a sample line: ${line}`);
    const name = head[1] as string;
    let i = head[0].length;
    const labels: Record<string, string> = {};
    if (head[2]) {
      while (line[i] !== '}') {
        const key = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(i));
        assert.ok(key, `bad label at ${i} in ${line}`);
        i += key[0].length;
        let value = '';
        for (; line[i] !== '"'; i++) {
          if (line[i] === '\\') {
            i++;
            value += line[i] === 'n' ? '\n' : line[i];
          } else value += line[i];
        }
        labels[key[1] as string] = value;
        i++;
        if (line[i] === ',') i++;
      }
      i++;
    }
    const family = families.get(name.replace(/_(bucket|sum|count)$/, '')) ?? families.get(name);
    assert.ok(family?.type, `sample ${name} before its # TYPE line`);
    family.samples.push({ labels, value: Number(line.slice(i).trim().split(' ')[0]) });
  }
  return families;
}

/** The value of the sample of `name` whose labels include `labels`; undefined when there is none. */
function valueOf(
  families: Map<string, ParsedFamily>,
  name: string,
  labels: Record<string, string>,
): number | undefined {
  const matches = (families.get(name)?.samples ?? []).filter((s) =>
    Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  assert.ok(matches.length <= 1, `${matches.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return matches[0]?.value;
}

async function scrape(url: string): Promise<Map<string, ParsedFamily>> {
  const res = await fetch(url);
  assert.equal(res.status, 200, await res.clone().text());
  return parseExposition(await res.text());
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const log = createLogger('test', 'warn');

function experiment(campaignId: string, model: string, n: number, costGpuHours: number): ExperimentRequest {
  return {
    experimentId: `${campaignId}.e${String(n).padStart(4, '0')}`,
    campaignId,
    model,
    hypothesis: { id: `h${n}`, source: 'planner', rationale: 'test', delta: {} },
    config: {},
    fidelity: 40,
    seed: n,
    phase: 'validation',
    role: 'candidate',
    attempt: 1,
    costGpuHours,
    pollIntervalSec: 5,
  };
}

describe('Prometheus metrics', () => {
  let env: TestWorkflowEnvironment;
  let pool: Pool;
  let temporalMetricsPort: number;
  const servers: MetricsServer[] = [];
  // Names of this run only: the test database holds other tests' rows too.
  const model = uniqueName('metrics-model');
  const llmModel = uniqueName('llm');
  const campaignId = uniqueName('metrics-camp');

  before(async () => {
    // The SDK's endpoint is part of the process's one Temporal runtime: install it before anything else.
    temporalMetricsPort = await freePort();
    installTemporalRuntime('warn', { metricsAddress: `127.0.0.1:${temporalMetricsPort}` });
    env = await startTemporal();
    pool = await testDatabase();

    const store = new Store(pool);
    await store.recordCampaignStarted({ id: campaignId, firstRunId: 'r1', model, input: {} });
    await store.recordCampaignStarted({ id: `${campaignId}-b`, firstRunId: 'r1', model, input: {} });
    await store.recordCampaignFinished(`${campaignId}-b`, { status: 'failed', error: 'test' });
    const outcomes: (ExperimentOutcome | undefined)[] = [
      { status: 'succeeded', metrics: { auc: 0.7 }, wallTimeSec: 10 },
      { status: 'succeeded', metrics: { auc: 0.71 }, wallTimeSec: 12 },
      { status: 'failed', failureClass: 'oom', message: 'out of memory', wallTimeSec: 3 },
      { status: 'failed', failureClass: 'nan', message: 'loss is nan', wallTimeSec: 4 },
      { status: 'failed', failureClass: 'cancelled', message: 'aborted', wallTimeSec: 1 },
      undefined, // still queued
    ];
    for (const [i, outcome] of outcomes.entries()) {
      const req = experiment(campaignId, model, i + 1, 0.25);
      await store.recordExperimentQueued(req);
      if (outcome) await store.recordExperimentOutcome(req.experimentId, outcome, 'auc');
    }
    // The hypothesis engine writes these (src/engine/llm.ts).
    await pool.query(
      `INSERT INTO llm_calls (campaign_id, purpose, model, status, prompt_tokens, completion_tokens, cost_usd)
       VALUES ($1, 'slate', $2, 'ok', 1000, 200, 0.5), ($1, 'slate', $2, 'ok', 500, 100, 0.25),
              ($1, 'merges', $2, 'invalid', 300, 50, 0.125), ($1, 'slate', $2, 'error', 0, 0, 0)`,
      [campaignId, llmModel],
    );
  });

  after(async () => {
    for (const s of servers) await s.close();
    await pool?.end();
    await env?.teardown();
  });

  const serve = async (opts: { cacheMs?: number; pool?: Pool } = {}) => {
    const server = await startMetricsServer({
      address: '127.0.0.1:0',
      collect: () => collectReaMetrics(opts.pool ?? pool),
      log,
      cacheMs: opts.cacheMs ?? 0,
    });
    servers.push(server);
    return server;
  };

  it('counts experiments by model and outcome, failures by class, and active ones as a gauge', async () => {
    const m = await scrape((await serve()).url);
    assert.equal(m.get('rea_experiments_total')?.type, 'counter');
    assert.match(m.get('rea_experiments_total')?.help ?? '', /Finished experiments/);
    assert.equal(valueOf(m, 'rea_experiments_total', { model, outcome: 'succeeded' }), 2);
    assert.equal(valueOf(m, 'rea_experiments_total', { model, outcome: 'failed', failure_class: 'oom' }), 1);
    assert.equal(valueOf(m, 'rea_experiments_total', { model, outcome: 'failed', failure_class: 'nan' }), 1);
    assert.equal(valueOf(m, 'rea_experiments_total', { model, outcome: 'cancelled' }), 1);
    assert.equal(m.get('rea_experiments')?.type, 'gauge');
    assert.equal(valueOf(m, 'rea_experiments', { model, status: 'queued' }), 1);
    assert.equal(valueOf(m, 'rea_experiments', { model, status: 'running' }), 0);
  });

  it('adds up GPU-hours charged and training seconds per model', async () => {
    const m = await scrape((await serve()).url);
    assert.equal(valueOf(m, 'rea_gpu_hours_used_total', { model }), 1.5);
    assert.equal(valueOf(m, 'rea_training_seconds_total', { model }), 30);
  });

  it('counts LLM calls by status, tokens by type and cost, per LLM model and never per campaign', async () => {
    const m = await scrape((await serve()).url);
    assert.equal(valueOf(m, 'rea_llm_calls_total', { llm_model: llmModel, status: 'ok' }), 2);
    assert.equal(valueOf(m, 'rea_llm_calls_total', { llm_model: llmModel, status: 'invalid' }), 1);
    assert.equal(valueOf(m, 'rea_llm_calls_total', { llm_model: llmModel, status: 'error' }), 1);
    assert.equal(valueOf(m, 'rea_llm_tokens_total', { llm_model: llmModel, type: 'prompt' }), 1800);
    assert.equal(valueOf(m, 'rea_llm_tokens_total', { llm_model: llmModel, type: 'completion' }), 350);
    assert.equal(valueOf(m, 'rea_llm_cost_usd_total', { llm_model: llmModel }), 0.875);
    for (const [name, family] of m) {
      if (!name.startsWith('rea_')) continue;
      for (const s of family.samples) assert.ok(!('campaign' in s.labels || 'campaign_id' in s.labels), name);
    }
  });

  it('shows campaigns by model and status, zero for the statuses a model has none in', async () => {
    const m = await scrape((await serve()).url);
    assert.equal(m.get('rea_campaigns')?.type, 'gauge');
    assert.equal(valueOf(m, 'rea_campaigns', { model, status: 'running' }), 1);
    assert.equal(valueOf(m, 'rea_campaigns', { model, status: 'failed' }), 1);
    assert.equal(valueOf(m, 'rea_campaigns', { model, status: 'completed' }), 0);
  });

  it('escapes quotes, backslashes and line feeds in label values', async () => {
    const odd = `${model}-"quoted"\\back\nline`;
    await new Store(pool).recordCampaignStarted({
      id: `${campaignId}-odd`,
      firstRunId: 'r1',
      model: odd,
      input: {},
    });
    const res = await fetch((await serve()).url);
    const text = await res.text();
    assert.ok(text.includes(`model="${model}-\\"quoted\\"\\\\back\\nline"`), text);
    assert.equal(valueOf(parseExposition(text), 'rea_campaigns', { model: odd, status: 'running' }), 1);
  });

  it('is the same from every worker and after a restart, since PostgreSQL holds the numbers', async () => {
    const first = await serve();
    const second = await serve();
    const before = await (await fetch(first.url)).text();
    assert.equal(await (await fetch(second.url)).text(), before);
    await first.close();
    const restarted = await serve();
    assert.equal(await (await fetch(restarted.url)).text(), before);
  });

  it('serves one collection to the scrapes within its cache time', async () => {
    const server = await serve({ cacheMs: 60_000 });
    const first = await scrape(server.url);
    await new Store(pool).recordExperimentQueued(experiment(campaignId, model, 99, 0.25));
    const cached = await scrape(server.url);
    assert.equal(valueOf(cached, 'rea_experiments', { model, status: 'queued' }), 1);
    assert.deepEqual(cached, first);
    const fresh = await scrape((await serve()).url);
    assert.equal(valueOf(fresh, 'rea_experiments', { model, status: 'queued' }), 2);
  });

  it('answers the Prometheus content type, 404 off /metrics, and 503 naming PostgreSQL when it is down', async () => {
    const server = await serve();
    const res = await fetch(server.url);
    assert.equal(res.headers.get('content-type'), EXPOSITION_CONTENT_TYPE);
    assert.equal((await fetch(server.url.replace('/metrics', '/'))).status, 404);
    const down = createPool('postgres://postgres@127.0.0.1:1/nowhere', 1);
    try {
      const broken = await fetch((await serve({ pool: down })).url);
      assert.equal(broken.status, 503);
      assert.match(await broken.text(), /rea could not collect its metrics from PostgreSQL: .*ECONNREFUSED/);
    } finally {
      await down.end();
    }
  });

  it('names the variable when the address is taken', async () => {
    const taken = await serve();
    const address = new URL(taken.url).host;
    await assert.rejects(
      startMetricsServer({ address, collect: () => collectReaMetrics(pool), log }),
      new RegExp(`^Error: REA_METRICS_ADDRESS=${address}: cannot listen \\(EADDRINUSE\\)`),
    );
  });

  it('a worker serves rea_* on REA_METRICS_ADDRESS and the SDK serves temporal_* on its own endpoint', async () => {
    const config = testConfig({ REA_TEMPORAL_ADDRESS: env.address, REA_METRICS_ADDRESS: '127.0.0.1:0' });
    const worker = await startWorker(config, log, { workflowBundle: await workflowBundle() });
    try {
      assert.ok(worker.metricsUrl, 'the worker reports where its metrics are');
      const rea = await scrape(worker.metricsUrl);
      assert.equal(valueOf(rea, 'rea_experiments_total', { model, outcome: 'succeeded' }), 2);
      const temporal = await waitFor(
        'temporal_* metrics from the SDK',
        async () => {
          const families = await scrape(`http://127.0.0.1:${temporalMetricsPort}/metrics`);
          const names = [...families.keys()].filter((n) => n.startsWith('temporal_'));
          return names.some((n) => families.get(n)?.samples.length) ? names : undefined;
        },
        30_000,
      );
      assert.ok(temporal.length > 0);
    } finally {
      await worker.shutdown();
    }
    // rea's endpoint goes with its worker.
    await assert.rejects(fetch(worker.metricsUrl), /fetch failed/);
  });

  it('refuses a second Temporal metrics address in the same process', () => {
    assert.throws(
      () => installTemporalRuntime('warn', { metricsAddress: '127.0.0.1:1' }),
      /cannot serve Temporal metrics on 127\.0\.0\.1:1: this process installed the Temporal runtime with metrics on 127\.0\.0\.1:\d+ already/,
    );
  });
});

/**
 * Logs of a real worker and gpu-agent running a campaign, with an LLM API key and a database password
 * configured: neither ever appears in a line, even where an answer from the LLM echoes the key, and
 * the lines of activities and training jobs carry their campaign and experiment ids.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Pool } from 'pg';
import { startGpuAgent, type GpuAgent } from '../../src/cluster/gpu-agent';
import type { ReaConfig } from '../../src/config';
import { createLogger } from '../../src/logging';
import { installTemporalRuntime } from '../../src/temporal/runtime';
import { startCampaign } from '../../src/temporal/client';
import { startWorker, type RunningWorker } from '../../src/temporal/worker';
import {
  FIXTURE_MODELS,
  startTemporal,
  TEST_DATABASE_URL,
  testConfig,
  testDatabase,
  uniqueName,
  waitFor,
  workflowBundle,
} from '../helpers/stack';

const API_KEY = 'sk-proj-LOGTEST-7f3a9c2e1d5b8a4f6e0c';
const DB_PASSWORD = 'pg-secret-LOGTEST-91c4';

/** Every line any logger of this process writes (rea's, the Temporal SDK's, the agent's). */
const lines: string[] = [];
const capture = { write: (line: string) => void lines.push(line) };
const parsed = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);

/** An OpenAI-compatible endpoint that refuses the key and, as OpenAI does, quotes it back. */
async function refusingLlm(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    const key = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    res.writeHead(401, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        error: {
          message: `Incorrect API key provided: ${key}. You can find your API key at https://platform.openai.com/account/api-keys.`,
          type: 'invalid_request_error',
          code: 'invalid_api_key',
        },
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('a worker configured with secrets', () => {
  let env: TestWorkflowEnvironment;
  let pool: Pool;
  let llm: Awaited<ReturnType<typeof refusingLlm>>;
  let config: ReaConfig;
  let worker: RunningWorker | undefined;
  let agent: GpuAgent | undefined;

  before(async () => {
    // Before any connection: the SDK's own logs go to the same capture.
    installTemporalRuntime('info', { destination: capture });
    env = await startTemporal();
    pool = await testDatabase();
    llm = await refusingLlm();
    // PostgreSQL trusts local connections here, so any password in the URL is accepted.
    const databaseUrl = new URL(TEST_DATABASE_URL);
    databaseUrl.username = 'postgres';
    databaseUrl.password = DB_PASSWORD;
    config = testConfig({
      REA_TEMPORAL_ADDRESS: env.address,
      REA_MODELS_DIR: FIXTURE_MODELS,
      REA_DATABASE_URL: databaseUrl.toString(),
      REA_LLM_BASE_URL: llm.url,
      REA_LLM_API_KEY: API_KEY,
      REA_LLM_MAX_RETRIES: '0',
    });
    worker = await startWorker(config, createLogger('worker', 'debug', capture), {
      workflowBundle: await workflowBundle(),
    });
    agent = await startGpuAgent({
      redisUrl: config.REA_REDIS_URL,
      prefix: config.REA_QUEUE_PREFIX,
      slots: ['', ''],
      python: config.REA_PYTHON,
      projectRoot: config.root,
      workDir: config.REA_WORK_DIR,
      log: createLogger('gpu-agent', 'debug', capture),
      lockSec: config.REA_POOL_LOCK_SEC,
      databaseUrl: config.REA_DATABASE_URL,
    });
  });

  after(async () => {
    await agent?.close();
    await worker?.shutdown();
    await llm?.close();
    await pool?.end();
    await env?.teardown();
  });

  it('logs neither the LLM API key nor the database password, through a campaign whose LLM call fails', async () => {
    const campaignId = uniqueName('logcamp');
    const handle = await startCampaign(
      env.client,
      config,
      { model: 'tiny-ctr', budget: { experiments: 6 }, replicates: 2, slateSize: 2, pollIntervalSec: 2 },
      campaignId,
    );
    try {
      // The evidence (the LLM's call among it) is gathered while the baseline runs: wait for both.
      await waitFor('the failed LLM call and two started training jobs in the log', () =>
        Promise.resolve(
          parsed().some((l) => l.msg === 'LLM call failed' && l.campaignId === campaignId) &&
            parsed().filter((l) => l.msg === 'training job started' && l.campaignId === campaignId).length >=
              2
            ? true
            : undefined,
        ),
      );
    } finally {
      await handle.terminate('the test has what it needs');
    }
    const text = lines.join('');
    assert.ok(!text.includes(API_KEY), 'the LLM API key is in a log line');
    assert.ok(!text.includes(DB_PASSWORD), 'the database password is in a log line');

    // Nor in the results store: the recorded error of the failed call is scrubbed too.
    const stored = await pool.query<{ error: string }>('SELECT error FROM llm_calls WHERE campaign_id = $1', [
      campaignId,
    ]);
    assert.ok(
      stored.rows.length > 0 && stored.rows.every((r) => !r.error.includes(API_KEY)),
      'the key is in llm_calls',
    );
    const failure = parsed().find((l) => l.msg === 'LLM call failed');
    assert.match(String(failure?.reason), /HTTP 401 .*Incorrect API key provided: \*\*\*\./);
    const ready = parsed().find((l) => l.msg === 'worker ready');
    assert.match(String(ready?.database), /^postgres:\/\/postgres:\*\*\*@127\.0\.0\.1/);
  });

  it('tags activity and training-job lines with their campaign and experiment ids', () => {
    const submitted = parsed().filter((l) => l.msg === 'training job submitted');
    assert.ok(submitted.length >= 2, `${submitted.length} jobs submitted`);
    for (const l of submitted) {
      assert.equal(l.activity, 'submitTrainingJob');
      assert.match(String(l.experimentId), /\.e\d{4}$/);
      assert.equal(l.campaignId, String(l.experimentId).replace(/\.e\d{4}$/, ''));
    }
    const started = parsed().filter((l) => l.msg === 'training job started' && l.name === 'rea-gpu-agent');
    assert.ok(started.length >= 2, `${started.length} jobs started`);
    for (const l of started) assert.ok(l.experimentId && l.campaignId, JSON.stringify(l));
  });

  it('writes every line, the Temporal SDK’s included, as one JSON object', () => {
    assert.ok(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n')));
    assert.ok(
      parsed().some((l) => l.name === 'rea-temporal'),
      'no line from the Temporal SDK',
    );
  });
});

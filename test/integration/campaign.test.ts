/**
 * A campaign end to end on real components: a Temporal dev server, PostgreSQL, Redis (BullMQ), a
 * gpu-agent and the real PyTorch trainer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { Queue } from 'bullmq';
import type { Pool } from 'pg';
import type { TrainingJob } from '../../src/cluster/adapter';
import { redisConnection, TRAINING_QUEUE } from '../../src/cluster/bullmq-pool';
import { startGpuAgent, type GpuAgent } from '../../src/cluster/gpu-agent';
import { InvalidInputError } from '../../src/core/errors';
import { CAMPAIGN_WORKFLOW, searchAttributes, statusQueryName } from '../../src/core/messages';
import type { CampaignResult } from '../../src/core/types';
import { Store } from '../../src/db/store';
import { createLogger } from '../../src/logging';
import { startCampaign } from '../../src/temporal/client';
import { startWorker, type RunningWorker } from '../../src/temporal/worker';
import { startTemporal, testConfig, testDatabase, uniqueName, workflowBundle } from '../helpers/stack';

describe('campaign on the real stack', () => {
  let env: TestWorkflowEnvironment;
  let pool: Pool;
  let worker: RunningWorker;
  let agent: GpuAgent;
  let config: ReturnType<typeof testConfig>;
  const log = createLogger('test', 'warn');

  before(async () => {
    env = await startTemporal();
    pool = await testDatabase();
    config = testConfig({ REA_TEMPORAL_ADDRESS: env.address });
    worker = await startWorker(config, log, { workflowBundle: await workflowBundle() });
    agent = await startGpuAgent({
      redisUrl: config.REA_REDIS_URL,
      prefix: config.REA_QUEUE_PREFIX,
      slots: ['', ''],
      python: config.REA_PYTHON,
      projectRoot: config.root,
      workDir: config.REA_WORK_DIR,
      log,
    });
  });

  after(async () => {
    await agent?.close();
    await worker?.shutdown();
    await pool?.end();
    await env?.teardown();
  });

  it('completes, records every experiment in PostgreSQL, and returns the best config with its gain', async () => {
    const id = uniqueName('camp');
    const handle = await startCampaign(
      env.client,
      config,
      { model: 'synthetic-ctr', budget: { experiments: 4 }, parallelism: 2, seed: 3, pollIntervalSec: 20 },
      id,
    );
    const result: CampaignResult = await handle.result();

    const rows = await new Store(pool).experiments(id);
    assert.equal(rows.length, 4);
    assert.ok(
      rows.every((r) => r.status === 'succeeded' && typeof r.primary_value === 'number'),
      JSON.stringify(rows),
    );
    assert.equal(rows.filter((r) => r.source === 'baseline').length, 1);

    const baselineRow = rows.find((r) => r.source === 'baseline');
    const bestRow = [...rows].sort((a, b) => (a.primary_value as number) - (b.primary_value as number))[0];
    assert.equal(result.baseline.value, baselineRow?.primary_value);
    assert.equal(result.best.experimentId, bestRow?.id);
    const expectedGain =
      (((baselineRow?.primary_value as number) - (bestRow?.primary_value as number)) /
        (baselineRow?.primary_value as number)) *
      100;
    assert.ok(Math.abs(result.gainPct - expectedGain) < 1e-9);
    assert.deepEqual(result.experiments, { total: 4, succeeded: 4, failed: 0 });

    const campaignRow = await new Store(pool).campaign(id);
    assert.equal(campaignRow?.status, 'completed');
    assert.deepEqual(campaignRow?.result, result);

    const described = await handle.describe();
    assert.equal(described.status.name, 'COMPLETED');
    assert.deepEqual(described.typedSearchAttributes.get(searchAttributes.model), 'synthetic-ctr');
    assert.equal(described.typedSearchAttributes.get(searchAttributes.phase), 'done');
    assert.equal(described.typedSearchAttributes.get(searchAttributes.budgetUsed), 4);

    const status = await handle.query<{ phase: string; budget: { used: number } }>(statusQueryName);
    assert.equal(status.phase, 'done');
    assert.equal(status.budget.used, 4);

    // Each experiment hibernated and was woken by the job-finished event, not by its poll timer.
    for (const row of rows) {
      const history = await env.client.workflow.getHandle(row.id).fetchHistory();
      const signals = (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes);
      assert.equal(signals[0]?.workflowExecutionSignaledEventAttributes?.signalName, 'jobFinished', row.id);
    }

    // Both workflows replay deterministically from their recorded histories.
    const bundle = await workflowBundle();
    await Worker.runReplayHistory({ workflowBundle: bundle }, await handle.fetchHistory(), id);
    const child = rows[0]?.id as string;
    await Worker.runReplayHistory(
      { workflowBundle: bundle },
      await env.client.workflow.getHandle(child).fetchHistory(),
      child,
    );
  });

  it('refuses a malformed input started straight from Temporal, naming the field, and starts nothing', async () => {
    const id = uniqueName('bad');
    const handle = await env.client.workflow.start(CAMPAIGN_WORKFLOW, {
      taskQueue: config.REA_TASK_QUEUE,
      workflowId: id,
      args: [{ model: 'synthetic-ctr', budget: { experiments: 'many' } }],
    });
    const err = await handle.result().then(
      () => assert.fail('the campaign accepted a malformed input'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.match(err.cause?.message ?? '', /budget\.experiments: expected an integer count/);
    assert.equal(await new Store(pool).campaign(id), undefined);
    assert.equal((await new Store(pool).experiments(id)).length, 0);
    const queue = new Queue<TrainingJob>(TRAINING_QUEUE, {
      connection: redisConnection(config.REA_REDIS_URL),
      prefix: config.REA_QUEUE_PREFIX,
    });
    try {
      const jobs = await queue.getJobs(['waiting', 'active', 'completed', 'failed', 'delayed']);
      assert.equal(jobs.filter((j) => j.data.campaignId === id).length, 0);
    } finally {
      await queue.close();
    }
  });

  it('refuses an unknown model by name before any experiment', async () => {
    const id = uniqueName('nomodel');
    const handle = await env.client.workflow.start(CAMPAIGN_WORKFLOW, {
      taskQueue: config.REA_TASK_QUEUE,
      workflowId: id,
      args: [{ model: 'no-such-model', budget: { experiments: 3 } }],
    });
    const err = await handle.result().then(
      () => assert.fail('the campaign accepted an unknown model'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.match(err.cause?.message ?? '', /model: no model spec named "no-such-model"/);
    assert.equal(await new Store(pool).campaign(id), undefined);
  });

  it('through rea, refuses a malformed input before any workflow exists', async () => {
    const id = uniqueName('refused');
    await assert.rejects(
      startCampaign(
        env.client,
        config,
        { model: 'synthetic-ctr', budget: { experiments: 3 }, parallelism: 0 },
        id,
      ),
      (e: unknown) => e instanceof InvalidInputError && /parallelism/.test(e.message),
    );
    await assert.rejects(env.client.workflow.getHandle(id).describe(), WorkflowNotFoundError);
  });
});

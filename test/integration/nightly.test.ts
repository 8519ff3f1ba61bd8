/**
 * Nightly kicks: the Temporal Schedule starts the nightly workflow, which starts one campaign per due
 * model and never a second one for a model whose campaign is still running.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Pool } from 'pg';
import type { GpuAgent } from '../../src/cluster/gpu-agent';
import { InvalidInputError } from '../../src/core/errors';
import { createLogger } from '../../src/logging';
import { upsertNightlySchedule } from '../../src/temporal/schedule';
import { startWorker, type RunningWorker } from '../../src/temporal/worker';
import type { NightlyResult } from '../../workflows/nightly';
import {
  FIXTURE_MODELS,
  startTemporal,
  testConfig,
  testDatabase,
  uniqueName,
  waitFor,
  workflowBundle,
  startTestAgent,
} from '../helpers/stack';

describe('nightly schedule', () => {
  let env: TestWorkflowEnvironment;
  let pool: Pool;
  let worker: RunningWorker;
  let agent: GpuAgent;
  let config: ReturnType<typeof testConfig>;
  const log = createLogger('test', 'warn');

  before(async () => {
    env = await startTemporal();
    pool = await testDatabase();
    config = testConfig({ REA_TEMPORAL_ADDRESS: env.address, REA_MODELS_DIR: FIXTURE_MODELS });
    worker = await startWorker(config, log, { workflowBundle: await workflowBundle() });
    agent = await startTestAgent(config, 1);
  });

  after(async () => {
    await agent?.close();
    await worker?.shutdown();
    await pool?.end();
    await env?.teardown();
  });

  it('refuses a template that would make an invalid campaign, before creating anything', async () => {
    await assert.rejects(
      upsertNightlySchedule(env.client, config, {
        models: ['tiny-ctr'],
        cron: '0 2 * * *',
        template: { budget: {} },
      }),
      (e: unknown) =>
        e instanceof InvalidInputError && /budget: expected experiments, gpuHours or both/.test(e.message),
    );
  });

  it('starts a campaign per model when kicked, and skips a model whose campaign still runs', async () => {
    const scheduleId = uniqueName('nightly');
    const template = {
      budget: { experiments: 6 },
      replicates: 2,
      slateSize: 2,
      approval: { required: true },
    };
    const first = await upsertNightlySchedule(env.client, config, {
      models: ['tiny-ctr'],
      cron: '0 2 * * *',
      template,
      scheduleId,
    });
    assert.equal(first.created, true);
    const again = await upsertNightlySchedule(env.client, config, {
      models: ['tiny-ctr'],
      cron: '30 2 * * *',
      template,
      scheduleId,
    });
    assert.equal(again.created, false, 'a second call updates the schedule');
    const schedule = env.client.schedule.getHandle(scheduleId);
    assert.deepEqual((await schedule.describe()).spec.calendars?.[0]?.hour, [{ start: 2, end: 2, step: 1 }]);

    const kick = async (): Promise<NightlyResult> => {
      const before = (await schedule.describe()).info.recentActions.length;
      await schedule.trigger();
      const action = await waitFor('the kick', async () => {
        const recent = (await schedule.describe()).info.recentActions;
        return recent.length > before ? recent.at(-1) : undefined;
      });
      const { workflowId, firstExecutionRunId } = action.action.workflow;
      return env.client.workflow
        .getHandle(workflowId, firstExecutionRunId)
        .result() as Promise<NightlyResult>;
    };

    // Nightly campaign ids are per day: clear what an earlier run of this test recorded today.
    await pool.query("DELETE FROM experiments WHERE campaign_id LIKE 'tiny-ctr-nightly-%'");
    await pool.query("DELETE FROM campaigns WHERE id LIKE 'tiny-ctr-nightly-%'");
    const night1 = await kick();
    assert.equal(night1.started.length, 1);
    const campaignId = night1.started[0]?.campaignId as string;
    assert.match(campaignId, /^tiny-ctr-nightly-\d{8}$/);
    // The campaign waits for plan approval, so it is still running at the second kick.
    await waitFor('the campaign in Temporal visibility', async () => {
      for await (const wf of env.client.workflow.list({
        query: `WorkflowId = "${campaignId}" AND ReaModel = "tiny-ctr"`,
      })) {
        if (wf.status.name === 'RUNNING') return true;
      }
      return undefined;
    });
    const night2 = await kick();
    assert.deepEqual(night2.started, []);
    assert.deepEqual(night2.skipped, [
      { model: 'tiny-ctr', why: 'a campaign for this model is still running' },
    ]);

    await env.client.workflow.getHandle(campaignId).signal('abort', { reason: 'test over' });
    await env.client.workflow.getHandle(campaignId).result();
    await schedule.delete();
  });
});

/**
 * Campaigns that Temporal ends from outside (terminate, execution timeout) run no more code, so the
 * reconciler records how they ended. Real Temporal dev server, PostgreSQL and worker; no gpu-agent,
 * so the baseline jobs wait in the queue and each campaign stays in preflight until it is ended.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Pool } from 'pg';
import type { CampaignInput } from '../../src/core/campaign-input';
import { CAMPAIGN_WORKFLOW } from '../../src/core/messages';
import { createLogger } from '../../src/logging';
import { startCampaign } from '../../src/temporal/client';
import { reconcileCampaigns, startReconciler } from '../../src/temporal/reconcile';
import { startWorker, type RunningWorker } from '../../src/temporal/worker';
import {
  FIXTURE_MODELS,
  startTemporal,
  testConfig,
  testDatabase,
  uniqueName,
  waitFor,
  workflowBundle,
} from '../helpers/stack';

const input = {
  model: 'tiny-ctr',
  budget: { experiments: 12 },
  parallelism: 2,
  replicates: 2,
  slateSize: 2,
  pollIntervalSec: 5,
} satisfies Partial<CampaignInput>;

describe('reconciling campaigns that Temporal ended from outside', () => {
  let env: TestWorkflowEnvironment;
  let pool: Pool;
  let worker: RunningWorker;
  let config: ReturnType<typeof testConfig>;
  const log = createLogger('test', 'error');
  const reportsDir = path.join(testConfig().REA_WORK_DIR, 'test-reports', uniqueName('reconcile'));
  const opts = () => ({ reportsDir, modelsDir: FIXTURE_MODELS });

  before(async () => {
    env = await startTemporal();
    pool = await testDatabase();
    // The worker's own loop is off: each test runs a pass when it wants one.
    config = testConfig({
      REA_TEMPORAL_ADDRESS: env.address,
      REA_MODELS_DIR: FIXTURE_MODELS,
      REA_RECONCILE_SEC: '0',
    });
    worker = await startWorker(config, log, { workflowBundle: await workflowBundle() });
  });

  after(async () => {
    await worker?.shutdown();
    await pool?.end();
    await env?.teardown();
  });

  const campaignRow = async (id: string) =>
    (
      await pool.query<{ status: string; error: string | null; finished_at: Date | null }>(
        'SELECT status, error, finished_at FROM campaigns WHERE id = $1',
        [id],
      )
    ).rows[0];
  const experimentRows = async (id: string) =>
    (
      await pool.query<{ id: string; status: string; error: string | null }>(
        'SELECT id, status, error FROM experiments WHERE campaign_id = $1 ORDER BY id',
        [id],
      )
    ).rows;
  /** Starts a campaign and waits until its row and its first queued experiments exist. */
  async function startWaiting(id: string) {
    const handle = await startCampaign(env.client, config, input, id);
    await waitFor('the campaign to queue its baseline experiments', async () =>
      (await experimentRows(id)).length >= 2 ? true : undefined,
    );
    return handle;
  }

  it('records a terminated campaign with its reason, once, and only for its own chain of runs', async () => {
    const id = uniqueName('rec-term');
    const handle = await startWaiting(id);
    // A running workflow is left alone.
    assert.deepEqual(await reconcileCampaigns(env.client, pool, log, opts()), []);
    await handle.terminate('wrong data snapshot');
    assert.equal((await campaignRow(id))?.status, 'running', 'terminate records nothing by itself');

    // The same id in another chain of runs (another server sharing the database): not touched.
    const firstRun = handle.firstExecutionRunId;
    await pool.query('UPDATE campaigns SET first_run_id = $2 WHERE id = $1', [id, 'another-chain']);
    const mine = (await reconcileCampaigns(env.client, pool, log, opts())).filter((c) => c.id === id);
    assert.deepEqual(mine, []);
    assert.equal((await campaignRow(id))?.status, 'running');
    await pool.query('UPDATE campaigns SET first_run_id = $2 WHERE id = $1', [id, firstRun]);

    const changed = await reconcileCampaigns(env.client, pool, log, { ...opts(), campaignId: id });
    assert.equal(changed.length, 1);
    const c = changed[0];
    assert.equal(c?.status, 'terminated');
    assert.match(c?.reason ?? '', /terminated by .+: wrong data snapshot/);
    const row = await campaignRow(id);
    assert.equal(row?.status, 'terminated');
    assert.equal(row?.error, c?.reason);
    assert.ok(row?.finished_at, 'finished_at is set');

    // The report says what happened.
    assert.ok(c?.report && existsSync(c.report), `report written: ${c?.report}`);
    const md = readFileSync(c.report, 'utf8');
    assert.match(md, /terminated/);
    assert.match(md, /wrong data snapshot/);
    assert.match(md, /No final config: the campaign ended without a result/);

    // Its experiments end too: the cancelled children record themselves, and any row whose
    // workflow is closed without a record is closed by the reconciler. None stays open.
    await waitFor(
      'every experiment row to be closed',
      async () => {
        await reconcileCampaigns(env.client, pool, log, opts());
        const rows = await experimentRows(id);
        return rows.every((r) => !['queued', 'running'].includes(r.status)) ? rows : undefined;
      },
      60_000,
    );
    // A second pass changes nothing.
    const again = (await reconcileCampaigns(env.client, pool, log, opts())).filter((x) => x.id === id);
    assert.deepEqual(again, []);
  });

  it('closes experiment rows whose own workflows were terminated', async () => {
    const id = uniqueName('rec-exp');
    const handle = await startWaiting(id);
    const [first] = await experimentRows(id);
    assert.ok(first);
    // An operator terminates one experiment's workflow, then the campaign: nothing records either.
    await env.client.workflow.getHandle(first.id).terminate('stuck job');
    await handle.terminate('giving up');
    const changed = await reconcileCampaigns(env.client, pool, log, { ...opts(), campaignId: id });
    assert.equal(changed[0]?.status, 'terminated');
    assert.ok(changed[0]?.experiments.includes(first.id), JSON.stringify(changed[0]));
    const row = (await experimentRows(id)).find((r) => r.id === first.id);
    assert.equal(row?.status, 'cancelled');
    assert.match(row?.error ?? '', /terminated.*giving up/);
  });

  it('records a campaign that reached its workflow execution timeout', async () => {
    const id = uniqueName('rec-timeout');
    const handle = await env.client.workflow.start(CAMPAIGN_WORKFLOW, {
      taskQueue: config.REA_TASK_QUEUE,
      workflowId: id,
      args: [input],
      workflowExecutionTimeout: '6s',
    });
    await waitFor('the campaign row', async () => ((await campaignRow(id)) ? true : undefined));
    await handle.result().catch(() => undefined);
    const changed = await reconcileCampaigns(env.client, pool, log, { ...opts(), campaignId: id });
    assert.equal(changed[0]?.status, 'timed_out');
    assert.match(changed[0]?.reason ?? '', /execution timeout/);
    assert.equal((await campaignRow(id))?.status, 'timed_out');
  });

  it('leaves rows whose workflow this server does not know', async () => {
    const id = uniqueName('rec-ghost');
    await pool.query(
      `INSERT INTO campaigns (id, first_run_id, model, input, status) VALUES ($1, 'elsewhere', 'tiny-ctr', '{}', 'running')`,
      [id],
    );
    const changed = await reconcileCampaigns(env.client, pool, log, { ...opts(), campaignId: id });
    assert.deepEqual(changed, []);
    assert.equal((await campaignRow(id))?.status, 'running');
    await pool.query('DELETE FROM campaigns WHERE id = $1', [id]);
  });

  it("runs in the background as the worker's loop, and stops cleanly", async () => {
    const id = uniqueName('rec-loop');
    const handle = await startWaiting(id);
    const loop = startReconciler(env.client, pool, log, 1, opts());
    try {
      await handle.terminate('ops terminated it');
      const row = await waitFor(
        'the loop to record the termination',
        async () => {
          const r = await campaignRow(id);
          return r?.status === 'terminated' ? r : undefined;
        },
        30_000,
      );
      assert.match(row.error ?? '', /ops terminated it/);
    } finally {
      await loop.stop();
    }
  });

  it('checks REA_RECONCILE_SEC', () => {
    assert.throws(() => testConfig({ REA_RECONCILE_SEC: '-1' }), /REA_RECONCILE_SEC.*0 \(off\)/s);
    assert.throws(() => testConfig({ REA_RECONCILE_SEC: 'soon' }), /REA_RECONCILE_SEC.*number of seconds/s);
    assert.equal(testConfig({}).REA_RECONCILE_SEC, 300);
  });
});

/**
 * Campaigns end to end on real components: a Temporal dev server, PostgreSQL, Redis (BullMQ), a
 * gpu-agent and a real trainer (the tiny-fm fixture: the FM ranker on a small slice of data, so that
 * runs take a fraction of a second).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { Queue } from 'bullmq';
import type { Pool } from 'pg';
import type { TrainingJob } from '../../src/cluster/adapter';
import { redisConnection, TRAINING_QUEUE } from '../../src/cluster/bullmq-pool';
import type { GpuAgent } from '../../src/cluster/gpu-agent';
import type { CampaignInput } from '../../src/core/campaign-input';
import { InvalidInputError } from '../../src/core/errors';
import { CAMPAIGN_WORKFLOW, searchAttributes, statusQueryName } from '../../src/core/messages';
import type { CampaignResult } from '../../src/core/types';
import { Store } from '../../src/db/store';
import { createLogger } from '../../src/logging';
import { startCampaign } from '../../src/temporal/client';
import { startWorker, type RunningWorker } from '../../src/temporal/worker';
import type { CampaignStatus } from '../../workflows/campaign';
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

type CampaignHandle = WorkflowHandle<(input: CampaignInput) => Promise<CampaignResult>>;

/** The fast FM fixture: runs take a fraction of a second; fidelity 4..36, so the ladder is 4, 12, 36. */
const fm = { model: 'tiny-fm', parallelism: 2, pollIntervalSec: 5 } satisfies Partial<CampaignInput>;
const FULL_RUN = 36 * 1e-6;

describe('campaigns on the real stack', () => {
  let env: TestWorkflowEnvironment;
  let pool: Pool;
  let worker: RunningWorker;
  let agent: GpuAgent;
  let queue: Queue<TrainingJob>;
  let config: ReturnType<typeof testConfig>;
  const log = createLogger('test', 'warn');

  before(async () => {
    // A small history limit (dynamic config): Temporal suggests continue-as-new after 80 events.
    env = await startTemporal({ suggestContinueAsNewAt: 80 });
    pool = await testDatabase();
    config = testConfig({ REA_TEMPORAL_ADDRESS: env.address, REA_MODELS_DIR: FIXTURE_MODELS });
    worker = await startWorker(config, log, { workflowBundle: await workflowBundle() });
    agent = await startTestAgent(config, 2);
    queue = new Queue(TRAINING_QUEUE, {
      connection: redisConnection(config.REA_REDIS_URL),
      prefix: config.REA_QUEUE_PREFIX,
    });
  });

  after(async () => {
    await queue?.close();
    await agent?.close();
    await worker?.shutdown();
    await pool?.end();
    await env?.teardown();
  });

  const start = (input: CampaignInput, id = uniqueName('camp')) =>
    startCampaign(env.client, config, input, id) as Promise<CampaignHandle>;
  const status = (handle: CampaignHandle) => handle.query<CampaignStatus>(statusQueryName);
  const jobsOf = async (campaignId: string) =>
    (await queue.getJobs(['waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized'])).filter(
      (j) => j.data.campaignId === campaignId,
    );

  /** Every experiment once in PostgreSQL, one training job per experiment, and the budget kept. */
  async function assertNothingLostOrDoubled(result: CampaignResult): Promise<void> {
    const rows = await new Store(pool).experiments(result.campaignId);
    assert.equal(rows.length, result.experiments.total, 'one row per experiment started');
    assert.ok(
      rows.every((r) => ['succeeded', 'failed', 'cancelled'].includes(r.status)),
      JSON.stringify(rows.map((r) => r.status)),
    );
    const jobs = await jobsOf(result.campaignId);
    assert.equal(new Set(jobs.map((j) => j.id)).size, jobs.length);
    assert.ok(jobs.length <= rows.length, `${jobs.length} jobs for ${rows.length} experiments`);
    assert.equal(result.experiments.succeeded, rows.filter((r) => r.status === 'succeeded').length);
    if (result.budget.limit.experiments !== undefined)
      assert.ok(result.budget.used.experiments <= result.budget.limit.experiments);
  }

  it('screens on the fidelity ladder, races at full fidelity on paired seeds, spends its budget, and answers with a posterior', async () => {
    const handle = await start({ ...fm, seed: 3, budget: { gpuHours: 24 * FULL_RUN } });
    const result = await handle.result();
    assert.equal(result.status, 'completed');
    await assertNothingLostOrDoubled(result);
    assert.ok(result.budget.used.gpuHours <= 24 * FULL_RUN * (1 + 1e-9), 'over budget');
    assert.ok((result.spentPct ?? 0) >= 97, `spent ${result.spentPct}%`);
    assert.deepEqual(result.rungs, [4, 12, 36]);

    const rows = await new Store(pool).experiments(result.campaignId);
    const phases = new Set(rows.map((r) => r.phase));
    for (const phase of ['preflight', 'validation', 'combination', 'exploitation'])
      assert.ok(phases.has(phase), `no ${phase} experiments`);
    const fidelities = [...new Set(rows.map((r) => r.fidelity))].sort((a, b) => a - b);
    assert.deepEqual(fidelities, [4, 12, 36]);
    // Preflight: the baseline on seeds 3, 4, 5 at full fidelity (every later comparison pairs on them).
    const pre = rows.filter((r) => r.phase === 'preflight' && r.fidelity === 36);
    assert.deepEqual(pre.map((r) => r.seed).sort(), [3, 4, 5]);
    assert.ok(
      rows.every((r) => r.seed >= 3),
      'a seed below the campaign seed',
    );
    // Screens run at seed k = 0; below full fidelity only a promotion reference that drew far ahead
    // (the incumbent there, else the baseline) takes a second look, on seeds k < replicates.
    const screens = rows.filter((r) => r.fidelity < 36);
    for (const r of screens.filter((x) => x.seed !== 3)) {
      assert.ok(r.seed <= 5, `a screen at seed ${r.seed}`);
      assert.ok(
        screens.some((x) => x.hypothesis_id === r.hypothesis_id && x.fidelity === r.fidelity && x.seed === 3),
        `${r.hypothesis_id} at ${r.fidelity} on seed ${r.seed} without its seed-3 screen`,
      );
    }
    assert.equal(result.fidelity, 36);
    assert.equal(typeof result.confirmed, 'boolean');
    assert.ok((result.probability ?? -1) >= 0 && (result.probability ?? 2) <= 1);
    if (result.best.hypothesisId !== 'baseline') assert.ok(result.best.replicates >= 3);
    assert.ok(result.gainCi.low <= result.gainPct && result.gainPct <= result.gainCi.high);

    const campaignRow = await new Store(pool).campaign(result.campaignId);
    assert.equal(campaignRow?.status, 'completed');
    assert.deepEqual(campaignRow?.result, JSON.parse(JSON.stringify(result)));
    const final = await status(handle);
    assert.equal(final.phase, 'done');
    const described = await handle.describe();
    assert.equal(described.status.name, 'COMPLETED');
    assert.equal(described.typedSearchAttributes.get(searchAttributes.model), 'tiny-fm');
    assert.equal(described.typedSearchAttributes.get(searchAttributes.phase), 'done');
    assert.equal(
      described.typedSearchAttributes.get(searchAttributes.budgetUsed),
      result.budget.used.experiments,
    );
    assert.equal(
      described.typedSearchAttributes.get(searchAttributes.bestGainPct),
      Number(result.gainPct.toFixed(4)),
    );

    // Experiments hibernated and were woken by the job-finished event, not by their poll timer.
    const first = await env.client.workflow.getHandle(rows[0]?.id as string).fetchHistory();
    const signals = (first.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes);
    assert.equal(signals[0]?.workflowExecutionSignaledEventAttributes?.signalName, 'jobFinished');
    // Its hand-over records ran as local activities (markers in its history), its submit as an
    // ordinary activity (a local one would run again in a retried workflow task).
    const handover = ['recordExperimentQueued', 'recordExperimentOutcome'];
    const scheduled = (first.events ?? []).flatMap(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
    );
    assert.deepEqual(
      scheduled.filter((n) => handover.includes(n)),
      [],
    );
    const local = (first.events ?? []).filter(
      (e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity',
    );
    assert.equal(local.length, 2, `${local.length} local-activity markers`);
    assert.deepEqual(
      scheduled.filter((n) => n === 'submitTrainingJob'),
      ['submitTrainingJob'],
    );

    // The first run (its patch markers, most of its experiments), the final run and an experiment
    // replay deterministically.
    const bundle = await workflowBundle();
    const finalRun = await handle.fetchHistory();
    const { rows: started } = await pool.query<{ first_run_id: string }>(
      'SELECT first_run_id FROM campaigns WHERE id = $1',
      [result.campaignId],
    );
    const firstRun = await env.client.workflow
      .getHandle(result.campaignId, started[0]?.first_run_id)
      .fetchHistory();
    assert.ok(
      (firstRun.events ?? []).some((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch'),
      'the first run carries the patch markers',
    );
    await Worker.runReplayHistory({ workflowBundle: bundle }, firstRun, result.campaignId);
    await Worker.runReplayHistory({ workflowBundle: bundle }, finalRun, result.campaignId);
    await Worker.runReplayHistory({ workflowBundle: bundle }, first, rows[0]?.id);
    // REA_RECORD_HISTORIES=test/histories refreshes the histories that replay.test.ts replays (the
    // campaign's with the answer rules v5; campaign-v2.json and the v3 and v4 pairs, recorded before
    // them, stay as they are).
    const recordTo = process.env.REA_RECORD_HISTORIES;
    if (recordTo) {
      mkdirSync(recordTo, { recursive: true });
      const save = (name: string, workflowId: string, history: typeof finalRun) =>
        writeFileSync(
          path.join(recordTo, name),
          JSON.stringify({ workflowId, history: JSON.parse(historyToJSON(history)) as unknown }),
        );
      save('campaign-v5-answer-rules.json', result.campaignId, firstRun);
      save('campaign-v5-final-run.json', result.campaignId, finalRun);
      // v4: the hand-over records as local activities (experiment-v2.json keeps the scheduled ones).
      if (!existsSync(path.join(recordTo, 'experiment-v4-local-records.json')))
        save('experiment-v4-local-records.json', rows[0]?.id as string, first);
    }
  });

  it('waits for plan approval, re-plans on rejection with feedback, and obeys abort', async () => {
    const handle = await start({ ...fm, budget: { experiments: 30 }, approval: { required: true } });
    const waiting = await waitFor('the plan', async () => {
      const s = await status(handle);
      return s.approval.status === 'waiting' && s.plan ? s : undefined;
    });
    assert.equal(waiting.phase, 'preflight');
    assert.ok((waiting.plan?.slate.length ?? 0) > 0, 'an empty slate');
    assert.ok((waiting.plan?.estimate.experiments ?? 0) > 0 && (waiting.plan?.estimate.gpuHours ?? 0) > 0);
    assert.equal(waiting.running.length, 0);
    const usedBefore = waiting.budget.used.experiments;

    // A rejection must say why; a knob it names must exist.
    await assert.rejects(
      handle.executeUpdate('rejectPlan', { args: [{ feedback: ' ' }] }),
      WorkflowUpdateFailedError,
    );
    await assert.rejects(
      handle.executeUpdate('rejectPlan', { args: [{ feedback: 'no', excludeKnobs: ['warp'] }] }),
      (e: unknown) =>
        e instanceof WorkflowUpdateFailedError &&
        /excludeKnobs: unknown knobs warp/.test(e.cause?.message ?? ''),
    );
    assert.ok(
      waiting.plan?.slate.some((h) => /step_size=|update_rule=/.test(h.id)),
      'the first plan moves neither knob',
    );
    await handle.executeUpdate('rejectPlan', {
      args: [{ feedback: 'leave the learning rate alone', excludeKnobs: ['step_size', 'update_rule'] }],
    });
    const replanned = await waitFor('the second plan', async () => {
      const s = await status(handle);
      return s.plan?.round === 2 && s.approval.status === 'waiting' ? s : undefined;
    });
    assert.ok(
      replanned.plan?.slate.every((h) => !h.id.includes('step_size=') && !h.id.includes('update_rule=')),
      JSON.stringify(replanned.plan),
    );
    assert.deepEqual(replanned.approval.feedback, ['leave the learning rate alone']);
    assert.equal(
      (await status(handle)).budget.used.experiments,
      usedBefore,
      'nothing runs while the plan waits',
    );

    await handle.executeUpdate('approvePlan', { args: [{}] });
    await assert.rejects(
      handle.executeUpdate('approvePlan', { args: [{}] }),
      (e: unknown) =>
        e instanceof WorkflowUpdateFailedError &&
        /no plan is waiting for approval/.test(e.cause?.message ?? ''),
    );
    await waitFor('a running experiment', async () =>
      (await status(handle)).running.length > 0 ? true : undefined,
    );
    await handle.signal('abort', { reason: 'test abort' });
    const result = await handle.result();
    assert.equal(result.status, 'aborted');
    assert.equal(result.reason, 'test abort');
    assert.ok(result.experiments.cancelled > 0, JSON.stringify(result.experiments));
    await assertNothingLostOrDoubled(result);
    const rows = await new Store(pool).experiments(result.campaignId);
    assert.ok(rows.some((r) => r.status === 'cancelled'));
    await waitFor('no active jobs', async () => ((await queue.getActiveCount()) === 0 ? true : undefined));
    assert.equal((await new Store(pool).campaign(result.campaignId))?.status, 'aborted');
  });

  it('ends a campaign whose plan is not approved in time', async () => {
    const handle = await start({
      ...fm,
      budget: { experiments: 20 },
      approval: { required: true, timeoutHours: 0.001 },
    });
    const result = await handle.result();
    assert.equal(result.status, 'aborted');
    assert.match(result.reason ?? '', /not approved within 0.001 hours/);
    assert.equal(result.experiments.total, 3, 'only the baseline replicates ran');
  });

  it('pauses, takes a new budget and a human hypothesis mid-run, resumes, and keeps to the budget', async () => {
    const handle = await start({ ...fm, budget: { experiments: 40 } });
    await waitFor('validation', async () =>
      (await status(handle)).phase === 'validation' ? true : undefined,
    );
    await handle.signal('pause');
    const paused = await waitFor('a quiet pause', async () => {
      const s = await status(handle);
      return s.paused && s.running.length === 0 ? s : undefined;
    });
    await new Promise((r) => setTimeout(r, 3000));
    const still = await status(handle);
    assert.equal(
      still.budget.used.experiments,
      paused.budget.used.experiments,
      'no experiment starts while paused',
    );

    await assert.rejects(
      handle.executeUpdate('setBudget', { args: [{ experiments: 1 }] }),
      (e: unknown) =>
        e instanceof WorkflowUpdateFailedError &&
        /experiments: expected at least/.test(e.cause?.message ?? ''),
    );
    const limit = still.budget.used.experiments + 8;
    assert.deepEqual(await handle.executeUpdate('setBudget', { args: [{ experiments: limit }] }), {
      experiments: limit,
    });

    await assert.rejects(
      handle.executeUpdate('addHypothesis', { args: [{ delta: { step_size: 99 }, rationale: 'too hot' }] }),
      (e: unknown) =>
        e instanceof WorkflowUpdateFailedError &&
        /delta\.step_size: expected 0\.001\.\.10, got 99/.test(e.cause?.message ?? ''),
    );
    // latent_rank does nothing while model_form is linear: no effective change.
    await assert.rejects(
      handle.executeUpdate('addHypothesis', { args: [{ delta: { latent_rank: 4 }, rationale: 'inactive' }] }),
      (e: unknown) =>
        e instanceof WorkflowUpdateFailedError &&
        /knobs inactive under the others do not count/.test(e.cause?.message ?? ''),
    );
    await assert.rejects(
      handle.executeUpdate('addHypothesis', { args: [{ delta: { warp: 1 }, rationale: 'unknown knob' }] }),
      (e: unknown) =>
        e instanceof WorkflowUpdateFailedError && /delta\.warp: unknown knob/.test(e.cause?.message ?? ''),
    );
    const added = await handle.executeUpdate('addHypothesis', {
      args: [{ delta: { model_form: 'fm', latent_rank: 12 }, rationale: 'pairwise factors' }],
    });
    assert.deepEqual(added, { hypothesisId: 'latent_rank=12,model_form=fm' });

    await handle.signal('resume');
    const result = await handle.result();
    assert.equal(result.status, 'completed');
    assert.ok(result.budget.used.experiments <= limit, `${result.budget.used.experiments} > ${limit}`);
    assert.equal(result.budget.limit.experiments, limit);
    await assertNothingLostOrDoubled(result);
    const rows = await new Store(pool).experiments(result.campaignId);
    const human = rows.filter((r) => r.source === 'human');
    assert.ok(
      human.length >= 1 || result.experiments.skipped > 0,
      'the human hypothesis ran, unless the budget ran out first',
    );
  });

  it('continues-as-new whenever Temporal suggests it, without losing or repeating an experiment', async () => {
    // No experimentsPerRun limit: only the server's suggestion (80 events) cuts the runs short.
    const handle = await start({ ...fm, budget: { experiments: 30 }, parallelism: 3 });
    const result = await handle.result();
    assert.equal(result.status, 'completed');
    await assertNothingLostOrDoubled(result);
    const final = await status(handle);
    assert.ok(final.run >= 2, `only ${final.run} run(s)`);
    const rows = await new Store(pool).experiments(result.campaignId);
    const indices = rows.map((r) => Number(r.id.split('.e')[1])).sort((a, b) => a - b);
    assert.deepEqual(
      indices,
      indices.map((_, i) => i),
      'experiment numbers are contiguous: none lost, none repeated',
    );
  });

  it('survives its worker being killed mid-campaign', async () => {
    const taskQueue = uniqueName('killq');
    const childEnv = {
      ...process.env,
      REA_TEMPORAL_ADDRESS: env.address,
      REA_DATABASE_URL: config.REA_DATABASE_URL,
      REA_QUEUE_PREFIX: config.REA_QUEUE_PREFIX,
      REA_TASK_QUEUE: taskQueue,
      REA_MODELS_DIR: FIXTURE_MODELS,
      REA_LOG_LEVEL: 'warn',
    };
    const spawnWorker = (): ChildProcess =>
      spawn(process.execPath, [path.join(config.root, 'bin', 'rea'), 'worker'], {
        env: childEnv,
        stdio: 'ignore',
      });
    let child = spawnWorker();
    try {
      const handle = (await env.client.workflow.start(CAMPAIGN_WORKFLOW, {
        taskQueue,
        workflowId: uniqueName('killed'),
        args: [{ ...fm, budget: { experiments: 24 } }],
      })) as CampaignHandle;
      await waitFor('experiments in flight', async () => {
        const s = await status(handle);
        return s.running.length > 0 && s.budget.used.experiments >= 4 ? true : undefined;
      });
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      await new Promise((r) => setTimeout(r, 2000));
      child = spawnWorker();
      const result = await handle.result();
      assert.equal(result.status, 'completed');
      await assertNothingLostOrDoubled(result);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('refuses a malformed input started straight from Temporal, naming the field, and starts nothing', async () => {
    const id = uniqueName('bad');
    const handle = await env.client.workflow.start(CAMPAIGN_WORKFLOW, {
      taskQueue: config.REA_TASK_QUEUE,
      workflowId: id,
      args: [{ model: 'tiny-ctr', budget: { experiments: 'many' } }],
    });
    const err = await handle.result().then(
      () => assert.fail('the campaign accepted a malformed input'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.match(err.cause?.message ?? '', /budget\.experiments: expected an integer count/);
    assert.equal(await new Store(pool).campaign(id), undefined);
    assert.equal((await new Store(pool).experiments(id)).length, 0);
    assert.equal((await jobsOf(id)).length, 0);
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
        { model: 'tiny-ctr', budget: { experiments: 3 }, parallelism: 0 },
        id,
      ),
      (e: unknown) => e instanceof InvalidInputError && /parallelism/.test(e.message),
    );
    await assert.rejects(env.client.workflow.getHandle(id).describe(), WorkflowNotFoundError);
  });
});

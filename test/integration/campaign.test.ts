/**
 * Campaigns end to end on real components: a Temporal dev server, PostgreSQL, Redis (BullMQ), a
 * gpu-agent and the real PyTorch trainer (the tiny-ctr fixture model, so that runs take seconds).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
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

const quick = {
  model: 'tiny-ctr',
  parallelism: 2,
  replicates: 2,
  slateSize: 4,
  eta: 2,
  refinements: 2,
  pollIntervalSec: 5,
} satisfies Partial<CampaignInput>;

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

  it('runs all three phases, records every experiment, and returns the best config with its confidence interval', async () => {
    const handle = await start({ ...quick, budget: { experiments: 40 } });
    const result = await handle.result();
    assert.equal(result.status, 'completed');
    await assertNothingLostOrDoubled(result);

    const rows = await new Store(pool).experiments(result.campaignId);
    const phases = new Set(rows.map((r) => r.phase));
    for (const phase of ['preflight', 'validation', 'exploitation'])
      assert.ok(phases.has(phase), `no ${phase} experiments`);
    // Low to screen, high to exploit; the middle only when something survived the screen.
    const fidelities = [...new Set(rows.map((r) => r.fidelity))].sort((a, b) => a - b);
    assert.ok(fidelities.includes(40) && fidelities.includes(160), JSON.stringify(fidelities));
    assert.ok(
      fidelities.every((f) => [40, 80, 160].includes(f)),
      JSON.stringify(fidelities),
    );
    if (fidelities.includes(80)) {
      assert.ok(
        rows.some((r) => r.fidelity === 80 && r.role === 'baseline'),
        'a rolling baseline at mid fidelity',
      );
    }
    assert.equal(
      rows.filter((r) => r.role === 'baseline' && r.fidelity === 40).length,
      2,
      'baseline replicates measure noise',
    );
    assert.equal(result.fidelity, 160);
    assert.equal(result.baseline.replicates, 2);
    assert.ok(result.gainCi.low <= result.gainPct && result.gainPct <= result.gainCi.high);
    assert.deepEqual(result.split, { validation: 0.5, combination: 0.2, exploitation: 0.3 });

    const campaignRow = await new Store(pool).campaign(result.campaignId);
    assert.equal(campaignRow?.status, 'completed');
    assert.deepEqual(campaignRow?.result, JSON.parse(JSON.stringify(result)));

    // Continue-as-new at each phase boundary: the final run is the fourth or later.
    const final = await status(handle);
    assert.ok(final.run >= 4, `run ${final.run}`);
    assert.equal(final.phase, 'done');
    const described = await handle.describe();
    assert.equal(described.status.name, 'COMPLETED');
    assert.equal(described.typedSearchAttributes.get(searchAttributes.model), 'tiny-ctr');
    assert.equal(described.typedSearchAttributes.get(searchAttributes.phase), 'done');
    assert.equal(
      described.typedSearchAttributes.get(searchAttributes.budgetUsed),
      result.budget.used.experiments,
    );
    // The list view's gain column is the result's gain, wherever the best was found.
    assert.equal(
      described.typedSearchAttributes.get(searchAttributes.bestGainPct),
      Number(result.gainPct.toFixed(4)),
    );

    // Experiments hibernated and were woken by the job-finished event, not by their poll timer.
    const first = await env.client.workflow.getHandle(rows[0]?.id as string).fetchHistory();
    const signals = (first.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes);
    assert.equal(signals[0]?.workflowExecutionSignaledEventAttributes?.signalName, 'jobFinished');

    // The final run and an experiment replay deterministically.
    const bundle = await workflowBundle();
    const finalRun = await handle.fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: bundle }, finalRun, result.campaignId);
    await Worker.runReplayHistory({ workflowBundle: bundle }, first, rows[0]?.id);
    // REA_RECORD_HISTORIES=test/histories refreshes the committed histories that replay.test.ts replays.
    const recordTo = process.env.REA_RECORD_HISTORIES;
    if (recordTo) {
      mkdirSync(recordTo, { recursive: true });
      const save = (name: string, workflowId: string, history: typeof finalRun) =>
        writeFileSync(
          path.join(recordTo, name),
          JSON.stringify({ workflowId, history: JSON.parse(historyToJSON(history)) as unknown }),
        );
      save('campaign-final-run.json', result.campaignId, finalRun);
      save('experiment.json', rows[0]?.id as string, first);
      // A middle run too: the one that screened the slate (validation).
      for await (const run of env.client.workflow.list({ query: `WorkflowId = "${result.campaignId}"` })) {
        const h = await env.client.workflow.getHandle(result.campaignId, run.runId).fetchHistory();
        const events = h.events ?? [];
        if (events.some((e) => e.startChildWorkflowExecutionInitiatedEventAttributes) && events.length > 40) {
          save('campaign-middle-run.json', result.campaignId, h);
          break;
        }
      }
    }
  });

  it('waits for plan approval, re-plans on rejection with feedback, and obeys abort', async () => {
    const handle = await start({ ...quick, budget: { experiments: 30 }, approval: { required: true } });
    const waiting = await waitFor('the plan', async () => {
      const s = await status(handle);
      return s.approval.status === 'waiting' && s.plan ? s : undefined;
    });
    assert.equal(waiting.phase, 'preflight');
    assert.equal(waiting.plan?.slate.length, 4);
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
    const lrKnobs = waiting.plan?.slate.filter((h) => h.id.startsWith('lr=')).length ?? 0;
    await handle.executeUpdate('rejectPlan', {
      args: [{ feedback: 'leave the learning rate alone', excludeKnobs: ['lr', 'optimizer'] }],
    });
    const replanned = await waitFor('the second plan', async () => {
      const s = await status(handle);
      return s.plan?.round === 2 && s.approval.status === 'waiting' ? s : undefined;
    });
    assert.ok(
      replanned.plan?.slate.every((h) => !h.id.includes('lr=') && !h.id.includes('optimizer=')),
      JSON.stringify(replanned.plan),
    );
    assert.deepEqual(replanned.approval.feedback, ['leave the learning rate alone']);
    assert.ok(lrKnobs >= 0);
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
      ...quick,
      budget: { experiments: 20 },
      approval: { required: true, timeoutHours: 0.001 },
    });
    const result = await handle.result();
    assert.equal(result.status, 'aborted');
    assert.match(result.reason ?? '', /not approved within 0.001 hours/);
    assert.equal(result.experiments.total, 2, 'only the baseline replicates ran');
  });

  it('pauses, takes a new budget and a human hypothesis mid-run, resumes, and keeps to the budget', async () => {
    const handle = await start({ ...quick, budget: { experiments: 40 } });
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
      handle.executeUpdate('addHypothesis', { args: [{ delta: { lr: 99 }, rationale: 'too hot' }] }),
      (e: unknown) =>
        e instanceof WorkflowUpdateFailedError &&
        /delta\.lr: expected 0\.0001\.\.0\.3, got 99/.test(e.cause?.message ?? ''),
    );
    await assert.rejects(
      handle.executeUpdate('addHypothesis', { args: [{ delta: { warp: 1 }, rationale: 'unknown knob' }] }),
      (e: unknown) =>
        e instanceof WorkflowUpdateFailedError && /delta\.warp: unknown knob/.test(e.cause?.message ?? ''),
    );
    const added = await handle.executeUpdate('addHypothesis', {
      args: [{ delta: { mlp_width: 96 }, rationale: 'a wider MLP' }],
    });
    assert.deepEqual(added, { hypothesisId: 'mlp_width=96' });

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
    const handle = await start({ ...quick, budget: { experiments: 30 }, slateSize: 12, parallelism: 3 });
    const result = await handle.result();
    assert.equal(result.status, 'completed');
    await assertNothingLostOrDoubled(result);
    const final = await status(handle);
    // One run per phase makes 4; more means it also continued-as-new in the middle of a step.
    assert.ok(final.run >= 5, `only ${final.run} runs`);
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
        args: [{ ...quick, budget: { experiments: 24 } }],
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

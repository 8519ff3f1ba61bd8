/**
 * Jobs that outlast a workflow run: the experiment workflow hands its job over to a new run
 * (continue-as-new) while the job trains, and the job's finish still reaches the experiment and its
 * campaign. On real components: a Temporal dev server told to suggest continue-as-new after a few
 * dozen events (so that a job of seconds stands in for one of weeks), PostgreSQL, Redis, a gpu-agent
 * and a stand-in trainer that trains for a fixed time.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Pool } from 'pg';
import type { GpuAgent } from '../../src/cluster/gpu-agent';
import type { CampaignInput } from '../../src/core/campaign-input';
import { statusQueryName } from '../../src/core/messages';
import type { CampaignResult } from '../../src/core/types';
import { Store } from '../../src/db/store';
import { createLogger } from '../../src/logging';
import { startCampaign } from '../../src/temporal/client';
import { startWorker, type RunningWorker } from '../../src/temporal/worker';
import type { CampaignStatus } from '../../workflows/campaign';
import type { ExperimentInput } from '../../workflows/experiment';
import {
  FIXTURE_MODELS,
  startTemporal,
  startTestAgent,
  testConfig,
  testDatabase,
  uniqueName,
  waitFor,
  workflowBundle,
} from '../helpers/stack';

/** How long each stand-in job trains: some twenty 1-second polls, 5 or so hand-offs. */
const JOB_SEC = 20;

/** tiny-ctr's knobs on the stand-in trainer (test/fixtures/trainers/fast.py), each run JOB_SEC long. */
function writeSlowModel(dir: string): void {
  const tiny = JSON.parse(readFileSync(path.join(FIXTURE_MODELS, 'tiny-ctr.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const slow = {
    ...tiny,
    name: 'slow-ctr',
    description: `A stand-in trainer that trains for ${JOB_SEC} s (test/fixtures/trainers/fast.py).`,
    trainer: {
      argv: ['{python}', 'test/fixtures/trainers/fast.py', '--config', '{config}', '--metrics', '{metrics}'],
      cwd: '.',
    },
    fixed: { seconds: JOB_SEC },
    resources: { gpus: 1, cpus: 1, memoryMb: 256, timeLimitSec: 120 },
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'slow-ctr.json'), JSON.stringify(slow, null, 2));
}

/** The input the latest run of a workflow started with. */
async function latestInput(handle: WorkflowHandle): Promise<ExperimentInput> {
  const history = await handle.fetchHistory();
  const payload =
    history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data ?? undefined;
  assert.ok(payload, `no input in the history of ${handle.workflowId}`);
  return JSON.parse(Buffer.from(payload).toString('utf8')) as ExperimentInput;
}

describe('jobs that outlast a workflow run', () => {
  let env: TestWorkflowEnvironment;
  let pool: Pool;
  let worker: RunningWorker;
  let agent: GpuAgent;
  let config: ReturnType<typeof testConfig>;

  before(async () => {
    // Temporal suggests continue-as-new after 40 events: an experiment hands over every 2 or 3 polls.
    env = await startTemporal({ suggestContinueAsNewAt: 40 });
    pool = await testDatabase();
    const models = mkdtempSync(path.join(tmpdir(), 'rea-long-jobs-'));
    writeSlowModel(models);
    config = testConfig({ REA_TEMPORAL_ADDRESS: env.address, REA_MODELS_DIR: models });
    worker = await startWorker(config, createLogger('test', 'warn'), {
      workflowBundle: await workflowBundle(),
    });
    agent = await startTestAgent(config, 2);
  });

  after(async () => {
    await agent?.close();
    await worker?.shutdown();
    await pool?.end();
    await env?.teardown();
  });

  it('a job that trains through 3 or more continue-as-new hand-offs still reports its finish, once, to its campaign', async () => {
    const input = {
      model: 'slow-ctr',
      budget: { experiments: 2 },
      replicates: 2,
      parallelism: 2,
      pollIntervalSec: 1,
    } satisfies Partial<CampaignInput>;
    const id = uniqueName('long');
    const handle = await startCampaign(env.client, config, input, id);
    const result: CampaignResult = await handle.result();

    // The campaign got every child's result through the chain of runs.
    assert.equal(result.experiments.total, 2, JSON.stringify(result.experiments));
    assert.equal(result.experiments.succeeded, 2, JSON.stringify(result.experiments));
    const rows = await new Store(pool).experiments(id);
    assert.equal(rows.length, 2);
    assert.ok(
      rows.every((r) => r.status === 'succeeded' && typeof r.primary_value === 'number'),
      JSON.stringify(rows.map((r) => [r.status, r.primary_value])),
    );

    for (const row of rows) {
      const experiment = env.client.workflow.getHandle(row.id);
      // The latest run was started by continue-as-new, 3 or more hand-offs into the job.
      const carried = await latestInput(experiment);
      assert.ok((carried.carry?.handOffs ?? 0) >= 3, `${row.id}: ${carried.carry?.handOffs ?? 0} hand-offs`);
      assert.equal((await experiment.describe()).status.name, 'COMPLETED');
      // One training run for the job: the hand-offs never submitted it again.
      const { rows: starts } = await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM job_events WHERE experiment_id = $1 AND event = 'started'`,
        [row.id],
      );
      assert.equal(starts[0]?.n, 1, `${row.id} trained ${starts[0]?.n} times`);
    }

    // A run in the middle of the chain and the last one replay deterministically.
    const bundle = await workflowBundle();
    const experimentId = rows[0]?.id as string;
    const last = await env.client.workflow.getHandle(experimentId).fetchHistory();
    const started = last.events?.[0]?.workflowExecutionStartedEventAttributes;
    const previousRunId = started?.continuedExecutionRunId ?? undefined;
    assert.ok(previousRunId, 'the last run does not continue an earlier one');
    const middle = await env.client.workflow.getHandle(experimentId, previousRunId).fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: bundle }, middle, experimentId);
    await Worker.runReplayHistory({ workflowBundle: bundle }, last, experimentId);
    // REA_RECORD_HISTORIES=test/histories refreshes the histories that replay.test.ts replays.
    const recordTo = process.env.REA_RECORD_HISTORIES;
    if (recordTo) {
      mkdirSync(recordTo, { recursive: true });
      const save = (name: string, history: typeof last) =>
        writeFileSync(
          path.join(recordTo, name),
          JSON.stringify({
            workflowId: experimentId,
            history: JSON.parse(historyToJSON(history)) as unknown,
          }),
        );
      save('experiment-v3-handed-over.json', middle);
      save('experiment-v3-last-run.json', last);
    }
  });

  it('an abort reaches a job several hand-offs in: the experiment is cancelled, its trainer stopped, the campaign aborted', async () => {
    const id = uniqueName('long-abort');
    const input = {
      model: 'slow-ctr',
      budget: { experiments: 2 },
      replicates: 2,
      parallelism: 2,
      pollIntervalSec: 1,
    } satisfies Partial<CampaignInput>;
    const handle = await startCampaign(env.client, config, input, id);
    const experimentId = await waitFor('a running experiment', async () => {
      const s = await handle.query<CampaignStatus>(statusQueryName);
      return s.running[0]?.experimentId;
    });
    await waitFor('two hand-offs', async () =>
      ((await latestInput(env.client.workflow.getHandle(experimentId))).carry?.handOffs ?? 0) >= 2
        ? true
        : undefined,
    );
    await handle.signal('abort', { reason: 'test abort mid-chain' });
    const result: CampaignResult = await handle.result();
    assert.equal(result.status, 'aborted');
    assert.ok(result.experiments.cancelled >= 1, JSON.stringify(result.experiments));
    const rows = await new Store(pool).experiments(id);
    assert.equal(rows.find((r) => r.id === experimentId)?.status, 'cancelled');
    assert.equal((await env.client.workflow.getHandle(experimentId).describe()).status.name, 'CANCELLED');
    // The trainer was stopped, not left to train on: its one run ended before its JOB_SEC were up.
    const run = await waitFor('the run to end', async () => {
      const { rows: events } = await pool.query<{ event: string; at: Date }>(
        'SELECT event, at FROM job_events WHERE experiment_id = $1 ORDER BY at',
        [experimentId],
      );
      return events.some((e) => e.event === 'finished') ? events : undefined;
    });
    const started = run.filter((e) => e.event === 'started');
    const finished = run.find((e) => e.event === 'finished');
    assert.equal(started.length, 1, JSON.stringify(run));
    const trainedMs = (finished?.at.getTime() ?? 0) - (started[0]?.at.getTime() ?? 0);
    assert.ok(trainedMs < JOB_SEC * 1000, `the trainer ran ${trainedMs} ms`);
  });
});

/**
 * The BullMQ GPU pool under failure, on real processes: gpu-agents run as `node bin/rea gpu-agent`
 * children against a private redis-server (FLUSHALL and restarts there touch nobody else's queues),
 * with a short job lock (REA_POOL_LOCK_SEC=6) so that each recovery takes seconds. Every trainer run
 * leaves rows in PostgreSQL's job_events, from which the tests read "never two at once" and
 * "exactly one result".
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Pool } from 'pg';
import type { TrainingJob } from '../../src/cluster/adapter';
import { BullmqPool, MAX_STALLS, redisConnection, TRAINING_QUEUE } from '../../src/cluster/bullmq-pool';
import { JobJournalReader } from '../../src/cluster/job-journal';
import type { CampaignInput } from '../../src/core/campaign-input';
import type { CampaignResult, ExperimentOutcome } from '../../src/core/types';
import { Store } from '../../src/db/store';
import { createLogger } from '../../src/logging';
import { startCampaign } from '../../src/temporal/client';
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

const LOCK_SEC = 6;

/** A redis-server of our own, without persistence: a restart loses everything, as a crash would. */
class PrivateRedis {
  private proc: ChildProcess | undefined;
  constructor(readonly port: number) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    this.proc = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    const probe = new Redis(this.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    probe.on('error', () => undefined);
    await waitFor('redis-server', async () => {
      await probe.connect().catch(() => undefined);
      return (await probe.ping()) === 'PONG' ? true : undefined;
    });
    probe.disconnect();
  }
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    proc.kill('SIGKILL');
    await new Promise((r) => proc.once('exit', r));
  }
}

/** Waits for a condition that needs no I/O to check. */
function until<T>(what: string, probe: () => T | undefined, timeoutMs?: number): Promise<T> {
  return waitFor(what, () => Promise.resolve(probe()), timeoutMs);
}

/** A TCP proxy to Redis that can be cut and restored: a network partition for one agent. */
class CuttableLink {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  constructor(
    readonly port: number,
    private readonly redisPort: number,
  ) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  open(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.redisPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    const server = this.server;
    return new Promise((resolve) => server.listen(this.port, '127.0.0.1', resolve));
  }
  cut(): void {
    this.server?.close();
    for (const s of this.sockets) s.destroy();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Alive means running or stopped; a zombie (killed, not yet reaped) is dead. */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** The "trainer child" pid pairs that test/fixtures/trainers/sleepy.py appended to its pid file. */
function trainerPids(pidFile: string): number[][] {
  if (!existsSync(pidFile)) return [];
  return readFileSync(pidFile, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ').map(Number));
}

interface JobEventRow {
  experiment_id: string;
  run_id: string;
  agent: string;
  event: string;
  at: Date;
  detail: Record<string, unknown>;
}

/** One trainer run, from the journal: its agent, and when each of its events happened. */
interface Run {
  runId: string;
  agent: string;
  events: Map<string, JobEventRow>;
}

describe('the GPU pool survives dead, stopped and cut-off agents and a Redis that forgets', () => {
  let redis: PrivateRedis;
  let admin: Redis;
  let db: Pool;
  let pool: BullmqPool;
  let queue: Queue<TrainingJob, ExperimentOutcome>;
  let config: ReturnType<typeof testConfig>;
  const agents: ChildProcess[] = [];
  const scratch = mkdtempSync(path.join(tmpdir(), 'rea-pool-test-'));

  before(async () => {
    redis = new PrivateRedis(await freePort());
    await redis.start();
    admin = new Redis(redis.url, { maxRetriesPerRequest: null });
    admin.on('error', () => undefined);
    db = await testDatabase();
    config = testConfig({
      REA_REDIS_URL: redis.url,
      REA_POOL_LOCK_SEC: String(LOCK_SEC),
      REA_MODELS_DIR: FIXTURE_MODELS,
      REA_WORK_DIR: path.join(scratch, 'work'),
    });
    pool = new BullmqPool({
      redisUrl: redis.url,
      prefix: config.REA_QUEUE_PREFIX,
      lockSec: LOCK_SEC,
      journal: new JobJournalReader(db),
    });
    queue = new Queue(TRAINING_QUEUE, {
      connection: redisConnection(redis.url),
      prefix: config.REA_QUEUE_PREFIX,
    });
    queue.on('error', () => undefined);
  });

  /** Each test starts the agents it needs, and only those run. */
  async function killAgents(): Promise<void> {
    for (const agent of agents.splice(0)) {
      if (agent.exitCode !== null || agent.signalCode !== null) continue;
      const exited = new Promise((r) => agent.once('exit', r));
      agent.kill('SIGCONT');
      agent.kill('SIGKILL');
      await exited;
    }
  }
  afterEach(killAgents);

  after(async () => {
    await killAgents();
    await queue?.close();
    await pool?.close();
    admin?.disconnect();
    await db?.end();
    await redis?.stop();
  });

  /** `rea gpu-agent --slots 1` as its own process; resolves with its name once it is ready. */
  async function startAgent(
    env: Record<string, string> = {},
  ): Promise<{ child: ChildProcess; name: string; output: () => string }> {
    const child = spawn(
      process.execPath,
      [path.join(config.root, 'bin', 'rea'), 'gpu-agent', '--slots', '1'],
      {
        env: {
          ...process.env,
          REA_REDIS_URL: redis.url,
          REA_QUEUE_PREFIX: config.REA_QUEUE_PREFIX,
          REA_DATABASE_URL: config.REA_DATABASE_URL,
          REA_POOL_LOCK_SEC: String(LOCK_SEC),
          REA_PYTHON: config.REA_PYTHON,
          REA_WORK_DIR: config.REA_WORK_DIR,
          REA_LOG_LEVEL: 'info',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    agents.push(child);
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    await until('the gpu-agent to be ready', () => {
      if (child.exitCode !== null) throw new Error(`gpu-agent exited with ${child.exitCode}: ${output}`);
      return output.includes('gpu-agent ready') ? true : undefined;
    });
    return { child, name: `${hostname()}:${child.pid}`, output: () => output };
  }

  function sleepyJob(experimentId: string, config_: Record<string, unknown>): TrainingJob {
    return {
      experimentId,
      campaignId: 'pool-test',
      model: 'sleepy',
      trainer: {
        argv: [
          '{python}',
          'test/fixtures/trainers/sleepy.py',
          '--config',
          '{config}',
          '--metrics',
          '{metrics}',
        ],
        cwd: '.',
      },
      config: config_,
      resources: { gpus: 0, cpus: 1, memoryMb: 256, timeLimitSec: 120 },
      primaryMetric: 'ne',
      cluster: { adapter: 'bullmq' },
    };
  }

  async function runsOf(experimentId: string): Promise<Run[]> {
    const { rows } = await db.query<JobEventRow>(
      'SELECT * FROM job_events WHERE experiment_id = $1 ORDER BY at',
      [experimentId],
    );
    const runs = new Map<string, Run>();
    for (const row of rows) {
      const run = runs.get(row.run_id) ?? { runId: row.run_id, agent: row.agent, events: new Map() };
      run.events.set(row.event, row);
      runs.set(row.run_id, run);
    }
    return [...runs.values()].sort(
      (a, b) => (a.events.get('started')?.at.getTime() ?? 0) - (b.events.get('started')?.at.getTime() ?? 0),
    );
  }

  /** The runs of an experiment once one of them has journalled `event` (the journal writes in the background). */
  const journalled = (experimentId: string, event: string) =>
    waitFor(`a "${event}" event for ${experimentId}`, async () => {
      const runs = await runsOf(experimentId);
      return runs.some((r) => r.events.has(event)) ? runs : undefined;
    });

  const finished = (jobId: string, timeoutMs = 60_000) =>
    waitFor(
      `job ${jobId} to finish`,
      async () => {
        const status = await pool.status(jobId);
        return status.state === 'finished' ? status.outcome : undefined;
      },
      timeoutMs,
    );

  it('cancelling a job kills its trainer and every process the trainer started', async () => {
    const agent = await startAgent();
    const id = uniqueName('cancel');
    const pidFile = path.join(scratch, `${id}.pids`);
    // Held until a file that never appears: the trainer cannot end by itself, only the cancel ends it.
    const never = path.join(scratch, `${id}.never`);
    await pool.submit(sleepyJob(id, { seconds: 1, pid_file: pidFile, hold_until: never }));
    const pids = await until('the trainer and its child', () => trainerPids(pidFile)[0]);
    assert.ok(pids.every(isAlive));

    await pool.cancel(id);
    // No speed is asserted here (a busy machine can take seconds): only that the cancel kills both.
    await until('trainer and child gone', () => (pids.some(isAlive) ? undefined : true), 60_000).catch(
      (err: Error) => {
        throw new Error(`${err.message}; the gpu-agent said:\n${agent.output().slice(-4000)}`);
      },
    );
    const outcome = await finished(id);
    assert.equal(outcome.status === 'failed' && outcome.failureClass, 'cancelled');
    const [run] = await journalled(id, 'completed');
    assert.deepEqual([...(run?.events.keys() ?? [])].sort(), ['completed', 'finished', 'started']);
  });

  it('an agent killed with kill -9 mid-job takes its trainer with it; another agent re-runs the job; one result', async () => {
    const a = await startAgent();
    const id = uniqueName('kill9');
    const pidFile = path.join(scratch, `${id}.pids`);
    const release = path.join(scratch, `${id}.go`);
    await pool.submit(sleepyJob(id, { seconds: 1, pid_file: pidFile, hold_until: release }));
    const first = await until('the first trainer', () => trainerPids(pidFile)[0]);
    const b = await startAgent(); // idle: the job is a's while a holds its lock

    a.child.kill('SIGKILL');
    writeFileSync(release, '');
    await until(
      'the orphaned trainer and its child gone',
      () => (first.some(isAlive) ? undefined : true),
      5_000,
    );
    const deadAt = Date.now();

    const outcome = await finished(id, 30_000);
    assert.equal(outcome.status, 'succeeded');
    const runs = await journalled(id, 'completed');
    assert.deepEqual(
      runs.map((r) => r.agent),
      [a.name, b.name],
      'run first on a, then once on b',
    );
    assert.ok(
      (runs[1]?.events.get('started')?.at.getTime() ?? 0) > deadAt,
      'the re-run started only after the first trainer was dead',
    );
    assert.deepEqual(
      runs.map((r) => r.events.has('completed')),
      [false, true],
      'exactly one result, from b',
    );
    const job = await Job.fromId(queue, id);
    assert.equal(job?.stalledCounter, 1, 'the stalled-job check moved it back once');
    assert.equal(job?.processedBy, b.name);
  });

  it('a stopped agent (SIGSTOP past its lock): its trainer is killed, the job re-runs elsewhere, its late result is refused', async () => {
    const a = await startAgent();
    const id = uniqueName('sigstop');
    const pidFile = path.join(scratch, `${id}.pids`);
    const release = path.join(scratch, `${id}.go`);
    await pool.submit(sleepyJob(id, { seconds: 1, pid_file: pidFile, hold_until: release }));
    const first = await until('the first trainer', () => trainerPids(pidFile)[0]);
    const b = await startAgent();

    a.child.kill('SIGSTOP');
    try {
      // The supervisor misses a's heartbeats and kills the trainer before a's lock can expire.
      await until(
        "the stopped agent's trainer gone",
        () => (first.some(isAlive) ? undefined : true),
        LOCK_SEC * 1000,
      );
      const deadAt = Date.now();
      const rerun = await waitFor(
        'the re-run on b',
        async () => (await runsOf(id)).find((r) => r.agent === b.name && r.events.has('started')),
        30_000,
      );
      assert.ok((rerun.events.get('started')?.at.getTime() ?? 0) > deadAt, 'no overlap');

      // BullMQ itself refuses a completion from a's lock token while b holds the job.
      const [aRun] = await runsOf(id);
      const aToken = aRun?.events.get('started')?.detail.token;
      assert.equal(typeof aToken, 'string');
      const job = await Job.fromId<TrainingJob, ExperimentOutcome>(queue, id);
      const late: ExperimentOutcome = { status: 'succeeded', metrics: { ne: 0 }, wallTimeSec: 1 };
      await assert.rejects(job?.moveToCompleted(late, aToken as string, false) ?? Promise.resolve(), /lock/i);
    } finally {
      a.child.kill('SIGCONT');
      writeFileSync(release, '');
    }

    // Awake again, a finds its job gone and gives it up without a result.
    const aRun = await waitFor('a to give the job up', async () =>
      (await runsOf(id)).find((r) => r.agent === a.name && r.events.has('lost')),
    );
    assert.equal(aRun.events.has('completed'), false);
    const outcome = await finished(id, 30_000);
    assert.equal(outcome.status, 'succeeded');
    const runs = await journalled(id, 'completed');
    assert.deepEqual(
      runs.filter((r) => r.events.has('completed')).map((r) => r.agent),
      [b.name],
      'exactly one result, from b',
    );
    assert.equal(a.child.exitCode, null, 'the stopped agent lives on');
  });

  it('an agent cut off from Redis kills its trainer before its lock can expire; the job re-runs elsewhere', async () => {
    const link = new CuttableLink(await freePort(), redis.port);
    await link.open();
    const a = await startAgent({ REA_REDIS_URL: link.url });
    const id = uniqueName('cutoff');
    const pidFile = path.join(scratch, `${id}.pids`);
    const release = path.join(scratch, `${id}.go`);
    await pool.submit(sleepyJob(id, { seconds: 1, pid_file: pidFile, hold_until: release }));
    const first = await until('the first trainer', () => trainerPids(pidFile)[0]);
    const b = await startAgent();

    link.cut();
    const cutAt = Date.now();
    await until(
      "the cut-off agent's trainer gone",
      () => (first.some(isAlive) ? undefined : true),
      LOCK_SEC * 1000,
    );
    assert.ok(Date.now() - cutAt < LOCK_SEC * 1000, 'killed before the lock could expire');
    const deadAt = Date.now();
    const rerun = await waitFor(
      'the re-run on b',
      async () => (await runsOf(id)).find((r) => r.agent === b.name && r.events.has('started')),
      30_000,
    );
    assert.ok((rerun.events.get('started')?.at.getTime() ?? 0) > deadAt, 'no overlap');

    // Back in touch, a gives the job up instead of completing it.
    await link.open();
    await waitFor('a to give the job up', async () =>
      (await runsOf(id)).find((r) => r.agent === a.name && r.events.has('lost')),
    );
    writeFileSync(release, '');
    const outcome = await finished(id, 30_000);
    assert.equal(outcome.status, 'succeeded');
    const runs = await journalled(id, 'completed');
    assert.deepEqual(
      runs.filter((r) => r.events.has('completed')).map((r) => r.agent),
      [b.name],
      'exactly one result, from b',
    );
    link.cut();
  });

  it(`a job that loses its agent more than ${MAX_STALLS} times fails as lost, with a message that says so`, async () => {
    const a = await startAgent();
    const id = uniqueName('stalls');
    await pool.submit(sleepyJob(id, { seconds: 1, hold_until: path.join(scratch, 'never') }));
    await waitFor('the job running', async () =>
      (await pool.status(id)).state === 'running' ? true : undefined,
    );
    // As if it had already been re-queued MAX_STALLS times: one more agent death is one too many.
    await admin.hset(`${config.REA_QUEUE_PREFIX}:${TRAINING_QUEUE}:${id}`, 'stc', MAX_STALLS);
    await startAgent();
    a.child.kill('SIGKILL');

    const outcome = await finished(id, 30_000);
    assert.equal(outcome.status === 'failed' && outcome.failureClass, 'lost');
    assert.match(
      outcome.status === 'failed' ? outcome.message : '',
      new RegExp(`lost its gpu-agent ${MAX_STALLS + 1} times .* check the agents' logs`),
    );
  });

  it("a result the queue accepted outlives a FLUSHALL: read back from the agents' journal, not trained again", async () => {
    await startAgent();
    const id = uniqueName('kept');
    await pool.submit(sleepyJob(id, { seconds: 0.3 }));
    const outcome = await finished(id, 30_000);
    assert.equal(outcome.status, 'succeeded');
    await journalled(id, 'completed');
    await admin.flushall();

    // Redis no longer knows the job: without the journal it is missing (and would be submitted again).
    const bare = new BullmqPool({ redisUrl: redis.url, prefix: config.REA_QUEUE_PREFIX, lockSec: LOCK_SEC });
    try {
      assert.equal((await bare.status(id)).state, 'missing');
    } finally {
      await bare.close();
    }
    assert.deepEqual(await pool.status(id), { state: 'finished', outcome });
    assert.equal((await runsOf(id)).length, 1, 'one trainer run');

    // A job nobody accepted a result for is still missing.
    assert.equal((await pool.status(uniqueName('never'))).state, 'missing');
  });

  it('an agent whose PostgreSQL is down still runs its jobs (the journal is best-effort)', async () => {
    await startAgent({ REA_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' });
    const id = uniqueName('nopg');
    await pool.submit(sleepyJob(id, { seconds: 0.5 }));
    const outcome = await finished(id, 30_000);
    assert.equal(outcome.status, 'succeeded');
    assert.equal((await runsOf(id)).length, 0, 'nothing was journalled');
  });

  describe('a campaign through FLUSHALL and an empty Redis restart', () => {
    let env: TestWorkflowEnvironment;
    let worker: RunningWorker;

    before(async () => {
      env = await startTemporal();
      config = { ...config, REA_TEMPORAL_ADDRESS: env.address };
      worker = await startWorker(config, createLogger('test', 'warn'), {
        workflowBundle: await workflowBundle(),
      });
    });

    after(async () => {
      await worker?.shutdown();
      await env?.teardown();
    });

    it('completes with every experiment recorded once and no two runs of one experiment at the same time', async () => {
      await startAgent();
      await startAgent();
      const input: CampaignInput = {
        model: 'tiny-ctr',
        budget: { experiments: 8 },
        parallelism: 2,
        replicates: 2,
        slateSize: 4,
        eta: 2,
        refinements: 2,
        pollIntervalSec: 2,
      };
      const handle = (await startCampaign(env.client, config, input, uniqueName('flush'))) as WorkflowHandle<
        (i: CampaignInput) => Promise<CampaignResult>
      >;

      await waitFor('a training job running', async () =>
        (await queue.getActiveCount()) > 0 ? true : undefined,
      );
      const flushedAt = Date.now();
      await admin.flushall();

      // Once the resubmitted jobs run again, Redis dies and comes back empty.
      await waitFor('a job running again after the flush', async () =>
        (await queue.getActiveCount()) > 0 ? true : undefined,
      );
      await redis.stop();
      await redis.start();
      const restartedAt = Date.now();

      const result = await handle.result();
      assert.equal(result.status, 'completed');
      const rows = await new Store(db).experiments(result.campaignId);
      assert.equal(rows.length, result.experiments.total, 'one row per experiment');
      assert.ok(
        rows.every((r) => ['succeeded', 'failed'].includes(r.status)),
        JSON.stringify(rows),
      );
      const indices = rows.map((r) => Number(r.id.split('.e')[1])).sort((x, y) => x - y);
      assert.deepEqual(
        indices,
        indices.map((_, i) => i),
        'no experiment lost, none repeated',
      );

      let rerun = 0;
      let lostSoon = 0;
      for (const row of rows) {
        const runs = await journalled(row.id, 'completed');
        assert.ok(runs.length >= 1, `${row.id} never ran`);
        if (runs.length > 1) rerun++;
        for (const [i, run] of runs.entries()) {
          const end = run.events.get('finished')?.at.getTime();
          assert.ok(end !== undefined, `${row.id}: run ${run.runId} never finished`);
          const next = runs[i + 1]?.events.get('started')?.at.getTime();
          assert.ok(next === undefined || next >= end, `${row.id}: two runs at once`);
          const lost = run.events.get('lost')?.at.getTime();
          if (lost !== undefined && end >= flushedAt && end - flushedAt < LOCK_SEC * 1000) lostSoon++;
        }
      }
      assert.ok(rerun >= 1, 'the job that Redis forgot ran again');
      assert.ok(lostSoon >= 1, 'the agent that was running it killed its trainer within the lock');

      // The event bridge survived the restart: an experiment that ran after it was woken by its signal.
      const after_ = [];
      for (const row of rows) {
        const runs = await runsOf(row.id);
        if ((runs[0]?.events.get('started')?.at.getTime() ?? 0) > restartedAt) after_.push(row.id);
      }
      assert.ok(after_.length >= 1, 'an experiment ran after the restart');
      const history = await env.client.workflow.getHandle(after_[0] as string).fetchHistory();
      const signals = (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes);
      assert.equal(signals[0]?.workflowExecutionSignaledEventAttributes?.signalName, 'jobFinished');

      // And the agents' cancel subscription came back with the connection.
      const id = uniqueName('cancel-after-restart');
      const pidFile = path.join(scratch, `${id}.pids`);
      await pool.submit(sleepyJob(id, { seconds: 60, pid_file: pidFile }));
      const pids = await until('the trainer', () => trainerPids(pidFile)[0]);
      await pool.cancel(id);
      await until('trainer gone', () => (pids.some(isAlive) ? undefined : true), 10_000);
      const outcome = await finished(id);
      assert.equal(outcome.status === 'failed' && outcome.failureClass, 'cancelled');
    });
  });
});

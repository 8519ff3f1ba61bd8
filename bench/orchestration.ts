/**
 * The orchestration part of the benchmark: a campaign of thousands of stand-in experiments (hand-over
 * latency, slot utilization, events per workflow run) and 1,000 hibernating campaigns on one worker
 * process (memory). Results in bench/results/orchestration.{md,csv}.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import { redisConnection, TRAINING_QUEUE } from '../src/cluster/bullmq-pool';
import type { TrainingJob } from '../src/cluster/adapter';
import type { CampaignInput } from '../src/core/campaign-input';
import type { ReaConfig } from '../src/config';
import { startCampaign } from '../src/temporal/client';
import { csvLine, mean, median, percentile, slotGaps, utilization } from './analysis';
import {
  inLanes,
  loadRaw,
  lockPart,
  MODELS,
  modelSpec,
  RESULTS,
  ROOT,
  saveRaw,
  say,
  stamp,
  WORK,
  writeSpec,
} from './common';
import { benchConfig, clearHistory, DATABASE_URL, jobTimes, startAgent, unique, type Stack } from './stack';

export interface OrchestrationTier {
  name: string;
  /** Hibernating campaigns on one worker (memory). */
  hibernating: number;
  /** Wakes measured after the hibernation part (a job's result → its campaign's next job). */
  wakes?: number;
  /** Experiments in the stand-in campaign (hand-over, events per run). */
  fastExperiments: number;
}

/** Hand-over gaps and utilization of the search part's real campaigns (real trainers, 2 slots). */
export interface RealCampaignTiming {
  gaps: number[];
  utilization: number;
}

export interface Orchestration {
  /** Stamps of the runs that measured each part (the parts may run separately with `--only`). */
  fastHeader?: string;
  hibernationHeader?: string;
  fast?: {
    experiments: number;
    wallSec: number;
    runs: { runId: string; events: number; experiments?: number }[];
    gaps: number[];
    utilization: number;
    slots: number;
    experimentEvents: number[];
  };
  fastError?: string;
  hibernation?: {
    campaigns: number;
    waitingJobs: number;
    rssIdleMb: number;
    rssMb: number;
    rssPeakMb: number;
    startSec: number;
    /** The worker's workflow cache (maxCachedWorkflows), as it logged it. */
    cachedWorkflows?: number;
    /**
     * Wakes of hibernating campaigns, in seconds: a job's result accepted (the signal that wakes its
     * experiment) → that campaign's next job in the queue. Measured with a 1-slot agent working
     * through the oldest campaigns' 1-second jobs, which the worker's cache evicted first.
     */
    wakes?: number[];
    wakeError?: string;
  };
  hibernationError?: string;
}

function rssMb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

async function fastCampaign(stack: Stack, tier: OrchestrationTier, out: Orchestration): Promise<void> {
  const slots = 16;
  copyFileSync(path.join(ROOT, 'bench', 'models', 'bench-fast.json'), path.join(MODELS, 'bench-fast.json'));
  // Cold, like every measured campaign: an earlier run's thousands of stand-in results would be this
  // one's history, and planning a 1,000-hypothesis slate over them outlasts the activity's timeout.
  await clearHistory(stack.pool, ['bench-fast']);
  const agent = await startAgent(stack.config, slots);
  try {
    const input: CampaignInput = {
      model: 'bench-fast',
      budget: { experiments: tier.fastExperiments },
      parallelism: slots,
      replicates: 10,
      // The engine proposes the slate in one activity; 1000 at once outlasts its timeout on a busy
      // machine, so the slate grows with the count and replicates fill the budget.
      slateSize: Math.min(1000, Math.max(20, Math.round(tier.fastExperiments / 5))),
      eta: 2,
      // Validation spends the budget (8 replicates used 4,048 of a 4,500 share; 10 use more).
      // Refinements stay few: planning 1,000 over 4,000 results outlasts proposeRefinements' 1-minute
      // timeout (measured; see the closing note of the session that found it).
      refinements: 50,
      pollIntervalSec: 600,
      split: { validation: 0.98, combination: 0.01, exploitation: 0.01 },
    };
    const id = `bench-fast-${Date.now().toString(36)}`;
    say(`orchestration: a campaign of ${tier.fastExperiments} fast experiments (${slots} slots)`);
    const started = Date.now();
    const handle = await startCampaign(stack.client, stack.config, input, id);
    const result = await handle.result();
    const wallSec = (Date.now() - started) / 1000;
    const runs: { runId: string; events: number }[] = [];
    for await (const wf of stack.client.workflow.list({ query: `WorkflowId = '${id}'` }))
      runs.push({ runId: wf.runId, events: wf.historyLength });
    // Visibility lists newest first; histories are fetched for the exact count.
    for (const r of runs) {
      try {
        const history = await stack.client.workflow.getHandle(id, r.runId).fetchHistory();
        r.events = history.events?.length ?? r.events;
      } catch (err) {
        // Visibility's historyLength is the same count, recorded when the run closed.
        say(
          `  history of run ${r.runId} not fetched (${(err as Error).message}); using visibility's historyLength`,
        );
      }
    }
    runs.reverse();
    const experimentEvents: number[] = [];
    const { rows } = await stack.pool.query<{ id: string }>(
      'SELECT id FROM experiments WHERE campaign_id = $1 ORDER BY random() LIMIT 20',
      [id],
    );
    for (const r of rows) {
      try {
        const h = await stack.client.workflow.getHandle(r.id).fetchHistory();
        experimentEvents.push(h.events?.length ?? NaN);
      } catch {
        // An experiment id is its workflow id; one that never started a workflow has no history.
      }
    }
    const jobs = await jobTimes(stack.pool, id);
    out.fast = {
      experiments: result.experiments.total,
      wallSec,
      runs,
      gaps: slotGaps(jobs, slots),
      utilization: utilization(jobs, slots),
      slots,
      experimentEvents,
    };
    say(`  ${result.experiments.total} experiments in ${wallSec.toFixed(0)} s over ${runs.length} runs`);
  } finally {
    await agent.close();
  }
}

/** Starts a separate worker process (no gpu-agent) and 1,000 campaigns whose jobs never run. */
async function hibernation(stack: Stack, tier: OrchestrationTier, out: Orchestration): Promise<void> {
  // The stand-in model with 1-second jobs: when the wakes are measured, one slot then finishes a job
  // a second, so each wake is timed on its own rather than behind a backlog of others.
  const spec = modelSpec('bench-fast');
  spec.name = 'bench-hibernate';
  spec.fixed = { ...spec.fixed, sleep_sec: 1 };
  writeSpec(spec);
  const prefix = unique('reabench-hib');
  const taskQueue = unique('bench-hib');
  const env = {
    ...process.env,
    REA_DATABASE_URL: DATABASE_URL,
    REA_MODELS_DIR: MODELS,
    REA_TEMPORAL_ADDRESS: stack.env.address,
    TEMPORAL_ADDRESS: stack.env.address,
    REA_TASK_QUEUE: taskQueue,
    REA_QUEUE_PREFIX: prefix,
    // "worker ready" (info) says when it polls and how many workflows it caches.
    REA_LOG_LEVEL: 'info',
    REA_LLM_BASE_URL: '',
    REA_LLM_API_KEY: '',
    // As the image (Dockerfile) and `rea dev` run it: two malloc arenas.
    MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2',
  };
  const logFile = path.join(WORK, 'hibernation-worker.log');
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'worker'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20000)));
  child.stderr.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20000)));
  const config = benchConfig({
    REA_TEMPORAL_ADDRESS: stack.env.address,
    REA_TASK_QUEUE: taskQueue,
    REA_QUEUE_PREFIX: prefix,
  });
  const queue = new Queue<TrainingJob>(TRAINING_QUEUE, {
    connection: redisConnection(config.REA_REDIS_URL),
    prefix,
  });
  const ids: string[] = [];
  try {
    const pid = child.pid as number;
    // Ready when it says so (it bundles the workflows first); then let it settle.
    const readyBy = Date.now() + 5 * 60_000;
    while (!output.includes('worker ready') && child.exitCode === null && Date.now() < readyBy)
      await new Promise((r) => setTimeout(r, 500));
    if (child.exitCode !== null || !output.includes('worker ready'))
      throw new Error(`the worker did not start (exit ${child.exitCode}): ${output.slice(-500)}`);
    const cachedWorkflows = cacheSize(output);
    await new Promise((r) => setTimeout(r, 10_000));
    const idle = rssMb(pid);
    say(
      `orchestration: ${tier.hibernating} campaigns on a worker without an agent (idle RSS ${idle.rss.toFixed(0)} MB)`,
    );
    const started = Date.now();
    const tag = Date.now().toString(36);
    for (let i = 0; i < tier.hibernating; i++) {
      const id = `bench-hib-${tag}-${i}`;
      await startCampaign(
        stack.client,
        config,
        {
          model: spec.name,
          budget: { experiments: 10 },
          parallelism: 2,
          replicates: 2,
          pollIntervalSec: 3600,
        },
        id,
      );
      ids.push(id);
    }
    const want = tier.hibernating * 2;
    const deadline = Date.now() + 15 * 60_000;
    let waiting = 0;
    while (Date.now() < deadline) {
      waiting = await queue.getWaitingCount();
      if (waiting >= want) break;
      // A campaign that ended (a bad spec, a failing activity) will never queue its jobs: say why.
      const first = stack.client.workflow.getHandle(ids[0] as string);
      const { status } = await first.describe();
      if (status.name !== 'RUNNING') {
        const why = await first.result().then(
          () => 'it finished',
          (err: unknown) => (err as Error).cause?.toString() ?? (err as Error).message,
        );
        throw new Error(`campaign ${first.workflowId} is ${status.name}, not hibernating: ${why}`);
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
    const startSec = (Date.now() - started) / 1000;
    // Let the worker finish its last tasks and the garbage collector catch up before reading RSS.
    await new Promise((r) => setTimeout(r, 30_000));
    const now = rssMb(pid);
    out.hibernation = {
      campaigns: tier.hibernating,
      waitingJobs: await queue.getWaitingCount(),
      rssIdleMb: idle.rss,
      rssMb: now.rss,
      rssPeakMb: now.peak,
      startSec,
      ...(cachedWorkflows !== undefined ? { cachedWorkflows } : {}),
    };
    say(
      `  ${out.hibernation.waitingJobs} jobs waiting after ${startSec.toFixed(0)} s; RSS ${now.rss.toFixed(0)} MB`,
    );
    try {
      out.hibernation.wakes = await wakes(stack, config, queue, `bench-hib-${tag}-`, tier.wakes ?? 100);
      const w = out.hibernation.wakes;
      say(
        `  ${w.length} wakes: p50 ${percentile(w, 50).toFixed(3)} s, p99 ${percentile(w, 99).toFixed(3)} s`,
      );
    } catch (err) {
      out.hibernation.wakeError = (err as Error).message.split('\n')[0];
      say(`  wakes not measured: ${out.hibernation.wakeError}`);
    }
  } finally {
    writeFileSync(logFile, output);
    await inLanes(
      8,
      ids.map(
        (id) => () =>
          stack.client.workflow
            .getHandle(id)
            .terminate('benchmark over')
            .catch(() => undefined),
      ),
    );
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 3000));
    if (child.exitCode === null) child.kill('SIGKILL');
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}

/** The workflow cache size the worker logged at start ("worker ready" carries it). */
function cacheSize(output: string): number | undefined {
  const m = /"workflowCache":\s*(\d+)/.exec(output);
  return m ? Number(m[1]) : undefined;
}

/**
 * Lets a 1-slot agent run the queue's oldest jobs (1 s each) until `count` results were accepted,
 * then pairs every job a campaign queued afterwards with that campaign's latest accepted result
 * before it.
 */
async function wakes(
  stack: Stack,
  config: ReaConfig,
  queue: Queue<TrainingJob>,
  prefix: string,
  count: number,
): Promise<number[]> {
  const since = new Date();
  const agent = await startAgent(config, 1);
  const completions = async () =>
    (
      await stack.pool.query<{ experiment_id: string; at: Date }>(
        `SELECT experiment_id, at FROM job_events WHERE event = 'completed' AND experiment_id LIKE $1 AND at >= $2`,
        [`${prefix}%`, since],
      )
    ).rows;
  try {
    const deadline = Date.now() + 10 * 60_000;
    while ((await completions()).length < count && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 1000));
  } finally {
    await agent.close();
  }
  // The last wakes submit their jobs after the agent stopped: give them time to land.
  await new Promise((r) => setTimeout(r, 30_000));
  const done = await completions();
  const campaignOf = (experimentId: string) => experimentId.replace(/\.e\d+$/, '');
  const finishedAt = new Map<string, number[]>();
  for (const c of done) {
    const list = finishedAt.get(campaignOf(c.experiment_id)) ?? [];
    list.push(c.at.getTime());
    finishedAt.set(campaignOf(c.experiment_id), list);
  }
  const jobs = await queue.getJobs(['waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized']);
  const out: number[] = [];
  for (const job of jobs) {
    const times = finishedAt.get(job.data.campaignId);
    if (!times || job.timestamp < since.getTime()) continue;
    const before = times.filter((t) => t <= job.timestamp);
    if (before.length) out.push((job.timestamp - Math.max(...before)) / 1000);
  }
  if (!out.length) throw new Error(`no campaign queued a job after ${done.length} results`);
  return out.sort((a, b) => a - b);
}

export function writeOrchestration(
  o: Orchestration,
  campaigns: RealCampaignTiming[],
  header: string,
  searchHeader?: string,
): string[] {
  const rows: [string, string, string, string][] = [];
  const realGaps = campaigns.flatMap((c) => c.gaps);
  const notMeasured = (why: string | undefined) => `not measured: ${why ?? 'not run'}`;
  rows.push(
    realGaps.length
      ? [
          'job finished → next job started, p50 (s)',
          percentile(realGaps, 50).toFixed(3),
          `${realGaps.length} slot hand-overs in ${campaigns.length} search-quality campaigns (real trainer, 2 slots); gpu-agent journal (job_events) timestamps`,
          'real',
        ]
      : ['job finished → next job started, p50 (s)', notMeasured('no campaign ran'), '', 'real'],
    realGaps.length
      ? [
          'job finished → next job started, p99 (s)',
          percentile(realGaps, 99).toFixed(3),
          'same hand-overs; includes the phase boundaries, where the campaign waits for a step to end and plans the next, and, while the evidence (an LLM call: 1–2 minutes on these cores) is on its way, the wait once the search has spent its own three quarters of the budget',
          'real',
        ]
      : ['job finished → next job started, p99 (s)', notMeasured('no campaign ran'), '', 'real'],
  );
  if (o.fast) {
    rows.push(
      [
        'job finished → next job started, p50 (s)',
        percentile(o.fast.gaps, 50).toFixed(3),
        `${o.fast.gaps.length} hand-overs in the ${o.fast.experiments}-experiment campaign (stand-in trainer, ${o.fast.slots} slots)`,
        'fast',
      ],
      ['job finished → next job started, p99 (s)', percentile(o.fast.gaps, 99).toFixed(3), 'same', 'fast'],
    );
  }
  const utils = campaigns.map((c) => c.utilization).filter(Number.isFinite);
  rows.push(
    utils.length
      ? [
          'GPU-slot utilization during a campaign',
          `${(mean(utils) * 100).toFixed(1)} %`,
          `busy slot-time / (2 slots × first job start to last job end), mean of ${utils.length} search-quality campaigns (min ${(Math.min(...utils) * 100).toFixed(1)} %, max ${(Math.max(...utils) * 100).toFixed(1)} %)`,
          'real',
        ]
      : ['GPU-slot utilization during a campaign', notMeasured('no campaign ran'), '', 'real'],
  );
  if (o.fast)
    rows.push([
      'GPU-slot utilization, stand-in trainer',
      `${(o.fast.utilization * 100).toFixed(1)} %`,
      `${o.fast.slots} slots; jobs last milliseconds, so this is rea's scheduling overhead share`,
      'fast',
    ]);
  if (o.hibernation) {
    const h = o.hibernation;
    const per = (h.rssMb - h.rssIdleMb) / h.campaigns;
    rows.push(
      [
        'worker RSS with hibernating campaigns (MB)',
        h.rssMb.toFixed(0),
        `${h.campaigns} campaigns started on one worker process (no gpu-agent: ${h.waitingJobs} jobs waiting in BullMQ), RSS 30 s after the last job was queued; idle worker ${h.rssIdleMb.toFixed(0)} MB, peak ${h.rssPeakMb.toFixed(0)} MB; ${h.startSec.toFixed(0)} s to start them all`,
        'hibernating',
      ],
      [
        'worker memory per hibernating campaign (MB)',
        per.toFixed(3),
        `(RSS − idle RSS) / campaigns (each a campaign and 2 experiment workflows); the worker caches ${h.cachedWorkflows !== undefined ? `at most ${h.cachedWorkflows}` : 'a bounded number of'} workflows (REA_WORKFLOW_CACHE_MB), evicted ones cost nothing until they wake`,
        'hibernating',
      ],
      ...(h.wakes?.length
        ? ([
            [
              'hibernating campaign wakes: result → next job queued, p50 (s)',
              percentile(h.wakes, 50).toFixed(3),
              `${h.wakes.length} wakes of the oldest campaigns (evicted from the cache first) while a 1-slot agent ran their 1-second jobs; a job's result accepted (job_events) → the campaign's next job in BullMQ (its timestamp)`,
              'hibernating',
            ],
            [
              'hibernating campaign wakes: result → next job queued, p99 (s)',
              percentile(h.wakes, 99).toFixed(3),
              `same wakes; max ${Math.max(...h.wakes).toFixed(3)} s`,
              'hibernating',
            ],
          ] as [string, string, string, string][])
        : [
            [
              'hibernating campaign wakes: result → next job queued',
              notMeasured(h.wakeError),
              '',
              'hibernating',
            ] as [string, string, string, string],
          ]),
      [
        'campaigns per worker',
        `≥ ${h.campaigns} hibernating (measured); ≈ ${Math.floor(1024 / Math.max(per, 1e-3))} per GiB above the idle RSS (derived)`,
        'hibernating campaigns cost memory only; the derived figure divides 1 GiB by the measured memory per campaign, which counts the bounded workflow cache as if it grew with the campaigns (so it understates the capacity)',
        'hibernating',
      ],
    );
  } else {
    rows.push([
      'worker RSS with hibernating campaigns (MB)',
      notMeasured(o.hibernationError),
      '',
      'hibernating',
    ]);
  }
  if (o.fast) {
    const ev = o.fast.runs.map((r) => r.events);
    const rate = o.fast.experiments / o.fast.wallSec;
    rows.push(
      [
        'events per campaign workflow run',
        `${median(ev)} (median), ${Math.max(...ev)} (max)`,
        `${o.fast.experiments} experiments over ${o.fast.runs.length} runs (continue-as-new every 500 experiments or when Temporal suggests it); per run: ${ev.join(', ')}`,
        'fast',
      ],
      ['workflow runs of the campaign', String(o.fast.runs.length), '', 'fast'],
      [
        'events per experiment workflow',
        o.fast.experimentEvents.length
          ? `${median(o.fast.experimentEvents)} (median of ${o.fast.experimentEvents.length} sampled)`
          : notMeasured('no history fetched'),
        'each experiment is its own child workflow',
        'fast',
      ],
      [
        'experiments per second, one worker',
        rate.toFixed(1),
        `${o.fast.experiments} stand-in experiments in ${o.fast.wallSec.toFixed(0)} s, one worker and one ${o.fast.slots}-slot agent on 2 shared cores`,
        'fast',
      ],
      [
        'active campaigns per worker (derived)',
        `≈ ${Math.floor((rate * 3600) / 2)} with 1-hour jobs at parallelism 2`,
        'throughput × job duration / parallelism: CPU only, the worker is busy only at hand-overs; memory (rows above) binds first',
        'fast',
      ],
    );
  } else {
    rows.push(['events per campaign workflow run', notMeasured(o.fastError), '', 'fast']);
  }
  const partHeaders = [
    ['Rows marked "fast" come from the run:', o.fastHeader],
    ['Rows marked "hibernating" come from the run:', o.hibernationHeader],
  ].filter((h): h is [string, string] => h[1] !== undefined && h[1] !== header);
  const md = [
    '# Orchestration',
    '',
    header,
    '',
    ...partHeaders.flatMap(([what, h]) => [what, '', h, '']),
    ...(searchHeader && campaigns.length
      ? [
          `Rows marked "real" come from the search-quality campaigns (${campaigns.length}, every task; each task's run is stamped in search-quality.md); the latest search run:`,
          '',
          searchHeader,
          '',
        ]
      : []),
    '| measure | value | how | source |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
    '"real": the search-quality campaigns (CTR trainer, 2 slots). "fast": a campaign of stand-in experiments (`bench/fast_trainer.py`, milliseconds each). "hibernating": a separate `rea worker` process. Derived rows are arithmetic on measured ones, marked as such.',
  ];
  writeFileSync(path.join(RESULTS, 'orchestration.md'), `${md.join('\n')}\n`);
  writeFileSync(
    path.join(RESULTS, 'orchestration.csv'),
    `${[csvLine(['measure', 'value', 'how', 'source']), ...rows.map((r) => csvLine(r))].join('\n')}\n`,
  );
  return rows.map((r) => `${r[0]}: ${r[1]}`);
}

export interface OrchestrationRaw {
  header: string;
  tier: string;
  orch: Orchestration;
}

/** Runs the stand-in campaign and/or the hibernation part; a part not run keeps its earlier results. */
export async function runOrchestration(
  stack: Stack,
  tier: OrchestrationTier,
  parts: { fast: boolean; hibernation: boolean },
): Promise<void> {
  lockPart('orchestration');
  const partStart = new Date();
  const earlierRaw = loadRaw<OrchestrationRaw>('orchestration', tier.name);
  const earlier = earlierRaw?.orch ?? {};
  const orch: Orchestration = {};
  if (parts.fast) {
    try {
      await fastCampaign(stack, tier, orch);
    } catch (err) {
      orch.fastError = (err as Error).message.split('\n')[0];
      say(`fast campaign failed: ${orch.fastError}`);
    }
    orch.fastHeader = stamp(tier.name, partStart);
  } else {
    orch.fast = earlier.fast;
    orch.fastError = earlier.fastError;
    orch.fastHeader = earlier.fastHeader ?? earlierRaw?.header;
  }
  if (parts.hibernation) {
    const hibernationStart = new Date();
    try {
      await hibernation(stack, tier, orch);
    } catch (err) {
      orch.hibernationError = (err as Error).message.split('\n')[0];
      say(`hibernation failed: ${orch.hibernationError}`);
    }
    orch.hibernationHeader = stamp(tier.name, hibernationStart);
  } else {
    orch.hibernation = earlier.hibernation;
    orch.hibernationError = earlier.hibernationError;
    orch.hibernationHeader = earlier.hibernationHeader ?? earlierRaw?.header;
  }
  saveRaw('orchestration', { header: stamp(tier.name, partStart), tier: tier.name, orch });
}

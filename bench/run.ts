/**
 * `npm run bench`: measures rea against random search, Optuna's TPE and TPE with Hyperband pruning
 * at equal compute (the same trainer, the same total training steps), the transfer of one
 * campaign's history to a drifted task, and the orchestration costs; writes bench/results/.
 *
 *   npm run bench                      # the default tier (~40 minutes on 2 cores)
 *   npm run bench -- --full            # every task at the specs' own fidelities (hours)
 *   npm run bench -- --only orchestration
 *
 * Everything runs on real components: a Temporal dev server, PostgreSQL (database rea_bench,
 * REA_BENCH_DATABASE_URL), Redis, rea's worker and gpu-agent in this process, the CTR trainer; the
 * baselines through bench/baselines.py (Optuna, from bench/requirements.txt). See bench/README.md.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import { Queue } from 'bullmq';
import type { Pool } from 'pg';
import { redisConnection, TRAINING_QUEUE } from '../src/cluster/bullmq-pool';
import { startGpuAgent, type GpuAgent } from '../src/cluster/gpu-agent';
import type { TrainingJob } from '../src/cluster/adapter';
import { loadConfig, type ReaConfig } from '../src/config';
import type { CampaignInput } from '../src/core/campaign-input';
import { searchAttributes } from '../src/core/messages';
import type { CampaignResult } from '../src/core/types';
import { migrate } from '../src/db/migrate';
import { createPool, ensureDatabase } from '../src/db/pool';
import { createLogger } from '../src/logging';
import { startCampaign } from '../src/temporal/client';
import { installTemporalRuntime } from '../src/temporal/runtime';
import { startWorker, workflowsPath, type RunningWorker } from '../src/temporal/worker';
import {
  bestSoFarSvg,
  bestWithin,
  csvLine,
  gainPct,
  mean,
  median,
  medianStepsToGain,
  percentile,
  stepsToGain,
  type Reference,
  type RunPoint,
  type SearchRun,
  slotGaps,
  utilization,
  type JobSpan,
} from './analysis';

// ---- tiers ----------------------------------------------------------------------------------

interface Tier {
  name: 'default' | 'full' | 'smoke';
  tasks: string[];
  seeds: number[];
  /** rea's fidelities; the baselines train every full trial at `high` (the evaluation fidelity). */
  fidelity: { low: number; high: number };
  budgetSteps: number;
  campaign: Pick<CampaignInput, 'replicates' | 'slateSize' | 'eta' | 'refinements'>;
  /** Caps on the cost knobs (default tier only): a random config may otherwise cost 100x a step. */
  caps?: { maxOf: Record<string, number>; maxWidth: number };
  transferSeeds: number[];
  hibernating: number;
  fastExperiments: number;
  expectedMinutes: string;
}

const DEFAULT_TIER: Tier = {
  name: 'default',
  // Every example task; on a 2-core machine one task takes 25-40 minutes (`--tasks` runs a subset).
  tasks: ['synthetic-ctr', 'synthetic-ctr-hard', 'movielens-ctr', 'obd-ctr'],
  seeds: [0, 1, 2, 3, 4],
  fidelity: { low: 100, high: 200 },
  // rea's plan at these settings is 3310 steps (see bench/README.md); every method gets 3400.
  budgetSteps: 3400,
  campaign: { replicates: 2, slateSize: 5, eta: 3, refinements: 2 },
  // The embedding tables get dense optimizer updates, so a step costs ~ hash_buckets × widths: the
  // specs' maxima make one random config ~100× the baseline's step. Capped near the baseline's cost.
  caps: {
    maxOf: {
      batch_size: 512,
      hash_buckets: 100000,
      embedding_dim: 16,
      embedding_dim_user: 16,
      embedding_dim_ad: 16,
      embedding_dim_context: 16,
      mlp_width: 128,
    },
    maxWidth: 128,
  },
  transferSeeds: [0],
  hibernating: 1000,
  fastExperiments: 5000,
  expectedMinutes:
    'about 2-3 hours on a 2-core machine (search 25-40 minutes per task, the 5,000-experiment campaign ~35 minutes, hibernation ~12 minutes)',
};

const FULL_TIER: Tier = {
  name: 'full',
  tasks: ['synthetic-ctr', 'synthetic-ctr-hard', 'movielens-ctr', 'obd-ctr'],
  seeds: [0, 1, 2, 3, 4],
  fidelity: { low: 300, high: 3000 },
  // rea's default plan (slate 8, 3 replicates, 4 refinements) at 300/949/3000 is 53229 steps.
  budgetSteps: 54000,
  campaign: { replicates: 3, slateSize: 8, eta: 3, refinements: 4 },
  transferSeeds: [0, 1, 2],
  hibernating: 1000,
  fastExperiments: 5000,
  expectedMinutes:
    'about 30-40 hours on 2 cores (16 times the default tier steps per search, with the cost knobs uncapped; estimated, not run here)',
};

/** A few minutes: checks that every part runs end to end; results go to .rea/bench/smoke-results. */
const SMOKE_TIER: Tier = {
  ...DEFAULT_TIER,
  name: 'smoke',
  tasks: ['synthetic-ctr'],
  seeds: [0],
  fidelity: { low: 100, high: 200 },
  budgetSteps: 1500,
  campaign: { replicates: 2, slateSize: 2, eta: 2, refinements: 1 },
  hibernating: 20,
  fastExperiments: 200,
  expectedMinutes: 'a few minutes',
};

/** Fidelities of the obd task (its spec runs 50..500 steps): scaled from the tier's. */
function taskFidelity(tier: Tier, spec: Spec): { low: number; high: number; budget: number } {
  const f = spec.fidelity;
  if (tier.fidelity.low >= f.low && tier.fidelity.high <= f.high)
    return { ...tier.fidelity, budget: tier.budgetSteps };
  const scale = f.high / FULL_TIER.fidelity.high;
  return {
    low: f.low,
    high: Math.round(tier.fidelity.high * scale),
    budget: Math.round(tier.budgetSteps * scale),
  };
}

const DRIFT_DATA_SEED = 4321;
const TRANSFER_TASK = 'synthetic-ctr';
const TRANSFER_CAMPAIGN_SEED = 100;
const METHODS = ['random', 'tpe', 'hyperband'] as const;
type Method = 'rea' | 'rea-llm' | (typeof METHODS)[number];
const LABEL: Record<Method, string> = {
  rea: 'rea (planner, no LLM)',
  'rea-llm': 'rea (with LLM)',
  random: 'random search',
  tpe: 'Optuna TPE',
  hyperband: 'Optuna TPE + Hyperband',
};

// ---- set-up ---------------------------------------------------------------------------------

interface Knob {
  type: string;
  min?: number;
  max?: number;
  choices?: (string | number | boolean)[];
  baseline: unknown;
}
interface Spec {
  name: string;
  knobs: Record<string, Knob>;
  fixed: { dataset?: { data_seed?: number } } & Record<string, unknown>;
  fidelity: { knob: string; low: number; high: number };
  cost: { gpuHoursPerUnit: number };
  resources: { gpus: number };
}

const ROOT = path.resolve(__dirname, '..', '..');
const WORK = path.join(ROOT, '.rea', 'bench');
const SMOKE = process.argv.includes('--smoke');
const RESULTS = SMOKE ? path.join(WORK, 'smoke-results') : path.join(ROOT, 'bench', 'results');
const MODELS = path.join(WORK, 'models');
const PYTHON = process.env.REA_PYTHON || path.join(ROOT, '.venv', 'bin', 'python');
const log = createLogger('bench', process.env.REA_LOG_LEVEL ?? 'warn');

function say(message: string): void {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

function readSpec(file: string): Spec {
  return JSON.parse(readFileSync(file, 'utf8')) as Spec;
}

/** The task's spec as the tier searches it: the cost knobs capped, the fidelity floor at the tier's. */
function tierSpec(tier: Tier, name: string): Spec {
  const spec = readSpec(path.join(ROOT, 'models', `${name}.json`));
  if (tier.caps) {
    for (const [knob, max] of Object.entries(tier.caps.maxOf)) {
      const k = spec.knobs[knob];
      if (k?.max !== undefined) k.max = Math.min(k.max, max);
    }
    const widths = spec.knobs.mlp_widths;
    if (widths?.choices) {
      const cap = tier.caps.maxWidth;
      widths.choices = widths.choices.filter((c) =>
        String(c)
          .split(',')
          .every((w) => !w || Number(w) <= cap),
      );
    }
    spec.fidelity.low = Math.min(spec.fidelity.low, tier.fidelity.low);
  }
  return spec;
}

/**
 * Writes the spec where rea's worker reads it (MODELS), or, with `dir`, where the baselines read it:
 * the worker's copy drifts during the transfer campaigns while baselines train on the original.
 */
function writeSpec(spec: Spec, dataSeed?: number, dir = MODELS): string {
  const copy = JSON.parse(JSON.stringify(spec)) as Spec;
  if (dataSeed !== undefined && copy.fixed.dataset) copy.fixed.dataset.data_seed = dataSeed;
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${copy.name}.json`);
  writeFileSync(file, `${JSON.stringify(copy, null, 2)}\n`);
  return file;
}

/** Installs bench/requirements.txt into the venv once (adds packages only; keyed on the file's hash). */
function ensureOptuna(): void {
  const req = readFileSync(path.join(ROOT, 'bench', 'requirements.txt'), 'utf8');
  const pins = req
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const check = `import importlib.metadata as m, sys\npins = ${JSON.stringify(pins)}\nsys.exit(any(m.version(p.split('==')[0]) != p.split('==')[1] for p in pins))`;
  if (spawnSync(PYTHON, ['-c', check]).status === 0) return;
  say(`installing ${pins.join(' ')} into ${PYTHON}'s environment (hash ${hash(req)})`);
  execFileSync(PYTHON, ['-m', 'pip', 'install', '-q', '-r', path.join(ROOT, 'bench', 'requirements.txt')], {
    stdio: 'inherit',
  });
}

const hash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12);

/** The commit this process runs (read once: a commit made while a long run goes on is not its code). */
const COMMIT = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).stdout.toString().trim();

function stamp(tier: Tier, startedAt: Date): string {
  const commit = COMMIT;
  const dirty = spawnSync(
    'git',
    ['status', '--porcelain', '--', 'src', 'workflows', 'activities', 'trainers'],
    {
      cwd: ROOT,
    },
  )
    .stdout.toString()
    .trim();
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return [
    `Machine: ${os.hostname()}, ${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version} (shared with other work: timings are noisy)`,
    `Date: ${startedAt.toISOString()} (finished ${new Date().toISOString()})`,
    `Commit: ${commit}${dirty ? ' (with uncommitted changes in src/)' : ''}; tier: ${tier.name}; command: \`npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\``,
  ].join('  \n');
}

// ---- the stack --------------------------------------------------------------------------------

interface Stack {
  env: TestWorkflowEnvironment;
  config: ReaConfig;
  pool: Pool;
  workers: Partial<Record<'rea' | 'rea-llm', { worker: RunningWorker; config: ReaConfig }>>;
  agent?: GpuAgent;
  client: Client;
}

const DATABASE_URL = process.env.REA_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/rea_bench';
const unique = (p: string) => `${p}-${process.pid}-${Date.now().toString(36)}`;

function benchConfig(overrides: Record<string, string>): ReaConfig {
  return loadConfig({
    ...process.env,
    REA_DATABASE_URL: DATABASE_URL,
    REA_MODELS_DIR: MODELS,
    REA_WORK_DIR: path.join(WORK, 'work'),
    REA_LOG_LEVEL: process.env.REA_LOG_LEVEL ?? 'warn',
    ...overrides,
  });
}

async function startStack(): Promise<Stack> {
  installTemporalRuntime('warn');
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: loadConfig().REA_TEMPORAL_CLI },
      searchAttributes: Object.values(searchAttributes),
    },
  });
  await ensureDatabase(DATABASE_URL);
  const pool = createPool(DATABASE_URL, 3);
  await migrate(pool, path.join(ROOT, 'migrations'));
  const prefix = unique('reabench');
  const base = { REA_TEMPORAL_ADDRESS: env.address, REA_QUEUE_PREFIX: prefix };
  const bundle = await bundleWorkflowCode({ workflowsPath: workflowsPath(), logger: undefined });
  const workers: Stack['workers'] = {};
  // The planner-only worker never sees the LLM settings; a second worker gets them when configured.
  const plain = benchConfig({
    ...base,
    REA_TASK_QUEUE: unique('bench-rea'),
    REA_LLM_BASE_URL: '',
    REA_LLM_API_KEY: '',
  });
  workers.rea = { config: plain, worker: await startWorker(plain, log, { workflowBundle: bundle }) };
  if (process.env.REA_LLM_BASE_URL) {
    const withLlm = benchConfig({ ...base, REA_TASK_QUEUE: unique('bench-rea-llm') });
    workers['rea-llm'] = {
      config: withLlm,
      worker: await startWorker(withLlm, log, { workflowBundle: bundle }),
    };
  }
  return { env, config: plain, pool, workers, client: env.client };
}

function startAgent(config: ReaConfig, slots: number): Promise<GpuAgent> {
  return startGpuAgent({
    redisUrl: config.REA_REDIS_URL,
    prefix: config.REA_QUEUE_PREFIX,
    slots: Array.from({ length: slots }, () => ''),
    python: PYTHON,
    projectRoot: ROOT,
    workDir: config.REA_WORK_DIR,
    log,
    lockSec: config.REA_POOL_LOCK_SEC,
    databaseUrl: config.REA_DATABASE_URL,
  });
}

/**
 * Forgets the campaigns on `models`, so that the next one starts without history (the engine reads
 * every recent campaign). Other models' rows stay: the stand-in model shares too few knobs to count
 * as "similar", and an orchestration run may be using them at the same time.
 */
async function clearHistory(pool: Pool, models: string[]): Promise<void> {
  await pool.query('DELETE FROM experiments WHERE model = ANY($1)', [models]);
  await pool.query('DELETE FROM insights WHERE model = ANY($1)', [models]);
  await pool.query(
    'DELETE FROM hypotheses WHERE campaign_id IN (SELECT id FROM campaigns WHERE model = ANY($1))',
    [models],
  );
  await pool.query(
    'DELETE FROM llm_calls WHERE campaign_id IN (SELECT id FROM campaigns WHERE model = ANY($1))',
    [models],
  );
  await pool.query('DELETE FROM campaigns WHERE model = ANY($1)', [models]);
}

// ---- rea campaigns ------------------------------------------------------------------------------

interface CampaignRecord {
  id: string;
  result: CampaignResult;
  run: SearchRun;
  wallSec: number;
  /** Slot-time busy / slot-time available over the campaign (job_events). */
  utilization: number;
  /** Seconds from a trainer finishing to the next trainer starting, while the campaign had work. */
  gaps: number[];
}

interface ExperimentTimes {
  role: string;
  fidelity: number;
  status: string;
  primary_value: number | null;
  finished_at: Date | null;
}

async function runCampaign(
  stack: Stack,
  method: 'rea' | 'rea-llm',
  task: string,
  seed: number,
  fid: { low: number; high: number; budget: number },
  tier: Tier,
  spec: Spec,
): Promise<CampaignRecord> {
  const w = stack.workers[method];
  if (!w) throw new Error(`no ${method} worker: set REA_LLM_BASE_URL to run rea with an LLM`);
  const input: CampaignInput = {
    model: task,
    budget: { gpuHours: fid.budget * spec.cost.gpuHoursPerUnit * Math.max(1, spec.resources.gpus) },
    parallelism: 2,
    seed,
    fidelity: { low: fid.low, high: fid.high },
    pollIntervalSec: 30,
    ...tier.campaign,
  };
  const id = `bench-${method}-${task}-s${seed}-${Date.now().toString(36)}`;
  const started = Date.now();
  const handle = await startCampaign(stack.client, w.config, input, id);
  const result = await handle.result();
  const wallSec = (Date.now() - started) / 1000;
  const { rows } = await stack.pool.query<ExperimentTimes>(
    `SELECT role, fidelity, status, primary_value, finished_at FROM experiments WHERE campaign_id = $1
     ORDER BY finished_at NULLS LAST, id`,
    [id],
  );
  let cum = 0;
  const points: RunPoint[] = rows.map((r) => {
    cum += r.fidelity;
    // The baseline's replicates measure noise; they are not a model the search found.
    const found = r.status === 'succeeded' && r.fidelity === fid.high && r.role === 'candidate';
    const ne = found ? r.primary_value : null;
    return { cumSteps: cum, ne };
  });
  const best = result.best;
  const run: SearchRun = {
    method,
    task,
    seed,
    points,
    stepsUsed: cum,
    runs: rows.length,
    baselineRunsExcluded: true,
    answer: { ne: best.value, hypothesisId: best.hypothesisId, significant: result.significant },
  };
  const jobs = await jobTimes(stack.pool, id);
  return { id, result, run, wallSec, utilization: utilization(jobs, 2), gaps: slotGaps(jobs, 2) };
}

async function jobTimes(pool: Pool, campaignPrefix: string): Promise<JobSpan[]> {
  const { rows } = await pool.query<{ start: Date; finish: Date }>(
    `SELECT s.at AS start, f.at AS finish FROM job_events s JOIN job_events f ON f.run_id = s.run_id AND f.event = 'finished'
     WHERE s.event = 'started' AND s.experiment_id LIKE $1 ORDER BY s.at`,
    [`${campaignPrefix}%`],
  );
  return rows.map((r) => ({ start: r.start.getTime(), end: r.finish.getTime() }));
}

// ---- baselines (bench/baselines.py) ----------------------------------------------------------

interface TrialLine {
  method: string;
  seed: number;
  trial: number;
  status: 'ok' | 'failed' | 'stopped';
  ne?: number;
  bayes_ne?: number | null;
  steps_trained: number;
  spent?: number;
  failure?: string;
  why?: string;
}

function runPython(args: string[], logFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [path.join(ROOT, 'bench', 'baselines.py'), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve()
        : reject(
            new Error(`bench/baselines.py ${args.join(' ')} exited ${code}; its log is ${logFile}:\n${err}`),
          ),
    );
  });
}

function readTrials(file: string): TrialLine[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as TrialLine);
}

async function referenceOf(
  specFile: string,
  fidelity: number,
  dataSeed?: number,
  trainerSeed = 0,
): Promise<Reference> {
  const name = `${path.basename(specFile, '.json')}-${dataSeed ?? 'orig'}-${fidelity}-seed${trainerSeed}`;
  const out = path.join(WORK, 'references', `${name}.jsonl`);
  mkdirSync(path.dirname(out), { recursive: true });
  // The trainer is deterministic (docs/trainers.md): a reference measured once stays valid.
  const known = readTrials(out)[0];
  if (known?.status === 'ok' && known.ne !== undefined)
    return { ne: known.ne, ...(known.bayes_ne ? { bayesNe: known.bayes_ne } : {}) };
  rmSync(out, { force: true });
  const args = [
    '--method',
    'baseline',
    '--spec',
    specFile,
    '--fidelity',
    String(fidelity),
    '--seed',
    String(trainerSeed),
    '--out',
    out,
  ];
  if (dataSeed !== undefined) args.push('--data-seed', String(dataSeed));
  await runPython(args, out);
  const line = readTrials(out)[0];
  if (!line || line.status !== 'ok' || line.ne === undefined)
    throw new Error(`the baseline of ${specFile} did not train at ${fidelity} steps; see ${out}`);
  return { ne: line.ne, ...(line.bayes_ne ? { bayesNe: line.bayes_ne } : {}) };
}

async function runBaseline(
  method: (typeof METHODS)[number],
  specFile: string,
  task: string,
  seed: number,
  fid: { high: number; budget: number },
): Promise<SearchRun> {
  const out = path.join(RESULTS, 'raw', `${task}-${method}-s${seed}.jsonl`);
  rmSync(out, { force: true });
  await runPython(
    [
      '--method',
      method,
      '--spec',
      specFile,
      '--fidelity',
      String(fid.high),
      '--budget-steps',
      String(fid.budget),
      '--seed',
      String(seed),
      '--out',
      out,
    ],
    out,
  );
  const trials = readTrials(out);
  const points = trials.map((t) => ({
    cumSteps: t.spent ?? 0,
    ne: t.status === 'ok' && t.steps_trained === fid.high ? (t.ne ?? null) : null,
  }));
  return {
    method,
    task,
    seed,
    points,
    stepsUsed: trials.at(-1)?.spent ?? 0,
    runs: trials.length,
  };
}

/** Runs `jobs` with at most `lanes` at once. */
async function inLanes<T>(lanes: number, jobs: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array<T>(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < jobs.length) {
        const i = next++;
        results[i] = await (jobs[i] as () => Promise<T>)();
      }
    }),
  );
  return results;
}

// ---- search quality and transfer ---------------------------------------------------------------

interface TaskResults {
  task: string;
  /** The stamp of the run that measured this task (tasks may come from separate `--tasks` runs). */
  header?: string;
  /** Saved before that run finished every search of the task. */
  partial?: boolean;
  ref: Reference;
  fid: { low: number; high: number; budget: number };
  runs: SearchRun[];
  campaigns: CampaignRecord[];
}

interface TransferResults {
  /** The stamp of the run that measured the transfer pair(s). */
  header?: string;
  firstGainPct: number;
  driftRef: Reference;
  warm: CampaignRecord[];
  cold: CampaignRecord[];
  first: CampaignRecord[];
}

async function searchQuality(
  stack: Stack,
  tier: Tier,
  checkpoint: (partial: { tasks: TaskResults[]; transfer?: TransferResults }) => void,
): Promise<{ tasks: TaskResults[]; transfer?: TransferResults }> {
  mkdirSync(path.join(RESULTS, 'raw'), { recursive: true });
  const tasks: TaskResults[] = [];
  const plans: { task: string; spec: Spec; specFile: string; fid: TaskResults['fid'] }[] = [];
  for (const task of tier.tasks) {
    const spec = tierSpec(tier, task);
    writeSpec(spec);
    const specFile = writeSpec(spec, undefined, path.join(WORK, 'specs'));
    const fid = taskFidelity(tier, spec);
    say(`${task}: measuring the baseline at ${fid.high} steps`);
    try {
      const ref = await referenceOf(specFile, fid.high);
      tasks.push({ task, ref, fid, runs: [], campaigns: [] });
      plans.push({ task, spec, specFile, fid });
    } catch (err) {
      say(`${task}: skipped (${(err as Error).message.split('\n')[0]})`);
    }
  }
  const reaMethods = (Object.keys(stack.workers) as ('rea' | 'rea-llm')[]).filter((m) => stack.workers[m]);

  // Lane A runs rea's campaigns one after another (each trains 2 at a time on the agent), then
  // helps with the baselines; lane B starts on the baselines at once.
  const baselineJobs = plans.flatMap((p) =>
    tier.seeds.flatMap((seed) =>
      METHODS.map((method) => async () => {
        say(`${p.task}: ${method} seed ${seed} (${p.fid.budget} steps at ${p.fid.high})`);
        const run = await runBaseline(method, p.specFile, p.task, seed, p.fid);
        tasks.find((t) => t.task === p.task)?.runs.push(run);
        checkpoint({ tasks, ...(transfer ? { transfer } : {}) });
      }),
    ),
  );
  let transfer: TransferResults | undefined;
  const transferPlan = plans.find((p) => p.task === TRANSFER_TASK);
  const driftRef = transferPlan
    ? await referenceOf(transferPlan.specFile, transferPlan.fid.high, DRIFT_DATA_SEED)
    : undefined;
  const campaignLane = async () => {
    for (const p of plans) {
      const t = tasks.find((x) => x.task === p.task) as TaskResults;
      for (const method of reaMethods) {
        for (const seed of tier.seeds) {
          await clearHistory(stack.pool, tier.tasks);
          writeSpec(p.spec);
          say(`${p.task}: ${method} campaign seed ${seed} (budget ${p.fid.budget} steps)`);
          const c = await runCampaign(stack, method, p.task, seed, p.fid, tier, p.spec);
          t.campaigns.push(c);
          t.runs.push(c.run);
          checkpoint({ tasks, ...(transfer ? { transfer } : {}) });
          say(
            `  done in ${c.wallSec.toFixed(0)} s: ${c.run.stepsUsed} steps, best ${bestWithin(c.run)?.toFixed(5)}`,
          );
          if (method === 'rea' && p === transferPlan && driftRef && tier.transferSeeds.includes(seed)) {
            // Transfer: the same model on drifted data (its generator with a new seed), with this
            // campaign's history in the database, against a cold start on the same drifted data.
            transfer ??= { firstGainPct: NaN, driftRef, warm: [], cold: [], first: [] };
            transfer.first.push(c);
            writeSpec(p.spec, DRIFT_DATA_SEED);
            say(`transfer: warm campaign on drifted ${p.task} after seed ${seed}`);
            transfer.warm.push(
              await runCampaign(stack, 'rea', p.task, TRANSFER_CAMPAIGN_SEED + seed, p.fid, tier, p.spec),
            );
            await clearHistory(stack.pool, tier.tasks);
            say(`transfer: cold campaign on drifted ${p.task}`);
            transfer.cold.push(
              await runCampaign(stack, 'rea', p.task, TRANSFER_CAMPAIGN_SEED + seed, p.fid, tier, p.spec),
            );
            writeSpec(p.spec);
            checkpoint({ tasks, transfer });
          }
        }
      }
    }
  };
  // One queue of baseline studies: lane B starts on it at once, lane A joins after the campaigns.
  let nextJob = 0;
  const take = async () => {
    while (nextJob < baselineJobs.length) await (baselineJobs[nextJob++] as () => Promise<void>)();
  };
  await Promise.all([campaignLane().then(take), take()]);
  if (transfer && transferPlan) {
    const ref = tasks.find((t) => t.task === TRANSFER_TASK)?.ref as Reference;
    transfer.firstGainPct = mean(transfer.first.map((c) => gainPct(ref, bestWithin(c.run) ?? ref.ne)));
  }
  return { tasks, ...(transfer ? { transfer } : {}) };
}

// ---- orchestration -------------------------------------------------------------------------------

interface Orchestration {
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
  };
  hibernationError?: string;
}

function rssMb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

async function fastCampaign(stack: Stack, tier: Tier, out: Orchestration): Promise<void> {
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
async function hibernation(stack: Stack, tier: Tier, out: Orchestration): Promise<void> {
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
    REA_LOG_LEVEL: 'warn',
    REA_LLM_BASE_URL: '',
    REA_LLM_API_KEY: '',
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
    // Ready when it polls: give it time to bundle the workflows and settle.
    await new Promise((r) => setTimeout(r, 20_000));
    if (child.exitCode !== null)
      throw new Error(`the worker exited (${child.exitCode}): ${output.slice(-500)}`);
    const idle = rssMb(pid);
    say(
      `orchestration: ${tier.hibernating} campaigns on a worker without an agent (idle RSS ${idle.rss.toFixed(0)} MB)`,
    );
    const started = Date.now();
    for (let i = 0; i < tier.hibernating; i++) {
      const id = `bench-hib-${i}-${Date.now().toString(36)}`;
      await startCampaign(
        stack.client,
        config,
        {
          model: 'bench-fast',
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
    };
    say(
      `  ${out.hibernation.waitingJobs} jobs waiting after ${startSec.toFixed(0)} s; RSS ${now.rss.toFixed(0)} MB`,
    );
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

/** Share (%) of the baseline's gap to the Bayes-optimal NE that `ne` removes. */
const gapClosed = (ref: Reference, ne: number) => ((ref.ne - ne) / (ref.ne - (ref.bayesNe ?? NaN))) * 100;

/**
 * Gives every search the baseline at its own trainer seed, and leaves rea's baseline replicates out
 * of results saved before runs carried their role: they are recognised by their NE, because the
 * trainer is deterministic and a replicate's NE equals the reference at its seed to the last bit.
 */
async function attachReferences(tier: Tier, sq: SearchRaw): Promise<void> {
  const replicates = tier.campaign.replicates ?? 3;
  const prepare = async (run: SearchRun, task: string, high: number, dataSeed?: number) => {
    // Written again here: a `--report` on a fresh checkout has no specs from a run.
    const specFile = writeSpec(tierSpec(tier, task), undefined, path.join(WORK, 'specs'));
    run.ref = await referenceOf(specFile, high, dataSeed, run.seed);
    if (!run.method.startsWith('rea') || run.baselineRunsExcluded) return;
    const baselineNes: number[] = [];
    for (let i = 0; i < replicates; i++)
      baselineNes.push((await referenceOf(specFile, high, dataSeed, run.seed + i)).ne);
    run.points = run.points.map((p) =>
      p.ne !== null && baselineNes.includes(p.ne) ? { ...p, ne: null } : p,
    );
    run.baselineRunsExcluded = true;
  };
  for (const t of sq.tasks) for (const r of t.runs) await prepare(r, t.task, t.fid.high);
  const tr = sq.transfer;
  const high = sq.tasks.find((t) => t.task === TRANSFER_TASK)?.fid.high;
  if (tr && high !== undefined) {
    for (const c of tr.first) await prepare(c.run, TRANSFER_TASK, high);
    for (const c of [...tr.warm, ...tr.cold]) await prepare(c.run, TRANSFER_TASK, high, DRIFT_DATA_SEED);
    tr.firstGainPct = mean(
      tr.first.map((c) => gainPct(c.run.ref as Reference, bestWithin(c.run) ?? (c.run.ref as Reference).ne)),
    );
  }
}

// ---- writing the results ----------------------------------------------------------------------

const f5 = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(5));
const f1 = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(1));
const steps = (v: number | undefined) =>
  v === undefined ? '—' : Number.isFinite(v) ? String(Math.round(v)) : 'not reached';

interface Headline {
  task: string;
  text: string;
}

function writeSearchQuality(tier: Tier, tasks: TaskResults[], header: string): Headline[] {
  const methods = (['rea', 'rea-llm', ...METHODS] as Method[]).filter((m) =>
    tasks.some((t) => t.runs.some((r) => r.method === m)),
  );
  const csv = [
    csvLine([
      'task',
      'method',
      'seed',
      'budget_steps',
      'steps_used',
      'runs',
      'best_ne',
      'gain_pct',
      'gap_closed_pct',
      'best_ne_at_rea_steps',
      'steps_to_target',
      'target_gain_pct',
      'baseline_ne',
      'bayes_ne',
      'answer_ne',
      'answer',
    ]),
  ];
  const md: string[] = [
    '# Search quality at equal compute',
    '',
    header,
    '',
    `Every method runs the same trainer (\`trainers/ctr/train.py\`) on the same search space with the same budget of training steps (the sum of \`steps\` over all runs): ${tasks.map((t) => t.task).join(', ')}, seeds ${tier.seeds.join(', ')}. rea runs real campaigns (Temporal, PostgreSQL, BullMQ, gpu-agent; no LLM) at fidelities low/mid/high = ${tier.fidelity.low}/${Math.round(Math.sqrt(tier.fidelity.low * tier.fidelity.high))}/${tier.fidelity.high}; the baselines train each full trial at ${tier.fidelity.high} steps. **Best NE** is the best validation NE any run of the method reached at ${tier.fidelity.high} steps (the evaluation fidelity); the baseline's NE is the spec's baseline config at ${tier.fidelity.high} steps at the search's trainer seed (seed noise is as large as the effects here; rea's own baseline replicates are not counted as found models). **Gap closed** is the share of (baseline NE − Bayes-optimal NE) removed. **Target gain** per task is half the median final gain over all methods and seeds (at least 0.01 %); **steps to target** is the median over seeds of the steps spent when the best-so-far first reached it ("not reached" when half the seeds or more never did). rea's **answer** is the config its campaign reports (confirmed against the baseline, mean of its replicates at ${tier.fidelity.high} steps).`,
    '',
  ];
  if (tier.caps)
    md.push(
      `Default tier: the search space is each spec's, with the cost knobs capped for every method alike (${Object.entries(
        tier.caps.maxOf,
      )
        .map(([k, v]) => `${k} ≤ ${v}`)
        .join(
          ', ',
        )}, \`mlp_widths\` without layers wider than ${tier.caps.maxWidth}) so that 5 seeds × 4 methods fit in the time; \`npm run bench -- --full\` searches the specs unchanged.`,
      '',
    );
  if (!methods.includes('rea-llm'))
    md.push(
      '"rea (with LLM)" has no row: it runs only when `REA_LLM_BASE_URL` names an OpenAI-compatible endpoint, and none was configured for these runs (this machine reaches no LLM API).',
      '',
    );
  const headlines: Headline[] = [];
  for (const t of tasks) {
    const refOf = (r: SearchRun) => r.ref ?? t.ref;
    const finalGains = t.runs.map((r) => gainPct(refOf(r), bestWithin(r) ?? refOf(r).ne));
    const seedRefs = [...new Map(t.runs.map((r) => [r.seed, refOf(r).ne])).entries()].sort(
      (a, b) => a[0] - b[0],
    );
    const target = Math.max(0.01, median(finalGains) / 2);
    const reaSteps = new Map(t.runs.filter((r) => r.method === 'rea').map((r) => [r.seed, r.stepsUsed]));
    md.push(
      `## ${t.task}`,
      '',
      ...(t.header && t.header !== header ? [`Measured by the run: ${t.header}`, ''] : []),
      `Baseline NE at ${t.fid.high} steps, by trainer seed (each search is compared with the baseline at its own seed): ${seedRefs.map(([seed, ne]) => `${seed}: ${f5(ne)}`).join(', ')}; Bayes-optimal NE: ${f5(t.ref.bayesNe)}; budget ${t.fid.budget} steps per search; target gain ${target.toFixed(2)} %.`,
      '',
      "| method | seeds | steps used (mean) | best NE (median) | gain over baseline (median) | gap to Bayes closed (median) | best NE at rea's steps (median) | steps to target gain (median) | reached target |",
      '|---|---|---|---|---|---|---|---|---|',
    );
    const summary = new Map<Method, { gap: number; toTarget: number; gain: number }>();
    for (const m of methods) {
      const runs = t.runs.filter((r) => r.method === m).sort((a, b) => a.seed - b.seed);
      if (!runs.length) continue;
      const bests = runs.map((r) => bestWithin(r) ?? refOf(r).ne);
      const gains = runs.map((r, i) => gainPct(refOf(r), bests[i] as number));
      const gaps =
        t.ref.bayesNe === undefined ? [] : runs.map((r, i) => gapClosed(refOf(r), bests[i] as number));
      const atRea = runs.map((r) => bestWithin(r, reaSteps.get(r.seed) ?? Infinity) ?? refOf(r).ne);
      const toTarget = medianStepsToGain(runs, t.ref, target);
      const reached = runs.filter((r) => stepsToGain(r, refOf(r), target) !== undefined).length;
      summary.set(m, { gap: median(gaps), toTarget, gain: median(gains) });
      md.push(
        `| ${LABEL[m]} | ${runs.length} | ${Math.round(mean(runs.map((r) => r.stepsUsed)))} | ${f5(median(bests))} | ${f1(median(gains))} % | ${gaps.length ? `${f1(median(gaps))} %` : '—'} | ${f5(median(atRea))} | ${steps(toTarget)} | ${reached}/${runs.length} |`,
      );
      for (const r of runs) {
        const best = bestWithin(r);
        csv.push(
          csvLine([
            t.task,
            m,
            r.seed,
            t.fid.budget,
            r.stepsUsed,
            r.runs,
            best,
            best === undefined ? '' : gainPct(refOf(r), best).toFixed(3),
            best === undefined || t.ref.bayesNe === undefined ? '' : gapClosed(refOf(r), best).toFixed(2),
            bestWithin(r, reaSteps.get(r.seed) ?? Infinity),
            stepsToGain(r, refOf(r), target) ?? 'not reached',
            target.toFixed(3),
            refOf(r).ne,
            refOf(r).bayesNe,
            r.answer?.ne,
            r.answer
              ? `${r.answer.hypothesisId}${r.answer.significant ? ' (significant)' : ' (not significant)'}`
              : '',
          ]),
        );
      }
    }
    const reaRuns = t.runs.filter((r) => r.method === 'rea');
    if (reaRuns.length) {
      md.push(
        '',
        `rea's own answers (mean of replicates at ${t.fid.high} steps): ${reaRuns
          .sort((a, b) => a.seed - b.seed)
          .map(
            (r) =>
              `seed ${r.seed}: ${f5(r.answer?.ne)} (${r.answer?.hypothesisId}${r.answer?.significant ? ', significant' : ''})`,
          )
          .join('; ')}.`,
      );
    }
    const svgName = `best-so-far-${t.task}.svg`;
    writeFileSync(
      path.join(RESULTS, svgName),
      bestSoFarSvg({
        title: `${t.task}: best NE so far at ${t.fid.high} steps (${tier.seeds.length} seeds)`,
        series: methods.map((m) => ({ name: LABEL[m], runs: t.runs.filter((r) => r.method === m) })),
        ref: t.ref,
        maxSteps: t.fid.budget,
      }),
    );
    md.push('', `![best NE so far against compute](${svgName})`, '');
    const rea = summary.get('rea');
    if (rea) {
      const parts = METHODS.filter((m) => summary.has(m)).map((m) => {
        const o = summary.get(m) as { gap: number; toTarget: number; gain: number };
        const ratio =
          Number.isFinite(o.toTarget) && Number.isFinite(rea.toTarget)
            ? `it needed ${(o.toTarget / rea.toTarget).toFixed(2)}× rea's steps to reach the target gain`
            : `steps to the target: rea ${steps(rea.toTarget)}, ${LABEL[m]} ${steps(o.toTarget)}`;
        // Gap to Bayes for the synthetic tasks; the gain over baseline where no Bayes NE is known.
        const quality = Number.isFinite(rea.gap)
          ? `gap closed ${f1(rea.gap)} % vs ${f1(o.gap)} %`
          : `gain ${f1(rea.gain)} % vs ${f1(o.gain)} %`;
        return `vs ${LABEL[m]}: ${quality}, ${ratio}`;
      });
      headlines.push({ task: t.task, text: parts.join('; ') });
    }
  }
  writeFileSync(path.join(RESULTS, 'search-quality.md'), `${md.join('\n')}\n`);
  writeFileSync(path.join(RESULTS, 'search-quality.csv'), `${csv.join('\n')}\n`);
  return headlines;
}

function writeTransfer(tier: Tier, tr: TransferResults | undefined, header: string, why?: string): string {
  const md = ['# Transfer to a drifted task', '', tr?.header ?? header, ''];
  const csv = [
    csvLine([
      'pair',
      'campaign',
      'id',
      'steps_used',
      'best_ne',
      'gain_pct',
      'target_gain_pct',
      'steps_to_target',
      'steps_to_cold_final_gain',
    ]),
  ];
  if (!tr || !tr.warm.length) {
    md.push(`Not measured: ${why ?? 'the transfer task was not run'}.`);
    writeFileSync(path.join(RESULTS, 'transfer.md'), `${md.join('\n')}\n`);
    writeFileSync(path.join(RESULTS, 'transfer.csv'), `${csv.join('\n')}\n`);
    return 'not measured';
  }
  // NaN comes back from JSON as null.
  tr.firstGainPct = Number(tr.firstGainPct ?? NaN);
  md.push(
    `The first campaign runs on \`${TRANSFER_TASK}\` (data seed 1234). The task then drifts: the same model, its synthetic generator with data seed ${DRIFT_DATA_SEED} (a new world and new rows). A **warm** campaign runs on the drifted task with the first campaign's history in PostgreSQL (the engine's history source reads it); a **cold** campaign runs on it with an empty history, with the same campaign seed. Both get the search-quality budget (${tier.budgetSteps} steps, fidelities ${tier.fidelity.low}/${tier.fidelity.high}). Gains are over the drifted baseline at ${tier.fidelity.high} steps at the campaigns' trainer seed (NE ${f5((tr.cold[0]?.run.ref ?? tr.driftRef).ne)}, Bayes-optimal ${f5(tr.driftRef.bayesNe)}); the target is the first campaign's final gain on its own task (${tr.firstGainPct.toFixed(2)} %).`,
    '',
    "| pair | campaign | steps used | best NE | gain | steps to the first campaign's gain | steps to the cold campaign's final gain |",
    '|---|---|---|---|---|---|---|',
  );
  let summary = '';
  tr.warm.forEach((warm, i) => {
    const cold = tr.cold[i] as CampaignRecord;
    const first = tr.first[i] as CampaignRecord;
    const driftRef = cold.run.ref ?? tr.driftRef;
    const coldBest = bestWithin(cold.run) ?? driftRef.ne;
    const coldGain = gainPct(driftRef, coldBest);
    for (const [name, c] of [
      ['first (original task)', first],
      ['warm (with history)', warm],
      ['cold (no history)', cold],
    ] as const) {
      const drifted = c !== first;
      const ref = drifted ? (c.run.ref ?? tr.driftRef) : undefined;
      const best = bestWithin(c.run);
      const gain = ref && best !== undefined ? gainPct(ref, best) : drifted ? undefined : tr.firstGainPct;
      const toFirst = ref ? stepsToGain(c.run, ref, tr.firstGainPct) : undefined;
      const toCold = ref ? stepsToGain(c.run, ref, coldGain) : undefined;
      md.push(
        `| ${i + 1} | ${name} | ${c.run.stepsUsed} | ${f5(best)} | ${f1(gain)} % | ${ref ? steps(toFirst ?? Infinity) : '—'} | ${ref ? steps(toCold ?? Infinity) : '—'} |`,
      );
      csv.push(
        csvLine([
          i + 1,
          name,
          c.id,
          c.run.stepsUsed,
          best,
          gain?.toFixed(3),
          tr.firstGainPct.toFixed(3),
          ref ? (toFirst ?? 'not reached') : '',
          ref ? (toCold ?? 'not reached') : '',
        ]),
      );
    }
    const w = stepsToGain(warm.run, driftRef, tr.firstGainPct);
    const c = stepsToGain(cold.run, driftRef, tr.firstGainPct);
    const wc = stepsToGain(warm.run, driftRef, coldGain);
    const cc = stepsToGain(cold.run, driftRef, coldGain);
    summary +=
      w !== undefined && c !== undefined
        ? `warm reached the first campaign's gain in ${w} steps, cold in ${c} (${(c / w).toFixed(2)}× the compute)`
        : `to the first campaign's gain: warm ${steps(w ?? Infinity)}, cold ${steps(c ?? Infinity)} steps; to the cold campaign's final gain: warm ${steps(wc ?? Infinity)}, cold ${steps(cc ?? Infinity)} steps`;
  });
  md.push(
    '',
    `${tr.warm.length} pair(s) in this tier (${tier.transferSeeds.length} first-campaign seed(s)); one pair is an anecdote, not a statistic: run \`--full\` for ${FULL_TIER.transferSeeds.length}.`,
  );
  writeFileSync(path.join(RESULTS, 'transfer.md'), `${md.join('\n')}\n`);
  writeFileSync(path.join(RESULTS, 'transfer.csv'), `${csv.join('\n')}\n`);
  return summary;
}

function writeOrchestration(
  o: Orchestration,
  campaigns: CampaignRecord[],
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
          'same hand-overs; includes the phase boundaries, where the campaign waits for a step to end and plans the next',
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
        '(RSS − idle RSS) / campaigns; the worker caches at most 500 workflows (maxCachedWorkflows), evicted ones cost nothing until they wake',
        'hibernating',
      ],
      [
        'campaigns per worker',
        `≥ ${h.campaigns} hibernating (measured); ≈ ${Math.floor(1024 / Math.max(per, 1e-3))} per GiB above the idle RSS (derived)`,
        'hibernating campaigns cost memory only; the derived figure divides 1 GiB by the measured memory per campaign',
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

// ---- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      full: { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
      only: { type: 'string' },
      /** A comma-separated subset of the tier's tasks; their results replace those of earlier runs. */
      tasks: { type: 'string' },
      /** Only rewrite the reports from the raw results of earlier runs. */
      report: { type: 'boolean', default: false },
    },
  });
  const base = values.smoke ? SMOKE_TIER : values.full ? FULL_TIER : DEFAULT_TIER;
  const only = values.only;
  if (only && !ONLY_PARTS.includes(only))
    throw new Error(
      `--only: expected one of ${ONLY_PARTS.map((p) => `"${p}"`).join(', ')} ("search" is search quality and transfer; "orchestration" is "fast" and "hibernation"), got "${only}"`,
    );
  const tier = { ...base, tasks: pickTasks(base, values.tasks) };
  const startedAt = new Date();
  mkdirSync(MODELS, { recursive: true });
  mkdirSync(path.join(RESULTS, 'raw'), { recursive: true });
  // The reports re-measure references through bench/baselines.py, which imports Optuna.
  ensureOptuna();
  if (!values.report) await runParts(tier, only, startedAt);
  await writeReports(tier, startedAt);
}

const ONLY_PARTS = ['search', 'orchestration', 'fast', 'hibernation'];

/** `--tasks a,b`: a subset of the tier's tasks, each named as in models/ (checked, with the list). */
function pickTasks(tier: Tier, arg: string | undefined): string[] {
  if (arg === undefined) return tier.tasks;
  const names = arg
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  const unknown = names.filter((t) => !tier.tasks.includes(t));
  if (!names.length || unknown.length)
    throw new Error(
      `--tasks: expected a comma-separated list of this tier's tasks (${tier.tasks.join(', ')}), got "${arg}"`,
    );
  return [...new Set(names)];
}

/**
 * One bench process per part at a time: two search runs would clear each other's campaign history
 * (and rows) mid-campaign, and both write the same raw files. The lock is a pid file in .rea/bench;
 * a lock whose process is gone is taken over.
 */
function lockPart(part: string): void {
  const file = path.join(WORK, `${part}.lock`);
  mkdirSync(WORK, { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      process.on('exit', () => {
        try {
          if (readFileSync(file, 'utf8') === String(process.pid)) unlinkSync(file);
        } catch {
          // already gone
        }
      });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(file, 'utf8'));
      let alive = false;
      try {
        process.kill(pid, 0);
        alive = Number.isInteger(pid) && pid > 0;
      } catch {
        alive = false;
      }
      if (alive)
        throw new Error(
          `another bench process (pid ${pid}) is running the ${part} part; two at once would clear each other's campaigns (lock: ${file})`,
        );
      unlinkSync(file);
    }
  }
  throw new Error(`could not take the bench lock ${file}`);
}

async function runParts(tier: Tier, only: string | undefined, startedAt: Date): Promise<void> {
  say(`tier ${tier.name}: ${tier.expectedMinutes}`);
  const stack = await startStack();
  say(`Temporal dev server at ${stack.env.address}`);
  try {
    if (!only || only === 'search') {
      lockPart('search');
      stack.agent = await startAgent(stack.config, 2);
      // Saved after every search, so that a run stopped early still reports what it finished.
      // Tasks this run does not measure keep their results from earlier runs of the tier.
      const earlier = loadRaw<SearchRaw>('search', tier.name);
      const save = (part: Omit<SearchRaw, 'header' | 'tier' | 'complete'>, complete: boolean) => {
        const header = stamp(tier, startedAt);
        const kept = (earlier?.tasks ?? [])
          .filter((t) => !tier.tasks.includes(t.task))
          .map((t) => ({
            ...t,
            header: t.header ?? earlier?.header,
            partial: t.partial ?? !earlier?.complete,
          }));
        const transfer = part.transfer
          ? { ...part.transfer, header }
          : tier.tasks.includes(TRANSFER_TASK) || !earlier?.transfer
            ? undefined
            : { ...earlier.transfer, header: earlier.transfer.header ?? earlier.header };
        saveRaw('search', {
          header,
          tier: tier.name,
          complete: complete && !kept.some((t) => t.partial),
          tasks: [...kept, ...part.tasks.map((t) => ({ ...t, header, partial: !complete }))].sort(
            (a, b) => tier.tasks.indexOf(a.task) - tier.tasks.indexOf(b.task),
          ),
          ...(transfer ? { transfer } : {}),
        });
      };
      const sq = await searchQuality(stack, tier, (partial) => save(partial, false));
      await stack.agent.close();
      stack.agent = undefined;
      save(sq, true);
    }
    const runFast = !only || only === 'orchestration' || only === 'fast';
    const runHibernation = !only || only === 'orchestration' || only === 'hibernation';
    if (runFast || runHibernation) {
      lockPart('orchestration');
      const partStart = new Date();
      // A part this run skips keeps its results from an earlier run of the tier.
      const earlierRaw = loadRaw<OrchestrationRaw>('orchestration', tier.name);
      const earlier = earlierRaw?.orch ?? {};
      const orch: Orchestration = {};
      if (runFast) {
        try {
          await fastCampaign(stack, tier, orch);
        } catch (err) {
          orch.fastError = (err as Error).message.split('\n')[0];
          say(`fast campaign failed: ${orch.fastError}`);
        }
        orch.fastHeader = stamp(tier, partStart);
      } else {
        orch.fast = earlier.fast;
        orch.fastError = earlier.fastError;
        orch.fastHeader = earlier.fastHeader ?? earlierRaw?.header;
      }
      if (runHibernation) {
        const hibernationStart = new Date();
        try {
          await hibernation(stack, tier, orch);
        } catch (err) {
          orch.hibernationError = (err as Error).message.split('\n')[0];
          say(`hibernation failed: ${orch.hibernationError}`);
        }
        orch.hibernationHeader = stamp(tier, hibernationStart);
      } else {
        orch.hibernation = earlier.hibernation;
        orch.hibernationError = earlier.hibernationError;
        orch.hibernationHeader = earlier.hibernationHeader ?? earlierRaw?.header;
      }
      saveRaw('orchestration', { header: stamp(tier, partStart), tier: tier.name, orch });
    }
  } finally {
    await stack.agent?.close();
    for (const w of Object.values(stack.workers)) await w?.worker.shutdown();
    await stack.pool.end();
    await stack.env.teardown();
  }
}

async function writeReports(tier: Tier, startedAt: Date): Promise<void> {
  // Each part leaves its raw results; the reports use the latest of each (from this run or an earlier
  // `--only` run of the same tier), so that the two parts may also run as two processes.
  const sq = loadRaw<SearchRaw>('search', tier.name);
  const orch = loadRaw<OrchestrationRaw>('orchestration', tier.name);
  const summary: string[] = [`# Benchmark summary (${tier.name} tier)`, ''];
  if (sq) {
    await attachReferences(tier, sq);
    const header = sq.complete
      ? sq.header
      : `${sq.header}  \n**Partial:** the run stopped before every search finished; the tables list the searches that did.`;
    const heads = writeSearchQuality(tier, sq.tasks, header);
    summary.push('## Search quality', '', header, '', ...heads.map((h) => `- ${h.task}: ${h.text}`), '');
    summary.push('## Transfer', '', `- ${writeTransfer(tier, sq.transfer, header)}`, '');
  }
  if (orch) {
    const lines = writeOrchestration(
      orch.orch,
      sq?.tasks.flatMap((t) => t.campaigns) ?? [],
      orch.header,
      sq?.header,
    );
    summary.push('## Orchestration', '', orch.header, '', ...lines.map((l) => `- ${l}`), '');
  }
  summary.push(
    `This invocation (\`${process.argv.slice(2).join(' ') || 'default'}\`) took ${((Date.now() - startedAt.getTime()) / 60_000).toFixed(1)} minutes.`,
  );
  writeFileSync(path.join(RESULTS, 'summary.md'), `${summary.join('\n')}\n`);
  // The results are committed: keep them in the repository's format, so that `npm run lint` passes.
  spawnSync(
    path.join(ROOT, 'node_modules', '.bin', 'prettier'),
    ['--write', '--log-level', 'warn', RESULTS],
    {
      cwd: ROOT,
      stdio: 'inherit',
    },
  );
  say(`done: ${RESULTS}`);
  console.log(summary.join('\n'));
}

interface SearchRaw {
  header: string;
  tier: string;
  complete: boolean;
  tasks: TaskResults[];
  transfer?: TransferResults;
}
interface OrchestrationRaw {
  header: string;
  tier: string;
  orch: Orchestration;
}

function saveRaw(part: string, data: object): void {
  writeFileSync(path.join(RESULTS, 'raw', `${part}.json`), `${JSON.stringify(data)}\n`);
}

function loadRaw<T extends { tier: string }>(part: string, tier: string): T | undefined {
  const file = path.join(RESULTS, 'raw', `${part}.json`);
  if (!existsSync(file)) return undefined;
  const data = JSON.parse(readFileSync(file, 'utf8')) as T;
  return data.tier === tier ? data : undefined;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);

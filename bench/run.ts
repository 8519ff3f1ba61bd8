/**
 * `npm run bench`: what a user of rea gets — the config a search hands back, re-trained on fresh
 * seeds and scored on held-out data — against Optuna's samplers and random search at equal compute;
 * noise checks; transfer to drifted tasks; and what rea's orchestration costs. See bench/README.md.
 *
 *   npm run bench                       # the default tier (about 3 hours on 2 cores)
 *   npm run bench -- --smoke            # every part end to end in minutes (.rea/bench/smoke-results)
 *   npm run bench -- --only search --tasks fm-synthetic --methods rea,tpe-mv
 *   npm run bench -- --report           # rewrite the reports from bench/results/raw
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  ensureBenchPackages,
  loadRaw,
  lockPart,
  MODELS,
  RESULTS,
  ROOT,
  saveRaw,
  say,
  stamp,
  WORK,
} from './common';
import { EVAL_SEEDS } from './evaluate';
import { noiseChecks, type NoiseRaw } from './noise';
import { runOrchestration, writeOrchestration, type OrchestrationRaw } from './orchestration';
import { writeNoise, writeSearchQuality, writeTransfer } from './report';
import { searchComplete, searchQuality, scoreTask, type SearchRaw, type TaskRaw } from './search';
import { reaMode } from './searches';
import { localLlmEnv, startLocalLlm, type LocalLlm } from '../src/llm/local-server';
import { startAgent, startStack, stopStack, type Stack } from './stack';
import { DEFAULT_TIER, FULL_TIER, PEERS, SMOKE_TIER, TIERS, type Method, type Tier } from './tiers';
import { scorePair, transfer, type TransferRaw } from './transfer';
import { handover, type HandoverRun } from './handover';

const PARTS = ['search', 'noise', 'transfer', 'orchestration', 'handover', 'fast', 'hibernation'] as const;
type Part = (typeof PARTS)[number];
const METHOD_ORDER: Method[] = ['rea', 'rea-llm', ...PEERS];

function parseList<T extends string>(
  arg: string | undefined,
  allowed: readonly T[],
  what: string,
): T[] | undefined {
  if (arg === undefined) return undefined;
  const items = arg
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = items.filter((i) => !allowed.includes(i as T));
  if (!items.length || bad.length)
    throw new Error(`--${what}: expected a comma-separated list of ${allowed.join(', ')}; got "${arg}"`);
  return [...new Set(items)] as T[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      full: { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
      only: { type: 'string' },
      tasks: { type: 'string' },
      methods: { type: 'string' },
      /** Search seeds, e.g. 0,1,2 (default: the tier's). */
      seeds: { type: 'string' },
      /** Skip the 10×-budget oracle searches (quick iterations). */
      'no-oracle': { type: 'boolean', default: false },
      /** Keep the searches an interrupted run of this tier finished, and run only the rest. */
      resume: { type: 'boolean', default: false },
      report: { type: 'boolean', default: false },
      /** rea as a real campaign on the stack (default), or its state machine in this process (quick). */
      'rea-mode': { type: 'string', default: 'stack' },
      /** Hibernating campaigns on one worker (default: the tier's). */
      hibernating: { type: 'string' },
    },
  });
  if (values['rea-mode'] !== 'stack' && values['rea-mode'] !== 'inprocess')
    throw new Error(`--rea-mode: expected "stack" or "inprocess", got "${values['rea-mode']}"`);
  reaMode.value = values['rea-mode'];
  const base = values.smoke ? SMOKE_TIER : values.full ? FULL_TIER : DEFAULT_TIER;
  const only = parseList<Part>(values.only, PARTS, 'only');
  const tasks = parseList(values.tasks, base.tasks, 'tasks') ?? base.tasks;
  const methods = parseList<Method>(values.methods, METHOD_ORDER, 'methods') ?? base.methods;
  const seeds = values.seeds
    ?.split(',')
    .map((x) => Number(x.trim()))
    .filter((x) => Number.isInteger(x) && x >= 0);
  if (values.seeds !== undefined && !seeds?.length)
    throw new Error(
      `--seeds: expected a comma-separated list of non-negative integers, got "${values.seeds}"`,
    );
  const hibernating = values.hibernating === undefined ? undefined : Number(values.hibernating);
  if (hibernating !== undefined && !(Number.isInteger(hibernating) && hibernating >= 1))
    throw new Error(`--hibernating: expected a whole number of campaigns ≥ 1, got "${values.hibernating}"`);
  const tier: Tier = {
    ...base,
    tasks,
    ...(seeds?.length ? { seeds } : {}),
    ...(hibernating !== undefined ? { hibernating } : {}),
  };
  if (values['no-oracle']) delete tier.oracle;
  const wants = (p: Part) =>
    !only || only.includes(p) || ((p === 'fast' || p === 'hibernation') && only.includes('orchestration'));
  const startedAt = new Date();
  mkdirSync(MODELS, { recursive: true });
  mkdirSync(path.join(RESULTS, 'raw'), { recursive: true });
  ensureBenchPackages();
  if (!values.report) {
    say(`tier ${tier.name}: ${tier.expectedMinutes}`);
    // "rea + LLM": an endpoint the user names (REA_LLM_BASE_URL), else the embedded local model.
    let llm: LocalLlm | undefined;
    if (methods.includes('rea-llm') && !process.env.REA_LLM_BASE_URL && process.env.REA_LLM !== 'off') {
      say('starting the embedded local LLM for the "rea + LLM" row');
      llm = await startLocalLlm({ root: ROOT, logFile: path.join(WORK, 'llm-server.log') });
    }
    const stack = await startStack(llm ? { llmEnv: localLlmEnv(llm) } : {});
    say(`Temporal dev server at ${stack.env.address}${llm ? `; LLM ${llm.title} at ${llm.baseUrl}` : ''}`);
    try {
      await runParts(
        stack,
        tier,
        methods.filter((m) => m !== 'rea-llm' || stack.workers['rea-llm']),
        wants,
        startedAt,
        values.resume === true,
      );
    } finally {
      await stopStack(stack);
      await llm?.stop();
    }
  }
  await writeReports(tier, startedAt);
}

async function runParts(
  stack: Stack,
  tier: Tier,
  methods: Method[],
  wants: (p: Part) => boolean,
  startedAt: Date,
  resume: boolean,
): Promise<void> {
  const needsAgent = wants('search') || wants('noise') || wants('transfer') || wants('handover');
  if (needsAgent) stack.agent = await startAgent(stack.config, 2);
  if (wants('search')) {
    lockPart('search');
    const earlier = searchRaw(tier.name);
    // Tasks this run does not measure keep their earlier results; with --resume, so do finished searches.
    const keptTasks = (earlier?.tasks ?? []).filter((t) => !tier.tasks.includes(t.task));
    const save = (measured: TaskRaw[], complete: boolean) => {
      const header = stamp(tier.name, startedAt);
      const all = [
        ...keptTasks.map((t) => ({ ...t, header: t.header ?? earlier?.header })),
        ...measured.map((t) => ({ ...t, header })),
      ];
      saveRaw('search', {
        format: 2,
        tier: tier.name,
        header,
        complete: complete && searchComplete(TIERS[tier.name], all),
        evalSeeds: EVAL_SEEDS,
        tasks: all,
      } satisfies SearchRaw);
    };
    await searchQuality(stack, tier, methods, save, resume ? (earlier?.tasks ?? []) : []);
  }
  if (wants('noise') && tier.noise) {
    lockPart('noise');
    await noiseChecks(stack, tier, (raw) =>
      saveRaw('noise', { tier: tier.name, header: stamp(tier.name, startedAt), ...raw } satisfies NoiseRaw),
    );
  }
  if (wants('transfer') && tier.transfer) {
    lockPart('transfer');
    const earlier = resume ? loadRaw<TransferRaw>('transfer', tier.name)?.pairs : undefined;
    await transfer(
      stack,
      tier,
      (pairs) => saveRaw('transfer', { tier: tier.name, header: stamp(tier.name, startedAt), pairs }),
      earlier,
    );
  }
  if (wants('handover')) {
    lockPart('handover');
    const runs = [];
    for (const [jobSec, jobs] of tier.handover) runs.push(await handover(stack, jobSec, jobs));
    saveRaw('handover', { tier: tier.name, header: stamp(tier.name, startedAt), runs } satisfies HandoverRaw);
  }
  if (needsAgent) {
    await stack.agent?.close();
    stack.agent = undefined;
  }
  if (wants('fast') || wants('hibernation'))
    await runOrchestration(stack, tier, { fast: wants('fast'), hibernation: wants('hibernation') });
}

/** The raw search results of this tier, when they are of this benchmark's shape. */
function searchRaw(tier: string): SearchRaw | undefined {
  const raw = loadRaw<SearchRaw>('search', tier);
  return raw?.format === 2 ? raw : undefined;
}

async function writeReports(tier: Tier, startedAt: Date): Promise<void> {
  const summary: string[] = [`# Benchmark summary (${tier.name} tier)`, ''];
  const sq = searchRaw(tier.name);
  if (sq) {
    // A report on a fresh checkout, or after an interrupted run, scores what was not scored yet.
    for (const t of sq.tasks) await scoreTask(t);
    saveRaw('search', sq);
    const head = writeSearchQuality(tier, sq, METHOD_ORDER);
    summary.push('## Search quality', '', sq.header, '', ...head.lines.map((l) => `- ${l}`), '');
  }
  const noise = loadRaw<NoiseRaw>('noise', tier.name);
  summary.push(
    '## Noise checks',
    '',
    ...(noise ? [noise.header, ''] : []),
    ...writeNoise(noise).map((l) => `- ${l}`),
    '',
  );
  const tr = loadRaw<TransferRaw>('transfer', tier.name);
  if (tr) {
    for (const p of tr.pairs) await scorePair(p);
    saveRaw('transfer', tr);
  }
  summary.push(
    '## Transfer',
    '',
    ...(tr ? [tr.header, ''] : []),
    ...writeTransfer(tr).map((l) => `- ${l}`),
    '',
  );
  const orch = loadRaw<OrchestrationRaw>('orchestration', tier.name);
  if (orch) {
    const real = (sq?.tasks ?? []).flatMap((t) => t.records.flatMap((r) => (r.timing ? [r.timing] : [])));
    const lines = writeOrchestration(orch.orch, real, orch.header, sq?.header);
    summary.push('## Orchestration', '', orch.header, '', ...lines.map((l) => `- ${l}`), '');
  }
  const ho = loadRaw<HandoverRaw>('handover', tier.name);
  if (ho)
    summary.push(
      '## Hand-over at parallelism 2',
      '',
      ho.header,
      '',
      ...writeHandover(ho).map((l) => `- ${l}`),
      '',
    );
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

/** The living processes (zombies are gone already), as `ps` lists them now: pid → parent pid. */
function processes(): Map<number, number> {
  const ps = spawnSync('ps', ['-A', '-o', 'pid=,ppid=,stat='], { encoding: 'utf8' });
  const parent = new Map<number, number>();
  for (const line of ps.stdout?.split('\n') ?? []) {
    const [pid, ppid, stat] = line.trim().split(/\s+/);
    if (pid && ppid && !stat?.startsWith('Z')) parent.set(Number(pid), Number(ppid));
  }
  return parent;
}

/**
 * The processes this one started, and theirs: peers.py and its trainers, the gpu-agent's trainer
 * supervisors, the Temporal dev server, the local LLM server, a worker. Several of them lead process
 * groups of their own, so a kill of this group would miss them.
 */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of processes()) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  const found: number[] = [];
  const walk = (pid: number) => {
    for (const child of children.get(pid) ?? []) {
      found.push(child);
      walk(child);
    }
  };
  walk(root);
  return found;
}

function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone already
    }
  }
}

const stopping: { signal?: NodeJS.Signals } = {};
const STOP_GRACE_MS = 5000;

/**
 * SIGTERM or Ctrl-C: stop every process the bench started, then exit 128 + signal. What finished
 * is on disk already (the raw results are saved after each search, the lock files go on exit).
 * The Temporal runtime's own handler only shuts the workers down, which left the bench waiting on
 * campaigns forever; a second signal skips the grace period.
 */
function stopOnSignal(signal: NodeJS.Signals): void {
  const code = 128 + constants.signals[signal];
  if (stopping.signal) {
    signalAll(descendants(process.pid), 'SIGKILL');
    process.exit(code);
  }
  stopping.signal = signal;
  say(`${signal}: stopping the processes this run started; the raw results saved so far stay`);
  // Snapshot first: a process whose parent dies is re-parented, and the walk would lose it.
  const started = descendants(process.pid);
  signalAll(started, 'SIGTERM');
  const deadline = Date.now() + STOP_GRACE_MS;
  setInterval(() => {
    const alive = processes();
    const left = started.filter((pid) => alive.has(pid));
    if (left.length && Date.now() < deadline) return;
    signalAll([...left, ...descendants(process.pid)], 'SIGKILL');
    process.exit(code);
  }, 100);
}
process.on('SIGTERM', stopOnSignal);
process.on('SIGINT', stopOnSignal);

main().then(
  () => {
    if (!stopping.signal) process.exit(0);
  },
  (err: unknown) => {
    // Once stopping, the failures of the work the signal cut short are expected: the handler exits.
    if (stopping.signal) return;
    console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);

interface HandoverRaw {
  tier: string;
  header: string;
  runs: HandoverRun[];
}

/** The hand-over rows, appended to orchestration.md (and its CSV) under their own stamp. */
function writeHandover(raw: HandoverRaw): string[] {
  const md = [
    '',
    '## Hand-over and utilization on real campaigns at parallelism 2',
    '',
    raw.header,
    '',
    'A rea campaign of stand-in jobs that each train for a fixed time (`bench/fast_trainer.py` with `sleep_sec`), 2 at a time on a 2-slot gpu-agent; every job that started on a slot a finished job freed counts. **Hand-over**: that finish → that start (gpu-agent journal, job_events). **Utilization**: busy slot-time / (2 × first start to last finish).',
    '',
    '| job length | jobs | hand-overs | p50 (s) | p99 (s) | max (s) | utilization |',
    '|---|---|---|---|---|---|---|',
    ...raw.runs.map(
      (r) =>
        `| ${r.jobSec} s | ${r.jobs} | ${r.gaps.length} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${Math.max(...r.gaps).toFixed(3)} | ${(r.utilization * 100).toFixed(1)} % |`,
    ),
  ];
  appendFileSync(path.join(RESULTS, 'orchestration.md'), `${md.join('\n')}\n`);
  return raw.runs.map(
    (r) =>
      `${r.jobSec}-s jobs (${r.jobs}): hand-over p50 ${r.p50.toFixed(3)} s, p99 ${r.p99.toFixed(3)} s; slot utilization ${(r.utilization * 100).toFixed(1)} %`,
  );
}

/**
 * Runs one trainer process by the protocol: writes the config JSON to a file, starts the argv
 * template with {python}, {config} and {metrics} replaced as whole arguments (never a shell), turns
 * progress lines into callbacks, enforces the time limit, and kills the whole process group when
 * cancelled. The trainer runs under a supervisor (./supervisor.ts) that kills the group when this
 * process dies or stops sending heartbeats, so that no trainer outlives the process that started it.
 *
 *   const { outcome } = await runTrainer({ argv: ['{python}', 'train.py', '--config', '{config}',
 *     '--metrics', '{metrics}'], cwd, config, runDir, python, timeLimitSec: 600, primaryMetric: 'ne' });
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { ExperimentOutcome, FailureClass, Metrics } from '../core/types';
import { watchMemory, type MemorySeen } from './memory-watch';
import {
  classifyDiskFull,
  classifyForeignKill,
  failureClassForExit,
  metricsSchema,
  parseLine,
  type Progress,
} from './protocol';
import { ORPHANED_PREFIX } from './supervisor';

export interface TrainerRun {
  argv: string[];
  cwd: string;
  env?: Record<string, string>;
  config: Record<string, unknown>;
  /** A fresh folder for this run's config, metrics and log. */
  runDir: string;
  python: string;
  timeLimitSec: number;
  primaryMetric: string;
  signal?: AbortSignal;
  /**
   * How long the trainer may go without a heartbeat from this process before its supervisor kills
   * it (this process stopped or hung). Default 30 s.
   */
  staleAfterSec?: number;
  /**
   * The spec's memory cap (resources.memoryMb). A trainer killed by SIGKILL with its peak resident
   * memory at the cap is classed `oom`; rea does not enforce the cap itself.
   */
  memoryCapMb?: number;
  /** How long a full disk may keep the run folder from being written before the job fails. Default 30 s. */
  diskFullWaitSec?: number;
  onProgress?: (p: Progress) => void;
  onLog?: (line: string) => void;
}

export interface TrainerResult {
  outcome: ExperimentOutcome;
  logTail: string[];
}

const LOG_TAIL_LINES = 50;
/** The supervisor, compiled next to this file. */
const SUPERVISOR = path.join(__dirname, 'supervisor.js');
const DEFAULT_STALE_AFTER_SEC = 30;
const DEFAULT_DISK_FULL_WAIT_SEC = 30;

export function expandArgv(template: string[], vars: Record<string, string>): string[] {
  return template.map((arg) => (arg in vars ? (vars[arg] as string) : arg));
}

/** Errors of a full disk (or quota): usually brief, so worth waiting out. */
const DISK_FULL = new Set(['ENOSPC', 'EDQUOT']);

/**
 * Makes the run folder and writes the config. A full disk waits for room (pauses of 0.25 s growing
 * to 4 s, for up to `waitSec`) instead of failing the job at once: the runbook re-runs a failed job
 * at once, into the same full disk, and a few seconds of full disk burnt half a campaign's budget
 * (found by the chaos suite's `disk-full` fault).
 */
async function prepareRunDir(
  run: TrainerRun,
  configPath: string,
  metricsPath: string,
  waitSec: number,
): Promise<void> {
  const deadline = Date.now() + waitSec * 1000;
  for (let pause = 250; ; pause = Math.min(pause * 2, 4000)) {
    try {
      mkdirSync(run.runDir, { recursive: true });
      rmSync(metricsPath, { force: true });
      writeFileSync(configPath, JSON.stringify(run.config, null, 2));
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      const full = DISK_FULL.has(code);
      if (!full || Date.now() >= deadline || run.signal?.aborted)
        throw new Error(
          `cannot write the run folder ${run.runDir}: ${(err as Error).message}` +
            (full ? ` (still full after ${waitSec}s: free space under REA_WORK_DIR on this host)` : ''),
        );
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}

export async function runTrainer(run: TrainerRun): Promise<TrainerResult> {
  const configPath = path.join(run.runDir, 'config.json');
  const metricsPath = path.join(run.runDir, 'metrics.json');
  try {
    await prepareRunDir(run, configPath, metricsPath, run.diskFullWaitSec ?? DEFAULT_DISK_FULL_WAIT_SEC);
  } catch (err) {
    if (!run.signal?.aborted) throw err;
    const outcome = {
      status: 'failed',
      failureClass: 'cancelled',
      message: 'trainer cancelled before it started',
      wallTimeSec: 0,
    } as const;
    return { outcome, logTail: [] };
  }
  const [program, ...args] = expandArgv(run.argv, {
    '{python}': run.python,
    '{config}': configPath,
    '{metrics}': metricsPath,
  });
  const started = Date.now();
  const tail: string[] = [];
  const remember = (line: string) => {
    tail.push(line);
    if (tail.length > LOG_TAIL_LINES) tail.shift();
    run.onLog?.(line);
  };
  let reported: { failureClass: FailureClass; message: string } | undefined;
  let stoppedBy: 'timeout' | 'cancelled' | undefined;
  let orphaned: string | undefined;

  const staleMs = (run.staleAfterSec ?? DEFAULT_STALE_AFTER_SEC) * 1000;
  const child = spawn(process.execPath, [SUPERVISOR, String(staleMs), program as string, ...args], {
    cwd: run.cwd,
    env: { ...process.env, ...run.env, PYTHONUNBUFFERED: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true, // own process group, so that a kill reaches every process the trainer started
  });
  child.stdin.on('error', () => undefined); // the supervisor is gone: its exit says why
  // The group's memory, for the evidence when something other than rea kills it.
  const memory = child.pid !== undefined ? watchMemory(child.pid) : undefined;
  const heartbeat = setInterval(() => child.stdin.write('.'), Math.min(1000, staleMs / 5));
  const killGroup = () => {
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  const timer = setTimeout(() => {
    stoppedBy = 'timeout';
    killGroup();
  }, run.timeLimitSec * 1000);
  const onAbort = () => {
    stoppedBy ??= 'cancelled';
    killGroup();
  };
  run.signal?.addEventListener('abort', onAbort, { once: true });
  if (run.signal?.aborted) onAbort();

  const consume = (stream: NodeJS.ReadableStream) =>
    new Promise<void>((resolve) => {
      const rl = createInterface({ input: stream });
      rl.on('line', (line) => {
        const parsed = parseLine(line);
        if (parsed.kind === 'progress') run.onProgress?.(parsed.progress);
        if (parsed.kind === 'error')
          reported = { failureClass: parsed.failureClass, message: parsed.message };
        if (parsed.kind === 'log' && line.startsWith(ORPHANED_PREFIX))
          orphaned = (safeJson(line.slice(ORPHANED_PREFIX.length)) as { message?: string })?.message;
        if (parsed.kind !== 'metrics') remember(line);
      });
      rl.on('close', resolve);
    });
  const streams = Promise.all([consume(child.stdout), consume(child.stderr)]);
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; spawnError?: Error }>(
    (resolve) => {
      child.once('error', (spawnError) => resolve({ code: null, signal: null, spawnError }));
      child.once('close', (code, signal) => resolve({ code, signal }));
      // Whatever the trainer left behind dies with it.
      child.once('exit', killGroup);
    },
  );
  clearTimeout(timer);
  clearInterval(heartbeat);
  const seen: MemorySeen = memory?.stop() ?? { oomKills: [] };
  child.stdin.destroy();
  run.signal?.removeEventListener('abort', onAbort);
  if (!exit.spawnError) await streams;
  try {
    writeFileSync(path.join(run.runDir, 'log-tail.txt'), tail.join('\n'));
  } catch {
    // A full disk must not turn a finished run into a failed job: the tail is in the job's log too.
  }
  const wallTimeSec = (Date.now() - started) / 1000;
  const failed = (failureClass: FailureClass, message: string): TrainerResult => ({
    outcome: { status: 'failed', failureClass, message, wallTimeSec },
    logTail: tail,
  });

  if (exit.spawnError) return failed('crash', `cannot start trainer ${program}: ${exit.spawnError.message}`);
  if (stoppedBy === 'timeout')
    return failed('timeout', `trainer ran past its time limit of ${run.timeLimitSec}s`);
  if (stoppedBy === 'cancelled') return failed('cancelled', 'trainer cancelled');
  if (orphaned !== undefined) return failed('lost', `trainer supervisor: ${orphaned}`);
  if (exit.code === null && exit.signal && !reported) {
    const kill = classifyForeignKill(exit.signal, seen, run.memoryCapMb);
    return failed(kill.failureClass, kill.message);
  }
  if (exit.code !== 0) {
    const failureClass = reported?.failureClass ?? failureClassForExit(exit.code);
    // A trainer whose write met a full disk crashed through no fault of its config: run it again.
    const disk =
      failureClass === 'crash' ? classifyDiskFull(tail, run.runDir, freeMb(run.runDir)) : undefined;
    if (disk) return failed(disk.failureClass, disk.message);
    const how = exit.code === null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
    return failed(failureClass, `trainer ${how}: ${reported?.message ?? tail.at(-1) ?? 'no output'}`);
  }
  // Exit 0 is only a result when the metrics file is there and sound: a trainer bug never masquerades as one.
  let metrics: Metrics;
  try {
    const parsed = metricsSchema.safeParse(JSON.parse(readFileSync(metricsPath, 'utf8')));
    if (!parsed.success)
      return failed('crash', `trainer bug: metrics file is invalid: ${parsed.error.issues[0]?.message}`);
    metrics = parsed.data;
  } catch (err) {
    return failed(
      'crash',
      `trainer bug: exited 0 without a readable metrics file (${(err as Error).message})`,
    );
  }
  if (typeof metrics[run.primaryMetric] !== 'number') {
    return failed('crash', `trainer bug: metrics file lacks the primary metric "${run.primaryMetric}"`);
  }
  return { outcome: { status: 'succeeded', metrics, wallTimeSec }, logTail: tail };
}

/** Free space (MB) on the file system under `dir`, for messages; undefined when it cannot be read. */
function freeMb(dir: string): number | undefined {
  try {
    const fs = statfsSync(dir);
    return (fs.bavail * fs.bsize) / 1_048_576;
  } catch {
    return undefined;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

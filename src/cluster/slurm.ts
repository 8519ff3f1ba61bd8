/**
 * The Slurm adapter: each training job is one `sbatch` job that runs `slurm-job.js` on a node, with a
 * job folder `<REA_WORK_DIR>/slurm/<experiment id>/` (on storage the nodes share) holding the job's
 * description, its log, its live progress and its final outcome. The Slurm job name is the
 * experiment id, so that a submit retried after a crash finds the job instead of starting another.
 *
 *   const slurm = new SlurmAdapter({ workDir: '/shared/rea', python: '/opt/rea/.venv/bin/python', projectRoot: '/opt/rea' });
 *   await slurm.submit(job); // { jobId: job.experimentId, created: true }; again: created: false
 *   await slurm.status(job.experimentId); // { state: 'running', progress: { step: 30, ... } }
 *
 * Every Slurm command runs through execFile with an argv array; nothing passes through a shell.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { ClusterSettings } from '../core/model-spec';
import type { ExperimentOutcome } from '../core/types';
import type { Progress } from '../trainer/protocol';
import type { ClusterAdapter, JobStatus, TrainingJob } from './adapter';

/** The files of a job folder. */
export const JOB_FILES = {
  /** What slurm-job.js runs: the trainer, its config, the resources (SlurmJobSpec). */
  spec: 'job.json',
  /** The batch script sbatch was given. */
  script: 'job.sbatch',
  /** The Slurm job id, written right after sbatch. */
  slurmJobId: 'slurm-job-id',
  /** Written before scancel, so that a cancelled job that Slurm has forgotten still reads as cancelled. */
  cancelRequested: 'cancel-requested',
  /** Slurm's --output: slurm-job.js's own lines and the trainer's. */
  log: 'job.log',
  progress: 'progress.json',
  outcome: 'outcome.json',
  /** runTrainer's folder: the trainer's config.json and metrics.json. */
  run: 'run',
} as const;

export type SlurmSettings = Extract<ClusterSettings, { adapter: 'slurm' }>;

/** job.json: everything slurm-job.js needs, resolved on the submitting side. */
export const slurmJobSpecSchema = z.object({
  experimentId: z.string(),
  trainer: z.object({
    argv: z.array(z.string()).min(1),
    /** Absolute. */
    cwd: z.string(),
    env: z.record(z.string(), z.string()).optional(),
  }),
  config: z.record(z.string(), z.unknown()),
  python: z.string(),
  primaryMetric: z.string(),
  /** The Slurm time limit: Slurm enforces it, slurm-job.js tells a time-limit kill from a cancel by it. */
  timeLimitMin: z.number().int().positive(),
  /** True when the job asked Slurm for GPUs as gres: Slurm sets CUDA_VISIBLE_DEVICES. */
  gpusFromSlurm: z.boolean(),
  gpus: z.number().int().min(0),
});
export type SlurmJobSpec = z.infer<typeof slurmJobSpecSchema>;

const failureClass = z.enum(['bad_config', 'oom', 'nan', 'timeout', 'lost', 'cancelled', 'crash']);
export const outcomeSchema: z.ZodType<ExperimentOutcome> = z.union([
  z.object({
    status: z.literal('succeeded'),
    metrics: z.record(z.string(), z.number()),
    wallTimeSec: z.number(),
  }),
  z.object({ status: z.literal('failed'), failureClass, message: z.string(), wallTimeSec: z.number() }),
]);

const progressSchema = z.object({
  step: z.number(),
  steps: z.number(),
  loss: z.number(),
  examplesPerSec: z.number(),
});

/** What a job folder says about its job. */
export interface JobFolderView {
  /** The Slurm job id recorded after sbatch, if any. */
  slurmJobId?: string;
  cancelRequested: boolean;
  recorded:
    { kind: 'none' } | { kind: 'outcome'; outcome: ExperimentOutcome } | { kind: 'invalid'; problem: string };
  progress?: Progress;
  /** The last line of the job's log, for messages. */
  lastLogLine?: string;
}

/** What Slurm says about a job: its id, state (squeue %T or sacct State) and reason. */
export interface SlurmJobView {
  slurmJobId: string;
  state: string;
  reason?: string;
}

const QUEUED_STATES = new Set([
  'PENDING',
  'CONFIGURING',
  'REQUEUED',
  'REQUEUE_HOLD',
  'REQUEUE_FED',
  'RESV_DEL_HOLD',
]);
const RUNNING_STATES = new Set([
  'RUNNING',
  'COMPLETING',
  'SUSPENDED',
  'STOPPED',
  'SIGNALING',
  'STAGE_OUT',
  'RESIZING',
]);
const LOST_STATES = new Set(['NODE_FAIL', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE', 'REVOKED']);

/**
 * The job's status from what Slurm says (undefined: Slurm does not know the job, or no longer does)
 * and what its job folder holds. Pure, so that the whole state table is tested in one place.
 *
 *   slurmJobStatus({ slurmJobId: '12', state: 'TIMEOUT' }, { cancelRequested: false, recorded: { kind: 'none' } })
 *   // → { state: 'finished', outcome: { status: 'failed', failureClass: 'timeout', ... } }
 */
export function slurmJobStatus(slurm: SlurmJobView | undefined, folder: JobFolderView): JobStatus {
  const { recorded } = folder;
  const wallTimeSec = recorded.kind === 'outcome' ? recorded.outcome.wallTimeSec : 0;
  const failed = (cls: z.infer<typeof failureClass>, message: string): JobStatus => ({
    state: 'finished',
    outcome: { status: 'failed', failureClass: cls, message, wallTimeSec },
  });
  const tail = folder.lastLogLine ? `; last log line: ${folder.lastLogLine}` : '';
  const noOutcome = (what: string): JobStatus =>
    recorded.kind === 'invalid'
      ? failed('crash', `${what}, and its outcome.json is invalid: ${recorded.problem}${tail}`)
      : failed('crash', `${what} without writing outcome.json${tail}`);

  if (!slurm) {
    if (recorded.kind === 'outcome') return { state: 'finished', outcome: recorded.outcome };
    if (recorded.kind === 'invalid') return noOutcome('the Slurm job ended');
    if (folder.cancelRequested && folder.slurmJobId !== undefined)
      return failed('cancelled', `Slurm job ${folder.slurmJobId} was cancelled`);
    if (folder.slurmJobId !== undefined)
      return failed(
        'lost',
        `Slurm no longer knows job ${folder.slurmJobId} and it left no outcome: the job, its node or the controller's state was lost${tail}`,
      );
    return { state: 'missing' };
  }

  // sacct writes "CANCELLED by 1000" and may truncate to "CANCELLED+".
  const state = (slurm.state.trim().split(/\s+/)[0] ?? '').replace(/\+$/, '').toUpperCase();
  const why = slurm.reason && slurm.reason !== 'None' ? ` (${slurm.reason})` : '';
  const job = `Slurm job ${slurm.slurmJobId}`;
  const recordedAs = (cls: z.infer<typeof failureClass>, message: string): JobStatus =>
    recorded.kind === 'outcome' &&
    recorded.outcome.status === 'failed' &&
    recorded.outcome.failureClass === cls
      ? { state: 'finished', outcome: recorded.outcome }
      : failed(cls, message);

  if (QUEUED_STATES.has(state)) return { state: 'queued' };
  if (RUNNING_STATES.has(state))
    return folder.progress ? { state: 'running', progress: folder.progress } : { state: 'running' };
  if (LOST_STATES.has(state))
    return failed('lost', `${job} ended ${state}${why}: its node or its place on the cluster was lost`);
  switch (state) {
    case 'COMPLETED':
      return recorded.kind === 'outcome'
        ? { state: 'finished', outcome: recorded.outcome }
        : noOutcome(`${job} completed`);
    case 'FAILED':
    case 'SPECIAL_EXIT':
      return recorded.kind === 'outcome'
        ? { state: 'finished', outcome: recorded.outcome }
        : noOutcome(`${job} failed${why}`);
    case 'TIMEOUT':
      return recordedAs('timeout', `${job} ran past its time limit`);
    case 'CANCELLED':
      return recordedAs('cancelled', `${job} was cancelled`);
    case 'OUT_OF_MEMORY':
      return recordedAs('oom', `${job} ran out of memory (Slurm's limit)`);
    default:
      // A state this code does not know (a newer Slurm): keep waiting; the experiment workflow
      // gives up on a job that runs past its time limit.
      return folder.progress ? { state: 'running', progress: folder.progress } : { state: 'running' };
  }
}

/**
 * The job folder's name and Slurm job name for an experiment id: the id itself when it is a safe
 * file and Slurm name, else a readable form with a hash that keeps distinct ids distinct.
 *
 *   jobName('camp-1.e0003') // → 'camp-1.e0003'
 *   jobName('my campaign/e1') // → 'my_campaign_e1-3f1c...'
 */
export function jobName(experimentId: string): string {
  if (/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/.test(experimentId)) return experimentId;
  const readable = experimentId
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .replace(/^\.+/, '_')
    .slice(0, 80);
  return `${readable}-${createHash('sha256').update(experimentId).digest('hex').slice(0, 12)}`;
}

/** Slurm counts time limits in minutes: the spec's seconds, rounded up. */
export function slurmTimeLimitMinutes(timeLimitSec: number): number {
  return Math.max(1, Math.ceil(timeLimitSec / 60));
}

/** The sbatch arguments for a job whose folder is `folder` (absolute). */
export function sbatchArgs(job: TrainingJob, settings: SlurmSettings, folder: string): string[] {
  const { resources } = job;
  const args = [
    '--parsable',
    `--job-name=${jobName(job.experimentId)}`,
    `--chdir=${folder}`,
    `--output=${path.join(folder, JOB_FILES.log)}`,
    '--open-mode=append',
    // Nothing from the worker's environment (its secrets included) reaches the job: the node
    // starts it in the user's login environment, plus the spec's trainer.env.
    '--export=NONE',
    '--nodes=1',
    '--ntasks=1',
    `--time=${slurmTimeLimitMinutes(resources.timeLimitSec)}`,
    `--cpus-per-task=${resources.cpus}`,
    `--mem=${resources.memoryMb}`,
  ];
  if (resources.gpus > 0 && settings.gpus === 'gres') args.push(`--gres=gpu:${resources.gpus}`);
  if (settings.partition) args.push(`--partition=${settings.partition}`);
  if (settings.account) args.push(`--account=${settings.account}`);
  if (settings.qos) args.push(`--qos=${settings.qos}`);
  args.push(path.join(folder, JOB_FILES.script), folder);
  return args;
}

/** Writes `text` to `file` so that a reader sees the old content or the new, never a part. */
export function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** The last `maxLines` lines of a file, reading at most its last 64 KiB; [] when it is not there. */
export function tailLines(file: string, maxLines: number): string[] {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return [];
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    const lines = buffer.toString('utf8').split('\n');
    if (length < size) lines.shift(); // a partial first line
    while (lines.length > 0 && lines.at(-1) === '') lines.pop();
    return lines.slice(-maxLines);
  } finally {
    closeSync(fd);
  }
}

/** A Slurm command that failed: which one, with which arguments, and what it said. */
export class SlurmCommandError extends Error {
  override readonly name = 'SlurmCommandError';
  constructor(
    readonly command: string,
    readonly args: string[],
    readonly stderr: string,
    detail: string,
  ) {
    super(`${command} ${args.join(' ')} failed: ${detail}`);
  }
}

export interface SlurmAdapterOptions {
  /** REA_WORK_DIR: job folders go under <workDir>/slurm; every Slurm node must see the same path. */
  workDir: string;
  /** REA_PYTHON, as the nodes see it. */
  python: string;
  /** The rea checkout, as the nodes see it: trainer cwd is resolved here. */
  projectRoot: string;
  /** Where sbatch, squeue, sacct and scancel are (REA_SLURM_BIN_DIR); unset: PATH. */
  binDir?: string;
  /** The node binary the batch script runs (REA_SLURM_NODE). */
  node?: string;
  /** How long one Slurm command may take. */
  commandTimeoutMs?: number;
}

const LOG_LINES = 50;

export class SlurmAdapter implements ClusterAdapter {
  /** undefined until sacct was tried: most small clusters run without accounting (no slurmdbd). */
  private accounting: boolean | undefined;

  constructor(private readonly opts: SlurmAdapterOptions) {}

  /** The job folder of an experiment. */
  jobFolder(experimentId: string): string {
    return path.resolve(this.opts.workDir, 'slurm', jobName(experimentId));
  }

  async submit(job: TrainingJob): Promise<{ jobId: string; created: boolean }> {
    const jobId = job.experimentId;
    if (job.cluster.adapter !== 'slurm') {
      throw new Error(
        `experiment ${jobId} asks for cluster "${job.cluster.adapter}", not "slurm": a registry bug`,
      );
    }
    const settings = job.cluster;
    const folder = this.jobFolder(jobId);
    mkdirSync(folder, { recursive: true });
    if (readSlurmJobId(folder) !== undefined || existsSync(path.join(folder, JOB_FILES.outcome)))
      return { jobId, created: false };
    // A cancel that overtook this submit (a retried activity) wins: the experiment is over.
    if (existsSync(path.join(folder, JOB_FILES.cancelRequested))) return { jobId, created: false };
    // A crash between sbatch and recording its id leaves a job that only its name finds.
    const earlier = await this.jobsInFolder(jobId);
    if (earlier[0]) {
      writeFileAtomic(path.join(folder, JOB_FILES.slurmJobId), earlier[0].slurmJobId);
      return { jobId, created: false };
    }

    const spec: SlurmJobSpec = {
      experimentId: jobId,
      trainer: {
        argv: job.trainer.argv,
        cwd: path.resolve(this.opts.projectRoot, job.trainer.cwd ?? '.'),
        env: job.trainer.env,
      },
      config: job.config,
      python: this.opts.python,
      primaryMetric: job.primaryMetric,
      timeLimitMin: slurmTimeLimitMinutes(job.resources.timeLimitSec),
      gpusFromSlurm: job.resources.gpus > 0 && settings.gpus === 'gres',
      gpus: job.resources.gpus,
    };
    writeFileAtomic(path.join(folder, JOB_FILES.spec), JSON.stringify(spec, null, 2));
    writeFileAtomic(path.join(folder, JOB_FILES.script), this.batchScript());
    const { stdout } = await this.command('sbatch', sbatchArgs(job, settings, folder));
    // --parsable prints "id" or "id;cluster".
    const submitted = stdout.trim().split(';')[0] ?? '';
    if (!/^\d+$/.test(submitted)) {
      throw new SlurmCommandError(
        'sbatch',
        [],
        stdout,
        `expected a job id on stdout, got "${stdout.trim()}"`,
      );
    }
    // Two submits racing past the name lookup both reach sbatch: keep the first job, cancel the rest.
    const jobs = await this.jobsInFolder(jobId);
    const kept = jobs[0]?.slurmJobId ?? submitted;
    const extra = jobs.filter((j) => j.slurmJobId !== kept).map((j) => j.slurmJobId);
    if (extra.length > 0) await this.command('scancel', extra);
    writeFileAtomic(path.join(folder, JOB_FILES.slurmJobId), kept);
    if (existsSync(path.join(folder, JOB_FILES.cancelRequested))) await this.command('scancel', [kept]);
    return { jobId, created: kept === submitted };
  }

  async status(jobId: string): Promise<JobStatus> {
    const folder = this.jobFolder(jobId);
    if (!existsSync(folder)) {
      // No folder: never submitted here, or the work dir was lost. A job Slurm still runs under this
      // name cannot be ours to read, so it is missing either way.
      return { state: 'missing' };
    }
    // Slurm first, the folder second: the job writes outcome.json before it ends, so a job Slurm
    // already calls ended has its outcome in the folder read after. The other order races a job that
    // ends in between: no outcome yet, then COMPLETED, and a good run read as a crash.
    const slurm = await this.slurmView(jobId, readSlurmJobId(folder));
    return slurmJobStatus(slurm, readJobFolder(folder));
  }

  async cancel(jobId: string): Promise<void> {
    const folder = this.jobFolder(jobId);
    if (!existsSync(folder)) return;
    writeFileAtomic(path.join(folder, JOB_FILES.cancelRequested), new Date().toISOString());
    const live = (await this.jobsInFolder(jobId)).filter(
      (j) => QUEUED_STATES.has(j.state) || RUNNING_STATES.has(j.state),
    );
    // scancel of a job that ended meanwhile only prints a warning: harmless.
    if (live.length > 0)
      await this.command(
        'scancel',
        live.map((j) => j.slurmJobId),
      );
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async logs(jobId: string): Promise<string[]> {
    return tailLines(path.join(this.jobFolder(jobId), JOB_FILES.log), LOG_LINES);
  }

  async close(): Promise<void> {
    // Nothing held open: every call runs its own Slurm command.
  }

  /** The fixed batch script: slurm-job.js with the job folder as its one argument. */
  private batchScript(): string {
    const node = this.opts.node ?? process.execPath;
    const entry = path.join(__dirname, 'slurm-job.js');
    return [
      '#!/bin/sh',
      '# Written by rea (src/cluster/slurm.ts): runs one training job; $1 is its job folder.',
      `exec ${shellQuote(node)} ${shellQuote(entry)} "$1"`,
      '',
    ].join('\n');
  }

  /** What Slurm says about the experiment's job: squeue (live and recently ended), then sacct. */
  private async slurmView(jobId: string, recordedId: string | undefined): Promise<SlurmJobView | undefined> {
    const jobs = await this.jobsInFolder(jobId);
    const known = recordedId === undefined ? jobs[0] : jobs.find((j) => j.slurmJobId === recordedId);
    if (known) return known;
    if (recordedId === undefined) return undefined;
    return this.accountingView(jobId, recordedId);
  }

  /** Jobs Slurm knows with the experiment's name and folder, oldest first. */
  private async jobsInFolder(jobId: string): Promise<SlurmJobView[]> {
    const folder = this.jobFolder(jobId);
    const { stdout } = await this.command('squeue', [
      '--noheader',
      '--states=all',
      `--name=${jobName(jobId)}`,
      '--format=%i|%T|%r|%Z',
    ]);
    return stdout
      .split('\n')
      .map((line) => line.split('|'))
      .filter((f): f is [string, string, string, ...string[]] => f.length >= 4 && /^\d+$/.test(f[0] ?? ''))
      .filter((f) => path.resolve(f.slice(3).join('|')) === folder)
      .map(([slurmJobId, state, reason]) => ({ slurmJobId, state, reason }))
      .sort((a, b) => Number(a.slurmJobId) - Number(b.slurmJobId));
  }

  /** sacct's record of a job Slurm's controller has forgotten, when accounting is on. */
  private async accountingView(jobId: string, slurmJobId: string): Promise<SlurmJobView | undefined> {
    if (this.accounting === false) return undefined;
    let stdout: string;
    try {
      ({ stdout } = await this.command('sacct', [
        '--noheader',
        '--parsable2',
        '--allocations',
        `--jobs=${slurmJobId}`,
        '--format=JobID,JobName,State',
      ]));
    } catch (err) {
      if (err instanceof SlurmCommandError && /accounting storage is disabled/i.test(err.stderr)) {
        this.accounting = false;
        return undefined;
      }
      throw err;
    }
    this.accounting = true;
    const row = stdout
      .split('\n')
      .map((line) => line.split('|'))
      // Job ids restart when a cluster's state is wiped: the name says whether the record is ours.
      .find((f) => f[0] === slurmJobId && f[1] === jobName(jobId));
    return row?.[2] ? { slurmJobId, state: row[2] } : undefined;
  }

  private command(name: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
    const bin = this.opts.binDir ? path.join(this.opts.binDir, name) : name;
    return new Promise((resolve, reject) => {
      execFile(
        bin,
        args,
        { timeout: this.opts.commandTimeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
        (err, stdout, stderr) => {
          if (!err) return resolve({ stdout, stderr });
          const code = (err as NodeJS.ErrnoException).code;
          const detail =
            code === 'ENOENT'
              ? `cannot run ${bin}: not found (install Slurm's client commands, or set REA_SLURM_BIN_DIR to their folder)`
              : err.killed
                ? `no answer in ${(this.opts.commandTimeoutMs ?? 60_000) / 1000}s (is slurmctld up? try sinfo)`
                : `${stderr.trim() || err.message} (check the cluster with sinfo; the job folder is under ${path.join(this.opts.workDir, 'slurm')})`;
          reject(new SlurmCommandError(name, args, stderr, detail));
        },
      );
    });
  }
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function readSlurmJobId(folder: string): string | undefined {
  try {
    const id = readFileSync(path.join(folder, JOB_FILES.slurmJobId), 'utf8').trim();
    return /^\d+$/.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/** What a job folder holds; files that are missing or half-written read as absent or invalid. */
export function readJobFolder(folder: string): JobFolderView {
  const view: JobFolderView = {
    slurmJobId: readSlurmJobId(folder),
    cancelRequested: existsSync(path.join(folder, JOB_FILES.cancelRequested)),
    recorded: { kind: 'none' },
    lastLogLine: tailLines(path.join(folder, JOB_FILES.log), 1)[0],
  };
  const outcomeFile = path.join(folder, JOB_FILES.outcome);
  if (existsSync(outcomeFile)) {
    try {
      const parsed = outcomeSchema.safeParse(JSON.parse(readFileSync(outcomeFile, 'utf8')));
      view.recorded = parsed.success
        ? { kind: 'outcome', outcome: parsed.data }
        : { kind: 'invalid', problem: parsed.error.issues[0]?.message ?? 'unknown shape' };
    } catch (err) {
      view.recorded = { kind: 'invalid', problem: (err as Error).message };
    }
  }
  try {
    const parsed = progressSchema.safeParse(
      JSON.parse(readFileSync(path.join(folder, JOB_FILES.progress), 'utf8')),
    );
    if (parsed.success) view.progress = parsed.data;
  } catch {
    // no progress yet
  }
  return view;
}

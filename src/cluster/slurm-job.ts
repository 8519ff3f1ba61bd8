/**
 * The program each Slurm job runs: reads the job folder's job.json, runs the trainer by the protocol
 * (runTrainer), keeps progress.json current, sends every log line to Slurm's output file, and writes
 * outcome.json at the end. Slurm's SIGTERM (scancel, or the time limit) kills the trainer's process
 * group and is recorded as a cancelled or timed-out outcome.
 *
 *   node dist/src/cluster/slurm-job.js /shared/rea/slurm/camp-1.e0003   # what job.sbatch runs
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExperimentOutcome } from '../core/types';
import { runTrainer } from '../trainer/run';
import { JOB_FILES, slurmJobSpecSchema, writeFileAtomic, type SlurmJobSpec } from './slurm';

/** Slurm's time-limit SIGTERM comes at the limit (checked every ~30 s); a cancel comes any time. */
const TIME_LIMIT_SLACK_SEC = 15;
/** runTrainer's own limit sits past Slurm's: Slurm is the one that enforces it. */
const BACKSTOP_SEC = 120;

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function readSpec(folder: string): SlurmJobSpec {
  const file = path.join(folder, JOB_FILES.spec);
  const parsed = slurmJobSpecSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${file} is invalid at ${issue?.path.join('.') ?? '?'}: ${issue?.message ?? '?'}`);
  }
  return parsed.data;
}

async function main(folder: string): Promise<number> {
  const started = Date.now();
  const writeOutcome = (outcome: ExperimentOutcome) =>
    writeFileAtomic(path.join(folder, JOB_FILES.outcome), JSON.stringify(outcome, null, 2));
  let spec: SlurmJobSpec;
  try {
    spec = readSpec(folder);
  } catch (err) {
    const message = `slurm-job cannot read its job: ${(err as Error).message}`;
    say(`rea: ${message}`);
    writeOutcome({ status: 'failed', failureClass: 'crash', message, wallTimeSec: 0 });
    return 1;
  }

  const controller = new AbortController();
  let stoppedBy: 'cancelled' | 'timeout' | undefined;
  let written: ExperimentOutcome | undefined = undefined; // set once, read by the signal handler
  const stopped = (outcome: ExperimentOutcome): ExperimentOutcome =>
    stoppedBy && outcome.status === 'failed'
      ? {
          ...outcome,
          failureClass: stoppedBy,
          message:
            stoppedBy === 'timeout'
              ? `ran past its Slurm time limit of ${spec.timeLimitMin} min`
              : 'cancelled through Slurm (scancel)',
        }
      : outcome;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stoppedBy) return;
    const elapsedSec = (Date.now() - started) / 1000;
    stoppedBy = elapsedSec >= spec.timeLimitMin * 60 - TIME_LIMIT_SLACK_SEC ? 'timeout' : 'cancelled';
    say(`rea: ${signal} after ${elapsedSec.toFixed(0)}s: ${stoppedBy}; stopping the trainer`);
    controller.abort();
    // The trainer may have died of Slurm's signal before this handler ran: correct what was written.
    if (written) writeOutcome(stopped(written));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const env: Record<string, string> = { ...spec.trainer.env };
  // Slurm sets CUDA_VISIBLE_DEVICES for a gres request; a job that asked for no GPU gets none.
  if (!spec.gpusFromSlurm && spec.gpus === 0) env.CUDA_VISIBLE_DEVICES = '';
  say(
    `rea: experiment ${spec.experimentId}, Slurm job ${process.env.SLURM_JOB_ID ?? '?'} on ${os.hostname()}, ` +
      `CUDA_VISIBLE_DEVICES=${env.CUDA_VISIBLE_DEVICES ?? process.env.CUDA_VISIBLE_DEVICES ?? '(unset)'}`,
  );
  const { outcome } = await runTrainer({
    argv: spec.trainer.argv,
    cwd: spec.trainer.cwd,
    env,
    config: spec.config,
    runDir: path.join(folder, JOB_FILES.run),
    python: spec.python,
    timeLimitSec: spec.timeLimitMin * 60 + BACKSTOP_SEC,
    primaryMetric: spec.primaryMetric,
    signal: controller.signal,
    onProgress: (p) => writeFileAtomic(path.join(folder, JOB_FILES.progress), JSON.stringify(p)),
    onLog: say,
  });
  // A trainer killed by Slurm's signal can finish before the signal reaches this process.
  if (outcome.status === 'failed' && !stoppedBy) await new Promise((r) => setTimeout(r, 500));
  written = stopped(outcome);
  writeOutcome(written);
  say(
    `rea: ${written.status === 'succeeded' ? 'succeeded' : `failed (${written.failureClass}): ${written.message}`}`,
  );
  return written.status === 'succeeded' ? 0 : 1;
}

const folder = process.argv[2];
if (!folder) {
  say('usage: node slurm-job.js <job folder>');
  process.exitCode = 64;
} else {
  main(path.resolve(folder)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      const message = `slurm-job failed: ${(err as Error).stack ?? String(err)}`;
      say(`rea: ${message}`);
      try {
        writeFileAtomic(
          path.join(path.resolve(folder), JOB_FILES.outcome),
          JSON.stringify({ status: 'failed', failureClass: 'crash', message, wallTimeSec: 0 }),
        );
      } catch {
        // the folder itself is gone: status reports the job as lost
      }
      process.exitCode = 1;
    },
  );
}

/** The Slurm adapter's pure parts: the state table, job names, sbatch arguments, job folders. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { TrainingJob } from '../../src/cluster/adapter';
import {
  jobName,
  readJobFolder,
  sbatchArgs,
  slurmJobStatus,
  slurmTimeLimitMinutes,
  type JobFolderView,
} from '../../src/cluster/slurm';
import type { ExperimentOutcome } from '../../src/core/types';

const empty: JobFolderView = { slurmJobId: '12', cancelRequested: false, recorded: { kind: 'none' } };
const succeeded: ExperimentOutcome = { status: 'succeeded', metrics: { ne: 0.8 }, wallTimeSec: 30 };
const badConfig: ExperimentOutcome = {
  status: 'failed',
  failureClass: 'bad_config',
  message: 'unknown config key learning_rate',
  wallTimeSec: 2,
};
const withOutcome = (outcome: ExperimentOutcome): JobFolderView => ({
  ...empty,
  recorded: { kind: 'outcome', outcome },
});
const progress = { step: 30, steps: 60, loss: 0.4, examplesPerSec: 1000 };

function failureOf(status: ReturnType<typeof slurmJobStatus>): string | undefined {
  return status.state === 'finished' && status.outcome.status === 'failed'
    ? status.outcome.failureClass
    : undefined;
}

describe('Slurm job states', () => {
  it('reads PENDING and CONFIGURING as queued', () => {
    for (const state of ['PENDING', 'CONFIGURING', 'REQUEUED']) {
      assert.deepEqual(slurmJobStatus({ slurmJobId: '12', state }, empty), { state: 'queued' }, state);
    }
  });

  it('reads RUNNING and COMPLETING as running, with the progress the job folder holds', () => {
    for (const state of ['RUNNING', 'COMPLETING']) {
      assert.deepEqual(slurmJobStatus({ slurmJobId: '12', state }, { ...empty, progress }), {
        state: 'running',
        progress,
      });
    }
    assert.deepEqual(slurmJobStatus({ slurmJobId: '12', state: 'RUNNING' }, empty), { state: 'running' });
  });

  it('takes a COMPLETED job’s result from its outcome.json', () => {
    assert.deepEqual(slurmJobStatus({ slurmJobId: '12', state: 'COMPLETED' }, withOutcome(succeeded)), {
      state: 'finished',
      outcome: succeeded,
    });
  });

  it('calls a COMPLETED job without a valid outcome.json a crash, and says why', () => {
    const missing = slurmJobStatus(
      { slurmJobId: '12', state: 'COMPLETED' },
      { ...empty, lastLogLine: 'Segmentation fault' },
    );
    assert.equal(failureOf(missing), 'crash');
    assert.match(JSON.stringify(missing), /without writing outcome.json.*Segmentation fault/);
    const invalid = slurmJobStatus(
      { slurmJobId: '12', state: 'COMPLETED' },
      { ...empty, recorded: { kind: 'invalid', problem: 'Unexpected end of JSON input' } },
    );
    assert.equal(failureOf(invalid), 'crash');
    assert.match(JSON.stringify(invalid), /Unexpected end of JSON input/);
  });

  it('takes a FAILED job’s failure class from its outcome.json, else calls it a crash', () => {
    assert.deepEqual(slurmJobStatus({ slurmJobId: '12', state: 'FAILED' }, withOutcome(badConfig)), {
      state: 'finished',
      outcome: badConfig,
    });
    assert.equal(
      failureOf(slurmJobStatus({ slurmJobId: '12', state: 'FAILED', reason: 'NonZeroExitCode' }, empty)),
      'crash',
    );
  });

  it('maps TIMEOUT, CANCELLED and OUT_OF_MEMORY to their failure classes', () => {
    assert.equal(failureOf(slurmJobStatus({ slurmJobId: '12', state: 'TIMEOUT' }, empty)), 'timeout');
    assert.equal(failureOf(slurmJobStatus({ slurmJobId: '12', state: 'CANCELLED' }, empty)), 'cancelled');
    assert.equal(failureOf(slurmJobStatus({ slurmJobId: '12', state: 'OUT_OF_MEMORY' }, empty)), 'oom');
  });

  it('lets Slurm’s final state win over an outcome.json that says otherwise', () => {
    const status = slurmJobStatus({ slurmJobId: '12', state: 'TIMEOUT' }, withOutcome(badConfig));
    assert.equal(failureOf(status), 'timeout');
  });

  it('reads sacct’s decorated states ("CANCELLED by 0", "CANCELLED+")', () => {
    assert.equal(
      failureOf(slurmJobStatus({ slurmJobId: '12', state: 'CANCELLED by 0' }, empty)),
      'cancelled',
    );
    assert.equal(failureOf(slurmJobStatus({ slurmJobId: '12', state: 'CANCELLED+' }, empty)), 'cancelled');
  });

  it('calls NODE_FAIL, PREEMPTED, BOOT_FAIL and DEADLINE lost, so that the runbook retries', () => {
    for (const state of ['NODE_FAIL', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE']) {
      assert.equal(
        failureOf(slurmJobStatus({ slurmJobId: '12', state }, withOutcome(succeeded))),
        'lost',
        state,
      );
    }
  });

  it('keeps waiting on a state it does not know', () => {
    assert.deepEqual(slurmJobStatus({ slurmJobId: '12', state: 'SOMETHING_NEW' }, empty), {
      state: 'running',
    });
  });

  it('reads a job Slurm has forgotten from its outcome.json', () => {
    assert.deepEqual(slurmJobStatus(undefined, withOutcome(succeeded)), {
      state: 'finished',
      outcome: succeeded,
    });
  });

  it('calls a forgotten job without an outcome cancelled when rea cancelled it, else lost', () => {
    assert.equal(failureOf(slurmJobStatus(undefined, { ...empty, cancelRequested: true })), 'cancelled');
    assert.equal(failureOf(slurmJobStatus(undefined, empty)), 'lost');
  });

  it('calls a job that was never submitted missing, so that the workflow submits it again', () => {
    assert.deepEqual(slurmJobStatus(undefined, { cancelRequested: false, recorded: { kind: 'none' } }), {
      state: 'missing',
    });
  });
});

describe('Slurm job names', () => {
  it('uses a safe experiment id as it is', () => {
    assert.equal(jobName('camp-1.e0003'), 'camp-1.e0003');
  });

  it('makes any other id a safe name that keeps distinct ids distinct', () => {
    const a = jobName('my campaign/e1');
    const b = jobName('my campaign:e1');
    assert.match(a, /^my_campaign_e1-[0-9a-f]{12}$/);
    assert.notEqual(a, b);
    assert.match(jobName('..'), /^_-[0-9a-f]{12}$/);
    assert.equal(jobName('x'.repeat(300)).length, 80 + 13);
  });
});

describe('sbatch arguments', () => {
  const job: TrainingJob = {
    experimentId: 'camp-1.e0003',
    campaignId: 'camp-1',
    model: 'tiny-ctr',
    trainer: { argv: ['{python}', 'train.py'] },
    config: {},
    resources: { gpus: 2, cpus: 4, memoryMb: 8192, timeLimitSec: 3601 },
    primaryMetric: 'ne',
    cluster: { adapter: 'slurm', gpus: 'gres', partition: 'gpu', account: 'ads', qos: 'high' },
  };

  it('names the job by its experiment id and asks for its resources', () => {
    const args = sbatchArgs(
      job,
      { adapter: 'slurm', gpus: 'gres', partition: 'gpu', account: 'ads', qos: 'high' },
      '/w/slurm/camp-1.e0003',
    );
    for (const arg of [
      '--parsable',
      '--job-name=camp-1.e0003',
      '--chdir=/w/slurm/camp-1.e0003',
      '--output=/w/slurm/camp-1.e0003/job.log',
      '--time=61',
      '--cpus-per-task=4',
      '--mem=8192',
      '--gres=gpu:2',
      '--partition=gpu',
      '--account=ads',
      '--qos=high',
    ]) {
      assert.ok(args.includes(arg), `${arg} in ${args.join(' ')}`);
    }
    assert.deepEqual(args.slice(-2), ['/w/slurm/camp-1.e0003/job.sbatch', '/w/slurm/camp-1.e0003']);
  });

  it('asks for no GPU gres on a cluster without them, nor for a CPU-only job', () => {
    assert.ok(!sbatchArgs(job, { adapter: 'slurm', gpus: 'none' }, '/w').some((a) => a.startsWith('--gres')));
    const cpuJob = { ...job, resources: { ...job.resources, gpus: 0 } };
    assert.ok(
      !sbatchArgs(cpuJob, { adapter: 'slurm', gpus: 'gres' }, '/w').some((a) => a.startsWith('--gres')),
    );
  });

  it('rounds the time limit up to whole minutes, at least one', () => {
    assert.equal(slurmTimeLimitMinutes(1), 1);
    assert.equal(slurmTimeLimitMinutes(60), 1);
    assert.equal(slurmTimeLimitMinutes(61), 2);
  });
});

describe('job folders', () => {
  it('reads a half-written outcome.json as invalid, and ignores unreadable progress', () => {
    const folder = mkdtempSync(path.join(os.tmpdir(), 'rea-slurm-unit-'));
    writeFileSync(path.join(folder, 'slurm-job-id'), '42\n');
    writeFileSync(path.join(folder, 'outcome.json'), '{"status": "succ');
    writeFileSync(path.join(folder, 'progress.json'), 'not json');
    writeFileSync(path.join(folder, 'job.log'), 'first\nlast words\n');
    const view = readJobFolder(folder);
    assert.equal(view.slurmJobId, '42');
    assert.equal(view.recorded.kind, 'invalid');
    assert.equal(view.progress, undefined);
    assert.equal(view.lastLogLine, 'last words');
  });
});

/**
 * The Slurm adapter against a real single-node Slurm cluster (scripts/slurm.sh starts one when it is
 * not up; the tests fail, never skip, when it cannot start): real sbatch, squeue and scancel, the
 * real slurm-job.js on the node, and the real CTR trainer or a sleeping one.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { trainingJob, type JobStatus, type TrainingJob } from '../../src/cluster/adapter';
import { JOB_FILES, SlurmAdapter, SlurmCommandError } from '../../src/cluster/slurm';
import { loadConfig } from '../../src/config';
import {
  baselineConfig,
  parseModelSpec,
  type ClusterSettings,
  type ModelSpec,
} from '../../src/core/model-spec';
import { FIXTURE_MODELS, uniqueName, waitFor } from '../helpers/stack';

const config = loadConfig();
const workDir = mkdtempSync(path.join(os.tmpdir(), 'rea-slurm-test-'));
const slurm = new SlurmAdapter({ workDir, python: config.REA_PYTHON, projectRoot: config.root });
const onThisCluster: ClusterSettings = { adapter: 'slurm', gpus: 'none', partition: 'rea' };

function tinyCtr(): ModelSpec {
  const raw = JSON.parse(readFileSync(path.join(FIXTURE_MODELS, 'tiny-ctr.json'), 'utf8')) as object;
  return parseModelSpec({ ...raw, cluster: onThisCluster });
}

/** A job for the sleeping trainer (test/fixtures/trainers/sleeper.py). */
function sleeperJob(sleeper: { seconds: number; steps: number }, timeLimitSec = 300): TrainingJob {
  const experimentId = uniqueName('slurm-sleep');
  return {
    experimentId,
    campaignId: 'slurm-test',
    model: 'sleeper',
    trainer: {
      argv: [
        '{python}',
        'test/fixtures/trainers/sleeper.py',
        '--config',
        '{config}',
        '--metrics',
        '{metrics}',
      ],
      cwd: '.',
    },
    config: sleeper,
    resources: { gpus: 0, cpus: 1, memoryMb: 256, timeLimitSec },
    primaryMetric: 'ne',
    cluster: onThisCluster,
  };
}

async function finished(jobId: string, timeoutMs = 120_000) {
  const status = await waitFor(
    `job ${jobId} to finish`,
    async () => {
      const s = await slurm.status(jobId);
      return s.state === 'finished' ? s : undefined;
    },
    timeoutMs,
  );
  return status.outcome;
}

function slurmJobsNamed(name: string): string[] {
  const out = execFileSync('squeue', ['--noheader', '--states=all', `--name=${name}`, '--format=%i'], {
    encoding: 'utf8',
  });
  return out.split('\n').filter((line) => line.trim() !== '');
}

describe('Slurm adapter on a real cluster', { concurrency: true }, () => {
  before(() => {
    // Quick when the cluster is up; installs and starts it when not. A failure here fails every test.
    execFileSync(path.join(config.root, 'scripts', 'slurm.sh'), { stdio: 'pipe', timeout: 600_000 });
  });
  after(() => rmSync(workDir, { recursive: true, force: true }));

  it('reports a job that runs past its Slurm time limit as timeout', async () => {
    // Slurm's limits are whole minutes and checked about every 30 s: this one ends 60..100 s in.
    const job = sleeperJob({ seconds: 600, steps: 600 }, 60);
    await slurm.submit(job);
    const outcome = await finished(job.experimentId, 170_000);
    assert.equal(outcome.status === 'failed' && outcome.failureClass, 'timeout', JSON.stringify(outcome));
    // The job folder says the same, for when Slurm has forgotten the job.
    const recorded = JSON.parse(
      readFileSync(path.join(slurm.jobFolder(job.experimentId), JOB_FILES.outcome), 'utf8'),
    ) as { failureClass?: string };
    assert.equal(recorded.failureClass, 'timeout');
  });

  it('trains the tiny CTR model and reports its metrics, progress and log', async () => {
    const spec = tinyCtr();
    const job = trainingJob(spec, {
      experimentId: uniqueName('slurm-ok'),
      campaignId: 'slurm-test',
      config: baselineConfig(spec),
      fidelity: spec.fidelity.low,
      seed: 1,
    });
    assert.deepEqual(await slurm.submit(job), { jobId: job.experimentId, created: true });
    const seen: JobStatus['state'][] = [];
    const outcome = await waitFor('the CTR job to finish', async () => {
      const s = await slurm.status(job.experimentId);
      if (seen.at(-1) !== s.state) seen.push(s.state);
      return s.state === 'finished' ? s.outcome : undefined;
    });
    assert.equal(outcome.status, 'succeeded', JSON.stringify(outcome));
    if (outcome.status !== 'succeeded') return;
    for (const key of ['ne', 'auc', 'logloss']) assert.equal(typeof outcome.metrics[key], 'number', key);
    assert.ok((outcome.metrics.ne as number) > 0 && (outcome.metrics.ne as number) < 1.2);
    assert.ok(!seen.includes('missing'), `states seen: ${seen.join(', ')}`);
    const logs = await slurm.logs(job.experimentId);
    assert.ok(
      logs.some((line) => line.startsWith('rea:progress ')),
      logs.join('\n'),
    );
    assert.match(logs.at(-1) ?? '', /rea: succeeded/);
  });

  it('reports a bad config value as bad_config, naming the key', async () => {
    const spec = tinyCtr();
    const job = trainingJob(spec, {
      experimentId: uniqueName('slurm-bad'),
      campaignId: 'slurm-test',
      config: { ...baselineConfig(spec), batch_size: 1 },
      fidelity: spec.fidelity.low,
      seed: 1,
    });
    await slurm.submit(job);
    const outcome = await finished(job.experimentId);
    assert.equal(outcome.status === 'failed' && outcome.failureClass, 'bad_config', JSON.stringify(outcome));
    assert.match(JSON.stringify(outcome), /batch_size/);
  });

  it('cancels a running job: Slurm stops it and it reports cancelled', async () => {
    const job = sleeperJob({ seconds: 600, steps: 1200 });
    await slurm.submit(job);
    const progress = await waitFor('the sleeper to report progress', async () => {
      const s = await slurm.status(job.experimentId);
      return s.state === 'running' ? s.progress : undefined;
    });
    assert.equal(progress.steps, 1200);
    await slurm.cancel(job.experimentId);
    const outcome = await finished(job.experimentId, 60_000);
    assert.equal(outcome.status === 'failed' && outcome.failureClass, 'cancelled', JSON.stringify(outcome));
    const recorded = await waitFor('slurm-job.js to record the cancel', () => {
      try {
        const text = readFileSync(path.join(slurm.jobFolder(job.experimentId), JOB_FILES.outcome), 'utf8');
        return Promise.resolve(JSON.parse(text) as { failureClass?: string });
      } catch {
        return Promise.resolve(undefined);
      }
    });
    assert.equal(recorded.failureClass, 'cancelled');
    await slurm.cancel(job.experimentId); // a second cancel of an ended job is harmless
  });

  it('finds the existing job when the same experiment is submitted again, even without its recorded id', async () => {
    const job = sleeperJob({ seconds: 2, steps: 4 });
    assert.equal((await slurm.submit(job)).created, true);
    assert.equal((await slurm.submit(job)).created, false);
    // A crash between sbatch and recording the Slurm job id: the job name still finds it.
    const idFile = path.join(slurm.jobFolder(job.experimentId), JOB_FILES.slurmJobId);
    const recordedId = readFileSync(idFile, 'utf8');
    rmSync(idFile);
    assert.deepEqual(await slurm.submit(job), { jobId: job.experimentId, created: false });
    assert.equal(readFileSync(idFile, 'utf8'), recordedId);
    assert.deepEqual(slurmJobsNamed(job.experimentId), [recordedId]);
    const outcome = await finished(job.experimentId);
    assert.equal(outcome.status, 'succeeded', JSON.stringify(outcome));
    assert.equal((await slurm.submit(job)).created, false); // and after it finished
    assert.deepEqual(slurmJobsNamed(job.experimentId), [recordedId]);
  });

  it('reports an experiment it never submitted as missing', async () => {
    assert.deepEqual(await slurm.status(uniqueName('slurm-never')), { state: 'missing' });
    assert.deepEqual(await slurm.logs(uniqueName('slurm-never')), []);
  });

  it('fails with an error naming sbatch and what Slurm said when the cluster cannot run the job', async () => {
    // This cluster has no GPU gres: asking for one is refused by sbatch itself.
    const job = {
      ...sleeperJob({ seconds: 1, steps: 1 }),
      cluster: { ...onThisCluster, gpus: 'gres' as const },
    };
    job.resources = { ...job.resources, gpus: 1 };
    await assert.rejects(slurm.submit(job), (err: unknown) => {
      assert.ok(err instanceof SlurmCommandError, String(err));
      assert.equal(err.command, 'sbatch');
      assert.match(err.message, /^sbatch .*--gres=gpu:1.* failed: .*gres/i);
      return true;
    });
    assert.deepEqual(await slurm.status(job.experimentId), { state: 'missing' });
  });
});

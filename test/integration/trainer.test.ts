/** The trainer protocol end to end: rea's runner against the real PyTorch trainer process. */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config';
import type { Progress } from '../../src/trainer/protocol';
import { runTrainer, type TrainerRun } from '../../src/trainer/run';

const config = loadConfig();
const argv = ['{python}', 'trainers/ctr/train.py', '--config', '{config}', '--metrics', '{metrics}'];

function run(trainerConfig: Record<string, unknown>, extra: Partial<TrainerRun> = {}) {
  return runTrainer({
    argv,
    cwd: config.root,
    config: { threads: 1, steps: 60, dataset: { n_train: 20_000, n_valid: 5_000 }, ...trainerConfig },
    runDir: mkdtempSync(path.join(os.tmpdir(), 'rea-trainer-')),
    python: config.REA_PYTHON,
    timeLimitSec: 300,
    primaryMetric: 'ne',
    ...extra,
  });
}

describe('trainer protocol round trip', () => {
  it('parses progress and the final metrics of a successful run', async () => {
    const progress: Progress[] = [];
    const { outcome } = await run({ seed: 1 }, { onProgress: (p) => progress.push(p) });
    assert.equal(outcome.status, 'succeeded', JSON.stringify(outcome));
    if (outcome.status !== 'succeeded') return;
    for (const key of ['ne', 'logloss', 'auc', 'calibration', 'bayes_ne', 'param_count']) {
      assert.equal(typeof outcome.metrics[key], 'number', key);
    }
    assert.ok((outcome.metrics.bayes_ne as number) < (outcome.metrics.ne as number));
    assert.ok(progress.length >= 2);
    assert.equal(progress.at(-1)?.step, 60);
    assert.ok(progress.every((p) => p.steps === 60 && Number.isFinite(p.loss)));
  });

  it('recognises a bad config and names the key', async () => {
    const { outcome } = await run({ learning_rate: 0.1 });
    assert.equal(outcome.status, 'failed');
    if (outcome.status === 'failed') {
      assert.equal(outcome.failureClass, 'bad_config');
      assert.match(outcome.message, /learning_rate/);
    }
  });

  it('recognises a loss explosion', async () => {
    const { outcome } = await run({ optimizer: 'sgd', lr: 50, steps: 200 });
    assert.equal(outcome.status === 'failed' && outcome.failureClass, 'nan', JSON.stringify(outcome));
  });

  it('recognises a config over the memory cap', async () => {
    const { outcome } = await run({ hash_buckets: 10_000_000, embedding_dim: 512 });
    assert.equal(outcome.status === 'failed' && outcome.failureClass, 'oom', JSON.stringify(outcome));
  });

  it('kills the trainer when cancelled', async () => {
    // Cancel at the trainer's first log line; runTrainer returns only once the process group is gone,
    // so a missed kill would hang here for the whole 100000-step run.
    const controller = new AbortController();
    const { outcome } = await run(
      { steps: 100_000 },
      { signal: controller.signal, onLog: () => controller.abort() },
    );
    assert.equal(outcome.status === 'failed' && outcome.failureClass, 'cancelled');
  });

  it('enforces the time limit', async () => {
    const { outcome } = await run({ steps: 100_000 }, { timeLimitSec: 3 });
    assert.equal(outcome.status === 'failed' && outcome.failureClass, 'timeout');
  });

  it('never takes a missing metrics file for a result', async () => {
    const { outcome } = await runTrainer({
      argv: [
        '{python}',
        '-c',
        'print("rea:progress {\\"step\\": 1, \\"steps\\": 1, \\"loss\\": 0.5, \\"examples_per_s\\": 1}")',
      ],
      cwd: config.root,
      config: {},
      runDir: mkdtempSync(path.join(os.tmpdir(), 'rea-trainer-')),
      python: config.REA_PYTHON,
      timeLimitSec: 60,
      primaryMetric: 'ne',
    });
    assert.equal(outcome.status === 'failed' && outcome.failureClass, 'crash');
    assert.match(outcome.status === 'failed' ? outcome.message : '', /trainer bug/);
  });
});

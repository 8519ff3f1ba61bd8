/** The trainer protocol end to end: rea's runner against the real PyTorch trainer process. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
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

/** Runs a Python one-liner as the trainer (no config, no metrics unless it writes them). */
function runSnippet(code: string, runDir = mkdtempSync(path.join(os.tmpdir(), 'rea-trainer-'))) {
  return runTrainer({
    argv: ['{python}', '-c', code],
    cwd: config.root,
    config: {},
    runDir,
    python: config.REA_PYTHON,
    timeLimitSec: 60,
    primaryMetric: 'ne',
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
    const { outcome } = await runSnippet(
      'print("rea:progress {\\"step\\": 1, \\"steps\\": 1, \\"loss\\": 0.5, \\"examples_per_s\\": 1}")',
    );
    assert.equal(outcome.status === 'failed' && outcome.failureClass, 'crash');
    assert.match(outcome.status === 'failed' ? outcome.message : '', /trainer bug/);
  });
});

describe('a trainer whose write meets a full disk', () => {
  it('is lost (run again), not crash, and the message quotes the error and the run folder', async () => {
    const runDir = mkdtempSync(path.join(os.tmpdir(), 'rea-trainer-'));
    // /dev/full: every write fails with the kernel's real ENOSPC, as on a full disk.
    const { outcome } = await runSnippet(
      "f = open('/dev/full', 'w'); f.write('checkpoint' * 100); f.flush()",
      runDir,
    );
    assert.equal(outcome.status === 'failed' && outcome.failureClass, 'lost');
    const message = outcome.status === 'failed' ? outcome.message : '';
    assert.match(message, /full disk/);
    assert.match(message, /No space left on device/);
    assert.ok(message.includes(runDir), message);
  });

  it('a trainer that crashes for another reason is still crash', async () => {
    const { outcome } = await runSnippet("raise RuntimeError('a bug in the trainer')");
    assert.equal(outcome.status === 'failed' && outcome.failureClass, 'crash');
  });
});

describe('trainers killed by a signal rea did not send', () => {
  const hog = ['{python}', 'test/fixtures/trainers/hog.py', '--config', '{config}', '--metrics', '{metrics}'];
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'rea-kills-'));
  const runHog = (trainerConfig: Record<string, unknown>, memoryCapMb?: number) =>
    runTrainer({
      argv: hog,
      cwd: config.root,
      config: trainerConfig,
      runDir: mkdtempSync(path.join(os.tmpdir(), 'rea-trainer-')),
      python: config.REA_PYTHON,
      timeLimitSec: 120,
      primaryMetric: 'ne',
      ...(memoryCapMb ? { memoryCapMb } : {}),
    });
  /** Kills the trainer (not its supervisor) with kill -9 once it has written its pid file. */
  const killWhenReady = async (pidFile: string) => {
    while (!existsSync(pidFile) || !readFileSync(pidFile, 'utf8'))
      await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 500)); // a few samples of its memory
    process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
  };

  it('classes a kill -9 from outside, far below the memory cap, as lost (retried), and says so', async () => {
    const pidFile = path.join(scratch, 'lost.pid');
    const [{ outcome }] = await Promise.all([
      runHog({ mb: 16, hold_sec: 60, pid_file: pidFile }, 2048),
      killWhenReady(pidFile),
    ]);
    assert.equal(outcome.status === 'failed' && outcome.failureClass, 'lost', JSON.stringify(outcome));
    assert.match(
      outcome.status === 'failed' ? outcome.message : '',
      /killed by SIGKILL, a signal rea did not send/,
    );
    assert.match(
      outcome.status === 'failed' ? outcome.message : '',
      /peak resident memory \d+ MB of the spec's 2048 MB/,
    );
  });

  it('classes a SIGKILL at the memory cap as oom, with the peak memory as evidence', async () => {
    const pidFile = path.join(scratch, 'near-cap.pid');
    const [{ outcome }] = await Promise.all([
      runHog({ mb: 112, hold_sec: 60, pid_file: pidFile }, 128),
      killWhenReady(pidFile),
    ]);
    assert.equal(outcome.status === 'failed' && outcome.failureClass, 'oom', JSON.stringify(outcome));
    assert.match(
      outcome.status === 'failed' ? outcome.message : '',
      /killed by SIGKILL at its memory cap.*peak resident memory 1[12]\d MB of the spec's 128 MB/,
    );
  });

  // The kernel's own OOM killer, in a memory cgroup of the test's making (root and cgroup v1 or a
  // delegated v2 tree); skipped where the test cannot make one.
  const cgroup = memoryCgroup(96);
  it(
    "classes the kernel OOM killer's kill as oom, citing the cgroup's OOM-kill count",
    { skip: cgroup ? false : 'no writable memory cgroup here' },
    async () => {
      try {
        // No memory cap given: the cgroup's count alone is the evidence.
        const { outcome } = await runHog({ mb: 400, hold_sec: 5, cgroup: cgroup?.dir });
        assert.equal(outcome.status === 'failed' && outcome.failureClass, 'oom', JSON.stringify(outcome));
        if (process.env.REA_TEST_VERBOSE) console.log(JSON.stringify(outcome));
        assert.match(
          outcome.status === 'failed' ? outcome.message : '',
          /SIGKILL from the OOM killer: its memory cgroup counted 1 OOM kill\(s\) while it ran .*oom_kill 0 → 1/,
        );
      } finally {
        cgroup?.remove();
      }
    },
  );
});

/** A fresh memory cgroup limited to `mb`, where this process may make one (v1 memory or v2). */
function memoryCgroup(mb: number): { dir: string; remove: () => void } | undefined {
  const name = `rea-test-oom-${process.pid}`;
  const tries = [
    {
      dir: path.join('/sys/fs/cgroup/memory', name),
      limit: 'memory.limit_in_bytes',
      swap: 'memory.memsw.limit_in_bytes',
    },
    { dir: path.join('/sys/fs/cgroup', name), limit: 'memory.max', swap: 'memory.swap.max' },
  ];
  for (const t of tries) {
    try {
      mkdirSync(t.dir);
    } catch {
      continue;
    }
    try {
      writeFileSync(path.join(t.dir, t.limit), String(mb * 1024 * 1024));
      try {
        // No swap to spill into: the kernel kills at the limit.
        writeFileSync(
          path.join(t.dir, t.swap),
          t.swap.startsWith('memory.memsw') ? String(mb * 1024 * 1024) : '0',
        );
      } catch {
        // no swap accounting here
      }
      return { dir: t.dir, remove: () => rmdirSync(t.dir) };
    } catch {
      rmdirSync(t.dir);
    }
  }
  return undefined;
}

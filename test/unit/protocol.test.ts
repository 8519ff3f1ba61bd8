import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  classifyDiskFull,
  classifyForeignKill,
  failureClassForExit,
  parseLine,
} from '../../src/trainer/protocol';

describe('trainer protocol lines', () => {
  it('parses progress lines', () => {
    assert.deepEqual(
      parseLine('rea:progress {"step": 30, "steps": 300, "loss": 0.41, "examples_per_s": 51234.5}'),
      {
        kind: 'progress',
        progress: { step: 30, steps: 300, loss: 0.41, examplesPerSec: 51234.5 },
      },
    );
  });

  it('parses progress lines that carry the optional metrics field (the fast trainers print it)', () => {
    const line =
      'rea:progress {"step": 59, "steps": 586, "loss": 0.33, "examples_per_s": 512345.6, "metrics": {"ne": 0.93}}';
    assert.deepEqual(parseLine(line), {
      kind: 'progress',
      progress: { step: 59, steps: 586, loss: 0.33, examplesPerSec: 512345.6 },
    });
  });

  it('parses error lines into failure classes', () => {
    assert.deepEqual(parseLine('rea:error {"class": "oom", "message": "needs 9000 MB, cap 2048 MB"}'), {
      kind: 'error',
      failureClass: 'oom',
      message: 'needs 9000 MB, cap 2048 MB',
    });
  });

  it('treats malformed protocol lines as plain log text, never as data', () => {
    assert.equal(parseLine('rea:progress {"step": "x"}').kind, 'log');
    assert.equal(parseLine('rea:metrics not json').kind, 'log');
    assert.equal(parseLine('rea:error {"class": "rm -rf", "message": ""}').kind, 'log');
    assert.equal(parseLine('epoch 1 done').kind, 'log');
  });

  it('says why a malformed protocol line was not taken, naming the field', () => {
    const refused = (line: string) => {
      const parsed = parseLine(line);
      return parsed.kind === 'log' ? parsed.refused : undefined;
    };
    assert.match(
      refused('rea:progress {"step": "x", "steps": 3, "loss": 1, "examples_per_s": 1}') ?? '',
      /step:/,
    );
    assert.match(
      refused('rea:metrics {"ne": 1e999}') ?? '',
      /rea:metrics is invalid: ne: expected a finite number/,
    );
    assert.match(refused('rea:error {"class": "rm -rf", "message": ""}') ?? '', /class:/);
    assert.match(refused('rea:progress {"step":') ?? '', /not valid JSON/);
    assert.equal(refused('epoch 1 done'), undefined);
  });

  it('maps exit codes to failure classes', () => {
    assert.equal(failureClassForExit(2), 'bad_config');
    assert.equal(failureClassForExit(3), 'oom');
    assert.equal(failureClassForExit(4), 'nan');
    assert.equal(failureClassForExit(1), 'crash');
    assert.equal(failureClassForExit(139), 'crash');
    assert.equal(failureClassForExit(null), 'crash');
  });
});

describe('a kill that rea did not send', () => {
  const counted = { cgroup: '/sys/fs/cgroup/memory.events', before: 2, after: 3 };

  it('is oom when SIGKILL comes with an OOM kill counted by the memory cgroup, and cites the count', () => {
    const kill = classifyForeignKill('SIGKILL', { peakRssMb: 300, oomKills: [counted] }, 2048);
    assert.equal(kill.failureClass, 'oom');
    assert.match(
      kill.message,
      /counted 1 OOM kill\(s\) .*memory.events: oom_kill 2 → 3\); peak resident memory 300 MB of the spec's 2048 MB/,
    );
  });

  it('is oom when SIGKILL comes with the peak memory at the cap, and cites the peak', () => {
    const kill = classifyForeignKill('SIGKILL', { peakRssMb: 1900, oomKills: [] }, 2048);
    assert.equal(kill.failureClass, 'oom');
    assert.match(kill.message, /at its memory cap.*1900 MB of the spec's 2048 MB.*\(93 %\)/);
  });

  it('is lost otherwise: another signal, memory far from the cap, no cap, or nothing readable', () => {
    assert.equal(classifyForeignKill('SIGKILL', { peakRssMb: 100, oomKills: [] }, 2048).failureClass, 'lost');
    assert.equal(classifyForeignKill('SIGKILL', { peakRssMb: 1900, oomKills: [] }).failureClass, 'lost');
    assert.equal(classifyForeignKill('SIGKILL', { oomKills: [] }, 2048).failureClass, 'lost');
    // The OOM killer only sends SIGKILL: an OOM count beside a SIGTERM is someone else's kill.
    const term = classifyForeignKill('SIGTERM', { peakRssMb: 2000, oomKills: [counted] }, 2048);
    assert.equal(term.failureClass, 'lost');
    assert.match(term.message, /killed by SIGTERM, a signal rea did not send.*run it again/);
  });
});

describe('a trainer that met a full disk', () => {
  it('is lost, quoting the line that names the error, the run folder and the free space', () => {
    const tail = [
      'step 10',
      'Traceback (most recent call last):',
      'OSError: [Errno 28] No space left on device',
    ];
    const c = classifyDiskFull(tail, '/runs/e0001', 0.4);
    assert.equal(c?.failureClass, 'lost');
    assert.match(c?.message ?? '', /"OSError: \[Errno 28\] No space left on device"/);
    assert.match(c?.message ?? '', /\/runs\/e0001 \(0 MB free there now\)/);
    assert.match(classifyDiskFull(['write failed: EDQUOT'], '/r')?.message ?? '', /free space unknown/);
    assert.match(classifyDiskFull(['Disk quota exceeded'], '/r')?.message ?? '', /quota/);
  });

  it('is undefined when the output does not name a full disk', () => {
    assert.equal(classifyDiskFull(['RuntimeError: a bug', 'NOSPACE here'], '/r'), undefined);
    assert.equal(classifyDiskFull([], '/r'), undefined);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Leaderboard } from '../../src/core/leaderboard';
import { failureClassForExit, parseLine } from '../../src/trainer/protocol';

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

  it('maps exit codes to failure classes', () => {
    assert.equal(failureClassForExit(2), 'bad_config');
    assert.equal(failureClassForExit(3), 'oom');
    assert.equal(failureClassForExit(4), 'nan');
    assert.equal(failureClassForExit(1), 'crash');
    assert.equal(failureClassForExit(139), 'crash');
    assert.equal(failureClassForExit(null), 'crash');
  });
});

describe('leaderboard', () => {
  const result = (id: string, ne: number | undefined) => ({
    experimentId: id,
    hypothesis: { id: `h-${id}`, source: 'planner' as const, rationale: '', delta: { lr: 0.1 } },
    config: { lr: 0.1 },
    outcome:
      ne === undefined
        ? { status: 'failed' as const, failureClass: 'nan' as const, message: 'NaN', wallTimeSec: 1 }
        : { status: 'succeeded' as const, metrics: { ne }, wallTimeSec: 1 },
  });

  it('ranks by the primary metric and reports the gain over the baseline', () => {
    const board = new Leaderboard('ne', 'minimize');
    board.add(result('base', 0.8));
    board.setBaseline('base', 0.8);
    board.add(result('a', 0.76));
    board.add(result('b', 0.9));
    board.add(result('c', undefined));
    const r = board.result('camp', 'm');
    assert.equal(r.best.experimentId, 'a');
    assert.ok(Math.abs(r.gainPct - 5) < 1e-9);
    assert.deepEqual(r.experiments, { total: 4, succeeded: 3, failed: 1 });
    assert.match(board.markdown(10), /\| 1 \| h-a \| planner \| 0\.76000 \| 5\.00% \|/);
  });
});

/**
 * Replays committed workflow histories with today's workflow code: a change that breaks determinism
 * (and so would break every campaign running in production) fails here. Refresh the histories with
 * `REA_RECORD_HISTORIES=test/histories node --test dist/test/integration/campaign.test.js` (the campaign's with the
 * answer rules v5, and the experiment's v4 local hand-over records when absent; the older histories stay
 * as recorded)
 * only when a change is meant to be incompatible (and ship it behind workflow versioning).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { loadConfig } from '../../src/config';
import { installTemporalRuntime } from '../../src/temporal/runtime';
import { workflowBundle } from '../helpers/stack';

const dir = path.join(loadConfig().root, 'test', 'histories');

describe('replay of committed histories', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

  it('has histories to replay', () => {
    assert.ok(files.length >= 3, `expected committed histories in ${dir}`);
  });

  for (const file of files) {
    it(`replays ${file} deterministically`, async () => {
      installTemporalRuntime('warn');
      const recorded = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as {
        workflowId: string;
        history: unknown;
      };
      const history = historyFromJSON(recorded.history);
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, recorded.workflowId);
    });
  }

  it('stops a replay whose campaign rules launch another config under a recorded experiment id, saying why', async () => {
    installTemporalRuntime('warn');
    const recorded = JSON.parse(readFileSync(path.join(dir, 'campaign-v2.json'), 'utf8')) as {
      workflowId: string;
      history: { events: Record<string, Record<string, unknown>>[] };
    };
    // The first finished experiment now says it ran another hypothesis than the one the rules launch.
    const done = recorded.history.events.find((e) => e.childWorkflowExecutionCompletedEventAttributes);
    const attrs = done?.childWorkflowExecutionCompletedEventAttributes as {
      result: { payloads: { data: string }[] };
    };
    const payload = attrs.result.payloads[0] as { data: string };
    const result = JSON.parse(Buffer.from(payload.data, 'base64').toString('utf8')) as {
      hypothesis: { id: string };
    };
    result.hypothesis.id = 'lr=0.5';
    payload.data = Buffer.from(JSON.stringify(result)).toString('base64');
    await assert.rejects(
      Worker.runReplayHistory(
        { workflowBundle: await workflowBundle() },
        historyFromJSON(recorded.history),
        recorded.workflowId,
      ),
      (err: Error) => {
        assert.match(
          `${err.message} ${err.cause instanceof Error ? err.cause.message : ''}`,
          /replay diverged: experiment .* ran hypothesis lr=0\.5/,
        );
        return true;
      },
    );
  });
});

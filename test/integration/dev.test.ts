/**
 * `rea dev` as the ops team uses it: the embedded stack comes up, a campaign started with the real
 * Temporal CLI completes, Ctrl-C stops everything, and the SQLite state survives a restart.
 */
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config';
import { Store } from '../../src/db/store';
import { reapStack } from '../../src/dev/stack';
import { FIXTURE_MODELS, testDatabase, TEST_DATABASE_URL, uniqueName, waitFor } from '../helpers/stack';

const run = promisify(execFile);
const root = loadConfig().root;
const temporalCli = loadConfig().REA_TEMPORAL_CLI;
const ADDRESS = '127.0.0.1:17233';
const UI_PORT = 18233;

function startDev(env: NodeJS.ProcessEnv): { child: ChildProcess; ready: Promise<string> } {
  const child = spawn(process.execPath, [path.join(root, 'bin', 'rea'), 'dev'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const ready = new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Press Ctrl-C to stop.')) resolve(out);
    });
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`rea dev exited early (${code}):\n${out}`)));
  });
  return { child, ready };
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

async function temporal(...args: string[]): Promise<string> {
  const { stdout } = await run(temporalCli, [...args, '--address', ADDRESS], { timeout: 300_000 });
  return stdout;
}

describe('rea dev', () => {
  const env = {
    ...process.env,
    REA_TEMPORAL_ADDRESS: ADDRESS,
    REA_UI_PORT: String(UI_PORT),
    REA_WORK_DIR: mkdtempSync(path.join(os.tmpdir(), 'rea-dev-')),
    REA_DATABASE_URL: TEST_DATABASE_URL,
    REA_QUEUE_PREFIX: uniqueName('reatest'),
    REA_TASK_QUEUE: 'rea',
    REA_LOG_LEVEL: 'warn',
    REA_MODELS_DIR: FIXTURE_MODELS,
    // The embedded model on a busy machine can take minutes to answer; this test wants its answer.
    REA_LLM_TIMEOUT_SEC: '300',
  };
  let dev: ChildProcess | undefined;
  after(async () => {
    dev?.kill('SIGKILL');
    await reapStack(env.REA_WORK_DIR); // whatever a failed test left running
  });

  it('runs a campaign started from the Temporal CLI, stops on Ctrl-C, and keeps its state', async () => {
    const first = startDev(env);
    dev = first.child;
    const banner = await first.ready;
    assert.match(banner, new RegExp(`Web UI: +http://127\\.0\\.0\\.1:${UI_PORT}`));
    // The banner names the model that writes hypotheses: the embedded one, unless set-up skipped it.
    const llmUrl =
      /LLM: +Qwen2\.5-Coder-1\.5B-Instruct \(Q4_K_M GGUF\), embedded \(llama\.cpp server at (http:\/\/127\.0\.0\.1:\d+\/v1)/.exec(
        banner,
      )?.[1];
    if (process.env.REA_LLM === 'off') assert.match(banner, /LLM: +off/);
    else assert.ok(llmUrl, banner);
    const ui = await fetch(`http://127.0.0.1:${UI_PORT}/`);
    assert.equal(ui.status, 200);

    const id = uniqueName('cli-campaign');
    const input = JSON.stringify({
      model: 'tiny-ctr',
      budget: { experiments: 12 },
      replicates: 2,
      slateSize: 2,
      refinements: 1,
      seed: 11,
      // One real answer from the embedded model (tens of seconds): the worker reaches it by its URL.
      llm: { maxCalls: 1 },
    });
    await temporal(
      'workflow',
      'start',
      '--type',
      'campaign',
      '--task-queue',
      'rea',
      '--workflow-id',
      id,
      '--input',
      input,
    );
    const query = await waitFor('the status query', async () => {
      const out = await temporal(
        'workflow',
        'query',
        '--workflow-id',
        id,
        '--name',
        'status',
        '--output',
        'json',
      );
      return out.includes('"phase"') ? out : undefined;
    });
    assert.match(query, /"phase": *"(preflight|validation|combination|exploitation|done)"/);
    const resultText = await temporal('workflow', 'result', '--workflow-id', id, '--output', 'json').catch(
      async (err: Error) => {
        const history = await temporal('workflow', 'show', '--workflow-id', id, '--output', 'json');
        throw new Error(`${err.message}\n${history.slice(-3000)}`);
      },
    );
    const result = JSON.parse(resultText) as {
      status: string;
      result: { status: string; experiments: { total: number; succeeded: number } };
    };
    assert.equal(result.status, 'COMPLETED', JSON.stringify(result));
    assert.equal(result.result.status, 'completed');
    const listed = await temporal(
      'workflow',
      'list',
      '--query',
      `ReaModel = "tiny-ctr" AND ReaPhase = "done" AND WorkflowId = "${id}"`,
    );
    assert.match(listed, new RegExp(id));

    const pool = await testDatabase();
    try {
      const rows = await new Store(pool).experiments(id);
      assert.equal(rows.length, result.result.experiments.total);
      assert.equal(rows.filter((e) => e.status === 'succeeded').length, result.result.experiments.succeeded);
      if (llmUrl) {
        const calls = await pool.query<{ model: string; status: string; error: string | null }>(
          'SELECT model, status, error FROM llm_calls WHERE campaign_id = $1',
          [id],
        );
        assert.deepEqual(
          calls.rows.map((c) => [c.model, c.status]),
          [['qwen2.5-coder-1.5b-instruct-q4_k_m', 'ok']],
          JSON.stringify(calls.rows),
        );
      }
    } finally {
      await pool.end();
    }

    // Approve, pause, resume and abort from the Temporal CLI, watching the Web UI's current details.
    const gated = uniqueName('cli-gated');
    const gatedInput = JSON.stringify({
      model: 'tiny-ctr',
      budget: { experiments: 20 },
      replicates: 2,
      slateSize: 4,
      approval: { required: true },
      llm: { maxCalls: 0 },
    });
    await temporal(
      'workflow',
      'start',
      '--type',
      'campaign',
      '--task-queue',
      'rea',
      '--workflow-id',
      gated,
      '--input',
      gatedInput,
    );
    const statusOf = async () =>
      (
        JSON.parse(
          await temporal('workflow', 'query', '--workflow-id', gated, '--name', 'status', '--output', 'json'),
        ) as {
          queryResult: [
            {
              paused: boolean;
              approval: { status: string };
              budget: { used: { experiments: number } };
              running: unknown[];
            },
          ];
        }
      ).queryResult[0];
    await waitFor('the plan to wait for approval', async () =>
      (await statusOf()).approval.status === 'waiting' ? true : undefined,
    );
    assert.match(await temporal('workflow', 'metadata', '--workflow-id', gated), /waiting for plan approval/);
    await temporal('workflow', 'signal', '--workflow-id', gated, '--name', 'pause');
    assert.match(
      await temporal(
        'workflow',
        'update',
        'execute',
        '--workflow-id',
        gated,
        '--name',
        'approvePlan',
        '--input',
        '{}',
      ),
      /approved/,
    );
    await waitFor('the pause to show', async () => ((await statusOf()).paused ? true : undefined));
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(
      (await statusOf()).budget.used.experiments,
      2,
      'only the baseline replicates ran before the pause',
    );
    await temporal('workflow', 'signal', '--workflow-id', gated, '--name', 'resume');
    await waitFor('experiments after resume', async () =>
      (await statusOf()).budget.used.experiments > 3 ? true : undefined,
    );
    await waitFor('a leaderboard in the current details', async () =>
      /\| # \| hypothesis \|/.test(await temporal('workflow', 'metadata', '--workflow-id', gated))
        ? true
        : undefined,
    );
    await temporal(
      'workflow',
      'signal',
      '--workflow-id',
      gated,
      '--name',
      'abort',
      '--input',
      '{"reason": "stopped from the CLI"}',
    );
    const aborted = JSON.parse(
      await temporal('workflow', 'result', '--workflow-id', gated, '--output', 'json'),
    ) as {
      result: { status: string; reason: string };
    };
    assert.deepEqual([aborted.result.status, aborted.result.reason], ['aborted', 'stopped from the CLI']);

    // rea's own CLI refuses a malformed input with the field named, and starts nothing.
    const bad = path.join(env.REA_WORK_DIR, 'bad.json');
    writeFileSync(bad, JSON.stringify({ model: 'tiny-ctr', budget: { experiments: 1 } }));
    const refused = await run(
      process.execPath,
      [path.join(root, 'bin', 'rea'), 'campaign', 'start', bad, '--id', `${id}-bad`],
      {
        env,
      },
    ).then(
      () => assert.fail('rea campaign start accepted a malformed input'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /budget\.experiments: expected at least 2/);
    await assert.rejects(temporal('workflow', 'describe', '--workflow-id', `${id}-bad`));

    first.child.kill('SIGINT');
    assert.equal(await exitOf(first.child), 0);
    // The embedded model stopped with everything else.
    if (llmUrl) await assert.rejects(fetch(`${llmUrl}/models`), 'the LLM server is gone');

    const second = startDev(env);
    dev = second.child;
    await second.ready;
    const described = JSON.parse(
      await temporal('workflow', 'describe', '--workflow-id', id, '--output', 'json'),
    ) as {
      workflowExecutionInfo: { status: string };
    };
    assert.match(described.workflowExecutionInfo.status, /COMPLETED/);
    second.child.kill('SIGINT');
    assert.equal(await exitOf(second.child), 0);
  });
});

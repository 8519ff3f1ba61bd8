/**
 * docs/operations.md is what the ops team types: the Temporal CLI commands in its blocks marked
 * `<!-- ops-check -->` run, as written, against a real Temporal dev server and a rea worker (only the
 * task queue, the workflow id and `--address` are this test's own). And docker-compose.yml, which no
 * machine here can run, is checked for what can be checked without a Docker engine.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Script } from 'node:vm';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Queue } from 'bullmq';
import { parseDocument } from 'yaml';
import { redisConnection, TRAINING_QUEUE } from '../../src/cluster/bullmq-pool';
import { configSchema, loadConfig } from '../../src/config';
import { searchAttributes } from '../../src/core/messages';
import { createLogger } from '../../src/logging';
import { startWorker, type RunningWorker } from '../../src/temporal/worker';
import {
  startTemporal,
  testConfig,
  testDatabase,
  uniqueName,
  waitFor,
  workflowBundle,
} from '../helpers/stack';

const root = loadConfig().root;
const DOC_ID = 'ctr-nov26';
const DOC_TASK_QUEUE = 'rea';

/** The `sh` blocks that follow an `<!-- ops-check -->` line, in document order. */
function opsCheckBlocks(markdown: string): string[] {
  const blocks: string[] = [];
  const re = /<!-- ops-check -->\s*\n```sh\n([\s\S]*?)\n```/g;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) blocks.push(m[1] ?? '');
  return blocks;
}

/**
 * Splits a block into commands, each an argv, the way sh would for the simple commands the doc
 * uses: words, '…' and "…" quotes, backslash-newline continuations, # comments. No shell runs them.
 */
function shellCommands(block: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word: string | undefined;
  const endWord = () => {
    if (word !== undefined) words.push(word);
    word = undefined;
  };
  const endCommand = () => {
    endWord();
    if (words.length) commands.push(words);
    words = [];
  };
  for (let i = 0; i < block.length; i++) {
    const ch = block[i] as string;
    if (ch === '\\' && block[i + 1] === '\n') {
      i += 1;
    } else if (ch === '\n') {
      endCommand();
    } else if (ch === ' ' || ch === '\t') {
      endWord();
    } else if (ch === '#' && word === undefined) {
      while (i + 1 < block.length && block[i + 1] !== '\n') i += 1;
    } else if (ch === "'") {
      const close = block.indexOf("'", i + 1);
      if (close < 0) throw new Error(`unclosed ' in: ${block}`);
      word = (word ?? '') + block.slice(i + 1, close);
      i = close;
    } else if (ch === '"') {
      let text = '';
      for (i += 1; i < block.length && block[i] !== '"'; i++) {
        if (block[i] === '\\' && ['"', '\\', '$', '`'].includes(block[i + 1] ?? '')) i += 1;
        text += block[i];
      }
      if (i >= block.length) throw new Error(`unclosed " in: ${block}`);
      word = (word ?? '') + text;
    } else {
      word = (word ?? '') + ch;
    }
  }
  endCommand();
  return commands;
}

interface CliResult {
  code: number;
  out: string;
}

describe('docs/operations.md: the ops-check commands against a Temporal dev server', () => {
  const doc = readFileSync(path.join(root, 'docs', 'operations.md'), 'utf8');
  const commands = opsCheckBlocks(doc).flatMap(shellCommands);
  let env: TestWorkflowEnvironment;
  let worker: RunningWorker;
  let config: ReturnType<typeof testConfig>;
  const id = uniqueName('ops-doc');

  before(async () => {
    env = await startTemporal();
    const pool = await testDatabase(); // migrations for the worker's activities
    await pool.end();
    config = testConfig({ REA_TEMPORAL_ADDRESS: env.address });
    // No gpu-agent: the baseline's jobs wait in the queue, so the campaign stays where the doc's
    // commands expect it (preflight, no plan yet) for as long as the test needs.
    worker = await startWorker(config, createLogger('test', 'warn'), {
      workflowBundle: await workflowBundle(),
    });
  });

  after(async () => {
    if (env) {
      const handle = env.client.workflow.getHandle(id);
      await handle.cancel().catch(() => undefined);
      await Promise.race([handle.result().catch(() => undefined), new Promise((r) => setTimeout(r, 20_000))]);
    }
    await worker?.shutdown();
    await env?.teardown();
    if (config) {
      const queue = new Queue(TRAINING_QUEUE, {
        connection: redisConnection(config.REA_REDIS_URL),
        prefix: config.REA_QUEUE_PREFIX,
      });
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });

  // The CLI would read these from the caller's environment; the test's server is named by --address.
  const cliEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TEMPORAL_')));

  /** Runs one documented command with this test's queue, id and server; never through a shell. */
  function runCli(argv: string[]): Promise<CliResult> {
    assert.equal(argv[0], 'temporal', `ops-check blocks hold Temporal CLI commands only: ${argv.join(' ')}`);
    const args = argv.slice(1).map((a, i, all) => {
      if (all[i - 1] === '--workflow-id' && a === DOC_ID) return id;
      if (all[i - 1] === '--task-queue' && a === DOC_TASK_QUEUE) return config.REA_TASK_QUEUE;
      return a.replaceAll(`'${DOC_ID}'`, `'${id}'`);
    });
    return new Promise((resolve) => {
      execFile(
        config.REA_TEMPORAL_CLI,
        [...args, '--address', env.address],
        { timeout: 30_000, env: cliEnv },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
          resolve({ code, out: `${stdout}${stderr}` });
        },
      );
    });
  }

  const find = (what: RegExp): string[] => {
    const found = commands.find((argv) => what.test(argv.join(' ')));
    assert.ok(found, `docs/operations.md has no ops-check command matching ${what}`);
    return found;
  };
  const statusCommand = () => find(/^temporal workflow query .*--name status/);
  /** The status query's answer once the worker gives one (the first workflow task may be running). */
  const statusUntil = (what: string, ok: (out: string) => boolean) =>
    waitFor(
      what,
      async () => {
        const r = await runCli(statusCommand());
        return r.code === 0 && ok(r.out) ? r.out : undefined;
      },
      30_000,
    );

  /** What each kind of documented command must do; a command with no expectation fails the test. */
  const expectations: { matches: RegExp; check: (r: CliResult) => Promise<void> | void }[] = [
    {
      matches: /^temporal workflow start --type campaign /,
      check: (r) => {
        assert.equal(r.code, 0, r.out);
        assert.match(r.out, /Running execution/);
        assert.match(r.out, new RegExp(`WorkflowId +${id}`));
      },
    },
    {
      matches: /^temporal workflow query .*--name status/,
      check: async () => {
        const out = await statusUntil('the status query', () => true);
        // The v2 engine's answer, as the doc shows it: phase and stage, the answer so far, the ladder.
        assert.match(out, /"phase":"preflight"/);
        assert.match(out, /"stage":"preflight"/);
        assert.match(out, /"answer":\{[^}]*"hypothesisId":"baseline"/);
        assert.match(out, /"limit":\{"experiments":24\}/);
        assert.match(out, /"rungs":\[\d+\]/);
        assert.doesNotMatch(out, /"step":/);
      },
    },
    {
      // The doc's campaign waits for approval only after its baseline, which no agent runs here.
      matches: /--name rejectPlan/,
      check: (r) => {
        assert.equal(r.code, 1, r.out);
        assert.match(r.out, /no plan is waiting for approval \(the campaign is in preflight\/preflight/);
      },
    },
    {
      matches: /^temporal workflow signal .*--name pause/,
      check: async (r) => {
        assert.equal(r.code, 0, r.out);
        await statusUntil('"paused":true in the status', (out) => out.includes('"paused":true'));
      },
    },
    {
      matches: /^temporal workflow signal .*--name resume/,
      check: async (r) => {
        assert.equal(r.code, 0, r.out);
        await statusUntil('"paused":false in the status', (out) => out.includes('"paused":false'));
      },
    },
    {
      matches: /--name setBudget/,
      check: async (r) => {
        assert.equal(r.code, 0, r.out);
        assert.match(r.out, /Result +map\[experiments:30\]/);
        await statusUntil('the new budget in the status', (out) =>
          out.includes('"limit":{"experiments":30}'),
        );
      },
    },
    {
      matches: /^temporal workflow list --query .*ReaModel/,
      check: async () => {
        // Visibility lags the workflow a little: the attribute is set by the campaign's first task.
        await waitFor(
          `${id} in the list by search attribute`,
          async () => {
            const again = await runCli(find(/^temporal workflow list --query .*ReaModel/));
            return again.code === 0 && again.out.includes(id) ? true : undefined;
          },
          30_000,
        );
      },
    },
  ];

  it('marks a start, a status query, pause and resume, an update and a list by search attribute', () => {
    const text = commands.map((c) => c.join(' '));
    for (const what of [/workflow start --type campaign/, /--name status/, /--name pause/, /--name resume/])
      assert.ok(
        text.some((t) => what.test(t)),
        `no ops-check command matches ${what}`,
      );
    assert.ok(text.some((t) => /update execute/.test(t)));
    assert.ok(text.some((t) => /workflow list --query/.test(t)));
    // The start command's input is JSON that rea accepts.
    const start = find(/^temporal workflow start --type campaign /);
    const input = start[start.indexOf('--input') + 1] ?? '';
    assert.doesNotThrow(() => JSON.parse(input), input);
  });

  it('runs every ops-check command, in document order, with the effect the doc describes', async () => {
    for (const argv of commands) {
      const expectation = expectations.find((e) => e.matches.test(argv.join(' ')));
      assert.ok(expectation, `no check for the documented command: ${argv.join(' ')}`);
      const result = await runCli(argv);
      await expectation.check(result);
    }
  });
});

describe('docker-compose.yml: what can be checked without a Docker engine', () => {
  const text = readFileSync(path.join(root, 'docker-compose.yml'), 'utf8');
  const doc = parseDocument(text, { merge: true });
  interface Service {
    image?: string;
    build?: unknown;
    command?: string[] | string;
    entrypoint?: string[];
    environment?: Record<string, string>;
    healthcheck?: { test?: string[] };
    restart?: string;
    depends_on?: Record<string, { condition: string }>;
    deploy?: { resources?: { reservations?: { devices?: { driver?: string; capabilities?: string[] }[] } } };
  }
  const services = (doc.toJS({ maxAliasCount: 100 }) as { services: Record<string, Service> }).services;
  const named = Object.entries(services);
  /** Compose's `$$` is a literal `$`; `${X:-d}` is X or d. */
  const unescape = (s: string) => s.replaceAll('$$', '$');
  const interpolate = (s: string) =>
    s.replace(
      /\$\{([A-Z_]+)(?::-([^}]*))?\}/g,
      (_m, _name: string, fallback?: string) => fallback ?? 'secret',
    );
  const oneShots = new Set(
    named.flatMap(([, s]) =>
      Object.entries(s.depends_on ?? {})
        .filter(([, d]) => d.condition === 'service_completed_successfully')
        .map(([name]) => name),
    ),
  );

  it('parses as YAML, and every service has a pinned image or a build', () => {
    assert.deepEqual(doc.errors, []);
    for (const [name, s] of named) {
      assert.ok(s.image !== undefined || s.build !== undefined, `${name}: no image and no build`);
      if (s.image)
        assert.match(s.image, /:\d[\w.-]*$/, `${name}: image ${s.image} is not pinned to a version`);
    }
    assert.ok(
      named.some(([, s]) => s.image?.startsWith('temporalio/server:')),
      'no Temporal server',
    );
    assert.ok(
      named.some(([, s]) => s.image?.startsWith('temporalio/ui:')),
      'no Temporal Web UI',
    );
  });

  it('gives every long-running service a health check and a restart policy; one-shots may only retry', () => {
    for (const [name, s] of named) {
      if (oneShots.has(name)) {
        assert.match(
          s.restart ?? '',
          /^on-failure/,
          `${name}: a one-shot must not restart once it succeeded`,
        );
      } else {
        assert.ok(s.healthcheck?.test?.length, `${name}: no health check`);
        assert.equal(s.restart, 'unless-stopped', `${name}: restart policy`);
      }
    }
  });

  it('reserves NVIDIA GPUs for the gpu-agent', () => {
    const agent = services['gpu-agent'];
    assert.ok(agent, 'no gpu-agent service');
    assert.deepEqual(agent.command?.slice(0, 3), ['node', 'bin/rea', 'gpu-agent']);
    const device = agent.deploy?.resources?.reservations?.devices?.[0];
    assert.equal(device?.driver, 'nvidia');
    assert.ok(device?.capabilities?.includes('gpu'));
  });

  it("registers exactly rea's search attributes, with their types", () => {
    const scripts = named.map(([, s]) =>
      Array.isArray(s.command) ? s.command.join('\n') : (s.command ?? ''),
    );
    const setup = scripts.find((c) => c.includes('search-attribute create'));
    assert.ok(setup, 'no service registers search attributes');
    const registered = [...setup.matchAll(/--name (\w+) --type (\w+)/g)].map((m) => `${m[1]}=${m[2]}`).sort();
    const cliType: Record<string, string> = { KEYWORD: 'Keyword', DOUBLE: 'Double', INT: 'Int' };
    const expected = Object.values(searchAttributes)
      .map((k) => `${k.name}=${cliType[k.type]}`)
      .sort();
    assert.deepEqual(registered, expected);
  });

  it('sets only REA_* variables that src/config.ts reads, with values it accepts', () => {
    const known = new Set(Object.keys(configSchema(root).shape));
    for (const [name, s] of named.filter(([, s]) => s.build !== undefined)) {
      const vars = Object.entries(s.environment ?? {});
      assert.ok(vars.length, `${name}: no environment`);
      for (const [key] of vars) assert.ok(known.has(key), `${name}: ${key} is not read by src/config.ts`);
      const env = Object.fromEntries(vars.map(([k, v]) => [k, interpolate(String(v))]));
      assert.doesNotThrow(() => loadConfig(env), `${name}: rea refuses its environment`);
    }
  });

  it('has one-shot scripts that sh can parse, and health checks that are valid JavaScript', () => {
    for (const [name, s] of named) {
      if (s.entrypoint?.join(' ') === '/bin/sh -c' && Array.isArray(s.command)) {
        const script = unescape(s.command[0] ?? '');
        assert.doesNotThrow(() => execFileSync('sh', ['-n', '-c', script]), `${name}: sh -n fails`);
      }
      const test = s.healthcheck?.test ?? [];
      if (test[1] === 'node' && test[2] === '-e') {
        assert.doesNotThrow(
          () => new Script(test[3] ?? ''),
          `${name}: its health check is not valid JavaScript`,
        );
      }
    }
  });
});

/**
 * Real components for integration tests: a Temporal dev server from the venv's CLI, PostgreSQL
 * (database rea_test) and Redis, each test file isolated by its own queue prefix and task queue.
 */
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { Pool } from 'pg';
import { startGpuAgent, type GpuAgent } from '../../src/cluster/gpu-agent';
import { loadConfig, type ReaConfig } from '../../src/config';
import { createLogger } from '../../src/logging';
import { searchAttributes } from '../../src/core/messages';
import { migrate } from '../../src/db/migrate';
import { createPool, ensureDatabase } from '../../src/db/pool';
import { installTemporalRuntime } from '../../src/temporal/runtime';
import { workflowBundleOptions } from '../../src/temporal/bundle';

export const TEST_DATABASE_URL =
  process.env.REA_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/rea_test';

export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}`;
}

export function testConfig(overrides: Record<string, string> = {}): ReaConfig {
  return loadConfig({
    REA_DATABASE_URL: TEST_DATABASE_URL,
    REA_QUEUE_PREFIX: uniqueName('reatest'),
    REA_TASK_QUEUE: uniqueName('rea-tq'),
    REA_LOG_LEVEL: process.env.REA_LOG_LEVEL ?? 'warn',
    // Where the trainers' Python lives on this machine, when it is not the default .venv.
    REA_PYTHON: process.env.REA_PYTHON ?? '',
    ...overrides,
  });
}

export async function testDatabase(): Promise<Pool> {
  await ensureDatabase(TEST_DATABASE_URL);
  const pool = createPool(TEST_DATABASE_URL, 3);
  await migrate(pool, path.join(loadConfig().root, 'migrations'));
  return pool;
}

/**
 * A Temporal dev server with rea's search attributes. `suggestContinueAsNewAt` lowers the history
 * length at which Temporal suggests continue-as-new, so that tests exercise it.
 */
export async function startTemporal(
  opts: { suggestContinueAsNewAt?: number } = {},
): Promise<TestWorkflowEnvironment> {
  installTemporalRuntime(process.env.REA_LOG_LEVEL ?? 'warn');
  const extraArgs = opts.suggestContinueAsNewAt
    ? ['--dynamic-config-value', `limit.historyCount.suggestContinueAsNew=${opts.suggestContinueAsNewAt}`]
    : [];
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: loadConfig().REA_TEMPORAL_CLI },
      searchAttributes: Object.values(searchAttributes),
      extraArgs,
    },
  });
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** Bundling takes seconds: do it once per test process. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ ...workflowBundleOptions(), logger: undefined });
  return bundle;
}

/** Polls `probe` until it returns a value that is not undefined (or throws after `timeoutMs`). */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: Error | undefined;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err as Error;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

export const FIXTURE_MODELS = path.join(loadConfig().root, 'test', 'fixtures', 'models');

/** A real gpu-agent on the test config's queue, with `slots` CPU slots. */
export function startTestAgent(config: ReaConfig, slots = 2): Promise<GpuAgent> {
  return startGpuAgent({
    redisUrl: config.REA_REDIS_URL,
    prefix: config.REA_QUEUE_PREFIX,
    slots: Array.from({ length: slots }, () => ''),
    python: config.REA_PYTHON,
    projectRoot: config.root,
    workDir: config.REA_WORK_DIR,
    log: createLogger('test-agent', 'warn'),
    lockSec: config.REA_POOL_LOCK_SEC,
    databaseUrl: config.REA_DATABASE_URL,
  });
}

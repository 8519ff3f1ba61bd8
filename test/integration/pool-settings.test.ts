/**
 * Workers and gpu-agents on one queue prefix must agree on REA_POOL_LOCK_SEC; one that disagrees is
 * refused before it takes a job or serves a workflow. Real Redis.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startGpuAgent } from '../../src/cluster/gpu-agent';
import {
  claimPoolSettings,
  poolSettingsKey,
  PoolSettingsMismatchError,
  settingsTtlSec,
} from '../../src/cluster/pool-settings';
import { createLogger } from '../../src/logging';
import { startWorker } from '../../src/temporal/worker';
import { testConfig, uniqueName } from '../helpers/stack';

const log = createLogger('test', 'error');

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('pool settings shared through Redis', () => {
  let redis: Redis;
  const url = testConfig().REA_REDIS_URL;

  before(() => {
    redis = new Redis(url, { maxRetriesPerRequest: 3 });
  });
  after(() => redis.disconnect());

  it('lets processes that agree share a prefix, and refuses one that does not, naming both values', async () => {
    const prefix = uniqueName('settings');
    const a = await claimPoolSettings({ redis, prefix, lockSec: 30, who: 'worker 1@a', log });
    const b = await claimPoolSettings({ redis, prefix, lockSec: 30, who: 'gpu-agent b:2', log });
    assert.ok((await redis.ttl(poolSettingsKey(prefix))) > 60);
    await assert.rejects(
      claimPoolSettings({ redis, prefix, lockSec: 6, who: 'gpu-agent c:3', log }),
      (err: unknown) =>
        err instanceof PoolSettingsMismatchError &&
        /REA_POOL_LOCK_SEC is 6 here, but .* on queue prefix ".*" use 30 \(recorded by worker 1@a\)/.test(
          err.message,
        ) &&
        /set REA_POOL_LOCK_SEC=30/.test(err.message),
    );
    // Once every process stopped and the record expired, the setting may change.
    await a.close();
    await b.close();
    await redis.del(poolSettingsKey(prefix));
    const c = await claimPoolSettings({ redis, prefix, lockSec: 6, who: 'gpu-agent c:3', log });
    await c.close();
    // Another prefix is another pool.
    const d = await claimPoolSettings({ redis, prefix: `${prefix}-x`, lockSec: 45, who: 'd', log });
    await d.close();
    await redis.del(poolSettingsKey(prefix), poolSettingsKey(`${prefix}-x`));
  });

  it('keeps the record alive while a process runs, and takes back a damaged one', async () => {
    const prefix = uniqueName('settings');
    await redis.set(poolSettingsKey(prefix), 'not json');
    const g = await claimPoolSettings({ redis, prefix, lockSec: 2, who: 'agent', log });
    try {
      assert.equal(
        (JSON.parse((await redis.get(poolSettingsKey(prefix))) ?? '{}') as { lockSec?: number }).lockSec,
        2,
      );
      await redis.expire(poolSettingsKey(prefix), 3);
      await new Promise((r) => setTimeout(r, 2500));
      assert.ok((await redis.ttl(poolSettingsKey(prefix))) > 3, 'refreshed');
      assert.equal(settingsTtlSec(2), 30);
      // A FLUSHALL (or an expiry during an outage) is repaired by the next refresh.
      await redis.del(poolSettingsKey(prefix));
      await new Promise((r) => setTimeout(r, 2500));
      assert.ok(await redis.exists(poolSettingsKey(prefix)));
    } finally {
      await g.close();
      await redis.del(poolSettingsKey(prefix));
    }
  });

  it('does not fail a start while Redis is unreachable', async () => {
    const down = new Redis(`redis://127.0.0.1:${await closedPort()}`, {
      maxRetriesPerRequest: 1,
      retryStrategy: () => 200,
    });
    down.on('error', () => undefined);
    const g = await claimPoolSettings({
      redis: down,
      prefix: uniqueName('settings'),
      lockSec: 30,
      who: 'w',
      log,
    });
    await g.close();
    down.disconnect();
  });

  it('refuses a gpu-agent and a worker whose REA_POOL_LOCK_SEC disagrees, before they start', async () => {
    const config = testConfig({ REA_POOL_LOCK_SEC: '6' });
    const prefix = config.REA_QUEUE_PREFIX;
    const first = await claimPoolSettings({ redis, prefix, lockSec: 30, who: 'worker 1@a', log });
    try {
      await assert.rejects(
        startGpuAgent({
          redisUrl: url,
          prefix,
          slots: [''],
          python: config.REA_PYTHON,
          projectRoot: config.root,
          workDir: config.REA_WORK_DIR,
          log,
          lockSec: 6,
        }),
        /REA_POOL_LOCK_SEC is 6 here, but .* use 30/,
      );
      // No Temporal server at this address: the worker is refused before it would try to connect.
      await assert.rejects(
        startWorker({ ...config, REA_TEMPORAL_ADDRESS: `127.0.0.1:${await closedPort()}` }, log),
        /REA_POOL_LOCK_SEC is 6 here, but .* use 30/,
      );
      // One that agrees starts (and stops) as before.
      const agent = await startGpuAgent({
        redisUrl: url,
        prefix,
        slots: [''],
        python: config.REA_PYTHON,
        projectRoot: config.root,
        workDir: config.REA_WORK_DIR,
        log,
        lockSec: 30,
      });
      await agent.close();
    } finally {
      await first.close();
      await redis.del(poolSettingsKey(prefix));
    }
  });
});

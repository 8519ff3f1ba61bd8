/**
 * Every worker and gpu-agent on one BullMQ queue prefix must share REA_POOL_LOCK_SEC: the agents'
 * job locks, the supervisors' trainer deadlines and the workers' resubmit grace are all derived from
 * it (see poolTimings), and their order only holds when every process uses the same value. A worker
 * resubmitting a forgotten job after its own short grace while an agent with a long lock still runs
 * the first copy would train the experiment twice.
 *
 * So the value is recorded in Redis (`PREFIX:training:settings`) by the first process on the prefix,
 * kept alive by every process that agrees with it, and refused, with both values named, to a
 * process that does not. It expires `ttlSec` after the last process using it stopped refreshing
 * it, so changing the setting means stopping every worker and agent on the prefix first.
 *
 *   const guard = await claimPoolSettings({ redis, prefix: 'rea', lockSec: 30, who: 'worker 42@host', log });
 *   ...
 *   await guard.close();
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../logging';
import { TRAINING_QUEUE } from './bullmq-pool';

export function poolSettingsKey(prefix: string): string {
  return `${prefix}:${TRAINING_QUEUE}:settings`;
}

/** How long the recorded setting outlives the last process that refreshed it. */
export function settingsTtlSec(lockSec: number): number {
  return Math.max(30, Math.ceil(lockSec * 3));
}

export class PoolSettingsMismatchError extends Error {
  constructor(
    readonly prefix: string,
    readonly mine: number,
    readonly theirs: number,
    readonly setBy: string,
    ttlSec: number,
  ) {
    super(
      `REA_POOL_LOCK_SEC is ${mine} here, but the workers and gpu-agents already on queue prefix "${prefix}" use ${theirs} (recorded by ${setBy}). Every worker and gpu-agent sharing a prefix must use the same value: set REA_POOL_LOCK_SEC=${theirs}, or stop all of them before changing it (the recorded value expires ${ttlSec} s after the last one stops).`,
    );
    this.name = 'PoolSettingsMismatchError';
  }
}

interface Recorded {
  lockSec: number;
  setBy: string;
}

function parseRecorded(raw: string | null): Recorded | undefined {
  if (raw === null) return undefined;
  try {
    const v = JSON.parse(raw) as Partial<Recorded>;
    if (typeof v.lockSec === 'number' && Number.isFinite(v.lockSec))
      return { lockSec: v.lockSec, setBy: typeof v.setBy === 'string' ? v.setBy : 'an unknown process' };
  } catch {
    // Not ours, or damaged: replaced below.
  }
  return undefined;
}

/**
 * Records this process's lockSec for the prefix, or checks it against the recorded one. Returns the
 * recorded value that disagrees, if any.
 */
async function claimOnce(
  redis: Redis,
  prefix: string,
  lockSec: number,
  who: string,
): Promise<Recorded | undefined> {
  const key = poolSettingsKey(prefix);
  const ttl = settingsTtlSec(lockSec);
  const mine = JSON.stringify({ lockSec, setBy: who });
  for (let attempt = 0; attempt < 3; attempt++) {
    if ((await redis.set(key, mine, 'EX', ttl, 'NX')) === 'OK') return undefined;
    const raw = await redis.get(key);
    const recorded = parseRecorded(raw);
    if (raw === null) continue; // expired between the two calls
    if (!recorded) {
      await redis.set(key, mine, 'EX', ttl);
      return undefined;
    }
    if (recorded.lockSec !== lockSec) return recorded;
    await redis.expire(key, ttl);
    return undefined;
  }
  return undefined;
}

export interface PoolSettingsGuard {
  close(): Promise<void>;
}

/**
 * Claims the prefix's setting (throws PoolSettingsMismatchError when another value is recorded) and
 * keeps it alive every `lockSec` seconds until closed. Redis being unreachable at start is not an
 * error here (the refresh claims it later; the pool's own connection reports the outage). A refresh
 * that finds another value (only possible after this process could not reach Redis for the whole
 * TTL) is logged as an error.
 */
export async function claimPoolSettings(opts: {
  redis: Redis;
  prefix: string;
  lockSec: number;
  who: string;
  log: Logger;
}): Promise<PoolSettingsGuard> {
  const { redis, prefix, lockSec, who, log } = opts;
  const ttl = settingsTtlSec(lockSec);
  const clash = await claimOnce(redis, prefix, lockSec, who).catch((err: unknown) => {
    log.warn({ err, prefix }, 'could not record the pool settings in Redis yet; retrying in the background');
    return undefined;
  });
  if (clash) throw new PoolSettingsMismatchError(prefix, lockSec, clash.lockSec, clash.setBy, ttl);
  let closed = false;
  const timer = setInterval(() => {
    claimOnce(redis, prefix, lockSec, who).then(
      (other) => {
        if (other && !closed)
          log.error(
            { err: new PoolSettingsMismatchError(prefix, lockSec, other.lockSec, other.setBy, ttl) },
            'pool settings disagree: stop the processes with the wrong REA_POOL_LOCK_SEC',
          );
      },
      () => undefined, // Redis unreachable: the next tick tries again
    );
  }, lockSec * 1000);
  timer.unref();
  return {
    close() {
      closed = true;
      clearInterval(timer);
      return Promise.resolve();
    },
  };
}

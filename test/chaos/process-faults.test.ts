/**
 * The full chaos suite, process and service faults: real campaigns on the fast trainer (and one on
 * the real tiny-ctr trainer) through kill -9 of the worker, gpu-agents and trainers, restarts of the
 * Temporal dev server (SQLite kept), of PostgreSQL (immediate stop) and of Redis (empty), and Redis
 * FLUSHALL, each at seeded random moments. Run by `npm run test:chaos`; figures go to
 * docs/reliability.md.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ScenarioFigures } from '../helpers/chaos-checks';
import { faultScenario, fastCampaign } from '../helpers/chaos-scenarios';
import { ChaosStack, seededRandom, type Fault } from '../helpers/chaos-stack';

const SEED = Number(process.env.REA_CHAOS_SEED ?? 2025);

function assertClean(f: ScenarioFigures): void {
  assert.deepEqual(
    { lost: f.lost, duplicated: f.duplicated, overruns: f.overruns, problems: f.problems },
    { lost: 0, duplicated: 0, overruns: 0, problems: [] },
    `${f.scenario}: ${f.notes.join('; ')}`,
  );
}

/** `faults` in a seeded random order. */
function shuffled(faults: Fault[], seed: number): Fault[] {
  const rng = seededRandom(seed);
  return faults
    .map((f) => ({ f, k: rng() }))
    .sort((a, b) => a.k - b.k)
    .map((x) => x.f);
}

describe('chaos: process and service faults', () => {
  let stack: ChaosStack;
  before(async () => {
    stack = await ChaosStack.start({ name: 'faults', agents: 2, slots: 3 });
  });
  after(async () => {
    await stack?.stop();
  });

  it('campaigns survive kill -9 of the worker, gpu-agents and trainers at random moments', async () => {
    const f = await faultScenario(stack, {
      scenario: 'kill -9: worker, agents, trainers',
      seed: SEED + 1,
      campaigns: 3,
      input: fastCampaign({ budget: { experiments: 36 } }),
      requireEveryFault: true,
      faults: shuffled(
        [
          'worker-kill',
          'agent-kill',
          'trainer-kill',
          'trainer-kill',
          'agent-kill',
          'trainer-kill',
          'worker-kill',
        ],
        SEED + 1,
      ),
    });
    assertClean(f);
  });

  it('campaigns survive restarts of the Temporal dev server, its SQLite file kept', async () => {
    const f = await faultScenario(stack, {
      scenario: 'Temporal dev server restarts',
      seed: SEED + 2,
      campaigns: 2,
      input: fastCampaign({ budget: { experiments: 28 } }),
      requireEveryFault: true,
      faults: ['temporal-restart', 'temporal-restart'],
    });
    assertClean(f);
  });

  it('campaigns survive PostgreSQL restarts (immediate stop, seconds down)', async () => {
    const f = await faultScenario(stack, {
      scenario: 'PostgreSQL restarts',
      seed: SEED + 3,
      campaigns: 2,
      input: fastCampaign({ budget: { experiments: 24 } }),
      requireEveryFault: true,
      faults: ['postgres-restart', 'postgres-restart'],
      journalMayHaveGaps: true,
    });
    assertClean(f);
  });

  it('campaigns survive Redis FLUSHALL and a Redis restart that comes back empty', async () => {
    const f = await faultScenario(stack, {
      scenario: 'Redis FLUSHALL and restarts',
      seed: SEED + 4,
      campaigns: 2,
      input: fastCampaign({ budget: { experiments: 24 } }),
      requireEveryFault: true,
      faults: ['redis-flushall', 'redis-restart', 'redis-flushall'],
    });
    assertClean(f);
  });

  it('campaigns survive every fault at once, in a random order', async () => {
    const f = await faultScenario(stack, {
      scenario: 'every fault, random order',
      seed: SEED + 5,
      campaigns: 3,
      input: fastCampaign({ budget: { experiments: 44 } }),
      requireEveryFault: true,
      faults: shuffled(
        [
          'worker-kill',
          'agent-kill',
          'trainer-kill',
          'temporal-restart',
          'postgres-restart',
          'redis-flushall',
          'redis-restart',
        ],
        SEED + 5,
      ),
      journalMayHaveGaps: true,
    });
    assertClean(f);
  });

  it('a campaign on the real trainer (tiny-ctr) survives kill -9 of a gpu-agent and of the worker, and a FLUSHALL', async () => {
    const f = await faultScenario(stack, {
      scenario: 'real trainer (tiny-ctr): agent, worker, FLUSHALL',
      seed: SEED + 6,
      campaigns: 1,
      input: fastCampaign({ model: 'tiny-ctr', budget: { experiments: 40 }, parallelism: 2 }),
      faults: ['agent-kill', 'worker-kill', 'redis-flushall'],
      pauseMs: [1500, 4000],
      requireEveryFault: true,
    });
    assertClean(f);
  });
});

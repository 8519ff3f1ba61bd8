/**
 * The full chaos suite, connection and resource faults: real campaigns whose worker and gpu-agents
 * reach PostgreSQL and Redis through TCP proxies (test/helpers/chaos-proxy.ts) that reset every open
 * connection, or refuse new ones for seconds; whose trainers write their run folders on a small tmpfs
 * that fills up; and whose trainers are moved into a memory cgroup too small for their batch, so
 * that the kernel OOM-kills them. Run by `npm run test:chaos`; figures go to docs/reliability.md.
 * Needs root (mount, cgroups), as the suite's PostgreSQL cluster does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ScenarioFigures } from '../helpers/chaos-checks';
import { diskFullScenario, faultScenario, fastCampaign, oomScenario } from '../helpers/chaos-scenarios';
import { ChaosStack, seededRandom, type Fault } from '../helpers/chaos-stack';

const SEED = Number(process.env.REA_CHAOS_SEED ?? 2025);

function assertClean(f: ScenarioFigures): void {
  assert.deepEqual(
    { lost: f.lost, duplicated: f.duplicated, overruns: f.overruns, problems: f.problems },
    { lost: 0, duplicated: 0, overruns: 0, problems: [] },
    `${f.scenario}: ${f.notes.join('; ')}`,
  );
}

/** `n` cuts with `refusals` refusals among them, at seeded places. */
function cutsAndRefusals(cut: Fault, refuse: Fault, n: number, refusals: number, seed: number): Fault[] {
  const rng = seededRandom(seed);
  const faults: Fault[] = Array.from({ length: n }, () => cut);
  for (let i = 0; i < refusals; i++) faults[Math.floor(rng() * n)] = refuse;
  return faults;
}

describe('chaos: connection, disk and memory faults', () => {
  let stack: ChaosStack;
  before(async () => {
    stack = await ChaosStack.start({
      name: 'connections',
      agents: 2,
      slots: 3,
      proxies: true,
      runsDiskMb: 16,
      fastSeconds: 1,
      allocKbPerBatch: 64,
    });
  });
  after(async () => {
    await stack?.stop();
  });

  it('campaigns survive every PostgreSQL connection cut by a proxy, and connections refused for seconds', async () => {
    const f = await faultScenario(stack, {
      scenario: 'PostgreSQL connections cut by a proxy',
      seed: SEED + 7,
      campaigns: 2,
      input: fastCampaign({ budget: { experiments: 64 } }),
      faults: cutsAndRefusals('postgres-cut', 'postgres-refuse', 26, 4, SEED + 7),
      requireEveryFault: true,
      pauseMs: [300, 1500],
      journalMayHaveGaps: true,
    });
    assertClean(f);
  });

  it('campaigns survive every Redis connection cut by a proxy, and connections refused for seconds', async () => {
    const f = await faultScenario(stack, {
      scenario: 'Redis connections cut by a proxy',
      seed: SEED + 8,
      campaigns: 2,
      input: fastCampaign({ budget: { experiments: 56 } }),
      faults: cutsAndRefusals('redis-cut', 'redis-refuse', 26, 4, SEED + 8),
      requireEveryFault: true,
      pauseMs: [300, 1500],
    });
    assertClean(f);
  });

  it('a full disk under the run folder fails the runs that meet it, naming it, and the campaigns go on', async () => {
    const f = await diskFullScenario(stack, {
      scenario: 'full disk under the run folder',
      seed: SEED + 9,
      campaigns: 1,
      input: fastCampaign({ budget: { experiments: 40 } }),
      faults: ['disk-full', 'disk-full', 'disk-full', 'disk-full', 'disk-full'],
      pauseMs: [2000, 5000],
      requireEveryFault: true,
    });
    assertClean(f);
  });

  it('a trainer OOM-killed by the kernel (memory cgroup) is classed oom with evidence, and its batch halved', async () => {
    const f = await oomScenario(stack, {
      scenario: 'trainers OOM-killed (memory cgroup)',
      seed: SEED + 10,
      campaigns: 2,
      input: fastCampaign({ budget: { experiments: 36 } }),
      faults: Array.from({ length: 10 }, (): Fault => 'trainer-oom'),
      pauseMs: [500, 2000],
    });
    assertClean(f);
  });
});

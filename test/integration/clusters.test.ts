/**
 * One campaign, two clusters: the same model spec, switched by its `cluster` field alone, completes
 * on the BullMQ GPU pool and on a real single-node Slurm cluster (scripts/slurm.sh starts it).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Pool } from 'pg';
import type { GpuAgent } from '../../src/cluster/gpu-agent';
import { configProblems, parseModelSpec } from '../../src/core/model-spec';
import type { CampaignResult } from '../../src/core/types';
import { Store } from '../../src/db/store';
import { createLogger } from '../../src/logging';
import { startCampaign } from '../../src/temporal/client';
import { startWorker, type RunningWorker } from '../../src/temporal/worker';
import {
  FIXTURE_MODELS,
  startTemporal,
  startTestAgent,
  testConfig,
  testDatabase,
  uniqueName,
  workflowBundle,
} from '../helpers/stack';

describe('the same campaign on the GPU pool and on Slurm', () => {
  let env: TestWorkflowEnvironment;
  let pool: Pool;
  let worker: RunningWorker;
  let agent: GpuAgent;
  const models = mkdtempSync(path.join(tmpdir(), 'rea-models-'));
  const tiny = JSON.parse(readFileSync(path.join(FIXTURE_MODELS, 'tiny-ctr.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const onPool = { ...tiny, name: 'tiny-pool', cluster: { adapter: 'bullmq' } };
  const onSlurm = { ...tiny, name: 'tiny-slurm', cluster: { adapter: 'slurm', gpus: 'none' } };
  let config: ReturnType<typeof testConfig>;

  before(async () => {
    const root = testConfig().root;
    execFileSync(path.join(root, 'scripts', 'slurm.sh'), { stdio: 'pipe', timeout: 600_000 });
    writeFileSync(path.join(models, 'tiny-pool.json'), JSON.stringify(onPool));
    writeFileSync(path.join(models, 'tiny-slurm.json'), JSON.stringify(onSlurm));
    env = await startTemporal();
    pool = await testDatabase();
    config = testConfig({ REA_TEMPORAL_ADDRESS: env.address, REA_MODELS_DIR: models });
    worker = await startWorker(config, createLogger('test', 'warn'), {
      workflowBundle: await workflowBundle(),
    });
    agent = await startTestAgent(config, 1);
  });

  after(async () => {
    await agent?.close();
    await worker?.shutdown();
    await pool?.end();
    await env?.teardown();
  });

  it('differs in one field only', () => {
    const differing = Object.keys(onPool).filter(
      (k) =>
        k !== 'name' &&
        JSON.stringify(onPool[k as keyof typeof onPool]) !==
          JSON.stringify(onSlurm[k as keyof typeof onSlurm]),
    );
    assert.deepEqual(differing, ['cluster']);
  });

  it('completes on both, every experiment recorded once with a valid config', async () => {
    const input = {
      budget: { experiments: 12 },
      parallelism: 1,
      replicates: 2,
      slateSize: 3,
      eta: 3,
      refinements: 1,
      pollIntervalSec: 2,
    };
    const [a, b] = await Promise.all(
      ['tiny-pool', 'tiny-slurm'].map(async (model) => {
        const handle = await startCampaign(env.client, config, { ...input, model }, uniqueName(model));
        return handle.result();
      }),
    );
    for (const result of [a, b] as CampaignResult[]) {
      assert.equal(result.status, 'completed', result.reason);
      const rows = await new Store(pool).experiments(result.campaignId);
      assert.equal(rows.length, result.experiments.total);
      assert.equal(new Set(rows.map((r) => r.id)).size, rows.length);
      assert.ok(
        rows.every((r) => r.status === 'succeeded'),
        JSON.stringify(rows.map((r) => [r.id, r.status, r.failure_class])),
      );
      const spec = parseModelSpec(result.model === 'tiny-pool' ? onPool : onSlurm);
      for (const r of rows) assert.deepEqual(configProblems(spec, r.config), []);
    }
    // One Slurm job per Slurm experiment: the job name is the experiment id.
    const slurmRows = await new Store(pool).experiments((b as CampaignResult).campaignId);
    const names = execFileSync('squeue', ['--noheader', '--states=all', '--format=%j'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.trim())
      .filter((n) => n.startsWith((b as CampaignResult).campaignId));
    assert.equal(new Set(names).size, names.length, 'no experiment submitted twice');
    assert.ok(names.length <= slurmRows.length);
  });
});

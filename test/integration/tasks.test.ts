/**
 * Every example task in models/ trains from its ModelSpec through rea's cluster adapter (the BullMQ
 * GPU pool and a real gpu-agent), at the spec's low fidelity and baseline config.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { trainingJob } from '../../src/cluster/adapter';
import { BullmqPool } from '../../src/cluster/bullmq-pool';
import type { GpuAgent } from '../../src/cluster/gpu-agent';
import { baselineConfig, parseModelSpec } from '../../src/core/model-spec';
import { testConfig, uniqueName, waitFor, startTestAgent } from '../helpers/stack';

const config = testConfig();
const specs = readdirSync(config.REA_MODELS_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => parseModelSpec(JSON.parse(readFileSync(path.join(config.REA_MODELS_DIR, f), 'utf8'))));

describe('example tasks through the GPU pool', () => {
  let agent: GpuAgent;
  let pool: BullmqPool;

  before(async () => {
    pool = new BullmqPool({ redisUrl: config.REA_REDIS_URL, prefix: config.REA_QUEUE_PREFIX });
    agent = await startTestAgent(config, 2);
  });

  after(async () => {
    await agent?.close();
    await pool?.close();
  });

  it('ships the example tasks', () => {
    assert.deepEqual(specs.map((s) => s.name).sort(), [
      'fm-movielens',
      'fm-null',
      'fm-planted',
      'fm-synthetic',
      'fm-synthetic-hard',
      'gbdt-movielens',
      'gbdt-synthetic',
      'movielens-ctr',
      'obd-ctr',
      'synthetic-ctr',
      'synthetic-ctr-hard',
    ]);
  });

  for (const spec of specs) {
    it(`trains ${spec.name} at low fidelity from its spec`, async () => {
      const job = trainingJob(spec, {
        experimentId: uniqueName(`task-${spec.name}`),
        campaignId: 'tasks-test',
        config: baselineConfig(spec),
        fidelity: spec.fidelity.low,
        seed: 0,
      });
      assert.deepEqual(await pool.submit(job), { jobId: job.experimentId, created: true });
      assert.deepEqual(
        await pool.submit(job),
        { jobId: job.experimentId, created: false },
        'submit is idempotent',
      );
      const status = await waitFor(`${spec.name} to finish`, async () => {
        const s = await pool.status(job.experimentId);
        return s.state === 'finished' ? s : undefined;
      });
      assert.equal(status.outcome.status, 'succeeded', JSON.stringify(status.outcome));
      if (status.outcome.status !== 'succeeded') return;
      const { metrics } = status.outcome;
      assert.ok(Number.isFinite(metrics.ne) && Number.isFinite(metrics.auc), JSON.stringify(metrics));
      const dataset = spec.fixed.dataset as { name?: string } | undefined;
      if (dataset?.name === 'synthetic') {
        assert.ok(
          (metrics.bayes_ne as number) < (metrics.ne as number),
          'no model beats the Bayes-optimal NE',
        );
      } else {
        assert.equal(metrics.bayes_ne, undefined, 'real data has no known Bayes limit');
      }
      assert.ok((await pool.logs(job.experimentId)).length > 0, 'the log tail reaches rea');
    });
  }
});

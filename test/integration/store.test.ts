/** The schema: migrations apply to an empty database, then again without change; writes are idempotent. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Pool } from 'pg';
import { loadConfig } from '../../src/config';
import { migrate, readMigrations } from '../../src/db/migrate';
import { createPool, ensureDatabase } from '../../src/db/pool';
import { Store } from '../../src/db/store';
import { TEST_DATABASE_URL } from '../helpers/stack';

const url = `${TEST_DATABASE_URL}_schema_${process.pid}`;
const dir = path.join(loadConfig().root, 'migrations');

describe('schema and migrations', () => {
  let pool: Pool;
  before(async () => {
    await ensureDatabase(url);
    pool = createPool(url, 2);
  });
  after(async () => {
    await pool?.end();
    const admin = createPool(url.replace(/\/[^/]+$/, '/postgres'), 1);
    await admin.query(`DROP DATABASE IF EXISTS "${url.split('/').pop()}" WITH (FORCE)`);
    await admin.end();
  });

  const schema = async () =>
    (
      await pool.query<{ t: string }>(
        `SELECT table_name || '.' || column_name || ':' || data_type AS t FROM information_schema.columns
         WHERE table_schema = 'public' ORDER BY 1`,
      )
    ).rows.map((r) => r.t);

  it('applies every migration to an empty database, then nothing the second time', async () => {
    const applied = await migrate(pool, dir);
    assert.deepEqual(
      applied,
      readMigrations(dir).map((m) => m.version),
    );
    const first = await schema();
    for (const table of [
      'campaigns',
      'experiments',
      'hypotheses',
      'knowledge_cards',
      'llm_calls',
      'insights',
      'job_events',
    ])
      assert.ok(
        first.some((c) => c.startsWith(`${table}.`)),
        `table ${table}`,
      );
    for (const view of ['campaign_leaderboard', 'knob_effects', 'campaign_costs', 'experiment_metrics'])
      assert.ok(
        first.some((c) => c.startsWith(`${view}.`)),
        `view ${view}`,
      );
    assert.deepEqual(await migrate(pool, dir), []);
    assert.deepEqual(await schema(), first);
  });

  it('records a hypothesis once, however often a retried activity writes it', async () => {
    const store = new Store(pool);
    await store.recordCampaignStarted({ id: 'c1', firstRunId: 'r1', model: 'm', input: {} });
    const h = { id: 'lr=0.1', source: 'llm' as const, rationale: 'first', delta: { lr: 0.1 } };
    await store.recordHypotheses('c1', [h], 'slate');
    await store.recordHypotheses('c1', [{ ...h, rationale: 'again' }], 'slate');
    const rows = await pool.query<{ rationale: string }>(
      'SELECT rationale FROM hypotheses WHERE campaign_id = $1',
      ['c1'],
    );
    assert.deepEqual(
      rows.rows.map((r) => r.rationale),
      ['first'],
    );
  });
});

/**
 * Campaign reports from the real results store: a short campaign runs to completion on real
 * components (Temporal dev server, PostgreSQL, Redis, a gpu-agent and the PyTorch trainer on the
 * tiny-ctr fixture), then its report is written from PostgreSQL alone.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Pool } from 'pg';
import type { GpuAgent } from '../../src/cluster/gpu-agent';
import type { CampaignInput } from '../../src/core/campaign-input';
import type { CampaignResult } from '../../src/core/types';
import { loadConfig } from '../../src/config';
import { Store } from '../../src/db/store';
import { createLogger } from '../../src/logging';
import { UnknownCampaignError, writeReport } from '../../src/report';
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
import { parseXml } from '../helpers/xml';

describe('campaign reports from PostgreSQL', () => {
  let env: TestWorkflowEnvironment;
  let pool: Pool;
  let worker: RunningWorker;
  let agent: GpuAgent;
  let outDir: string;
  let result: CampaignResult;

  before(async () => {
    env = await startTemporal();
    pool = await testDatabase();
    const config = testConfig({
      REA_TEMPORAL_ADDRESS: env.address,
      REA_MODELS_DIR: FIXTURE_MODELS,
      // The same trainer interpreter as the rest of this process (REA_PYTHON, else the project's venv).
      REA_PYTHON: loadConfig().REA_PYTHON,
    });
    worker = await startWorker(config, createLogger('test', 'warn'), {
      workflowBundle: await workflowBundle(),
    });
    agent = await startTestAgent(config, 2);
    outDir = await mkdtemp(path.join(tmpdir(), 'rea-report-'));

    // A small campaign, approval not required, sized so that the validation share (half of 20)
    // pays for the screen, the mid-fidelity baseline and the survivor's replicates.
    const input: CampaignInput = {
      model: 'tiny-ctr',
      budget: { experiments: 20 },
      parallelism: 2,
      replicates: 2,
      slateSize: 3,
      eta: 3,
      refinements: 1,
      pollIntervalSec: 5,
    };
    const handle = await startCampaign(env.client, config, input, uniqueName('report'));
    result = await handle.result();
  });

  after(async () => {
    await agent?.close();
    await worker?.shutdown();
    await pool?.end();
    await env?.teardown();
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  it('writes <id>.md and <id>.html that name every experiment and hypothesis, with valid SVG', async () => {
    assert.equal(result.status, 'completed');
    const paths = await writeReport(pool, result.campaignId, outDir);
    assert.equal(paths.markdown, path.join(outDir, `${result.campaignId}.md`));
    assert.equal(paths.html, path.join(outDir, `${result.campaignId}.html`));
    const md = await readFile(paths.markdown, 'utf8');
    const html = await readFile(paths.html, 'utf8');

    const rows = await new Store(pool).experiments(result.campaignId);
    assert.equal(rows.length, result.experiments.total);
    assert.ok(rows.length >= 6, `only ${rows.length} experiments ran`);
    const metricSvg = await readFile(paths.charts[0] as string, 'utf8');
    for (const row of rows) {
      assert.ok(html.includes(row.id), `the HTML report names experiment ${row.id}`);
      assert.ok(metricSvg.includes(row.id), `the metric chart names experiment ${row.id}`);
      assert.ok(html.includes(row.hypothesis_id), `the HTML report names hypothesis ${row.hypothesis_id}`);
    }
    // The markdown names each measured candidate in its leaderboard (at most ten) and the final config.
    const measured = new Set(
      rows.filter((r) => r.role === 'candidate' && r.status === 'succeeded').map((r) => r.hypothesis_id),
    );
    if (measured.size <= 10) for (const id of measured) assert.ok(md.includes(`\`${id}\``), id);
    assert.ok(md.includes(`# Campaign ${result.campaignId}: tiny-ctr`));
    assert.ok(md.includes(`| **Status** | completed |`));
    assert.match(md, result.best.hypothesisId === 'baseline' ? /Nothing beat the baseline/ : /95% CI/);

    const svgs = [...html.matchAll(/<svg[\s\S]*?<\/svg>/g)].map((m) => m[0]);
    assert.equal(svgs.length, 3, 'three inline charts');
    for (const svg of [...svgs, ...(await Promise.all(paths.charts.map((p) => readFile(p, 'utf8'))))]) {
      const root = parseXml(svg);
      assert.equal(root.name, 'svg');
      assert.equal(root.attributes.xmlns, 'http://www.w3.org/2000/svg');
      assert.ok(root.attributes.viewBox);
    }
    for (const chart of paths.charts) assert.ok(md.includes(`](${path.basename(chart)})`), chart);
    assert.ok(!/<script/i.test(html));
  });

  it('the campaign wrote its own report when it ended, and named it in its result', async () => {
    assert.ok(result.report, 'the result names the report');
    const html = await readFile(result.report.html, 'utf8');
    assert.ok(html.includes(result.campaignId));
    const stored = await new Store(pool).campaign(result.campaignId);
    assert.deepEqual(stored?.result?.report, result.report);
  });

  it('answers the analyst views: leaderboard, knob effects, costs, hypotheses', async () => {
    const id = result.campaignId;
    const costs = await pool.query<{ experiments: string; gpu_hours: number }>(
      'SELECT experiments, gpu_hours FROM campaign_costs WHERE campaign_id = $1',
      [id],
    );
    assert.equal(Number(costs.rows[0]?.experiments), result.experiments.total);
    assert.ok(Math.abs(Number(costs.rows[0]?.gpu_hours) - result.budget.used.gpuHours) < 1e-9);
    const board = await pool.query<{ hypothesis_id: string; runs: string }>(
      'SELECT hypothesis_id, runs FROM campaign_leaderboard WHERE campaign_id = $1',
      [id],
    );
    const runs = board.rows.reduce((n, r) => n + Number(r.runs), 0);
    assert.equal(runs, result.experiments.succeeded);
    const hypotheses = await pool.query<{ id: string; proposed_for: string }>(
      'SELECT id, proposed_for FROM hypotheses WHERE campaign_id = $1',
      [id],
    );
    assert.ok(hypotheses.rows.some((h) => h.proposed_for === 'slate'));
    const ran = new Set((await new Store(pool).experiments(id)).map((e) => e.hypothesis_id));
    for (const h of ran)
      assert.ok(
        hypotheses.rows.some((r) => r.id === h),
        `${h} recorded as a hypothesis`,
      );
    // The view parses; a single-knob change of this campaign shows up when one was measured.
    await pool.query('SELECT * FROM knob_effects LIMIT 5');
  });

  it('rewrites a finished campaign’s report byte for byte', async () => {
    const first = await writeReport(pool, result.campaignId, outDir);
    const before = await readFile(first.html, 'utf8');
    const second = await writeReport(pool, result.campaignId, outDir);
    assert.equal(await readFile(second.html, 'utf8'), before);
  });

  it('refuses an unknown campaign id, naming it, and writes nothing', async () => {
    const id = uniqueName('nosuch');
    await assert.rejects(
      writeReport(pool, id, outDir),
      (e: unknown) => e instanceof UnknownCampaignError && e.message.includes(`"${id}"`),
    );
    await assert.rejects(readFile(path.join(outDir, `${id}.md`)), { code: 'ENOENT' });
  });

  it('refuses a campaign id that would escape the output folder', async () => {
    await assert.rejects(writeReport(pool, '../etc/passwd', outDir), /cannot name a report file/);
  });
});

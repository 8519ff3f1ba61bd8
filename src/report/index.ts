/**
 * Campaign reports: markdown and a self-contained HTML file with inline SVG charts, written from
 * the results store (PostgreSQL) for a finished or a running campaign.
 *
 *   const paths = await writeReport(pool, 'ctr-1', 'reports');
 *   // → { markdown: 'reports/ctr-1.md', html: 'reports/ctr-1.html', charts: ['reports/ctr-1.metric.svg', ...] }
 *
 * Public API (everything else in src/report/ is internal):
 * - `writeReport(pool, campaignId, outDir, options?)`: reads the campaign and writes its report files.
 *   Refuses an unknown campaign id with `UnknownCampaignError`. `options.metric` names the primary
 *   metric of a campaign that has no result yet (a finished one's result names its own).
 * - `loadReportData(pool, campaignId, metric?)`: the only I/O: the campaign row and its experiments.
 * - `buildReport(data)`: what the report says, worked out once (pure).
 * - `renderMarkdown(report, chartFiles?)`, `renderHtml(report)`: the two renderings (pure).
 *
 * Text from users, LLMs and logs (rationales, error messages, abort reasons) is escaped in both
 * formats; the HTML has no scripts and references no URL.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Pool } from 'pg';
import { readModelSpec } from '../models';
import { loadReportData, type PrimaryMetric } from './data';
import { renderHtml } from './html';
import { renderMarkdown } from './markdown';
import { buildReport } from './summary';

export { loadReportData, UnknownCampaignError, type PrimaryMetric, type ReportData } from './data';
export { buildReport, type CampaignReport } from './summary';
export { renderMarkdown } from './markdown';
export { renderHtml } from './html';

export interface ReportPaths {
  markdown: string;
  html: string;
  /** The charts as SVG files, which the markdown links to: metric, budget, sources. */
  charts: string[];
}

/** Campaign ids are workflow ids that the campaign workflow accepted: safe as file names. */
const SAFE_ID = /^[A-Za-z0-9._-]{1,150}$/;

/**
 * Writes `<outDir>/<campaignId>.md` and `.html` (and the markdown's SVG charts beside them), each
 * atomically: a reader never sees half a report, and a rewrite replaces the old one.
 */
export async function writeReport(
  pool: Pool,
  campaignId: string,
  outDir: string,
  options: { metric?: PrimaryMetric } = {},
): Promise<ReportPaths> {
  if (!SAFE_ID.test(campaignId) || campaignId === '.' || campaignId === '..') {
    throw new Error(
      `campaign id "${campaignId}" cannot name a report file (expected A-Z, a-z, 0-9, . _ -); pass the campaign's workflow id`,
    );
  }
  const report = buildReport(await loadReportData(pool, campaignId, options.metric));
  const file = (suffix: string) => path.join(outDir, `${campaignId}${suffix}`);
  const chartNames = {
    metric: `${campaignId}.metric.svg`,
    budget: `${campaignId}.budget.svg`,
    sources: `${campaignId}.sources.svg`,
  };
  await mkdir(outDir, { recursive: true });
  const charts = [
    await writeAtomically(path.join(outDir, chartNames.metric), report.charts.metric),
    await writeAtomically(path.join(outDir, chartNames.budget), report.charts.budget),
    await writeAtomically(path.join(outDir, chartNames.sources), report.charts.sources),
  ];
  return {
    markdown: await writeAtomically(file('.md'), renderMarkdown(report, chartNames)),
    html: await writeAtomically(file('.html'), renderHtml(report)),
    charts,
  };
}

async function writeAtomically(target: string, content: string): Promise<string> {
  const temporary = `${target}.${process.pid}.tmp`;
  await writeFile(temporary, content, 'utf8');
  await rename(temporary, target);
  return target;
}

/**
 * `writeReport` with the primary metric's name and direction from the campaign's model spec in
 * `modelsDir` (without them when the spec cannot be read). An unknown campaign throws
 * UnknownCampaignError, as `writeReport` does.
 */
export async function writeCampaignReport(
  pool: Pool,
  campaignId: string,
  outDir: string,
  modelsDir: string,
): Promise<ReportPaths> {
  const { rows } = await pool.query<{ model: string }>('SELECT model FROM campaigns WHERE id = $1', [
    campaignId,
  ]);
  const model = rows[0]?.model;
  const spec = model ? await readModelSpec(modelsDir, model).catch(() => undefined) : undefined;
  return writeReport(
    pool,
    campaignId,
    outDir,
    spec ? { metric: { name: spec.metric.primary, direction: spec.metric.direction } } : {},
  );
}

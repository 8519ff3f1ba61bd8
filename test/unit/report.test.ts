/**
 * Campaign reports on synthetic records (no database): what they say, that their SVG is well-formed,
 * and that untrusted text cannot inject markup.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CampaignResult } from '../../src/core/types';
import type { ReportData, ReportExperiment } from '../../src/report/data';
import { renderHtml } from '../../src/report/html';
import { escapeMarkdown, renderMarkdown } from '../../src/report/markdown';
import { buildReport, notRunText } from '../../src/report/summary';
import {
  bestSoFar,
  budgetChart,
  metricChart,
  niceTicks,
  sourceChart,
  tickLabels,
} from '../../src/report/svg';
import { elements, parseXml, type XmlElement } from '../helpers/xml';

const HOSTILE =
  '<script>alert("pwned")</script> & <img src=x onerror=alert(1)> [link](http://evil.example) | `x`';
const BASELINE = { lr: 0.01, batch_size: 256, optimizer: 'adam', mlp_width: 64 };

let clock = Date.parse('2026-11-20T10:00:00.000Z');
function experiment(index: number, e: Partial<ReportExperiment>): ReportExperiment {
  clock += 60_000;
  const delta = e.delta ?? {};
  return {
    id: `camp.e${String(index).padStart(4, '0')}`,
    phase: 'validation',
    role: 'candidate',
    hypothesisId: 'baseline',
    source: 'baseline',
    rationale: 'the model as it is today',
    delta,
    config: { ...BASELINE, ...delta },
    fidelity: 40,
    seed: 0,
    attempt: 1,
    costGpuHours: 0.25,
    status: 'succeeded',
    primaryValue: 0.7,
    metrics: { ne: e.primaryValue ?? 0.7, auc: 0.75 },
    failureClass: null,
    error: null,
    runbookAction: null,
    wallTimeSec: 30,
    createdAt: new Date(clock).toISOString(),
    finishedAt: new Date(clock + 30_000).toISOString(),
    ...e,
  };
}

const base = (i: number, phase: ReportExperiment['phase'], fidelity: number, seed: number, value: number) =>
  experiment(i, { phase, role: 'baseline', fidelity, seed, primaryValue: value });
const cand = (
  i: number,
  id: string,
  delta: ReportExperiment['delta'],
  e: Partial<ReportExperiment> = {},
): ReportExperiment =>
  experiment(i, { hypothesisId: id, delta, source: 'planner', rationale: `try ${id}`, ...e });

/** A finished three-phase campaign whose best hypothesis (lr=0.03) won at full fidelity. */
function finishedCampaign(): ReportData {
  const experiments = [
    base(0, 'preflight', 40, 0, 0.72),
    base(1, 'preflight', 40, 1, 0.721),
    cand(2, 'lr=0.03', { lr: 0.03 }, { primaryValue: 0.7, source: 'llm', rationale: HOSTILE }),
    cand(3, 'mlp_width=128', { mlp_width: 128 }, { primaryValue: 0.715 }),
    cand(
      4,
      'batch_size=4096',
      { batch_size: 4096 },
      {
        status: 'failed',
        primaryValue: null,
        metrics: null,
        failureClass: 'oom',
        error: 'CUDA out of memory <tried 12 GiB>',
        runbookAction: 'retry: out of memory: batch_size 4096 → 2048',
      },
    ),
    cand(5, 'batch_size=2048', { batch_size: 2048 }, { attempt: 2, primaryValue: 0.73 }),
    cand(
      6,
      'optimizer=sgd',
      { optimizer: 'sgd' },
      { primaryValue: 0.74, source: 'human', rationale: 'an engineer asked' },
    ),
    base(7, 'validation', 80, 0, 0.69),
    base(8, 'validation', 80, 1, 0.691),
    cand(9, 'lr=0.03', { lr: 0.03 }, { fidelity: 80, primaryValue: 0.68, source: 'llm', rationale: HOSTILE }),
    cand(
      10,
      'lr=0.03',
      { lr: 0.03 },
      { fidelity: 80, seed: 1, primaryValue: 0.681, source: 'llm', rationale: HOSTILE },
    ),
    base(11, 'exploitation', 160, 0, 0.67),
    base(12, 'exploitation', 160, 1, 0.671),
    cand(
      13,
      'lr=0.03',
      { lr: 0.03 },
      { phase: 'exploitation', fidelity: 160, primaryValue: 0.66, source: 'llm', rationale: HOSTILE },
    ),
    cand(
      14,
      'lr=0.03',
      { lr: 0.03 },
      {
        phase: 'exploitation',
        fidelity: 160,
        seed: 1,
        primaryValue: 0.661,
        source: 'llm',
        rationale: HOSTILE,
      },
    ),
    cand(
      15,
      'lr=0.045',
      { lr: 0.045 },
      {
        phase: 'exploitation',
        fidelity: 160,
        status: 'cancelled',
        primaryValue: null,
        failureClass: 'cancelled',
      },
    ),
  ];
  const result: CampaignResult = {
    campaignId: 'camp',
    model: 'tiny-ctr',
    status: 'completed',
    metric: 'ne',
    direction: 'minimize',
    fidelity: 160,
    baseline: { value: 0.6705, replicates: 2 },
    best: {
      hypothesisId: 'lr=0.03',
      source: 'llm',
      config: { ...BASELINE, lr: 0.03 },
      delta: { lr: 0.03 },
      value: 0.6605,
      replicates: 2,
    },
    gainPct: 1.49,
    gainCi: { low: 1.2, high: 1.8 },
    significant: true,
    wins: [{ hypothesisId: 'lr=0.03', gainPct: 1.52, phase: 'validation' }],
    experiments: { total: 16, succeeded: 14, failed: 1, cancelled: 1, retried: 1, skipped: 0 },
    budget: {
      limit: { experiments: 20 },
      used: { experiments: 16, gpuHours: 4 },
      byPhase: {
        preflight: { experiments: 2, gpuHours: 0.5 },
        validation: { experiments: 9, gpuHours: 2.25 },
        exploitation: { experiments: 5, gpuHours: 1.25 },
      },
    },
    split: { validation: 0.5, combination: 0.2, exploitation: 0.3 },
    failures: [
      {
        experimentId: 'camp.e0004',
        hypothesisId: 'batch_size=4096',
        failureClass: 'oom',
        action: 'retry: out of memory: batch_size 4096 → 2048',
      },
      {
        experimentId: 'camp.e0015',
        hypothesisId: 'lr=0.045',
        failureClass: 'cancelled',
        action: 'none: cancelled',
      },
    ],
  };
  return {
    campaign: {
      id: 'camp',
      model: 'tiny-ctr',
      status: 'completed',
      phase: 'done',
      input: { model: 'tiny-ctr', budget: { experiments: 20 } },
      plan: {
        slate: [{ id: 'lr=0.03', rationale: HOSTILE }],
        estimate: { experiments: 18, gpuHours: 4.5 },
        strategy: ['baseline × 2 replicates at 40 (noise)', 'screen 4 hypotheses at 40'],
        split: { validation: 0.5, combination: 0.2, exploitation: 0.3 },
        fidelity: { low: 40, mid: 80, high: 160 },
        round: 1,
      },
      result,
      error: null,
      startedAt: '2026-11-20T10:00:00.000Z',
      finishedAt: '2026-11-20T10:30:05.000Z',
    },
    experiments,
    baselineConfig: BASELINE,
    metric: { name: 'ne', direction: 'minimize' },
    readAt: '2026-11-21T00:00:00.000Z',
  };
}

/** A campaign that has just started: no experiment, no plan, no result. */
function emptyCampaign(): ReportData {
  return {
    campaign: {
      id: 'fresh',
      model: 'tiny-ctr',
      status: 'running',
      phase: 'preflight',
      input: { model: 'tiny-ctr', budget: { gpuHours: 2 } },
      plan: null,
      result: null,
      error: null,
      startedAt: '2026-11-20T10:00:00.000Z',
      finishedAt: null,
    },
    experiments: [],
    baselineConfig: undefined,
    metric: undefined,
    readAt: '2026-11-20T10:00:42.000Z',
  };
}

/** Asserts `svg` is a well-formed standalone SVG document; returns its root. */
function assertValidSvg(svg: string): XmlElement {
  const root = parseXml(svg);
  assert.equal(root.name, 'svg');
  assert.equal(root.attributes.xmlns, 'http://www.w3.org/2000/svg');
  assert.match(root.attributes.viewBox ?? '', /^0 0 \d+ \d+$/);
  return root;
}

/** The inline <svg> elements of an HTML document. */
function inlineSvgs(html: string): string[] {
  return [...html.matchAll(/<svg[\s\S]*?<\/svg>/g)].map((m) => m[0]);
}

/** The y coordinates along the best-so-far path, in drawing order. */
function bestSoFarYs(svg: string): number[] {
  const path = elements(parseXml(svg), 'path').find((p) => p.attributes.class === 'best-so-far');
  assert.ok(path, 'the chart has a best-so-far line');
  const d = path.attributes.d ?? '';
  const first = /^M[\d.]+ ([\d.]+)/.exec(d);
  return [Number(first?.[1]), ...[...d.matchAll(/V([\d.-]+)/g)].map((m) => Number(m[1]))];
}

describe('campaign report: SVG charts', () => {
  it('are well-formed SVG documents with a namespace and a viewBox, for a finished campaign', () => {
    const { charts } = buildReport(finishedCampaign());
    for (const svg of [charts.metric, charts.budget, charts.sources]) assertValidSvg(svg);
  });

  it('escape every text, so a hostile title stays text', () => {
    const svg = metricChart({
      metric: 'ne<&>"\'',
      direction: 'minimize',
      runs: [
        { phase: 'validation', baseline: false, value: 0.7, title: HOSTILE },
        { phase: '<phase>', baseline: true, value: null, title: HOSTILE },
      ],
    });
    const root = assertValidSvg(svg);
    assert.ok(elements(root, 'title').some((t) => t.text === HOSTILE));
    assert.ok(!svg.includes('<script'));
    assert.equal(elements(root, 'script').length, 0);
  });

  it('draw the best-so-far line of a metric to minimize as a running minimum: never rising', () => {
    const values = [0.72, 0.75, 0.7, 0.71, 0.69, 0.9, 0.69, 0.68];
    assert.deepEqual(bestSoFar(values, 'minimize'), [0.72, 0.72, 0.7, 0.7, 0.69, 0.69, 0.69, 0.68]);
    const svg = metricChart({
      metric: 'ne',
      direction: 'minimize',
      runs: values.map((value, i) => ({
        phase: i < 2 ? 'preflight' : 'validation',
        baseline: i < 2,
        value,
        title: `r${i}`,
      })),
    });
    // SVG y grows downwards: a metric that never rises is a line whose y never decreases.
    const ys = bestSoFarYs(svg);
    assert.equal(ys.length, values.length);
    for (let i = 1; i < ys.length; i++)
      assert.ok((ys[i] as number) >= (ys[i - 1] as number), `rises at ${i}: ${ys.join(' ')}`);
  });

  it('draw the best-so-far line of a metric to maximize as a running maximum: never falling', () => {
    assert.deepEqual(bestSoFar([0.7, 0.69, 0.75, 0.74], 'maximize'), [0.7, 0.7, 0.75, 0.75]);
    const svg = metricChart({
      metric: 'auc',
      direction: 'maximize',
      runs: [0.7, 0.69, 0.75, 0.74].map((value) => ({
        phase: 'validation',
        baseline: false,
        value,
        title: '',
      })),
    });
    const ys = bestSoFarYs(svg);
    for (let i = 1; i < ys.length; i++) assert.ok((ys[i] as number) <= (ys[i - 1] as number));
  });

  it('mark failures on the x axis and baseline runs with hollow markers', () => {
    const root = assertValidSvg(buildReport(finishedCampaign()).charts.metric);
    const groups = elements(root, 'g');
    assert.equal(groups.filter((g) => g.attributes.class === 'failure').length, 2);
    const baselines = groups.filter((g) => g.attributes.class === 'run baseline');
    assert.equal(baselines.length, 6);
    for (const g of baselines)
      assert.equal(g.children.find((c) => c.name !== 'title')?.attributes.fill, '#ffffff');
  });

  it('shade one band per run of a phase', () => {
    const root = assertValidSvg(buildReport(finishedCampaign()).charts.metric);
    const bands = elements(root, 'rect').filter((r) => r.attributes.class === 'phase-band');
    assert.deepEqual(
      bands.map((b) => b.children[0]?.text.split(':')[0]),
      ['preflight', 'validation', 'exploitation'],
    );
  });

  it('draw the budget limit, and group wins and losses by every source', () => {
    const report = buildReport(finishedCampaign());
    const budget = assertValidSvg(report.charts.budget);
    assert.equal(elements(budget, 'line').filter((l) => l.attributes.class === 'limit').length, 1);
    assert.ok(elements(budget, 'text').some((t) => t.text === 'GPU-hours: 4 GPU-h used (no limit)'));
    const sources = assertValidSvg(report.charts.sources);
    const labels = elements(sources, 'text').map((t) => t.text);
    for (const s of ['planner', 'llm', 'research', 'history', 'human']) assert.ok(labels.includes(s), s);
    const won = elements(sources, 'rect').filter((r) => r.attributes.class === 'bar won');
    assert.equal(won.length, 5);
    assert.equal(won.find((r) => r.children[0]?.text.startsWith('llm'))?.children[0]?.text, 'llm: 1 won');
  });

  it('render empty inputs without throwing, and still well-formed', () => {
    assertValidSvg(metricChart({ metric: 'ne', runs: [] }));
    assertValidSvg(budgetChart({ launches: [], limit: {} }));
    assertValidSvg(sourceChart([]));
  });

  it('put round ticks on the axes, with as many decimals as the step needs', () => {
    assert.deepEqual(niceTicks(0.66, 0.74, 5), [0.66, 0.68, 0.7, 0.72, 0.74]);
    assert.deepEqual(tickLabels([0.66, 0.68, 0.7]), ['0.66', '0.68', '0.70']);
    assert.deepEqual(niceTicks(0, 7, 5, true), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(niceTicks(0, 40, 5, true), [0, 10, 20, 30, 40]);
    assert.deepEqual(tickLabels(niceTicks(0.7, 0.7)), tickLabels(niceTicks(0.7, 0.7)));
    assert.ok(niceTicks(0.7, 0.7).length >= 2, 'a flat series still gets an axis');
  });
});

describe('campaign report: content', () => {
  it('says the gain with its interval, significance, fidelity and replicates', () => {
    const [gain, measured] = buildReport(finishedCampaign()).headline;
    assert.match(
      gain ?? '',
      /lr=0\.03 \(llm\) improves ne by \+1\.49% over the baseline \(95% CI \+1\.20% to \+1\.80%; significant/,
    );
    assert.match(
      measured ?? '',
      /Measured at fidelity 160: ne 0\.6605 over 2 replicate\(s\) against baseline ne 0\.6705 over 2 replicate\(s\)/,
    );
  });

  it('says plainly when nothing beat the baseline', () => {
    const data = finishedCampaign();
    const result = data.campaign.result as CampaignResult;
    data.campaign.result = {
      ...result,
      best: {
        hypothesisId: 'baseline',
        source: 'baseline',
        config: BASELINE,
        delta: {},
        value: 0.6705,
        replicates: 2,
      },
      gainPct: 0,
      gainCi: { low: 0, high: 0 },
      significant: false,
      wins: [],
      unconfirmed: { hypothesisId: 'lr=0.03', gainPct: 0.4, low: -0.1, high: 0.9 },
    };
    const report = buildReport(data);
    assert.match(report.headline[0] ?? '', /^Nothing beat the baseline: the final config is the baseline/);
    assert.match(
      report.headline[1] ?? '',
      /lr=0\.03 was not confirmed: over its confirmation replicates its gain was \+0\.40% \(95% CI -0\.10% to \+0\.90%\)/,
    );
    assert.deepEqual(report.configDiff, []);
    assert.match(renderHtml(report), /The final config is the baseline: no knob changed/);
  });

  it('shows the final config as a diff against the baseline', () => {
    const report = buildReport(finishedCampaign());
    assert.deepEqual(report.configDiff, [{ knob: 'lr', baseline: '0.01', final: '0.03' }]);
    assert.match(renderMarkdown(report), /\| lr \| 0\.01 \| \*\*0\.03\*\* \|/);
  });

  it('ranks the leaderboard at the highest fidelity first, with n and gain', () => {
    const [first, ...rest] = buildReport(finishedCampaign()).leaderboard;
    assert.equal(first?.hypothesisId, 'lr=0.03');
    assert.equal(first?.fidelity, 160);
    assert.equal(first?.n, 2);
    assert.ok((first?.gain?.pct ?? 0) > 1.4 && (first?.gain?.pct ?? 0) < 1.6, JSON.stringify(first));
    assert.deepEqual(
      rest.map((r) => r.hypothesisId),
      ['mlp_width=128', 'batch_size=2048', 'optimizer=sgd'],
    );
  });

  it('lists every failure with what the runbook did about it', () => {
    const report = buildReport(finishedCampaign());
    assert.deepEqual(
      report.failures.map((f) => [f.experimentId, f.failureClass, f.action]),
      [
        ['camp.e0004', 'oom', 'retry: out of memory: batch_size 4096 → 2048'],
        ['camp.e0015', 'cancelled', 'none: cancelled'],
      ],
    );
  });

  it('counts hypotheses by source: a validated win, losses, and one that only failed', () => {
    const bySource = Object.fromEntries(
      buildReport(finishedCampaign()).sources.map((s) => [s.source, s.tally]),
    );
    assert.deepEqual(bySource.llm, { source: 'llm', won: 1, lost: 0, failed: 0 });
    assert.deepEqual(bySource.planner, { source: 'planner', won: 0, lost: 2, failed: 2 });
    assert.deepEqual(bySource.human, { source: 'human', won: 0, lost: 1, failed: 0 });
    assert.deepEqual(bySource.research, { source: 'research', won: 0, lost: 0, failed: 0 });
  });

  it("shows the LLM's calls and what became of each hypothesis it wrote, run or not", () => {
    const data = finishedCampaign();
    const call = {
      purpose: 'slate',
      model: 'qwen-local',
      promptTokens: 700,
      completionTokens: 200,
      costUsd: 0,
      proposed: 2,
      accepted: 2,
      error: null,
    };
    data.llmCalls = [
      { ...call, status: 'ok', latencyMs: 30_000 },
      {
        ...call,
        status: 'error',
        latencyMs: 120_000,
        promptTokens: 0,
        completionTokens: 0,
        error: 'timed out',
      },
    ];
    data.llmHypotheses = [
      { id: 'lr=0.03', rationale: HOSTILE, delta: { lr: 0.03 } },
      {
        id: 'mlp_width=96',
        rationale: 'wider [evidence: research card mlp-width]',
        delta: { mlp_width: 96 },
      },
    ];
    const llm = buildReport(data).llm;
    assert.ok(llm);
    assert.deepEqual(llm.models, ['qwen-local']);
    assert.deepEqual(llm.byStatus, { ok: 1, error: 1 });
    assert.deepEqual([llm.promptTokens, llm.completionTokens, llm.costUsd], [700, 200, 0]);
    assert.equal(llm.meanLatencySec, 30, 'over the answered calls');
    assert.deepEqual(llm.errors, ['error: timed out']);
    assert.deepEqual(
      llm.hypotheses.map((h) => [h.hypothesisId, h.outcome, h.fidelity, h.runs]),
      [
        ['lr=0.03', 'won', 160, 2],
        ['mlp_width=96', 'not run', undefined, 0],
      ],
    );
    // 0.6605 against 0.6705 at 160 steps, lower is better.
    assert.ok(
      Math.abs((llm.hypotheses[0]?.gainPct ?? 0) - 1.4914) < 0.001,
      String(llm.hypotheses[0]?.gainPct),
    );
    const md = renderMarkdown(buildReport(data));
    assert.match(md, /## The LLM/);
    assert.match(md, /`qwen-local` answered 2 calls \(1 ok, 1 error\): 700 prompt and 200 completion tokens/);
    assert.match(md, /\| `mlp_width=96` \| not run \|/);
    assert.match(renderHtml(buildReport(data)), /<h2>The LLM<\/h2>/);
    // A campaign without an LLM says nothing about one.
    const plain = finishedCampaign();
    plain.experiments = plain.experiments.filter((e) => e.source !== 'llm');
    assert.equal(buildReport(plain).llm, undefined);
  });

  it('says whether the plan needed approval, and whether it got it', () => {
    const data = finishedCampaign();
    assert.match(buildReport(data).planApproval, /^Approval was not required/);
    data.campaign.input.approval = { required: true };
    assert.equal(
      buildReport(data).planApproval,
      'Approval was required; an engineer approved round 1 of the plan.',
    );
    data.experiments = data.experiments.filter((e) => e.phase === 'preflight');
    assert.match(buildReport(data).planApproval, /the plan was not approved/);
  });

  it('is deterministic: the same record gives the same bytes', () => {
    const a = buildReport(finishedCampaign());
    const b = buildReport(finishedCampaign());
    assert.equal(renderHtml(a), renderHtml(b));
    assert.equal(renderMarkdown(a), renderMarkdown(b));
  });
});

describe('campaign report: untrusted text', () => {
  it('HTML-escapes a rationale that contains <script>, and has no script, URL or event handler', () => {
    const html = renderHtml(buildReport(finishedCampaign()));
    assert.ok(!/<script/i.test(html), 'no script element');
    assert.ok(html.includes('&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;'));
    // Every "<" of untrusted text is escaped, so each tag left is one that the renderer wrote.
    const tags = [...html.matchAll(/<[a-zA-Z][^>]*>/g)].map((m) => m[0]);
    assert.ok(!tags.some((t) => /^<(img|iframe|object|embed|link)\b/i.test(t)), 'no injected element');
    assert.ok(
      !tags.some((t) => /\s(on[a-z]+|src|href)=/i.test(t)),
      'no handler, nothing loaded from anywhere',
    );
    const urls = [...html.matchAll(/https?:\/\/[^\s"'<)]+/g)].map((m) => m[0]);
    assert.deepEqual(
      [...new Set(urls)].filter((u) => u !== 'http://www.w3.org/2000/svg'),
      ['http://evil.example'],
      'the only URL besides the SVG namespace is the escaped text itself',
    );
    assert.ok(html.includes('[link](http://evil.example)'), 'shown as text, not as a link');
  });

  it('keeps each inline SVG of the HTML well-formed', () => {
    const svgs = inlineSvgs(renderHtml(buildReport(finishedCampaign())));
    assert.equal(svgs.length, 3);
    for (const svg of svgs) assertValidSvg(svg);
  });

  it('escapes markdown and HTML in the markdown report', () => {
    const md = renderMarkdown(buildReport(finishedCampaign()));
    assert.ok(!md.includes('<script') && !md.includes('<img'));
    assert.ok(md.includes(escapeMarkdown(HOSTILE)));
    assert.ok(md.includes('\\[link\\](http://evil.example)'), 'no markdown link');
    assert.equal(escapeMarkdown('a|b\nc'), 'a\\|b c');
    assert.equal(escapeMarkdown('# not a heading'), '\\# not a heading');
    assert.equal(escapeMarkdown('0.01'), '0.01', 'a number is not a list item');
  });
});

describe('campaign report: a running campaign', () => {
  it('judges wins by the campaign’s rule before there is a result', () => {
    const data = finishedCampaign();
    data.campaign.result = null;
    data.campaign.status = 'running';
    data.campaign.finishedAt = null;
    const report = buildReport(data);
    assert.deepEqual(
      report.wins.map((w) => [w.hypothesisId, w.phase]),
      [['lr=0.03', 'exploitation']],
    );
    assert.equal(report.sources.find((s) => s.source === 'llm')?.tally.won, 1);
    assert.equal(report.experiments.total, data.experiments.length);
    assert.deepEqual(report.budget.used, { experiments: 16, gpuHours: 4 });
  });
});

describe('campaign report: a campaign Temporal terminated', () => {
  it('says so in the status, the headline and the final config', () => {
    const data = emptyCampaign();
    data.campaign = {
      ...data.campaign,
      status: 'terminated',
      error: 'the workflow was terminated by ops@host: wrong data snapshot',
      finishedAt: '2026-11-20T10:00:42.000Z',
    };
    const report = buildReport(data);
    assert.match(report.headline[0] ?? '', /workflow was terminated in Temporal before it reached a result/);
    const md = renderMarkdown(report);
    assert.match(
      md,
      /\| \*\*Status\*\* \| terminated \(the workflow was terminated by ops@host: wrong data snapshot\) \|/,
    );
    assert.match(md, /_No final config: the campaign ended without a result._/);
    assert.match(renderHtml(report), /No final config: the campaign ended without a result\./);
  });
});

describe('campaign report: a campaign with no experiments yet', () => {
  it('still renders both formats, saying there is no result yet', () => {
    const report = buildReport(emptyCampaign());
    assert.match(
      report.headline[0] ?? '',
      /No result yet: the campaign is running \(phase preflight\), with 0 finished/,
    );
    assert.equal(report.durationSec, 42);
    assert.deepEqual(report.budget.used, { experiments: 0, gpuHours: 0 });
    const md = renderMarkdown(report);
    assert.match(md, /_No final config yet: the campaign has no result._/);
    assert.match(md, /_No plan was written._/);
    const html = renderHtml(report);
    assert.match(html, /No experiment has finished yet\./);
    for (const svg of inlineSvgs(html)) assertValidSvg(svg);
  });
});

describe('the "not run" count', () => {
  it('says what it holds when runs were not run, and stays short when none were', () => {
    assert.equal(notRunText(0), '0 not run');
    const text = notRunText(3);
    assert.match(text, /^3 not run \(/);
    assert.match(text, /budget could not pay for/);
    assert.match(text, /gave the very same number/);
  });
});

/**
 * The campaign report as one self-contained HTML file: inline CSS, inline SVG charts, no scripts
 * and no external URLs, so that it opens anywhere (a mail attachment, an air-gapped laptop) and is
 * safe to open. Every text that came from a user, an LLM or a log is HTML-escaped.
 *
 *   writeFileSync('ctr-1.html', renderHtml(buildReport(data)));
 */
import { BASELINE_ID } from '../core/planner';
import { escapeXml, formatAmount } from './svg';
import {
  formatDuration,
  formatPct,
  formatValue,
  experimentsText,
  type CampaignReport,
  type LlmSection,
} from './summary';

/** Escapes text for HTML content and quoted attribute values. */
export const escapeHtml = escapeXml;
const h = escapeHtml;

const CSS = `
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 0; background: #fafafa; }
main { max-width: 980px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 12px; }
h2 { font-size: 19px; margin: 36px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 20px 0 6px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 14px; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f2f2f2; padding: 1px 4px; border-radius: 3px; overflow-wrap: anywhere; }
.headline { border-left: 4px solid #0072B2; background: #f0f6fb; padding: 10px 16px; margin: 8px 0; }
.headline.none { border-left-color: #E69F00; background: #fdf6e8; }
.headline p { margin: 4px 0; }
.facts th { width: 150px; }
.muted { color: #666; font-style: italic; }
figure { margin: 16px 0; }
figure svg { max-width: 100%; height: auto; border: 1px solid #e4e4e4; }
figcaption { font-size: 13px; color: #555; }
.rationale { color: #333; }
ol.strategy li { margin: 2px 0; }
`;

function table(header: string[], rows: string[][], numeric: readonly number[] = []): string {
  const head = `<tr>${header.map((c) => `<th>${c}</th>`).join('')}</tr>`;
  const body = rows
    .map(
      (r) =>
        `<tr>${r.map((c, i) => `<td${numeric.includes(i) ? ' class="num"' : ''}>${c}</td>`).join('')}</tr>`,
    )
    .join('\n');
  return `<table>\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

const code = (text: string) => `<code>${h(text)}</code>`;
const muted = (text: string) => `<p class="muted">${h(text)}</p>`;
const gpuH = (v: number) => `${formatAmount(v)} GPU-h`;

/** Renders `report` as one HTML document. */
export function renderHtml(report: CampaignReport): string {
  const parts: string[] = [`<h1>${h(report.title)}</h1>`];
  const facts: [string, string][] = [
    ['Campaign', code(report.campaignId)],
    ['Model', h(report.model)],
    ['Status', h(report.status) + (report.reason ? ` (${h(report.reason)})` : '')],
    ['Phase', h(report.phase)],
    ['Started', h(report.startedAt)],
    ['Finished', h(report.finishedAt ?? 'not yet')],
    ['Duration', h(formatDuration(report.durationSec) + (report.finishedAt ? '' : ' so far'))],
  ];
  if (report.metric) {
    facts.push([
      'Primary metric',
      `${h(report.metric.name)} (${report.metric.direction === 'minimize' ? 'lower' : 'higher'} is better)`,
    ]);
  }
  parts.push(
    `<table class="facts"><tbody>${facts.map(([k, v]) => `<tr><th>${h(k)}</th><td>${v}</td></tr>`).join('')}</tbody></table>`,
  );

  const won = report.finalHypothesis !== undefined && report.finalHypothesis !== BASELINE_ID;
  parts.push(
    '<h2>Headline</h2>',
    `<div class="headline${won ? '' : ' none'}">${report.headline.map((l) => `<p>${h(l)}</p>`).join('')}</div>`,
  );

  parts.push('<h2>Final config</h2>');
  if (report.finalHypothesis === undefined)
    parts.push(
      muted(
        report.status === 'running'
          ? 'No final config yet: the campaign has no result.'
          : 'No final config: the campaign ended without a result.',
      ),
    );
  else if (!won || report.configDiff.length === 0)
    parts.push('<p>The final config is the baseline: no knob changed.</p>');
  else {
    parts.push(
      `<p>The final config is ${code(report.finalHypothesis)}. It differs from the baseline in these knobs:</p>`,
      table(
        ['knob', 'baseline', 'final'],
        report.configDiff.map((d) => [code(d.knob), h(d.baseline), `<strong>${h(d.final)}</strong>`]),
      ),
    );
  }

  parts.push(
    '<h2>Charts</h2>',
    figure(
      report.charts.metric,
      'The primary metric of each finished experiment, in finishing order, over shaded phases. Hollow marks are baseline runs; crosses on the axis are failures. Later phases train longer (higher fidelity), which improves the metric by itself: compare a point with the baseline runs of its phase. Hover a mark for its experiment.',
    ),
    figure(report.charts.budget, 'Budget burn: cumulative experiments and GPU-hours against the limits.'),
    figure(report.charts.sources, 'Hypotheses by source: validated wins, losses and failures.'),
  );

  parts.push('<h2>Leaderboard</h2>');
  if (report.leaderboard.length === 0) parts.push(muted('No hypothesis has a result yet.'));
  else {
    parts.push(
      '<p>Each hypothesis at the highest fidelity where it and the baseline were both measured; gains are against the baseline there, with 95% intervals.</p>',
      table(
        [
          '#',
          'hypothesis',
          'source',
          'fidelity',
          'n',
          `mean ${h(report.metric?.name ?? 'value')}`,
          'gain',
          '95% CI',
        ],
        report.leaderboard.map((r, i) => [
          String(i + 1),
          code(r.hypothesisId),
          h(r.source),
          String(r.fidelity),
          String(r.n),
          formatValue(r.mean),
          r.gain ? formatPct(r.gain.pct) : '—',
          r.gain ? `${formatPct(r.gain.low)} to ${formatPct(r.gain.high)}` : '—',
        ]),
        [0, 3, 4, 5, 6],
      ),
    );
  }

  parts.push('<h2>Wins by phase</h2>');
  if (report.wins.length === 0) parts.push(muted('No hypothesis beat the baseline beyond noise.'));
  else {
    parts.push(
      '<p>A win beat the rolling baseline with a 95% interval that excludes zero. Synergy: a merge’s gain beyond the best of its parts.</p>',
      table(
        ['phase', 'hypothesis', 'gain', 'synergy'],
        report.wins.map((w) => [
          h(w.phase),
          code(w.hypothesisId),
          formatPct(w.gainPct),
          w.synergyPct === undefined ? '—' : formatPct(w.synergyPct),
        ]),
        [2, 3],
      ),
    );
  }

  parts.push('<h2>Failures and what was done</h2>');
  if (report.failures.length === 0) parts.push(muted('No experiment failed.'));
  else {
    parts.push(
      table(
        ['experiment', 'phase', 'hypothesis', 'failure', 'action', 'message'],
        report.failures.map((f) => [
          code(f.experimentId),
          h(f.phase),
          code(f.hypothesisId),
          h(f.failureClass),
          h(f.action),
          f.error ? h(f.error) : '—',
        ]),
      ),
    );
  }

  const b = report.budget;
  const limit = [
    b.limit.experiments === undefined ? 'no experiment limit' : `${b.limit.experiments} experiments`,
    b.limit.gpuHours === undefined ? 'no GPU-hour limit' : gpuH(b.limit.gpuHours),
  ].join(', ');
  parts.push(
    '<h2>Budget</h2>',
    '<ul>',
    `<li><strong>Limit:</strong> ${h(limit)}</li>`,
    `<li><strong>Used:</strong> ${b.used.experiments} experiments, ${h(gpuH(b.used.gpuHours))}</li>`,
    `<li><strong>Experiments:</strong> ${experimentsText(report.experiments)}</li>`,
    ...(b.split
      ? [
          `<li><strong>Split:</strong> ${Object.entries(b.split)
            .map(([k, v]) => `${h(k)} ${Math.round(v * 100)}%`)
            .join(', ')}</li>`,
        ]
      : []),
    '</ul>',
  );
  if (b.byPhase.length) {
    parts.push(
      table(
        ['phase', 'experiments', 'GPU-hours'],
        b.byPhase.map((p) => [h(p.phase), String(p.experiments), formatAmount(p.gpuHours)]),
        [1, 2],
      ),
    );
  }

  parts.push(
    '<h2>Hypotheses by source</h2>',
    table(
      ['source', 'won', 'lost', 'failed'],
      report.sources.map((s) => [
        h(s.source),
        String(s.tally.won),
        String(s.tally.lost),
        String(s.tally.failed),
      ]),
      [1, 2, 3],
    ),
  );
  for (const s of report.sources.filter((src) => src.top.length)) {
    parts.push(
      `<h3>${h(s.source)}</h3>`,
      '<ul>',
      ...s.top.map((t) => {
        const gain = t.gainPct === undefined ? '' : `, ${formatPct(t.gainPct)}`;
        return `<li>${code(t.hypothesisId)} (${h(t.outcome)}${gain}): <span class="rationale">${h(t.rationale)}</span></li>`;
      }),
      '</ul>',
    );
  }

  if (report.llm) parts.push(...llmHtml(report.llm));

  parts.push('<h2>The approved plan</h2>');
  const plan = report.plan;
  if (!plan)
    parts.push(
      muted(report.planError ? `The plan could not be read: ${report.planError}.` : 'No plan was written.'),
    );
  else {
    parts.push(
      `<p>${h(report.planApproval)}</p>`,
      `<p>Round ${plan.round}. Fidelity levels: low ${plan.fidelity.low}, mid ${plan.fidelity.mid}, high ${plan.fidelity.high}. Estimated cost: ${plan.estimate.experiments} experiments, ${h(gpuH(plan.estimate.gpuHours))}.</p>`,
      `<ol class="strategy">${plan.strategy.map((s) => `<li>${h(s)}</li>`).join('')}</ol>`,
    );
    if (plan.slate.length) {
      parts.push(
        '<p><strong>First slate:</strong></p>',
        table(
          ['hypothesis', 'rationale'],
          plan.slate.map((s) => [code(s.id), `<span class="rationale">${h(s.rationale)}</span>`]),
        ),
      );
    }
  }

  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${h(report.title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    '<main>',
    ...parts,
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

function figure(svg: string, caption: string): string {
  return `<figure>\n${svg}\n<figcaption>${h(caption)}</figcaption>\n</figure>`;
}

/** "The LLM": its calls and what became of each hypothesis it wrote. */
function llmHtml(llm: LlmSection): string[] {
  const statuses = Object.entries(llm.byStatus)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  const latency =
    llm.meanLatencySec === undefined
      ? ''
      : `; ${llm.meanLatencySec.toFixed(1)} s per answer on average (at most ${(llm.maxLatencySec ?? 0).toFixed(1)} s)`;
  const parts = [
    '<h2>The LLM</h2>',
    `<p>${llm.models.length ? llm.models.map(code).join(', ') : 'No model'} answered ${llm.calls} call${llm.calls === 1 ? '' : 's'} (${h(statuses || 'none')}): ${llm.promptTokens} prompt and ${llm.completionTokens} completion tokens, $${llm.costUsd.toFixed(4)}${h(latency)}.</p>`,
  ];
  if (llm.errors.length) parts.push('<ul>', ...llm.errors.map((err) => `<li>${h(err)}</li>`), '</ul>');
  if (!llm.hypotheses.length) {
    parts.push(muted('The LLM wrote no hypothesis that passed the gate.'));
    return parts;
  }
  parts.push(
    table(
      ['hypothesis', 'outcome', 'fidelity', 'n', 'gain', 'rationale'],
      llm.hypotheses.map((x) => [
        code(x.hypothesisId),
        h(x.outcome),
        x.fidelity === undefined ? '—' : String(x.fidelity),
        String(x.runs),
        x.gainPct === undefined ? '—' : formatPct(x.gainPct),
        `<span class="rationale">${h(x.rationale)}</span>`,
      ]),
      [2, 3, 4],
    ),
  );
  return parts;
}

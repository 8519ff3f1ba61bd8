/**
 * The campaign report as markdown (GitHub-flavoured), for a pull request, a wiki or a terminal.
 * Charts are referenced as SVG files beside the report, since markdown viewers drop inline SVG.
 * Every text that came from a user, an LLM or a log is escaped, so it cannot inject markup or links.
 *
 *   const md = renderMarkdown(buildReport(data), { metric: 'ctr-1.metric.svg' });
 */
import { BASELINE_ID } from '../core/planner';
import { formatAmount } from './svg';
import {
  formatDuration,
  formatPct,
  formatValue,
  experimentsText,
  type CampaignReport,
  type LlmSection,
} from './summary';

/** Relative paths of the chart files, as `writeReport` writes them. */
export interface ChartFiles {
  metric?: string;
  budget?: string;
  sources?: string;
}

/**
 * Escapes text for markdown, in a paragraph or a table cell: emphasis, code, link and table
 * punctuation gets a backslash, a leading block marker too, HTML's special characters become
 * entities, and line breaks become spaces.
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/[\r\n]+/g, ' ')
    .replace(/[\\`*_[\]|~]/g, (ch) => `\\${ch}`)
    .replace(/^(\s*)(#{1,6}|[+-]|\d+[.)])(?=\s|$)/, '$1\\$2')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

const e = escapeMarkdown;

/** An id in a code span: markdown inside is inert, but a backtick would end it and a pipe a table cell. */
function code(text: string): string {
  return `\`${text
    .replace(/[\r\n]+/g, ' ')
    .replace(/`/g, "'")
    .replace(/\|/g, '\\|')}\``;
}

function table(header: string[], rows: string[][]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
}

const gpuH = (v: number) => `${formatAmount(v)} GPU-h`;

/** Renders `report` as one markdown document. */
export function renderMarkdown(report: CampaignReport, charts: ChartFiles = {}): string {
  const out: string[] = [`# ${e(report.title)}`, ''];
  const facts: [string, string][] = [
    ['Campaign', code(report.campaignId)],
    ['Model', e(report.model)],
    ['Status', e(report.status) + (report.reason ? ` (${e(report.reason)})` : '')],
    ['Phase', e(report.phase)],
    ['Started', report.startedAt],
    ['Finished', report.finishedAt ?? 'not yet'],
    ['Duration', formatDuration(report.durationSec) + (report.finishedAt ? '' : ' so far')],
  ];
  if (report.metric) {
    facts.push([
      'Primary metric',
      `${e(report.metric.name)} (${report.metric.direction === 'minimize' ? 'lower' : 'higher'} is better)`,
    ]);
  }
  out.push(
    ...table(
      ['', ''],
      facts.map(([k, v]) => [`**${k}**`, v]),
    ),
    '',
  );

  out.push('## Headline', '', report.headline.map((line) => `> ${e(line)}`).join('\n>\n'), '');

  out.push('## Final config', '');
  if (report.finalHypothesis === undefined) {
    out.push(
      report.status === 'running'
        ? '_No final config yet: the campaign has no result._'
        : '_No final config: the campaign ended without a result._',
      '',
    );
  } else if (report.configDiff.length === 0 || report.finalHypothesis === BASELINE_ID) {
    out.push('The final config is the baseline: no knob changed.', '');
  } else {
    out.push(
      `The final config is ${code(report.finalHypothesis)}. It differs from the baseline in these knobs:`,
      '',
      ...table(
        ['knob', 'baseline', 'final'],
        report.configDiff.map((d) => [e(d.knob), e(d.baseline), `**${e(d.final)}**`]),
      ),
      '',
    );
  }

  out.push('## Charts', '');
  const images: [keyof ChartFiles, string][] = [
    [
      'metric',
      'Primary metric of each experiment over time, by phase, with the best so far (higher fidelity alone improves the metric: compare with baseline runs, hollow, at the same fidelity)',
    ],
    ['budget', 'Budget burn: cumulative experiments and GPU-hours against the limit'],
    ['sources', 'Wins and losses by hypothesis source'],
  ];
  const shown = images.filter(([k]) => charts[k]);
  if (shown.length === 0) out.push('_Charts are in the HTML report._', '');
  for (const [k, alt] of shown) out.push(`![${alt}](${encodeURI(charts[k] ?? '')})`, '');

  const metricName = e(report.metric?.name ?? 'value');
  out.push('## Leaderboard', '');
  if (report.leaderboard.length === 0) out.push('_No hypothesis has a result yet._', '');
  else {
    out.push(
      'Each hypothesis at the highest fidelity where it and the baseline were both measured; gains are against the baseline there, with 95% intervals.',
      '',
      ...table(
        ['#', 'hypothesis', 'source', 'fidelity', 'n', `mean ${metricName}`, 'gain', '95% CI'],
        report.leaderboard.map((r, i) => [
          String(i + 1),
          code(r.hypothesisId),
          e(r.source),
          String(r.fidelity),
          String(r.n),
          formatValue(r.mean),
          r.gain ? formatPct(r.gain.pct) : '—',
          r.gain ? `${formatPct(r.gain.low)} to ${formatPct(r.gain.high)}` : '—',
        ]),
      ),
      '',
    );
  }

  out.push('## Wins by phase', '');
  if (report.wins.length === 0) out.push('_No hypothesis beat the baseline beyond noise._', '');
  else {
    out.push(
      'A win beat the rolling baseline with a 95% interval that excludes zero. Synergy: a merge’s gain beyond the best of its parts.',
      '',
      ...table(
        ['phase', 'hypothesis', 'gain', 'synergy'],
        report.wins.map((w) => [
          e(w.phase),
          code(w.hypothesisId),
          formatPct(w.gainPct),
          w.synergyPct === undefined ? '—' : formatPct(w.synergyPct),
        ]),
      ),
      '',
    );
  }

  out.push('## Failures and what was done', '');
  if (report.failures.length === 0) out.push('_No experiment failed._', '');
  else {
    out.push(
      ...table(
        ['experiment', 'phase', 'hypothesis', 'failure', 'action', 'message'],
        report.failures.map((f) => [
          code(f.experimentId),
          e(f.phase),
          code(f.hypothesisId),
          e(f.failureClass),
          e(f.action),
          f.error ? e(f.error) : '—',
        ]),
      ),
      '',
    );
  }

  const b = report.budget;
  out.push('## Budget', '');
  out.push(
    `- **Limit:** ${b.limit.experiments === undefined ? 'no experiment limit' : `${b.limit.experiments} experiments`}, ${b.limit.gpuHours === undefined ? 'no GPU-hour limit' : gpuH(b.limit.gpuHours)}`,
    `- **Used:** ${b.used.experiments} experiments, ${gpuH(b.used.gpuHours)}`,
    `- **Experiments:** ${experimentsText(report.experiments)}`,
  );
  if (b.split) {
    out.push(
      `- **Split:** ${Object.entries(b.split)
        .map(([k, v]) => `${e(k)} ${Math.round(v * 100)}%`)
        .join(', ')}`,
    );
  }
  out.push('');
  if (b.byPhase.length) {
    out.push(
      ...table(
        ['phase', 'experiments', 'GPU-hours'],
        b.byPhase.map((p) => [e(p.phase), String(p.experiments), formatAmount(p.gpuHours)]),
      ),
      '',
    );
  }

  out.push('## Hypotheses by source', '');
  out.push(
    ...table(
      ['source', 'won', 'lost', 'failed'],
      report.sources.map((s) => [
        e(s.source),
        String(s.tally.won),
        String(s.tally.lost),
        String(s.tally.failed),
      ]),
    ),
    '',
  );
  for (const s of report.sources.filter((x) => x.top.length)) {
    out.push(`### ${e(s.source)}`, '');
    for (const h of s.top) {
      const gain = h.gainPct === undefined ? '' : `, ${formatPct(h.gainPct)}`;
      out.push(`- ${code(h.hypothesisId)} (${h.outcome}${gain}): ${e(h.rationale)}`);
    }
    out.push('');
  }

  if (report.llm) out.push(...llmMarkdown(report.llm));

  out.push('## The approved plan', '');
  const plan = report.plan;
  if (!plan)
    out.push(
      report.planError ? `_The plan could not be read: ${e(report.planError)}._` : '_No plan was written._',
      '',
    );
  else {
    out.push(
      e(report.planApproval),
      '',
      `Round ${plan.round}. Fidelity levels: low ${plan.fidelity.low}, mid ${plan.fidelity.mid}, high ${plan.fidelity.high}. Estimated cost: ${plan.estimate.experiments} experiments, ${gpuH(plan.estimate.gpuHours)}.`,
      '',
      ...plan.strategy.map((s, i) => `${i + 1}. ${e(s)}`),
      '',
    );
    if (plan.slate.length) {
      out.push(
        '**First slate:**',
        '',
        ...table(
          ['hypothesis', 'rationale'],
          plan.slate.map((h) => [code(h.id), e(h.rationale)]),
        ),
        '',
      );
    }
  }
  return out.join('\n');
}

/** "## The LLM": its calls and what became of each hypothesis it wrote. */
function llmMarkdown(llm: LlmSection): string[] {
  const out = ['## The LLM', ''];
  const statuses = Object.entries(llm.byStatus)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  const latency =
    llm.meanLatencySec === undefined
      ? ''
      : `; ${llm.meanLatencySec.toFixed(1)} s per answer on average (at most ${(llm.maxLatencySec ?? 0).toFixed(1)} s)`;
  out.push(
    `${llm.models.length ? llm.models.map(code).join(', ') : 'No model'} answered ${llm.calls} call${llm.calls === 1 ? '' : 's'} (${statuses || 'none'}): ` +
      `${llm.promptTokens} prompt and ${llm.completionTokens} completion tokens, $${llm.costUsd.toFixed(4)}${latency}.`,
    '',
  );
  for (const err of llm.errors) out.push(`- ${e(err)}`);
  if (llm.errors.length) out.push('');
  if (!llm.hypotheses.length) {
    out.push('_The LLM wrote no hypothesis that passed the gate._', '');
    return out;
  }
  out.push(
    `Hypotheses the LLM wrote (${llm.hypotheses.length}; ${llm.hypotheses.filter((h) => h.outcome !== 'not run').length} run):`,
    '',
    ...table(
      ['hypothesis', 'outcome', 'fidelity', 'n', 'gain', 'rationale'],
      llm.hypotheses.map((h) => [
        code(h.hypothesisId),
        h.outcome,
        h.fidelity === undefined ? '—' : String(h.fidelity),
        String(h.runs),
        h.gainPct === undefined ? '—' : formatPct(h.gainPct),
        e(h.rationale),
      ]),
    ),
    '',
  );
  return out;
}

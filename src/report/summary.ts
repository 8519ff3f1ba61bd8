/**
 * What a campaign report says, worked out once from the stored record, for both the markdown and
 * the HTML renderer: the headline, the config diff, the leaderboard, failures, budget, sources and
 * charts. Pure: the same data gives the same report, byte for byte.
 *
 *   const report = buildReport(await loadReportData(pool, 'ctr-1'));
 *   report.headline // → ['mlp_width=128 beats the baseline by 1.92% (95% CI 0.41% to 3.43%) ...']
 */
import type { Config, KnobValue } from '../core/model-spec';
import { BASELINE_ID } from '../core/planner';
import { diffInterval, mean, sampleStd } from '../core/stats';
import { relativeGainPct, type CampaignResult, type Spend } from '../core/types';
import type { PrimaryMetric, ReportData, ReportExperiment, StoredPlan } from './data';
import { budgetChart, metricChart, sourceChart, type MetricRun, type SourceTally } from './svg';

/** The sources every report lists, in this order, even when one proposed nothing. */
export const SOURCES = ['planner', 'llm', 'research', 'history', 'human'] as const;

/**
 * What the "not run" count holds (`experiments.skipped`): runs a campaign planned but the budget could
 * not pay for, and (answer rules v5) further seeds of a config whose seeds all gave the very same
 * number, whose value was reused instead.
 */
const NOT_RUN =
  'planned runs the budget could not pay for, and repeat seeds of a config whose seeds all gave the very same number: its value was reused';

/** "N not run", with what that count holds when it is not zero. */
export const notRunText = (n: number): string => (n ? `${n} not run (${NOT_RUN})` : '0 not run');

/** The report's experiments line (both renderers): each outcome's count, then the runs not run. */
export const experimentsText = (x: CampaignResult['experiments']): string =>
  `${x.succeeded} succeeded, ${x.failed} failed, ${x.cancelled} cancelled, ${x.retried} retried, ${notRunText(x.skipped)}`;
const PHASE_ORDER = ['preflight', 'validation', 'combination', 'exploitation'];
const LEADERBOARD_SIZE = 10;
const TOP_PER_SOURCE = 5;
const MAX_RATIONALE = 600;
const MAX_ERROR = 300;

export interface LeaderboardRow {
  hypothesisId: string;
  source: string;
  fidelity: number;
  n: number;
  mean: number;
  /** Against the baseline at the same fidelity; undefined when the direction is not known yet. */
  gain?: { pct: number; low: number; high: number };
}

export interface FailureRow {
  experimentId: string;
  hypothesisId: string;
  phase: string;
  failureClass: string;
  /** The trainer's message, on one line and shortened. Untrusted. */
  error: string;
  /** What the campaign did about it (the runbook's decision). */
  action: string;
}

export interface SourceRow {
  source: string;
  tally: SourceTally;
  /** Its best hypotheses: wins first, then by gain. */
  top: { hypothesisId: string; outcome: 'won' | 'lost' | 'failed'; gainPct?: number; rationale: string }[];
}

/** How one hypothesis the LLM wrote fared. */
export interface LlmHypothesisRow {
  hypothesisId: string;
  /** won: a validated win; measured: ran, not a win; failed: every run failed; not run: never launched. */
  outcome: 'won' | 'measured' | 'failed' | 'not run';
  /** The highest fidelity it was measured at, with its runs there and its gain over the baseline there. */
  fidelity?: number;
  runs: number;
  gainPct?: number;
  /** Untrusted: the LLM's words, on one line. */
  rationale: string;
}

/** What the LLM did for a campaign: its calls, what they cost, and the hypotheses it wrote. */
export interface LlmSection {
  models: string[];
  calls: number;
  byStatus: Record<string, number>;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  /** Over the calls that got an answer. */
  meanLatencySec?: number;
  maxLatencySec?: number;
  /** Why calls failed, one line each, distinct (untrusted). */
  errors: string[];
  hypotheses: LlmHypothesisRow[];
}

export interface CampaignReport {
  title: string;
  campaignId: string;
  model: string;
  status: string;
  /** Why the campaign stopped early or failed, when it did. Untrusted (an operator's words). */
  reason?: string;
  phase: string;
  startedAt: string;
  finishedAt?: string;
  /** Until finishedAt, or until the record was read for a running campaign. */
  durationSec: number;
  metric?: PrimaryMetric;
  /** Plain sentences: the gain with its interval, or that nothing beat the baseline. */
  headline: string[];
  /** Knobs whose final value differs from the baseline's; empty when the final config is the baseline. */
  configDiff: { knob: string; baseline: string; final: string }[];
  /** Undefined until the campaign has a result. */
  finalHypothesis?: string;
  leaderboard: LeaderboardRow[];
  wins: CampaignResult['wins'];
  failures: FailureRow[];
  experiments: CampaignResult['experiments'];
  budget: {
    limit: { experiments?: number; gpuHours?: number };
    used: Spend;
    byPhase: ({ phase: string } & Spend)[];
    split?: Record<string, number>;
  };
  sources: SourceRow[];
  /** The approved plan, its rationales cleaned; null when none was written or it could not be read. */
  plan: StoredPlan | null;
  planError?: string;
  /** Whether an engineer had to approve the plan, and whether it was. */
  planApproval: string;
  /** Present when the campaign called an LLM or ran an LLM's hypothesis. */
  llm?: LlmSection;
  charts: { metric: string; budget: string; sources: string };
}

/** Builds the report of one campaign from its stored record. */
export function buildReport(data: ReportData): CampaignReport {
  const { campaign, experiments } = data;
  const result = campaign.result;
  const metric = data.metric;
  const leaderboard = leaderboardOf(experiments, metric);
  // A running campaign has no verdicts yet: apply its rule (n ≥ 2, the interval excludes zero).
  const wins: CampaignResult['wins'] =
    result?.wins ??
    leaderboard
      .filter((r) => r.n >= 2 && r.gain !== undefined && r.gain.low > 0)
      .map((r) => ({
        hypothesisId: r.hypothesisId,
        gainPct: r.gain?.pct ?? 0,
        phase:
          experiments.find((e) => e.hypothesisId === r.hypothesisId && e.fidelity === r.fidelity)?.phase ??
          'validation',
      }));
  const winIds = new Set<string>([
    ...wins.map((w) => w.hypothesisId),
    ...(result?.significant ? [result.best.hypothesisId] : []),
  ]);
  const end = campaign.finishedAt ?? data.readAt;
  const budget = budgetOf(data);
  const sources = sourcesOf(experiments, leaderboard, winIds);
  const reason = result?.reason ?? campaign.error ?? undefined;
  const llm = llmSectionOf(data, winIds);
  return {
    title: `Campaign ${campaign.id}: ${campaign.model}`,
    campaignId: campaign.id,
    model: campaign.model,
    status: campaign.status,
    ...(reason ? { reason: oneLine(reason, MAX_ERROR) } : {}),
    phase: campaign.phase,
    startedAt: campaign.startedAt,
    ...(campaign.finishedAt ? { finishedAt: campaign.finishedAt } : {}),
    durationSec: Math.max(0, (Date.parse(end) - Date.parse(campaign.startedAt)) / 1000),
    ...(metric ? { metric } : {}),
    headline: headlineOf(data),
    configDiff: result ? configDiff(data.baselineConfig, result.best.config, result.best.delta) : [],
    ...(result ? { finalHypothesis: result.best.hypothesisId } : {}),
    leaderboard: leaderboard.slice(0, LEADERBOARD_SIZE),
    wins,
    failures: failuresOf(experiments, result),
    experiments: result?.experiments ?? countsOf(experiments),
    budget,
    sources,
    plan: campaign.plan && {
      ...campaign.plan,
      strategy: campaign.plan.strategy.map((line) => oneLine(line, MAX_RATIONALE)),
      slate: campaign.plan.slate.map((h) => ({ id: h.id, rationale: oneLine(h.rationale, MAX_RATIONALE) })),
    },
    ...(campaign.planError ? { planError: campaign.planError } : {}),
    planApproval: approvalOf(data),
    ...(llm ? { llm } : {}),
    charts: chartsOf(data, budget, sources),
  };
}

/** The LLM's calls and hypotheses; undefined when the campaign neither called one nor ran its ideas. */
function llmSectionOf(data: ReportData, winIds: ReadonlySet<string>): LlmSection | undefined {
  const calls = data.llmCalls ?? [];
  const proposed = new Map<string, string>();
  for (const h of data.llmHypotheses ?? []) proposed.set(h.id, h.rationale);
  for (const e of data.experiments)
    if (e.source === 'llm' && !proposed.has(e.hypothesisId)) proposed.set(e.hypothesisId, e.rationale);
  if (!calls.length && !proposed.size) return undefined;
  const direction = data.metric?.direction;
  const succeeded = (e: ReportExperiment) => e.status === 'succeeded' && e.primaryValue !== null;
  const baselineAt = (fidelity: number) =>
    data.experiments
      .filter((e) => e.role === 'baseline' && e.fidelity === fidelity && succeeded(e))
      .map((e) => e.primaryValue as number);
  const hypotheses = [...proposed].map(([id, rationale]): LlmHypothesisRow => {
    const runs = data.experiments.filter((e) => e.hypothesisId === id && e.role === 'candidate');
    const ok = runs.filter(succeeded);
    const top = ok.length ? Math.max(...ok.map((e) => e.fidelity)) : undefined;
    const atTop = ok.filter((e) => e.fidelity === top).map((e) => e.primaryValue as number);
    const base = top === undefined ? [] : baselineAt(top);
    const gainPct =
      direction && atTop.length && base.length
        ? relativeGainPct(mean(base), mean(atTop), direction)
        : undefined;
    return {
      hypothesisId: id,
      outcome: winIds.has(id) ? 'won' : ok.length ? 'measured' : runs.length ? 'failed' : 'not run',
      ...(top === undefined ? {} : { fidelity: top }),
      runs: atTop.length,
      ...(gainPct === undefined ? {} : { gainPct }),
      rationale: oneLine(rationale, MAX_RATIONALE),
    };
  });
  const rank = { won: 0, measured: 1, failed: 2, 'not run': 3 };
  hypotheses.sort(
    (a, b) =>
      rank[a.outcome] - rank[b.outcome] ||
      (b.fidelity ?? 0) - (a.fidelity ?? 0) ||
      (b.gainPct ?? -Infinity) - (a.gainPct ?? -Infinity) ||
      a.hypothesisId.localeCompare(b.hypothesisId),
  );
  const answered = calls.filter((c) => c.status === 'ok' || c.status === 'invalid');
  const latencies = answered.map((c) => c.latencyMs / 1000);
  const byStatus: Record<string, number> = {};
  for (const c of calls) byStatus[c.status] = (byStatus[c.status] ?? 0) + 1;
  return {
    models: [...new Set(calls.filter((c) => c.status !== 'refused').map((c) => c.model))].sort(),
    calls: calls.length,
    byStatus,
    promptTokens: calls.reduce((a, c) => a + c.promptTokens, 0),
    completionTokens: calls.reduce((a, c) => a + c.completionTokens, 0),
    costUsd: calls.reduce((a, c) => a + c.costUsd, 0),
    ...(latencies.length ? { meanLatencySec: mean(latencies), maxLatencySec: Math.max(...latencies) } : {}),
    errors: [
      ...new Set(
        calls.filter((c) => c.error).map((c) => `${c.status}: ${oneLine(c.error ?? '', MAX_ERROR)}`),
      ),
    ],
    hypotheses,
  };
}

// ---- pieces ---------------------------------------------------------------------------------------

/** A metric value with five significant digits: enough to see a 0.1% change in NE. */
export function formatValue(v: number): string {
  return Number.isFinite(v) ? String(Number(v.toPrecision(5))) : 'n/a';
}

export function formatPct(v: number): string {
  return `${v > 0 ? '+' : ''}${v.toFixed(2)}%`;
}

/** "2h 03m 05s", "4m 10s", "12s". */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  const pad = (x: number) => String(x).padStart(2, '0');
  if (h > 0) return `${h}h ${pad(m)}m ${pad(rest)}s`;
  if (m > 0) return `${m}m ${pad(rest)}s`;
  return `${rest}s`;
}

/** Untrusted text on one line, without control characters, at most `max` characters. */
export function oneLine(text: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

const show = (v: KnobValue | undefined): string => (v === undefined ? '—' : String(v));

function configDiff(
  baseline: Config | undefined,
  final: Config,
  delta: Config,
): CampaignReport['configDiff'] {
  if (!baseline) {
    return Object.keys(delta)
      .sort()
      .map((knob) => ({ knob, baseline: '—', final: show(delta[knob]) }));
  }
  return [...new Set([...Object.keys(baseline), ...Object.keys(final)])]
    .sort()
    .filter((knob) => baseline[knob] !== final[knob])
    .map((knob) => ({ knob, baseline: show(baseline[knob]), final: show(final[knob]) }));
}

function headlineOf(data: ReportData): string[] {
  const { campaign } = data;
  const r = campaign.result;
  if (!r) {
    if (campaign.status === 'failed') return ['The campaign failed before it reached a result.'];
    if (campaign.status === 'terminated' || campaign.status === 'timed_out')
      return [
        `The campaign's workflow was ${campaign.status === 'terminated' ? 'terminated' : 'timed out'} in Temporal before it reached a result (the status line says how).`,
      ];
    const done = data.experiments.filter((e) => e.status === 'succeeded').length;
    return [
      `No result yet: the campaign is ${campaign.status} (phase ${campaign.phase}), with ${done} finished experiment(s).`,
    ];
  }
  const lines: string[] = [];
  const at = `at fidelity ${r.fidelity}`;
  const base = `baseline ${r.metric} ${formatValue(r.baseline.value)} over ${r.baseline.replicates} replicate(s)`;
  if (r.confirmed !== undefined) {
    // Campaigns since v2: paired seeds, a posterior, and an answer that is flagged when not confirmed.
    const p = `P(gain > ${r.minGainPct ?? 0}%) = ${(r.probability ?? 0).toFixed(3)}`;
    if (r.best.hypothesisId === BASELINE_ID) {
      lines.push(
        `Nothing beat the baseline at full fidelity on paired seeds: the answer is the baseline (${base}, ${at}).`,
      );
    } else {
      lines.push(
        `${r.best.hypothesisId} (${r.best.source}) improves ${r.metric} by ${formatPct(r.gainPct)} over the baseline (95% interval ${formatPct(r.gainCi.low)} to ${formatPct(r.gainCi.high)}; ${p}: ${r.confirmed ? 'a confirmed win' : 'NOT confirmed: the best found, which may be noise'}).`,
        `Measured ${at} on ${r.best.replicates} paired seed(s): ${r.metric} ${formatValue(r.best.value)} against ${base}.`,
      );
    }
    if (r.spentPct !== undefined)
      lines.push(
        `The campaign spent ${r.spentPct.toFixed(1)}% of its budget${r.stopReason ? `; it stopped because ${oneLine(r.stopReason, MAX_ERROR)}` : ''}.`,
      );
  } else if (r.best.hypothesisId === BASELINE_ID) {
    lines.push(`Nothing beat the baseline: the final config is the baseline (${base}, ${at}).`);
    if (r.unconfirmed) {
      const u = r.unconfirmed;
      lines.push(
        `The final candidate ${u.hypothesisId} was not confirmed: over its confirmation replicates its gain was ${formatPct(u.gainPct)} (95% CI ${formatPct(u.low)} to ${formatPct(u.high)}), not beyond noise.`,
      );
    }
  } else {
    const verdict = r.significant
      ? 'significant: the interval excludes zero'
      : 'not significant: the interval includes zero, so this may be noise';
    lines.push(
      `${r.best.hypothesisId} (${r.best.source}) improves ${r.metric} by ${formatPct(r.gainPct)} over the baseline (95% CI ${formatPct(r.gainCi.low)} to ${formatPct(r.gainCi.high)}; ${verdict}).`,
      `Measured ${at}: ${r.metric} ${formatValue(r.best.value)} over ${r.best.replicates} replicate(s) against ${base}.`,
    );
  }
  if (r.status === 'aborted')
    lines.push(`The campaign was aborted early${r.reason ? `: ${oneLine(r.reason, MAX_ERROR)}` : ''}.`);
  return lines;
}

function approvalOf(data: ReportData): string {
  const approval = data.campaign.input.approval as { required?: boolean } | undefined;
  if (!approval?.required) return 'Approval was not required: the plan ran as written.';
  // Only preflight runs before the gate: anything later means the plan was approved.
  const ranPastPlan = data.experiments.some((e) => e.phase !== 'preflight');
  const round = data.campaign.plan?.round;
  return ranPastPlan
    ? `Approval was required; an engineer approved ${round ? `round ${round} of ` : ''}the plan.`
    : 'Approval was required; the plan was not approved (no experiment ran past preflight).';
}

/** Successful runs' primary values by hypothesis and fidelity. */
function measurements(experiments: readonly ReportExperiment[]): Map<string, Map<number, number[]>> {
  const out = new Map<string, Map<number, number[]>>();
  for (const e of experiments) {
    if (e.status !== 'succeeded' || e.primaryValue === null) continue;
    const byFidelity = out.get(e.hypothesisId) ?? new Map<number, number[]>();
    out.set(e.hypothesisId, byFidelity);
    byFidelity.set(e.fidelity, [...(byFidelity.get(e.fidelity) ?? []), e.primaryValue]);
  }
  return out;
}

/**
 * Every measured hypothesis at its highest fidelity where the baseline was measured too, best
 * first; the gain's interval uses the baseline's replicates as the noise floor, as the campaign does.
 */
function leaderboardOf(
  experiments: readonly ReportExperiment[],
  metric: PrimaryMetric | undefined,
): LeaderboardRow[] {
  const values = measurements(experiments);
  const baseline = values.get(BASELINE_ID) ?? new Map<number, number[]>();
  const sourceOf = new Map(experiments.map((e) => [e.hypothesisId, e.source]));
  const sign = metric?.direction === 'maximize' ? -1 : 1;
  const rows: LeaderboardRow[] = [];
  for (const [id, byFidelity] of values) {
    if (id === BASELINE_ID) continue;
    const fidelities = [...byFidelity.keys()].sort((a, b) => b - a);
    const f = fidelities.find((x) => baseline.has(x)) ?? fidelities[0];
    const cand = f === undefined ? undefined : byFidelity.get(f);
    if (f === undefined || !cand?.length) continue;
    const base = baseline.get(f);
    let gain: LeaderboardRow['gain'];
    if (metric && base?.length) {
      const ci = diffInterval(
        base.map((v) => sign * v),
        cand.map((v) => sign * v),
        sampleStd(base),
      );
      const pct = (x: number) => (x / Math.abs(mean(base))) * 100;
      gain = { pct: pct(ci.diff), low: pct(ci.low), high: pct(ci.high) };
    }
    rows.push({
      hypothesisId: id,
      source: sourceOf.get(id) ?? '?',
      fidelity: f,
      n: cand.length,
      mean: mean(cand),
      ...(gain ? { gain } : {}),
    });
  }
  return rows.sort(
    (a, b) =>
      b.fidelity - a.fidelity ||
      (b.gain?.pct ?? -Infinity) - (a.gain?.pct ?? -Infinity) ||
      // Without a direction there is no "better": keep a stable order.
      (metric ? sign * (a.mean - b.mean) : 0) ||
      a.hypothesisId.localeCompare(b.hypothesisId),
  );
}

function failuresOf(experiments: readonly ReportExperiment[], result: CampaignResult | null): FailureRow[] {
  const fromResult = new Map((result?.failures ?? []).map((f) => [f.experimentId, f.action]));
  return experiments
    .filter((e) => e.status === 'failed' || e.status === 'cancelled')
    .map((e) => ({
      experimentId: e.id,
      hypothesisId: e.hypothesisId,
      phase: e.phase,
      failureClass: e.failureClass ?? e.status,
      error: oneLine(e.error ?? '', MAX_ERROR),
      action:
        e.runbookAction ??
        fromResult.get(e.id) ??
        (e.status === 'cancelled'
          ? 'none: cancelled'
          : 'not recorded (the campaign had not answered it yet)'),
    }));
}

function countsOf(experiments: readonly ReportExperiment[]): CampaignResult['experiments'] {
  return {
    total: experiments.length,
    succeeded: experiments.filter((e) => e.status === 'succeeded').length,
    failed: experiments.filter((e) => e.status === 'failed').length,
    cancelled: experiments.filter((e) => e.status === 'cancelled').length,
    retried: experiments.filter((e) => e.attempt > 1).length,
    skipped: 0,
  };
}

const phaseRank = (p: string) => {
  const i = PHASE_ORDER.indexOf(p);
  return i < 0 ? PHASE_ORDER.length : i;
};

function budgetOf(data: ReportData): CampaignReport['budget'] {
  const { campaign, experiments } = data;
  const result = campaign.result;
  let byPhase: Record<string, Spend>;
  let used: Spend;
  if (result) {
    byPhase = result.budget.byPhase;
    used = result.budget.used;
  } else {
    byPhase = {};
    used = { experiments: 0, gpuHours: 0 };
    for (const e of experiments) {
      const p = (byPhase[e.phase] ??= { experiments: 0, gpuHours: 0 });
      p.experiments += 1;
      p.gpuHours += e.costGpuHours;
      used = { experiments: used.experiments + 1, gpuHours: used.gpuHours + e.costGpuHours };
    }
  }
  const inputBudget = campaign.input.budget as CampaignResult['budget']['limit'] | undefined;
  const split = result?.split ?? (campaign.input.split as Record<string, number> | undefined);
  return {
    limit: result?.budget.limit ?? inputBudget ?? {},
    used,
    byPhase: Object.entries(byPhase)
      .sort(([a], [b]) => phaseRank(a) - phaseRank(b) || a.localeCompare(b))
      .map(([phase, s]) => ({ phase, experiments: s.experiments, gpuHours: s.gpuHours })),
    ...(split ? { split } : {}),
  };
}

function sourcesOf(
  experiments: readonly ReportExperiment[],
  leaderboard: readonly LeaderboardRow[],
  winIds: ReadonlySet<string>,
): SourceRow[] {
  const hypotheses = new Map<string, { source: string; rationale: string; measured: boolean }>();
  for (const e of experiments) {
    if (e.role !== 'candidate' || e.hypothesisId === BASELINE_ID) continue;
    const h = hypotheses.get(e.hypothesisId) ?? { source: e.source, rationale: e.rationale, measured: false };
    h.measured ||= e.status === 'succeeded' && e.primaryValue !== null;
    hypotheses.set(e.hypothesisId, h);
  }
  const gainOf = new Map(leaderboard.map((r) => [r.hypothesisId, r.gain?.pct]));
  const seen = [...new Set([...hypotheses.values()].map((h) => h.source))].filter(
    (s) => !(SOURCES as readonly string[]).includes(s),
  );
  return [...SOURCES, ...seen.sort()].map((source) => {
    const mine = [...hypotheses]
      .filter(([, h]) => h.source === source)
      .map(([id, h]) => {
        const outcome: 'won' | 'lost' | 'failed' = winIds.has(id) ? 'won' : h.measured ? 'lost' : 'failed';
        const gainPct = gainOf.get(id);
        return {
          hypothesisId: id,
          outcome,
          ...(gainPct === undefined ? {} : { gainPct }),
          rationale: oneLine(h.rationale, MAX_RATIONALE),
        };
      });
    const rank = { won: 0, lost: 1, failed: 2 };
    mine.sort(
      (a, b) =>
        rank[a.outcome] - rank[b.outcome] ||
        (b.gainPct ?? -Infinity) - (a.gainPct ?? -Infinity) ||
        a.hypothesisId.localeCompare(b.hypothesisId),
    );
    return {
      source,
      tally: {
        source,
        won: mine.filter((h) => h.outcome === 'won').length,
        lost: mine.filter((h) => h.outcome === 'lost').length,
        failed: mine.filter((h) => h.outcome === 'failed').length,
      },
      top: mine.slice(0, TOP_PER_SOURCE),
    };
  });
}

function chartsOf(
  data: ReportData,
  budget: CampaignReport['budget'],
  sources: readonly SourceRow[],
): CampaignReport['charts'] {
  const finished = data.experiments
    .filter((e) => e.status === 'succeeded' || e.status === 'failed' || e.status === 'cancelled')
    .sort(
      (a, b) =>
        (a.finishedAt ?? '\uffff').localeCompare(b.finishedAt ?? '\uffff') || a.id.localeCompare(b.id),
    );
  const metricName = data.metric?.name ?? 'primary metric';
  const runs: MetricRun[] = finished.map((e) => {
    const value = e.status === 'succeeded' ? e.primaryValue : null;
    const what =
      value !== null
        ? `${metricName} ${formatValue(value)}`
        : e.status === 'succeeded'
          ? `no ${metricName} in its metrics`
          : `${e.status} (${e.failureClass ?? 'unknown'})`;
    return {
      phase: e.phase,
      baseline: e.role === 'baseline',
      value,
      title: `${e.id} · ${e.hypothesisId} · fidelity ${e.fidelity} · seed ${e.seed} · ${what}`,
    };
  });
  return {
    metric: metricChart({
      metric: metricName,
      ...(data.metric ? { direction: data.metric.direction } : {}),
      runs,
    }),
    budget: budgetChart({
      launches: data.experiments.map((e) => ({ phase: e.phase, costGpuHours: e.costGpuHours })),
      limit: budget.limit,
    }),
    sources: sourceChart(sources.map((s) => s.tally)),
  };
}

/** Domain records shared by workflows and activities. Sandbox-safe. */
import type { Config } from './model-spec';

export type HypothesisSource = 'planner' | 'history' | 'research' | 'llm' | 'human' | 'baseline';

export interface Hypothesis {
  /** Stable within a campaign; derived from the delta so that re-planning never doubles one. */
  id: string;
  source: HypothesisSource;
  rationale: string;
  /** Knob values that differ from the baseline. */
  delta: Config;
}

/** Why a training job did not produce a result; the runbook reads these. */
export type FailureClass = 'bad_config' | 'oom' | 'nan' | 'timeout' | 'lost' | 'cancelled' | 'crash';

export type Phase = 'preflight' | 'validation' | 'combination' | 'exploitation' | 'done';

export interface ExperimentRequest {
  campaignId: string;
  experimentId: string;
  model: string;
  phase: Phase;
  role: 'baseline' | 'candidate';
  attempt: number;
  /** GPU-hours the budget was charged for this run. */
  costGpuHours: number;
  hypothesis: Hypothesis;
  /** Full config: baseline overlaid with the hypothesis delta. */
  config: Config;
  fidelity: number;
  seed: number;
  pollIntervalSec: number;
}

export type Metrics = Record<string, number>;

export type ExperimentOutcome =
  | { status: 'succeeded'; metrics: Metrics; wallTimeSec: number }
  | { status: 'failed'; failureClass: FailureClass; message: string; wallTimeSec: number };

export interface ExperimentResult {
  experimentId: string;
  hypothesis: Hypothesis;
  config: Config;
  outcome: ExperimentOutcome;
}

export interface Spend {
  experiments: number;
  gpuHours: number;
}

export interface CampaignResult {
  campaignId: string;
  model: string;
  status: 'completed' | 'aborted';
  /** Why the campaign stopped early, when it did. */
  reason?: string;
  metric: string;
  direction: 'minimize' | 'maximize';
  /** The fidelity the final comparison was made at. */
  fidelity: number;
  baseline: { value: number; replicates: number };
  best: {
    hypothesisId: string;
    source: string;
    config: Config;
    delta: Config;
    value: number;
    replicates: number;
  };
  /** Relative improvement of the primary metric over the baseline, in percent (positive is better). */
  gainPct: number;
  /** 95% confidence interval of the gain, in percent. */
  gainCi: { low: number; high: number };
  /** True when the win is more than noise (campaigns since v2: the same as `confirmed`). */
  significant: boolean;
  /** The answer is a confirmed win: P(gain > minGainPct) ≥ 0.95 on paired seeds (v2). */
  confirmed?: boolean;
  /** P(gain > minGainPct) of the answer (v2). */
  probability?: number;
  minGainPct?: number;
  /** Share of the budget spent, in % (v2). */
  spentPct?: number;
  /** Why the campaign stopped where it did (v2): the budget is spent, the space is exhausted... */
  stopReason?: string;
  /** The fidelity ladder the campaign screened on (v2). */
  rungs?: number[];
  wins: { hypothesisId: string; gainPct: number; phase: Phase; synergyPct?: number }[];
  /** The final candidate, when its confirmation replicates did not beat the baseline beyond noise. */
  unconfirmed?: { hypothesisId: string; gainPct: number; low: number; high: number };
  experiments: {
    total: number;
    succeeded: number;
    failed: number;
    cancelled: number;
    retried: number;
    skipped: number;
  };
  budget: { limit: { experiments?: number; gpuHours?: number }; used: Spend; byPhase: Record<string, Spend> };
  /** How the answer evolved: each change of the best config, with the budget used when it changed. */
  answerTrail?: { hypothesisId: string; delta: Config; experiments: number; gpuHours: number }[];
  split: { validation: number; combination: number; exploitation: number };
  failures: { experimentId: string; hypothesisId: string; failureClass: FailureClass; action: string }[];
  /** The report files the campaign wrote when it ended (markdown and HTML with charts). */
  report?: { markdown: string; html: string };
}

/** Relative gain in percent; positive when `value` is better than `baseline` in the metric's direction. */
export function relativeGainPct(baseline: number, value: number, direction: 'minimize' | 'maximize'): number {
  if (baseline === 0) return 0;
  const diff = direction === 'minimize' ? baseline - value : value - baseline;
  return (diff / Math.abs(baseline)) * 100;
}

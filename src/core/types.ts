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

export interface ExperimentRequest {
  campaignId: string;
  experimentId: string;
  model: string;
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

export interface CampaignResult {
  campaignId: string;
  model: string;
  metric: string;
  baseline: { experimentId: string; value: number };
  best: { experimentId: string; hypothesisId: string; config: Config; value: number; delta: Config };
  /** Relative improvement of the primary metric over the baseline, in percent (positive is better). */
  gainPct: number;
  experiments: { total: number; succeeded: number; failed: number };
}

/** Relative gain in percent; positive when `value` is better than `baseline` in the metric's direction. */
export function relativeGainPct(baseline: number, value: number, direction: 'minimize' | 'maximize'): number {
  if (baseline === 0) return 0;
  const diff = direction === 'minimize' ? baseline - value : value - baseline;
  return (diff / Math.abs(baseline)) * 100;
}

/**
 * A campaign's state: compact, JSON-serializable, carried across continue-as-new. The rules that
 * change it live in ./machine.ts. Sandbox-safe.
 */
import type { Budget, CampaignSettings } from '../campaign-input';
import type { Config } from '../model-spec';
import type { NoiseEstimate } from '../search/inference';
import type { Observation } from '../search/planner';
import { BASELINE_ID } from '../search/space';
import type { CampaignResult, FailureClass, HypothesisSource, Phase, Spend } from '../types';

/** How a config entered the campaign. */
export type Origin =
  'baseline' | 'evidence' | 'design' | 'model' | 'merge' | 'local' | 'llm' | 'human' | 'runbook' | 'simplify';

export interface ConfigEntry {
  delta: Config;
  source: HypothesisSource;
  origin: Origin;
  rationale: string;
  /** The highest rung (index into `rungs`) the config was started at; -1 before its first run. */
  rung: number;
  /** Why no more runs go to this config (lost a race, dropped by the runbook...). */
  closed?: string;
}

/**
 * A queued config and where it starts: the bottom rung (new ideas), the rung below the top (informed
 * ones: merges, local moves — screened once before they may race), or the top (a race at once:
 * earlier campaigns' answers, a person's hypothesis).
 */
export interface QueueItem {
  configId: string;
  entry: 'bottom' | 'near-top' | 'top';
}

/** What a run is for: screening on a rung, a race at the top, confirming the answer, the baseline. */
export type Purpose = 'screen' | 'race' | 'confirm' | 'baseline';

export interface RunningItem {
  configId: string;
  /** Index into `rungs`. */
  rung: number;
  /** The evaluation index: its trainer seed is the campaign seed + k, for every config alike. */
  k: number;
  attempt: number;
  purpose: Purpose;
  cost: Spend;
  phase: Phase;
}

export type Stage = 'preflight' | 'approval' | 'running' | 'finishing' | 'done';

export type ApprovalStatus =
  'not-required' | 'awaiting-plan' | 'waiting' | 'approved' | 'rejected' | 'timed-out';

export interface Plan {
  slate: { id: string; rationale: string }[];
  estimate: Spend;
  /** What the budget buys, in words, for the engineer who approves. */
  strategy: string[];
  split: CampaignSettings['split'];
  fidelity: { low: number; mid: number; high: number };
  rungs: number[];
  round: number;
}

export interface Evidence {
  /** Observations from earlier campaigns (this model and similar ones), weighted. */
  prior: Observation[];
  /** Hypotheses to try: history's best, research cards, the LLM's picks. */
  hypotheses: { delta: Config; source: HypothesisSource; rationale: string; entry: 'bottom' | 'top' }[];
  /** Pooled paired-difference noise of earlier campaigns on this model, in gain-%². */
  noise?: NoiseEstimate;
  notes: string[];
}

export interface AnswerChange {
  hypothesisId: string;
  experiments: number;
  gpuHours: number;
}

export interface CampaignState {
  version: 2;
  stage: Stage;
  phase: Phase;
  budget: Budget;
  used: Spend;
  byPhase: Record<string, Spend>;
  /** Fidelity ladder, low to high; `bottom` is where new configs start (a rung that does not predict the next is dropped). */
  rungs: number[];
  bottom: number;
  /** Rung ranks checked against the next rung's: Spearman's rho by rung index, once measured. */
  rankChecks: Record<string, number>;
  nextIndex: number;
  proposals: number;
  configs: Record<string, ConfigEntry>;
  /** Primary-metric values by config id, then by `${rung}:${k}`. */
  results: Record<string, Record<string, number>>;
  /** Failed attempts by `${configId}@${rung}:${k}`, so that a run is retried at most as the runbook allows. */
  attempts: Record<string, number>;
  running: Record<string, RunningItem>;
  /** Runs to repeat exactly as they were (their job was lost). */
  retries: { configId: string; rung: number; k: number; purpose: Purpose }[];
  queue: QueueItem[];
  incumbent: string;
  /** Configs that took over as incumbent, in order (the campaign's validated wins). */
  wins: { hypothesisId: string; gainPct: number; phase: Phase }[];
  trail: AnswerChange[];
  evidence: {
    status: 'none' | 'requested' | 'received';
    round: number;
    prior: Observation[];
    noise?: NoiseEstimate;
    notes: string[];
  };
  llm: { calls: number; inFlight: boolean; proposed: number };
  design: { done: boolean };
  merged: string[];
  excludedKnobs: string[];
  approval: { status: ApprovalStatus; feedback: string[]; since?: number };
  plan?: Plan;
  paused: boolean;
  draining: boolean;
  aborting?: string;
  stopReason?: string;
  dropped: { hypothesisId: string; why: string }[];
  failures: CampaignResult['failures'];
  counts: CampaignResult['experiments'];
  recordedStart: boolean;
  runs: number;
  /**
   * Activities that failed for good (their retry policy's attempts spent), newest last, at most
   * ACTIVITY_FAILURES_KEPT: the status query and the current details name them. Absent in states
   * carried from before the activity profiles.
   */
  activityFailures?: ActivityFailureNote[];
  /**
   * The answer's rules of 2026-11-30 (patch `campaign-answer-v3`): the incumbent is simplified
   * (CampaignMachine.simplifyWork; `tried`: the incumbents already simplified), each config's noise
   * is moderated between its own scatter and the pool's, and an unconfirmed best yields to a
   * confirmed incumbent within one standard error. Absent in campaigns started before them, which
   * keep their rules (a replayed history must make the same decisions). `v4` (patch
   * `campaign-answer-v4`): the prior's spread of true gains is read with each config's own
   * moderated noise, not the pool's (CampaignMachine.computeTau2); with too few replicated configs
   * to moderate, a config whose scatter differs from the others' (F test) is judged by its own
   * (noiseOf); a promotion reference far ahead at a rung gets a second look (promotionWork).
   * `v5` (patch `campaign-answer-v5`): the endgame — the last of the budget finishes the races that
   * lead before it pays for anything else, and no new challenger enters the top rung unless its
   * whole race is paid for (CampaignMachine.endgame); a config whose first two seeds at a rung gave
   * the very same number is not run again there (seedInvariant: its value is recorded, counted in
   * `counts.skipped`), and the baseline's third seed waits for its first two.
   */
  answerRules?: { on: boolean; tried: string[]; v4?: boolean; v5?: boolean };
}

/** An activity that failed for good: which, why (its last error, its attempts) and when (workflow time, ms). */
export interface ActivityFailureNote {
  activity: string;
  message: string;
  at: number;
}

export const ACTIVITY_FAILURES_KEPT = 10;

export { BASELINE_ID };

export function initialState(input: CampaignSettings, rungs: number[]): CampaignState {
  return {
    version: 2,
    stage: 'preflight',
    phase: 'preflight',
    budget: input.budget,
    used: { experiments: 0, gpuHours: 0 },
    byPhase: {},
    rungs,
    bottom: 0,
    rankChecks: {},
    nextIndex: 0,
    proposals: 0,
    configs: {
      [BASELINE_ID]: {
        delta: {},
        source: 'baseline',
        origin: 'baseline',
        rationale: 'the model as it is today',
        rung: -1,
      },
    },
    results: {},
    attempts: {},
    running: {},
    retries: [],
    queue: [],
    incumbent: BASELINE_ID,
    wins: [],
    trail: [],
    evidence: { status: 'none', round: 0, prior: [], notes: [] },
    llm: { calls: 0, inFlight: false, proposed: 0 },
    design: { done: false },
    merged: [],
    excludedKnobs: [],
    approval: { status: input.approval.required ? 'awaiting-plan' : 'not-required', feedback: [] },
    paused: false,
    draining: false,
    dropped: [],
    failures: [],
    counts: { total: 0, succeeded: 0, failed: 0, cancelled: 0, retried: 0, skipped: 0 },
    recordedStart: false,
    runs: 1,
    answerRules: { on: true, tried: [], v4: true, v5: true },
  };
}

/** Failure classes the machine sees from a finished experiment. */
export type { FailureClass };

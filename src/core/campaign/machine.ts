/**
 * The campaign's rules, as one pure state machine: `nextAction(state, event)` changes the state and
 * returns the effects the workflow shell (or the in-process runner) must carry out — launch a
 * training run, gather evidence, ask the LLM, record a phase, finish. Sandbox-safe, deterministic.
 *
 * The search, in REA's phases, each running until its share of the budget is spent:
 *   preflight     the baseline at full fidelity on seeds 0..R−1 (noise; every later comparison is
 *                 paired on these seeds) and once at each lower rung; evidence (history, research,
 *                 LLM); the plan, and the approval gate.
 *   validation    a space-filling start (every knob moved once, a Latin hypercube, the evidence's
 *                 picks), then multivariate TPE, screened on the fidelity ladder with asynchronous
 *                 successive halving (a rung whose ranks do not predict the next rung's is dropped);
 *                 a config that reaches full fidelity races the incumbent on the incumbent's seeds.
 *   combination   merges of the best distinct configs race the incumbent; then more exploration.
 *   exploitation  the incumbent without the changes that show no sign of mattering races it (a
 *                 simpler answer pairs with the baseline); local moves around the incumbent race it;
 *                 paired seeds firm up the answer.
 * The answer is the best posterior mean with at least R seeds (an unconfirmed best yields to a
 * confirmed incumbent within one standard error); a confirmed win needs P(gain > minGainPct) ≥ 0.95
 * under a skeptical (empirical-Bayes) prior on paired differences.
 */
import { attentionFlags, budgetLine, leaderboardTable } from './details';
import type { Budget, CampaignSettings } from '../campaign-input';
import {
  baselineConfig,
  configProblems,
  hasKnob,
  jobCost,
  knobsWithRole,
  type Config,
  type ModelSpec,
} from '../model-spec';
import { decideByRole, LOST_ATTEMPTS } from '../runbook';
import {
  fitModeration,
  mean,
  moderatedNoise,
  noiseVariance,
  poolDifferences,
  posterior,
  priorVariance,
  varianceRatioP,
  probAbove,
  signedRankP,
  spearman,
  variance,
  type Posterior,
} from '../search/inference';
import { knobEvidence } from '../search/importance';
import { BASELINE_ID, hypothesisId, mixSeed, SearchSpace, seededRandom, shuffle } from '../search/space';
import { RandomPlanner, type Observation, type Planner } from '../search/planner';
import { TpePlanner } from '../search/tpe';
import type { CampaignResult, FailureClass, Hypothesis, HypothesisSource, Phase, Spend } from '../types';
import { ACTIVITY_FAILURES_KEPT } from './state';
import type {
  ActivityFailureNote,
  CampaignState,
  ConfigEntry,
  Evidence,
  Origin,
  Plan,
  Purpose,
  QueueItem,
  RunningItem,
} from './state';

export type CampaignEvent =
  | { type: 'start' }
  | { type: 'evidence'; evidence: Evidence; llmAvailable: boolean }
  | { type: 'evidenceFailed'; message: string }
  | { type: 'llmSuggestions'; hypotheses: Evidence['hypotheses'] }
  | { type: 'llmFailed'; message: string }
  | {
      type: 'finished';
      experimentId: string;
      value?: number;
      failure?: { failureClass: FailureClass; message: string };
    }
  | { type: 'approve' }
  | { type: 'reject'; feedback: string; excludeKnobs: string[] }
  | { type: 'approvalTimeout' }
  | { type: 'setBudget'; budget: Budget }
  | { type: 'addHypothesis'; delta: Config; rationale: string }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'abort'; reason: string }
  | { type: 'drain' };

export interface Launch {
  experimentId: string;
  item: RunningItem;
  hypothesis: Hypothesis;
  config: Config;
  fidelity: number;
  seed: number;
  role: 'baseline' | 'candidate';
}

/** What the LLM is shown mid-campaign: the optimizer's state, compact. */
export interface LlmRequest {
  round: number;
  count: number;
  incumbent: { delta: Config; gainPct: number };
  best: { delta: Config; gainPct: number; fidelity: number; runs: number }[];
  worst: { delta: Config; gainPct: number; fidelity: number }[];
  tried: number;
  excludeKnobs: string[];
  phase: Phase;
}

export type Effect =
  | { type: 'launch'; launch: Launch }
  | { type: 'gatherEvidence'; round: number; excludeKnobs: string[]; feedback: string[]; count: number }
  | { type: 'askLlm'; request: LlmRequest }
  | { type: 'recordPhase'; phase: Phase; plan?: Plan }
  | { type: 'recordRunbook'; experimentId: string; action: string }
  | { type: 'cancelAll' }
  | { type: 'awaitApproval' }
  | { type: 'finish'; status: 'completed' | 'aborted' }
  | { type: 'fail'; message: string; failureType: string };

/** The `status` query's answer. */
export interface CampaignStatus {
  phase: Phase;
  stage: CampaignState['stage'];
  paused: boolean;
  aborting?: string;
  approval: CampaignState['approval'];
  plan?: Plan;
  budget: {
    limit: Budget;
    used: Spend;
    byPhase: Record<string, Spend>;
    split: CampaignSettings['split'];
    spentPct: number;
  };
  answer: AnswerView;
  incumbent: string;
  rungs: number[];
  running: { experimentId: string; hypothesisId: string; fidelity: number; seed: number; purpose: string }[];
  queued: number;
  wins: CampaignState['wins'];
  leaderboard: ReturnType<CampaignMachine['leaderboard']>;
  experiments: CampaignState['counts'];
  run: number;
  /** Activities that failed for good, newest last: which, why, when. */
  activityFailures: ActivityFailureNote[];
}

/** What the campaign says about its answer, for the result, the status query and the report. */
export interface AnswerView {
  hypothesisId: string;
  seeds: number;
  gainPct: number;
  raw: number;
  low: number;
  high: number;
  probability: number;
  confirmed: boolean;
}

const TOP_MERGES = 3;
/** Configs a rung needs before the planner's model learns from it rather than from a lower rung. */
const MODEL_MIN_CONFIGS = 8;
const LOCAL_CANDIDATES = 24;
const MAX_LISTED = 200;
/** Share of the budget the search leaves for the informed picks while the evidence is on its way. */
const EVIDENCE_RESERVE = 0.25;
/** Full-fidelity runs held back for the open races (`held`) and for a new challenger's (`entry`). */
interface Endgame {
  held: number;
  entry: number;
}
const NO_ENDGAME: Endgame = { held: 0, entry: 0 };
/** Rung pairs needed before a rung's ranks are checked against the next rung's. */
const RANK_CHECK_PAIRS = 8;
/** Below this rank correlation a rung does not predict the next one and is dropped. */
const RANK_CHECK_MIN = 0.1;
/** A changed knob is kept in the simplified answer when its permutation p-value is at most this. */
const KEEP_KNOB_P = 0.1;
/** Simplifications raced per campaign. */
const MAX_SIMPLIFICATIONS = 2;

/** The fidelity ladder: rungs a factor `eta` apart from `high` down to `low`, when that pays. */
export function fidelityLadder(levels: { low: number; high: number }, eta: number, budget: Budget): number[] {
  const { low, high } = levels;
  // Multi-fidelity pays only when a lower fidelity is cheaper in the budget's currency.
  if (budget.gpuHours === undefined || high / low < 9) return [high];
  const rungs = [high];
  for (let f = high / eta; f >= low * 0.999; f /= eta) rungs.unshift(Math.max(low, Math.round(f)));
  return [...new Set(rungs)];
}

export class CampaignMachine {
  private readonly sign: number;
  private effects: Effect[] = [];
  private spaceCache?: { key: string; space: SearchSpace };
  /**
   * What the inference derives from the results (seeds, paired differences, the noise model),
   * computed once until the results change: without it, the answer alone re-pools every config's
   * differences for each config, and a campaign of a thousand experiments spent most of each event
   * listing seeds (a workflow task of seconds, replays of minutes).
   */
  private readonly memo = new Map<string, unknown>();

  private memoized<T>(key: string, compute: () => T): T {
    if (this.memo.has(key)) return this.memo.get(key) as T;
    const value = compute();
    this.memo.set(key, value);
    return value;
  }

  constructor(
    readonly state: CampaignState,
    readonly spec: ModelSpec,
    readonly input: CampaignSettings,
  ) {
    this.sign = spec.metric.direction === 'minimize' ? 1 : -1;
    this.baseline = baselineConfig(spec);
  }

  /** The spec's baseline config, built once (every config is this plus its delta). */
  private readonly baseline: Config;

  /** The search space without the knobs an engineer excluded (rebuilt when they change). */
  get space(): SearchSpace {
    const key = this.state.excludedKnobs.join(',');
    if (this.spaceCache?.key !== key)
      this.spaceCache = { key, space: new SearchSpace(this.spec, this.state.excludedKnobs) };
    return this.spaceCache.space;
  }

  private get top(): number {
    return this.state.rungs.length - 1;
  }

  // ---- the reducer --------------------------------------------------------------------------

  handle(event: CampaignEvent): Effect[] {
    this.effects = [];
    this.memo.clear();
    const s = this.state;
    switch (event.type) {
      case 'start':
        if (s.evidence.status === 'none') this.requestEvidence();
        break;
      case 'evidence':
        this.takeEvidence(event.evidence, event.llmAvailable);
        break;
      case 'evidenceFailed':
        s.evidence.status = 'received';
        s.evidence.notes.push(`evidence not gathered: ${event.message}`);
        break;
      case 'llmSuggestions':
        s.llm.inFlight = false;
        for (const h of event.hypotheses) this.enqueue(h.delta, 'llm', 'llm', h.rationale, 'bottom', true);
        break;
      case 'llmFailed':
        s.llm.inFlight = false;
        break;
      case 'finished':
        this.finished(event);
        break;
      case 'approve':
        if (s.approval.status === 'waiting') {
          s.approval.status = 'approved';
          s.stage = 'running';
        }
        break;
      case 'reject':
        if (s.approval.status === 'waiting') {
          s.approval = { status: 'rejected', feedback: [...s.approval.feedback, event.feedback] };
          s.excludedKnobs = [...new Set([...s.excludedKnobs, ...event.excludeKnobs])];
          // The queue came from the rejected plan: re-plan from new evidence, without the excluded knobs.
          s.queue = [];
          s.design.done = false;
          delete s.plan;
          this.requestEvidence();
        }
        break;
      case 'approvalTimeout':
        if (s.approval.status === 'waiting') {
          if (this.input.approval.onTimeout === 'approve') {
            s.approval.status = 'approved';
            s.stage = 'running';
          } else {
            s.approval.status = 'timed-out';
            this.abort(`the plan was not approved within ${this.input.approval.timeoutHours} hours`);
          }
        }
        break;
      case 'setBudget':
        s.budget = event.budget;
        if (s.stage === 'finishing' && !s.aborting) {
          s.stage = 'running';
          delete s.stopReason;
        }
        break;
      case 'addHypothesis':
        this.enqueue(event.delta, 'human', 'human', event.rationale, 'top', true);
        break;
      case 'pause':
        s.paused = true;
        break;
      case 'resume':
        s.paused = false;
        break;
      case 'abort':
        this.abort(event.reason);
        break;
      case 'drain':
        s.draining = true;
        break;
    }
    this.advance();
    return this.effects;
  }

  // ---- budget -------------------------------------------------------------------------------

  cost(rung: number): Spend {
    return { experiments: 1, gpuHours: jobCost(this.spec, this.state.rungs[rung] as number) };
  }

  /**
   * Whether the budget pays for `cost`, leaving `reserve` (a share of the budget) unspent and
   * `held` (full-fidelity runs promised to the open races: the endgame) for them.
   */
  affordable(cost: Spend, reserve = 0, held = 0): boolean {
    const { experiments, gpuHours } = this.state.budget;
    const u = this.state.used;
    const keep = 1 - reserve;
    const hold = held > 0 ? this.cost(this.top) : { experiments: 0, gpuHours: 0 };
    if (
      experiments !== undefined &&
      u.experiments + cost.experiments + held * hold.experiments > experiments * keep
    )
      return false;
    if (
      gpuHours !== undefined &&
      u.gpuHours + cost.gpuHours + held * hold.gpuHours > gpuHours * keep * (1 + 1e-9)
    )
      return false;
    return true;
  }

  /** Share of the budget spent (the binding currency's), 0..1. */
  spentShare(): number {
    const { experiments, gpuHours } = this.state.budget;
    const u = this.state.used;
    return Math.max(
      experiments !== undefined ? u.experiments / experiments : 0,
      gpuHours !== undefined ? u.gpuHours / gpuHours : 0,
    );
  }

  /** Full-fidelity runs the whole budget buys. */
  budgetTopRuns(): number {
    const { experiments, gpuHours } = this.state.budget;
    return Math.min(
      experiments ?? Infinity,
      gpuHours !== undefined ? gpuHours / this.cost(this.top).gpuHours : Infinity,
    );
  }

  /** High-fidelity runs the rest of the budget buys. */
  private remainingTopRuns(): number {
    const { experiments, gpuHours } = this.state.budget;
    const u = this.state.used;
    const c = this.cost(this.top);
    return Math.min(
      experiments !== undefined ? experiments - u.experiments : Infinity,
      gpuHours !== undefined ? (gpuHours - u.gpuHours) / c.gpuHours : Infinity,
    );
  }

  private phaseNow(): Phase {
    const s = this.state;
    if (s.stage === 'preflight' || s.stage === 'approval') return 'preflight';
    if (s.stage === 'done') return 'done';
    return this.spendPhase();
  }

  /** The phase the spend is in: each phase runs until its share (what earlier ones left included) is spent. */
  private spendPhase(): Exclude<Phase, 'preflight' | 'done'> {
    const share = this.spentShare();
    const { validation, combination } = this.input.split;
    if (share < validation) return 'validation';
    if (share < validation + combination) return 'combination';
    return 'exploitation';
  }

  budgetProblems(next: Budget): string[] {
    const problems: string[] = [];
    const u = this.state.used;
    if (next.experiments !== undefined && next.experiments < u.experiments)
      problems.push(`experiments: expected at least ${u.experiments} (already used)`);
    if (next.gpuHours !== undefined && next.gpuHours < u.gpuHours)
      problems.push(`gpuHours: expected at least ${u.gpuHours.toFixed(4)} (already used)`);
    return problems;
  }

  // ---- configs and results ------------------------------------------------------------------

  idOf(delta: Config): string {
    return this.space.key(delta);
  }

  config(id: string): Config {
    return { ...this.baseline, ...(this.state.configs[id]?.delta ?? {}) };
  }

  hypothesis(id: string): Hypothesis {
    const c = this.state.configs[id];
    if (!c) throw new Error(`unknown config ${id} (a bug: every run's config is registered first)`);
    return { id, source: c.source, rationale: c.rationale, delta: c.delta };
  }

  /** Registers a config by its effective delta; returns its id and whether it is new. */
  register(
    delta: Config,
    source: HypothesisSource,
    origin: Origin,
    rationale: string,
  ): { id: string; fresh: boolean } {
    const effective = this.space.delta(delta);
    const id = hypothesisId(effective);
    if (this.state.configs[id]) return { id, fresh: false };
    this.memo.clear();
    this.state.configs[id] = { delta: effective, source, origin, rationale, rung: -1 };
    return { id, fresh: true };
  }

  private enqueue(
    delta: Config,
    source: HypothesisSource,
    origin: Origin,
    rationale: string,
    entry: QueueItem['entry'],
    front = false,
  ): string | undefined {
    if (Object.keys(this.space.delta(delta)).some((k) => this.state.excludedKnobs.includes(k)))
      return undefined;
    const { id, fresh } = this.register(delta, source, origin, rationale);
    if (id === BASELINE_ID) return undefined;
    // A config registered before but never run (a rejected plan's) may be queued again.
    const known = this.state.configs[id] as ConfigEntry;
    if (!fresh && (known.rung >= 0 || known.closed || this.state.queue.some((q) => q.configId === id)))
      return undefined;
    if (origin === 'llm') this.state.llm.proposed += 1;
    if (front) this.state.queue.unshift({ configId: id, entry });
    else this.state.queue.push({ configId: id, entry });
    return id;
  }

  value(id: string, rung: number, k: number): number | undefined {
    return this.state.results[id]?.[`${rung}:${k}`];
  }

  /** Seeds (k) measured for `id` at `rung`, ascending (a shared array: do not change it). */
  seeds(id: string, rung: number): readonly number[] {
    return this.memoized(`seeds:${id}:${rung}`, () => {
      const out: number[] = [];
      for (const key of Object.keys(this.state.results[id] ?? {})) {
        const [r, k] = key.split(':').map(Number);
        if (r === rung) out.push(k as number);
      }
      return out.sort((a, b) => a - b);
    });
  }

  private baseMean(rung: number): number {
    return this.memoized(`baseMean:${rung}`, () => {
      const v = this.seeds(BASELINE_ID, rung).map((k) => this.value(BASELINE_ID, rung, k) as number);
      return v.length ? mean(v) : NaN;
    });
  }

  /** Paired gain (%) of `a` over `b` at rung and seed k, relative to the baseline's mean there. */
  private pairGain(a: string, b: string, rung: number, k: number): number | undefined {
    const va = this.value(a, rung, k);
    const vb = this.value(b, rung, k);
    const base = this.baseMean(rung);
    if (va === undefined || vb === undefined || !Number.isFinite(base) || base === 0) return undefined;
    return ((this.sign * (vb - va)) / Math.abs(base)) * 100;
  }

  /** Paired gains of `a` over `b` at `rung`, on the seeds both have (a shared array: do not change it). */
  diffs(a: string, b: string, rung: number): readonly number[] {
    return this.memoized(`diffs:${a}\u0000${b}:${rung}`, () =>
      this.seeds(a, rung).flatMap((k) => {
        const g = this.pairGain(a, b, rung, k);
        return g === undefined ? [] : [g];
      }),
    );
  }

  // ---- inference ----------------------------------------------------------------------------

  /** The pooled noise of paired differences at full fidelity (campaign + history), in gain-%². */
  noise(): { variance: number; df: number } {
    return this.memoized('noise', () => this.computeNoise());
  }

  /** Every candidate's paired differences with the baseline at full fidelity (shared arrays). */
  private topDiffSets(): readonly (readonly number[])[] {
    return this.memoized('topDiffSets', () => this.topDiffEntries().map((e) => e.d));
  }

  /** topDiffSets with each set's config id. */
  private topDiffEntries(): readonly { id: string; d: readonly number[] }[] {
    return this.memoized('topDiffEntries', () =>
      Object.keys(this.state.configs)
        .filter((id) => id !== BASELINE_ID)
        .map((id) => ({ id, d: this.diffs(id, BASELINE_ID, this.top) })),
    );
  }

  private computeNoise(): { variance: number; df: number } {
    const top = this.top;
    const pooled = poolDifferences(this.topDiffSets(), this.state.evidence.noise);
    if (pooled.df >= 1) return { variance: noiseVariance(pooled), df: pooled.df };
    // No replicated pair yet: the baseline's own scatter, as if runs were unpaired (cautious).
    const base = this.seeds(BASELINE_ID, top).map((k) => this.value(BASELINE_ID, top, k) as number);
    const m = mean(base);
    const rel = base.map((v) => (v / Math.abs(m)) * 100);
    const v = variance(rel);
    return Number.isFinite(v) && v > 0
      ? { variance: 2 * v, df: Math.max(1, base.length - 1) }
      : { variance: 1, df: 1 };
  }

  /** Empirical-Bayes prior variance of true gains at full fidelity (how far candidates' gains spread from 0). */
  private tau2(noiseVar: number): number {
    return this.memoized(`tau2:${noiseVar}`, () => this.computeTau2(noiseVar));
  }

  private computeTau2(noiseVar: number): number {
    const floor = (this.input.minGainPct / 2) ** 2 + 1e-6;
    // Answer rules v4: each config's gain scatters by its own noise (a config that re-seeds the run
    // scatters more than a paired one, and the pool's figure would credit noise to the paired one's gain).
    const own = this.state.answerRules?.v4;
    const gains = this.topDiffEntries()
      .filter((e) => e.d.length)
      .map((e) => ({
        mean: mean(e.d),
        n: e.d.length,
        ...(own ? { noise: this.noiseOf(e.id, e.d).variance } : {}),
      }));
    return priorVariance(gains, noiseVar, floor);
  }

  posteriorOf(id: string): Posterior | undefined {
    if (id === BASELINE_ID) return undefined;
    const d = this.diffs(id, BASELINE_ID, this.top);
    if (!d.length) return undefined;
    const noise = this.noise();
    return posterior(d, this.noiseOf(id, d), this.tau2(noise.variance));
  }

  /**
   * The noise of one config's paired differences: the pool's, or (answer rules v3) its own scatter
   * moderated toward the others' where their variances differ more than chance allows (a knob
   * that re-seeds the run unpairs a config from the baseline; one that does not keeps it paired).
   */
  private noiseOf(id: string, d: readonly number[]): { variance: number; df: number } {
    const pooled = this.noise();
    const rules = this.state.answerRules;
    if (!rules?.on) return pooled;
    const fit = this.memoized('moderation', () => fitModeration(this.topDiffSets()));
    if (fit) return moderatedNoise(d, fit);
    // Too few replicated configs to fit the moderation (v4): a config whose own scatter differs
    // from the other configs' beyond chance (an F test) is judged by its own, as a paired t test.
    if (!rules.v4 || d.length < 3) return pooled;
    // The others' pool: every set's (without the history's) less this one's (d is one of the sets).
    const all = this.memoized('topPool', () => poolDifferences(this.topDiffSets()));
    const own = variance(d);
    const rest = { ss: all.ss - own * (d.length - 1), df: all.df - (d.length - 1) };
    if (rest.df < 1) return pooled;
    const p = varianceRatioP(own, d.length - 1, noiseVariance(rest), rest.df);
    return p < 0.05 ? { variance: own, df: d.length - 1 } : pooled;
  }

  /** P(gain > minGainPct), with the rank test where this config's differences scatter beyond the pooled noise. */
  confirmation(id: string): { probability: number; confirmed: boolean; p?: Posterior } {
    const p = this.posteriorOf(id);
    if (!p) return { probability: 0, confirmed: false };
    const probability = probAbove(p, this.input.minGainPct);
    const d = this.diffs(id, BASELINE_ID, this.top);
    const noise = this.noise();
    let confirmed = p.n >= this.input.replicates && probability >= 0.95;
    if (confirmed && d.length >= 3 && variance(d) > 4 * noise.variance)
      confirmed = signedRankP(d, this.input.minGainPct) <= 0.05;
    return { probability, confirmed, p };
  }

  /** The answer: the best posterior mean among configs with at least R seeds paired with the baseline. */
  answer(): AnswerView {
    const R = this.input.replicates;
    let best: AnswerView = {
      hypothesisId: BASELINE_ID,
      seeds: this.seeds(BASELINE_ID, this.top).length,
      gainPct: 0,
      raw: 0,
      low: 0,
      high: 0,
      probability: 0,
      confirmed: false,
    };
    for (const id of Object.keys(this.state.configs)) {
      if (id === BASELINE_ID) continue;
      const c = this.confirmation(id);
      if (!c.p || c.p.n < R || c.p.mean <= best.gainPct) continue;
      best = answerView(id, c.p, c);
    }
    // An unconfirmed best yields to a confirmed config no more than one standard error behind it,
    // where that config is the incumbent (it won its races) or a simplification of an incumbent: a
    // verified win over an unverified lead.
    if (!this.state.answerRules?.on || best.confirmed || best.hypothesisId === BASELINE_ID) return best;
    const floor = best.gainPct - (best.high - best.low) / (2 * 1.96);
    let verified: AnswerView | undefined;
    for (const [id, entry] of Object.entries(this.state.configs)) {
      if (id === best.hypothesisId || id === BASELINE_ID) continue;
      if (id !== this.state.incumbent && entry.origin !== 'simplify') continue;
      const c = this.confirmation(id);
      if (!c.p || !c.confirmed || c.p.n < R || c.p.mean < floor) continue;
      if (verified && c.p.mean <= verified.gainPct) continue;
      verified = answerView(id, c.p, c);
    }
    return verified ?? best;
  }

  // ---- evidence and the plan ----------------------------------------------------------------

  private requestEvidence(): void {
    const s = this.state;
    s.evidence.status = 'requested';
    s.evidence.round += 1;
    this.effects.push({
      type: 'gatherEvidence',
      round: s.evidence.round,
      excludeKnobs: s.excludedKnobs,
      feedback: s.approval.feedback,
      count: this.input.slateSize,
    });
  }

  private takeEvidence(e: Evidence, llmAvailable: boolean): void {
    const s = this.state;
    this.memo.clear();
    s.evidence = {
      ...s.evidence,
      status: 'received',
      prior: e.prior,
      notes: e.notes,
      ...(e.noise ? { noise: e.noise } : {}),
    };
    if (!llmAvailable) s.llm.calls = Number.MAX_SAFE_INTEGER;
    // Transfer first (history's confirmed answers race at once), then the other picks, taking turns
    // by source (each in the order the evidence ranks it), so that one source's long list does not
    // starve another's first idea in a small budget.
    const top = e.hypotheses.filter((h) => h.entry === 'top');
    const bySource = new Map<string, Evidence['hypotheses']>();
    for (const h of e.hypotheses)
      if (h.entry !== 'top') bySource.set(h.source, [...(bySource.get(h.source) ?? []), h]);
    const turns: Evidence['hypotheses'] = [];
    for (let i = 0; [...bySource.values()].some((list) => i < list.length); i++)
      for (const list of bySource.values()) if (i < list.length) turns.push(list[i] as (typeof list)[number]);
    const ordered = [...top, ...turns];
    // Ahead of the design points: informed picks first.
    for (const h of ordered.reverse())
      this.enqueue(h.delta, h.source, h.source === 'llm' ? 'llm' : 'evidence', h.rationale, h.entry, true);
  }

  /** Preflight's baseline runs: seeds 0..R−1 at full fidelity, seed 0 at each lower rung. */
  private preflightSlots(): { rung: number; k: number }[] {
    const slots: { rung: number; k: number }[] = [];
    for (let k = 0; k < this.input.replicates; k++) slots.push({ rung: this.top, k });
    for (let r = 0; r < this.top; r++) slots.push({ rung: r, k: 0 });
    return slots;
  }

  /** Every preflight run measured or given up, and none still running. */
  private preflightDone(): boolean {
    return this.preflightSlots().every(
      ({ rung, k }) =>
        !this.runningFor(BASELINE_ID, rung, k) &&
        (this.value(BASELINE_ID, rung, k) !== undefined || this.exhaustedAttempts(BASELINE_ID, rung, k)),
    );
  }

  private runningFor(id: string, rung: number, k: number): boolean {
    return Object.values(this.state.running).some((r) => r.configId === id && r.rung === rung && r.k === k);
  }

  makePlan(): Plan {
    const s = this.state;
    const R = this.input.replicates;
    const rungs = s.rungs;
    const totalTop = this.budgetTopRuns();
    const eta = this.input.eta;
    const { validation, combination, exploitation } = this.input.split;
    const rungCost = rungs.map((f) => f / (rungs.at(-1) as number));
    // Per config started at the bottom: 1/eta reach each next rung.
    const perStart = rungCost.reduce((a, c, i) => a + c / eta ** i, 0);
    const validationTop = Math.max(
      0,
      totalTop * validation - R - rungCost.slice(0, -1).reduce((a, b) => a + b, 0),
    );
    const starts = Math.floor(validationTop / perStart);
    const strategy = [
      `budget: ${s.budget.experiments !== undefined ? `${s.budget.experiments} experiments` : ''}${s.budget.experiments !== undefined && s.budget.gpuHours !== undefined ? ' and ' : ''}${s.budget.gpuHours !== undefined ? `${s.budget.gpuHours} GPU-h` : ''} = ${totalTop.toFixed(1)} runs at full fidelity (${this.spec.fidelity.knob}=${rungs.at(-1)})`,
      `preflight: the baseline × ${R} seeds at ${rungs.at(-1)} (noise; every comparison is paired on these seeds)${rungs.length > 1 ? ` and once at each lower rung (${rungs.slice(0, -1).join(', ')})` : ''}`,
      rungs.length > 1
        ? `validation (${Math.round(validation * 100)} %): about ${starts} configs screened at ${rungs[0]} — every knob moved once, a Latin hypercube, the evidence's picks, then multivariate TPE — the best 1/${eta} of each rung promoted (${rungs.join(' → ')}); a config that reaches ${rungs.at(-1)} races the incumbent on its seeds (1, then more while it stays ahead)`
        : `validation (${Math.round(validation * 100)} %): about ${Math.floor(validationTop)} configs at ${rungs[0]} (a single fidelity: the budget counts experiments, or high/low < 9) — every knob moved once, the evidence's picks, then multivariate TPE — each racing the incumbent`,
      `combination (${Math.round(combination * 100)} %): merges of up to ${TOP_MERGES} of the best distinct configs race the incumbent; then more exploration`,
      `exploitation (${Math.round(exploitation * 100)} %): local moves around the incumbent race it; paired seeds of the answer and the baseline firm up the confirmation; what is left screens more configs`,
      `answer: the best posterior mean with ≥ ${R} seeds; a confirmed win needs P(gain > ${this.input.minGainPct} %) ≥ 0.95 on paired differences`,
    ];
    const fidelity = {
      low: rungs[0] as number,
      mid: rungs[Math.floor((rungs.length - 1) / 2)] as number,
      high: rungs.at(-1) as number,
    };
    return {
      slate: s.queue
        .slice(0, 50)
        .map((q) => ({ id: q.configId, rationale: s.configs[q.configId]?.rationale ?? '' })),
      estimate: {
        experiments:
          s.budget.experiments ??
          Math.round(starts * (1 + 1 / eta) + R + totalTop * (combination + exploitation)),
        gpuHours: s.budget.gpuHours ?? totalTop * this.cost(this.top).gpuHours,
      },
      strategy,
      split: this.input.split,
      fidelity,
      rungs,
      round: s.approval.feedback.length + 1,
    };
  }

  // ---- results ------------------------------------------------------------------------------

  private finished(e: Extract<CampaignEvent, { type: 'finished' }>): void {
    const s = this.state;
    const item = s.running[e.experimentId];
    if (!item) return; // a repeat: already settled
    delete s.running[e.experimentId];
    if (e.value !== undefined && Number.isFinite(e.value)) {
      (s.results[item.configId] ??= {})[`${item.rung}:${item.k}`] = e.value;
      this.memo.clear();
      s.counts.succeeded += 1;
      this.afterResult(item);
      return;
    }
    const failureClass = e.failure?.failureClass ?? 'crash';
    if (failureClass === 'cancelled') s.counts.cancelled += 1;
    else s.counts.failed += 1;
    const key = `${item.configId}@${item.rung}:${item.k}`;
    s.attempts[key] = (s.attempts[key] ?? 0) + 1;
    const entry = s.configs[item.configId] as ConfigEntry;
    let action: string;
    if (failureClass === 'cancelled') action = 'none: cancelled';
    else if (item.configId === BASELINE_ID) {
      if (failureClass === 'lost' && item.attempt < LOST_ATTEMPTS) {
        action = 'retry: the job or its node was lost: run it again';
        s.counts.retried += 1;
        s.retries.push({ configId: item.configId, rung: item.rung, k: item.k, purpose: item.purpose });
      } else {
        // A baseline is only ever re-run as it is (a "fixed" baseline would not be the baseline).
        s.attempts[key] = 3;
        action = `drop: baseline run failed (${failureClass})`;
        const gaveUp = this.preflightSlots()
          .filter((x) => x.rung === this.top)
          .every(
            ({ k }) =>
              this.exhaustedAttempts(BASELINE_ID, this.top, k) && !this.runningFor(BASELINE_ID, this.top, k),
          );
        if (!this.seeds(BASELINE_ID, this.top).length && gaveUp)
          this.effects.push({
            type: 'fail',
            failureType: 'BaselineFailed',
            message: `every baseline run failed (${e.failure?.message ?? failureClass}); fix the model spec or the trainer first`,
          });
      }
    } else {
      const decision = decideByRole(this.spec, this.config(item.configId), failureClass, item.attempt);
      if (decision.action === 'retry' && decision.delta) {
        const fixed = this.register(
          decision.delta,
          entry.source,
          'runbook',
          `${entry.rationale} [runbook: ${decision.why}]`,
        );
        if (fixed.id === item.configId) {
          // The same run again (a lost job).
          s.counts.retried += 1;
          s.retries.push({ configId: item.configId, rung: item.rung, k: item.k, purpose: item.purpose });
        } else {
          entry.closed = `failed (${failureClass}); runbook: ${decision.why}`;
          if (fixed.fresh) {
            s.counts.retried += 1;
            s.queue.unshift({ configId: fixed.id, entry: item.rung === this.top ? 'top' : 'bottom' });
          }
        }
      } else {
        entry.closed = `failed (${failureClass}): ${decision.why}`;
        s.attempts[key] = 3;
        this.drop(item.configId, decision.why);
      }
      action = `${decision.action}: ${decision.why}`;
    }
    s.failures.push({ experimentId: e.experimentId, hypothesisId: item.configId, failureClass, action });
    if (s.failures.length > MAX_LISTED) s.failures.shift();
    this.effects.push({ type: 'recordRunbook', experimentId: e.experimentId, action });
  }

  private drop(id: string, why: string): void {
    this.state.dropped.push({ hypothesisId: id, why });
    if (this.state.dropped.length > MAX_LISTED) this.state.dropped.shift();
  }

  private afterResult(item: RunningItem): void {
    if (item.rung > 0) this.checkRanks();
    this.settleRaces();
  }

  /**
   * Drops the rungs below r+1 when rung r's ranks do not predict rung r+1's (PASHA's idea, by rank
   * correlation over the configs measured at both): new configs then start at r+1.
   */
  private checkRanks(): void {
    const s = this.state;
    for (let rung = s.bottom; rung < this.top; rung++) {
      const next = rung + 1;
      const ids = Object.keys(s.configs).filter(
        (id) => this.value(id, rung, 0) !== undefined && this.value(id, next, 0) !== undefined,
      );
      // Promotions that kept their lead: configs that beat the baseline at r and were measured at r+1.
      const base = this.value(BASELINE_ID, rung, 0);
      const baseNext = this.value(BASELINE_ID, next, 0);
      const promoted = ids.filter(
        (id) => base !== undefined && this.sign * (this.value(id, rung, 0) as number) < this.sign * base,
      );
      const kept = promoted.filter(
        (id) =>
          baseNext !== undefined && this.sign * (this.value(id, next, 0) as number) < this.sign * baseNext,
      );
      if (promoted.length >= 4 && kept.length / promoted.length <= 0.25) {
        s.rankChecks[`${rung}`] = -1;
        s.bottom = next;
        s.dropped.push({
          hypothesisId: `rung ${s.rungs[rung]}`,
          why: `of ${promoted.length} configs that beat the baseline at ${this.spec.fidelity.knob}=${s.rungs[rung]}, ${kept.length} still did at ${s.rungs[next]}: that rung misleads, new configs start at ${s.rungs[next]}`,
        });
        continue;
      }
      if (ids.length < RANK_CHECK_PAIRS) continue;
      const rho = spearman(
        ids.map((id) => this.value(id, rung, 0) as number),
        ids.map((id) => this.value(id, next, 0) as number),
      );
      s.rankChecks[`${rung}`] = rho;
      if (Number.isFinite(rho) && rho < RANK_CHECK_MIN) {
        s.bottom = next;
        s.dropped.push({
          hypothesisId: `rung ${s.rungs[rung]}`,
          why: `ranks at ${this.spec.fidelity.knob}=${s.rungs[rung]} do not predict ${s.rungs[next]} (Spearman ${rho.toFixed(2)} over ${ids.length} configs): new configs start at ${s.rungs[next]}`,
        });
      }
    }
  }

  /** Races at full fidelity: losers stop; a challenger ahead on all of the incumbent's seeds takes over. */
  private settleRaces(): void {
    const s = this.state;
    const top = this.top;
    let changed = true;
    while (changed) {
      changed = false;
      for (const id of Object.keys(s.configs)) {
        const c = s.configs[id] as ConfigEntry;
        if (id === s.incumbent || id === BASELINE_ID || c.closed) continue;
        const mine = this.seeds(id, top);
        if (!mine.length) continue;
        const d = this.diffs(id, s.incumbent, top);
        if (d.length < mine.length) continue; // the incumbent still owes a seed
        const dbar = mean(d);
        if (c.origin === 'simplify') {
          // The incumbent with fewer changes: it takes over unless it is more than one standard error
          // behind on all of the incumbent's seeds (the one-standard-error rule), and stops early only
          // when it is credibly worse.
          const se = this.raceSe(d);
          if (dbar + 2 * se < 0) {
            c.closed = `simpler, but credibly worse than ${s.incumbent} over ${d.length} seed(s) (${dbar.toFixed(3)} %)`;
            continue;
          }
          if (mine.length >= this.seeds(s.incumbent, top).length && !this.runningFor(id, top, mine.length)) {
            if (dbar < -se) {
              c.closed = `simpler, but more than one standard error behind ${s.incumbent} (${dbar.toFixed(3)} %)`;
              continue;
            }
            // It must still beat the baseline on its seeds: a simplification that dropped the change
            // that mattered is as noisy as the incumbent, and one standard error of that is a lot.
            if (mean(this.diffs(id, BASELINE_ID, top)) <= 0) {
              c.closed = `simpler, but no better than the baseline on its ${mine.length} seed(s)`;
              continue;
            }
            this.crown(id);
            changed = true;
          }
          continue;
        }
        if (dbar <= 0) {
          c.closed = `lost the race to ${s.incumbent} over ${d.length} seed(s) (${dbar.toFixed(3)} %)`;
          continue;
        }
        if (mine.length >= this.seeds(s.incumbent, top).length && !this.runningFor(id, top, mine.length)) {
          this.crown(id);
          changed = true;
        }
      }
    }
  }

  private crown(id: string): void {
    const s = this.state;
    const prev = s.incumbent;
    s.incumbent = id;
    const p = this.posteriorOf(id);
    s.wins.push({ hypothesisId: id, gainPct: p?.raw ?? 0, phase: this.spendPhase() });
    if (s.wins.length > MAX_LISTED) s.wins.shift();
    // The displaced incumbent stays measured; it no longer races.
    if (prev !== BASELINE_ID) (s.configs[prev] as ConfigEntry).closed ??= `displaced by ${id}`;
    s.trail.push({ hypothesisId: id, experiments: s.used.experiments, gpuHours: s.used.gpuHours });
  }

  private abort(reason: string): void {
    const s = this.state;
    s.aborting ??= reason;
    if (s.stage !== 'done') s.stage = 'finishing';
    if (Object.keys(s.running).length) this.effects.push({ type: 'cancelAll' });
  }

  // ---- what to run next ---------------------------------------------------------------------

  /** Moves the campaign on: plan, approval, launches into free slots, the end. */
  private advance(): void {
    const s = this.state;
    if (s.stage === 'done') return;
    const phase = this.phaseNow();
    if (phase !== s.phase) {
      s.phase = phase;
      this.effects.push({ type: 'recordPhase', phase, ...(s.plan ? { plan: s.plan } : {}) });
    }
    if (s.stage === 'preflight' && s.evidence.status === 'received' && this.preflightDone()) {
      if (!s.plan) {
        this.design();
        s.plan = this.makePlan();
        this.effects.push({ type: 'recordPhase', phase: 'preflight', plan: s.plan });
      }
      if (this.input.approval.required && s.approval.status !== 'approved') {
        if (s.approval.status !== 'waiting') {
          s.approval.status = 'waiting';
          this.effects.push({ type: 'awaitApproval' });
        }
        s.stage = 'approval';
      } else {
        s.stage = 'running';
      }
      const now = this.phaseNow();
      if (now !== s.phase) {
        s.phase = now;
        this.effects.push({ type: 'recordPhase', phase: now, plan: s.plan });
      }
    }
    if (
      s.stage === 'approval' &&
      s.approval.status === 'rejected' &&
      s.evidence.status === 'received' &&
      !s.plan
    ) {
      this.design();
      s.plan = this.makePlan();
      s.approval.status = 'waiting';
      this.effects.push({ type: 'recordPhase', phase: 'preflight', plan: s.plan }, { type: 'awaitApproval' });
    }
    this.fill();
    const running = Object.keys(s.running).length;
    if (s.stage === 'finishing' && running === 0) {
      s.stage = 'done';
      s.phase = 'done';
      this.effects.push({ type: 'finish', status: s.aborting ? 'aborted' : 'completed' });
    }
  }

  private fill(): void {
    const s = this.state;
    if (s.aborting || s.paused || s.draining) return;
    if (s.stage !== 'preflight' && s.stage !== 'running') return;
    let guard = 0;
    while (Object.keys(s.running).length < this.input.parallelism && guard++ < 64) {
      // With nothing in flight the endgame's holds wait for nothing: the rest of the budget is spent.
      const work = this.nextWork() ?? (Object.keys(s.running).length ? undefined : this.nextWork(true));
      if (!work) break;
      const known = this.seedInvariant(work.configId, work.rung);
      if (known !== undefined) this.reuse(work, known);
      else this.launch(work);
    }
    if (s.stage === 'running' && Object.keys(s.running).length === 0) {
      s.stage = 'finishing';
      s.stopReason ??=
        this.affordable(this.cost(0)) && this.affordable(this.cost(s.bottom))
          ? 'the search space is exhausted: no new config to try, and the answer is measured'
          : 'the budget is spent';
    }
    this.maybeAskLlm();
  }

  /**
   * The value every seed of `id` gives at `rung` when the trainer ignores the seed for that config
   * (answer rules v5): at least 2 seeds measured there, all bit-identical, and the value not one a
   * rounded metric could repeat by chance (more than 7 significant digits). A deterministic trainer
   * (gradient boosting without bagging, say) gives the same number for every seed: a third run
   * of it would measure nothing new.
   */
  private seedInvariant(id: string, rung: number): number | undefined {
    if (!this.state.answerRules?.v5) return undefined;
    const ks = this.seeds(id, rung);
    if (ks.length < 2) return undefined;
    const v = this.value(id, rung, ks[0] as number) as number;
    if (Number(v.toPrecision(7)) === v) return undefined;
    return ks.every((k) => this.value(id, rung, k) === v) ? v : undefined;
  }

  /** Records a seed-invariant config's known value for `work` without running it (nothing is spent). */
  private reuse(work: { configId: string; rung: number; k: number; purpose: Purpose }, value: number): void {
    const s = this.state;
    (s.results[work.configId] ??= {})[`${work.rung}:${work.k}`] = value;
    this.memo.clear();
    s.counts.skipped += 1;
    const entry = s.configs[work.configId] as ConfigEntry;
    entry.rung = Math.max(entry.rung, work.rung);
    this.afterResult({
      ...work,
      attempt: 1,
      cost: { experiments: 0, gpuHours: 0 },
      phase: this.spendPhase(),
    });
  }

  private launch(work: { configId: string; rung: number; k: number; purpose: Purpose }): void {
    const s = this.state;
    const cost = this.cost(work.rung);
    const phase = s.stage === 'preflight' && work.purpose === 'baseline' ? 'preflight' : this.spendPhase();
    s.used = {
      experiments: s.used.experiments + cost.experiments,
      gpuHours: s.used.gpuHours + cost.gpuHours,
    };
    const p = (s.byPhase[phase] ??= { experiments: 0, gpuHours: 0 });
    p.experiments += cost.experiments;
    p.gpuHours += cost.gpuHours;
    s.counts.total += 1;
    const entry = s.configs[work.configId] as ConfigEntry;
    entry.rung = Math.max(entry.rung, work.rung);
    const attempt = (s.attempts[`${work.configId}@${work.rung}:${work.k}`] ?? 0) + 1;
    const item: RunningItem = { ...work, attempt, cost, phase };
    const experimentId = String(s.nextIndex++).padStart(4, '0');
    s.running[experimentId] = item;
    this.effects.push({
      type: 'launch',
      launch: {
        experimentId,
        item,
        hypothesis: this.hypothesis(work.configId),
        config: this.config(work.configId),
        fidelity: s.rungs[work.rung] as number,
        seed: this.input.seed + work.k,
        role: work.configId === BASELINE_ID ? 'baseline' : 'candidate',
      },
    });
  }

  /** The next queued config the budget pays for (`informed`: only people's, the evidence's, the LLM's). */
  private queued(
    informed: boolean,
    reserve = 0,
    endgame: Endgame = NO_ENDGAME,
  ): { configId: string; rung: number; k: number; purpose: Purpose } | undefined {
    const s = this.state;
    for (let i = 0; i < s.queue.length; i++) {
      const q = s.queue[i] as QueueItem;
      const entry = s.configs[q.configId];
      const rung = this.entryRung(q.entry);
      if (!entry || entry.closed || entry.rung >= rung) {
        s.queue.splice(i--, 1);
        continue;
      }
      if (informed && !['human', 'evidence', 'llm'].includes(entry.origin)) continue;
      if (!this.affordable(this.cost(rung), reserve, rung === this.top ? endgame.entry : endgame.held))
        continue;
      s.queue.splice(i, 1);
      return { configId: q.configId, rung, k: 0, purpose: rung === this.top ? 'race' : 'screen' };
    }
    return undefined;
  }

  /** The rung a queued config starts at. */
  private entryRung(entry: QueueItem['entry']): number {
    const s = this.state;
    if (entry === 'top') return this.top;
    if (entry === 'near-top') return Math.max(s.bottom, this.top - 1);
    return s.bottom;
  }

  private busy(id: string, rung: number, k: number): boolean {
    return this.value(id, rung, k) !== undefined || this.runningFor(id, rung, k);
  }

  private exhaustedAttempts(id: string, rung: number, k: number): boolean {
    return (this.state.attempts[`${id}@${rung}:${k}`] ?? 0) >= 3;
  }

  /** The next run, by priority; only runs the budget can pay for. */
  private nextWork(
    relaxed = false,
  ): { configId: string; rung: number; k: number; purpose: Purpose } | undefined {
    const s = this.state;
    const top = this.top;
    // While the evidence (history, cards, the LLM: minutes on a busy machine) is on its way, the
    // search's own work leaves the last quarter of the budget: the informed picks may take it, and a
    // small, fast campaign would otherwise spend everything before they arrive.
    const reserve = s.evidence.status === 'requested' ? EVIDENCE_RESERVE : 0;
    const can = (rung: number) => this.affordable(this.cost(rung), reserve);
    // The endgame (v5): work other than the races leaves the open races what they need to finish,
    // and a new challenger enters the top rung only when the rest also pays for its whole race.
    const end = relaxed ? NO_ENDGAME : this.endgame();
    const canHeld = (rung: number) => this.affordable(this.cost(rung), reserve, end.held);
    const canEnter = () => this.affordable(this.cost(top), reserve, end.entry);
    const canAt = (rung: number) => (rung === top ? canEnter() : canHeld(rung));
    const free = (id: string, rung: number, k: number) =>
      !this.busy(id, rung, k) && !this.exhaustedAttempts(id, rung, k);
    // 0. Runs to repeat as they were (a lost job).
    for (let i = 0; i < s.retries.length; i++) {
      const r = s.retries[i] as (typeof s.retries)[number];
      if (this.busy(r.configId, r.rung, r.k) || this.exhaustedAttempts(r.configId, r.rung, r.k)) {
        s.retries.splice(i--, 1);
        continue;
      }
      if (!can(r.rung)) continue;
      s.retries.splice(i, 1);
      return r;
    }
    // 1. Preflight: the baseline on seeds 0..R−1 at full fidelity, once at each lower rung.
    for (const { rung, k } of this.preflightSlots()) {
      // v5: a third seed waits for the first two, which may show the baseline ignores its seed.
      if (s.answerRules?.v5 && k >= 2 && [0, 1].some((j) => this.runningFor(BASELINE_ID, rung, j))) continue;
      if (free(BASELINE_ID, rung, k) && this.affordable(this.cost(rung)))
        return { configId: BASELINE_ID, rung, k, purpose: 'baseline' };
    }
    // With an approval gate nothing but preflight runs before the plan is approved; without one the
    // slots need not wait for the evidence: the design does not use it.
    if (s.stage === 'preflight' && this.input.approval.required) return undefined;
    if (!s.design.done) this.design();
    // 2. Races at full fidelity: the incumbent's owed seeds, then each challenger's next seed.
    const race = this.raceWork();
    if (race && can(top)) return race;
    const simple = this.simplifyWork();
    if (simple && can(top)) return simple;
    // 3. The end: firm up the answer with paired seeds when its confirmation is undecided.
    const confirm = this.confirmWork();
    if (confirm && canHeld(top)) return confirm;
    // 4. Informed picks first (a person's, the evidence's, the LLM's), then successive halving's
    // promotions (the best 1/eta of a rung, highest rung first), then the rest of the queue.
    const informed = this.queued(true, 0, end);
    if (informed) return informed;
    const promotion = this.promotionWork();
    if (promotion && (promotion.k > 0 ? canHeld(promotion.rung) : canAt(promotion.rung))) return promotion;
    if (this.spendPhase() === 'combination') this.merges();
    const queued = this.queued(false, reserve, end);
    if (queued) return queued;
    // 6. The phase's own proposal, at the highest rung the budget still pays for.
    for (let r = s.bottom; r >= 0; r--) {
      if (!canAt(r)) continue;
      return this.propose(r === s.bottom ? undefined : r, can(top) && canAt(this.entryRung('near-top')));
    }
    return undefined;
  }

  /**
   * The endgame's holds (answer rules v5), in full-fidelity runs: `held`, what the open races still
   * need to finish — each open challenger that leads the incumbent on the seeds they share (or is
   * a simpler config, or is still owed a seed) runs up to the incumbent's seed count, and the
   * incumbent runs the seeds it owes; `entry`, that plus a whole race for a new challenger. A
   * challenger measured once at full fidelity cannot become the answer (it needs R seeds), so a race
   * the budget cannot finish buys nothing; without the holds the last runs went to screens and new
   * races while the races that led were cut off by the budget's end.
   */
  private endgame(): Endgame {
    const s = this.state;
    if (!s.answerRules?.v5) return NO_ENDGAME;
    // Not memoized: launches change what is in flight between two calls within one event.
    const top = this.top;
    const inc = s.incumbent;
    const incSeeds = this.seeds(inc, top);
    const owedByInc = new Set<number>();
    let held = 0;
    for (const id of Object.keys(s.configs)) {
      const c = s.configs[id] as ConfigEntry;
      if (id === inc || id === BASELINE_ID || c.closed) continue;
      const mine = this.seeds(id, top);
      // A challenger's first run at full fidelity, still in flight, opens its race too.
      const running = Object.values(s.running).filter((r) => r.configId === id && r.rung === top).length;
      if (!mine.length && !running) continue;
      for (const k of mine) if (!incSeeds.includes(k) && !this.runningFor(inc, top, k)) owedByInc.add(k);
      const d = this.diffs(id, inc, top);
      if (mine.length && d.length === mine.length && mean(d) <= 0 && c.origin !== 'simplify') continue;
      held += Math.max(0, incSeeds.length - mine.length - running);
    }
    held += owedByInc.size;
    return { held, entry: held + Math.max(1, incSeeds.length) };
  }

  private raceWork(): { configId: string; rung: number; k: number; purpose: Purpose } | undefined {
    const s = this.state;
    const top = this.top;
    const inc = s.incumbent;
    const incSeeds = this.seeds(inc, top);
    for (const id of Object.keys(s.configs)) {
      const c = s.configs[id] as ConfigEntry;
      if (id === inc || id === BASELINE_ID || c.closed) continue;
      const mine = this.seeds(id, top);
      if (!mine.length || Object.values(s.running).some((r) => r.configId === id && r.rung === top)) continue;
      // The incumbent owes the seeds the challenger has.
      for (const k of mine)
        if (!incSeeds.includes(k) && !this.busy(inc, top, k) && !this.exhaustedAttempts(inc, top, k))
          return { configId: inc, rung: top, k, purpose: 'race' };
      const d = this.diffs(id, inc, top);
      if (d.length < mine.length || (mean(d) <= 0 && c.origin !== 'simplify')) continue;
      const next = mine.length;
      if (next < incSeeds.length && !this.busy(id, top, next) && !this.exhaustedAttempts(id, top, next))
        return { configId: id, rung: top, k: next, purpose: 'race' };
    }
    return undefined;
  }

  /** Whether a simpler config is racing the incumbent (open, and measured or running at full fidelity). */
  private simplifying(): boolean {
    const s = this.state;
    const top = this.top;
    return Object.entries(s.configs).some(
      ([id, c]) =>
        c.origin === 'simplify' &&
        !c.closed &&
        id !== s.incumbent &&
        (this.seeds(id, top).length > 0 || this.runningFor(id, top, 0)),
    );
  }

  /**
   * The incumbent's changes to the knobs that the campaign's measurements say matter (a permutation
   * analysis of variance of every config's gain at the rung where most were measured), the others
   * back to the baseline; where none shows it clearly, the likeliest one alone.
   */
  private importantPart(inc: string, incDelta: Config): { delta: Config; rationale: string } | undefined {
    const s = this.state;
    const top = this.top;
    const changed = Object.keys(incDelta);
    let rung = top;
    let most = 0;
    for (let r = top; r >= 0; r--) {
      const n = Object.keys(s.configs).filter(
        (id) => id !== BASELINE_ID && this.diffs(id, BASELINE_ID, r).length,
      ).length;
      if (n > most) [rung, most] = [r, n];
    }
    const scored = Object.keys(s.configs)
      .filter((id) => id !== BASELINE_ID)
      .flatMap((id) => {
        const d = this.diffs(id, BASELINE_ID, rung);
        return d.length ? [{ config: this.config(id), score: mean(d) }] : [];
      });
    const random = seededRandom(mixSeed(this.input.seed, 0x5171, s.answerRules?.tried.length ?? 0));
    const evidence = knobEvidence(this.space, scored, changed, random);
    const pOf = (k: string) => evidence.get(k) ?? 1;
    let idle = changed.filter((k) => pOf(k) > KEEP_KNOB_P);
    // The incumbent beat the baseline, so some change matters: where none shows it clearly, the
    // likeliest one stays (the race says whether that was right).
    if (idle.length === changed.length) {
      const likeliest = changed.reduce((a, b) => (pOf(b) < pOf(a) ? b : a));
      idle = idle.filter((k) => k !== likeliest);
    }
    if (!idle.length) return undefined;
    const kept = changed.filter((k) => !idle.includes(k));
    const why = idle.map((k) => `${k} (p ${pOf(k).toFixed(2)})`).join(', ');
    return {
      delta: Object.fromEntries(Object.entries(incDelta).filter(([k]) => kept.includes(k))),
      rationale: `simplify ${inc}: back to the baseline's ${why}, which ${most} configs at ${this.spec.fidelity.knob}=${s.rungs[rung]} show no sign of mattering`,
    };
  }

  /**
   * A measured config that makes some of the incumbent's changes, with the same values, and nothing
   * else (a one-knob design move, a merge's part), where it beat the baseline at the highest rung it
   * reached: the best such, by rung, then gain.
   */
  private measuredSubset(inc: string, incDelta: Config): { delta: Config; rationale: string } | undefined {
    const s = this.state;
    const size = Object.keys(incDelta).length;
    let best: { id: string; rung: number; gain: number } | undefined;
    for (const [id, c] of Object.entries(s.configs)) {
      if (id === inc || id === BASELINE_ID || c.closed?.startsWith('failed')) continue;
      const keys = Object.keys(c.delta);
      if (!keys.length || keys.length >= size || !keys.every((k) => incDelta[k] === c.delta[k])) continue;
      for (let r = this.top; r >= 0; r--) {
        const d = this.diffs(id, BASELINE_ID, r);
        if (!d.length) continue;
        const gain = mean(d);
        if (gain > 0 && (!best || r > best.rung || (r === best.rung && gain > best.gain)))
          best = { id, rung: r, gain };
        break;
      }
    }
    if (!best) return undefined;
    const part = (s.configs[best.id] as ConfigEntry).delta;
    const dropped = Object.keys(incDelta).filter((k) => part[k] === undefined);
    return {
      delta: part,
      rationale: `simplify ${inc}: its part ${best.id} alone beat the baseline by ${best.gain.toFixed(3)} % at ${this.spec.fidelity.knob}=${s.rungs[best.rung]}; the rest (${dropped.join(', ')}) back to the baseline`,
    };
  }

  /** The standard error of a race's mean paired difference: its own scatter, or the pooled noise where larger. */
  private raceSe(d: readonly number[]): number {
    const v = Math.max(d.length >= 2 ? variance(d) : 0, this.noise().variance);
    return Math.sqrt(v / Math.max(1, d.length));
  }

  /**
   * In the exploitation phase, the incumbent without the changes that the campaign's measurements
   * show no sign of mattering (measuredSubset, else importantPart), raced against it at full fidelity.
   * An answer that carries a knob which only re-randomizes the run (a shuffle seed, an init stream)
   * is no better, and it cannot be confirmed: its runs no longer pair with the baseline's. Once per
   * incumbent, at most MAX_SIMPLIFICATIONS per campaign.
   */
  private simplifyWork(): { configId: string; rung: number; k: number; purpose: Purpose } | undefined {
    const s = this.state;
    const rules = s.answerRules;
    if (!rules?.on || rules.tried.length >= MAX_SIMPLIFICATIONS) return undefined;
    if (this.spendPhase() !== 'exploitation') return undefined;
    const inc = s.incumbent;
    if (inc === BASELINE_ID || rules.tried.includes(inc)) return undefined;
    const top = this.top;
    const incSeeds = this.seeds(inc, top);
    if (!incSeeds.length || this.remainingTopRuns() < incSeeds.length + 1) return undefined;
    const incDelta = (s.configs[inc] as ConfigEntry).delta;
    if (Object.keys(incDelta).length < 2) return undefined;
    rules.tried.push(inc);
    const part = this.measuredSubset(inc, incDelta) ?? this.importantPart(inc, incDelta);
    if (!part) return undefined;
    const { delta, rationale } = part;
    const { id, fresh } = this.register(delta, 'planner', 'simplify', rationale);
    if (id === BASELINE_ID) return undefined;
    if (!fresh) {
      // Measured before (a one-knob design move, say), and perhaps closed by a race it entered as an
      // ordinary challenger: it races again under the simpler config's rule. A failed one stays out.
      const entry = s.configs[id] as ConfigEntry;
      if (entry.closed?.startsWith('failed')) return undefined;
      entry.origin = 'simplify';
      entry.rationale = `${entry.rationale}; ${rationale}`;
      delete entry.closed;
      // raceWork gives it the incumbent's seeds where it has run at full fidelity, or runs there now.
      if (this.seeds(id, top).length || this.busy(id, top, 0)) return undefined;
    }
    return { configId: id, rung: top, k: 0, purpose: 'race' };
  }

  /**
   * Near the end of the budget, paired seeds for the answer and the baseline while the answer's
   * confirmation is undecided (0.05 < P < 0.95): first the baseline catches up on the answer's
   * seeds, then both take a new one.
   */
  private confirmWork(): { configId: string; rung: number; k: number; purpose: Purpose } | undefined {
    const s = this.state;
    if (this.spendPhase() !== 'exploitation') return undefined;
    const top = this.top;
    const inc = s.incumbent;
    if (inc === BASELINE_ID) return undefined;
    const left = this.remainingTopRuns();
    const maxSeeds = this.input.replicates + 4;
    const incSeeds = this.seeds(inc, top);
    if (left > 6 && incSeeds.length >= this.input.replicates) return undefined;
    const c = this.confirmation(inc);
    if (c.probability <= 0.05 || (c.confirmed && c.probability >= 0.99)) return undefined;
    const baseSeeds = this.seeds(BASELINE_ID, top);
    for (const k of incSeeds)
      if (
        !baseSeeds.includes(k) &&
        !this.busy(BASELINE_ID, top, k) &&
        !this.exhaustedAttempts(BASELINE_ID, top, k)
      )
        return { configId: BASELINE_ID, rung: top, k, purpose: 'confirm' };
    if (incSeeds.length >= maxSeeds || left < 2) return undefined;
    // A simpler config racing the incumbent must catch up on its seeds first: more seeds for the
    // incumbent now would keep that race from ever ending.
    if (this.simplifying()) return undefined;
    const k = Math.max(-1, ...incSeeds) + 1;
    if (!this.busy(inc, top, k)) return { configId: inc, rung: top, k, purpose: 'confirm' };
    return undefined;
  }

  private promotionWork(): { configId: string; rung: number; k: number; purpose: Purpose } | undefined {
    const s = this.state;
    const top = this.top;
    const eta = this.input.eta;
    for (let r = top - 1; r >= s.bottom; r--) {
      const scored = Object.keys(s.configs)
        .filter((id) => id !== BASELINE_ID && this.value(id, r, 0) !== undefined)
        .map((id) => ({ id, v: this.sign * (this.value(id, r, 0) as number) }))
        .sort((a, b) => a.v - b.v || a.id.localeCompare(b.id));
      const keep = Math.floor(scored.length / eta);
      // Promotion must be earned against the one to beat: the incumbent where it was measured at this
      // rung, else the baseline. A config behind it here would rarely win the race one rung up.
      const refId = this.value(s.incumbent, r, 0) !== undefined ? s.incumbent : BASELINE_ID;
      let ref = this.value(refId, r, 0);
      if (s.answerRules?.v4 && ref !== undefined) {
        // One run is one draw. A reference ahead of all but a few of many configs (fewer than ASHA's
        // keep of its keep) may just have drawn well, and would starve every rung above it: it gets
        // a second look, up to R seeds, and the mean of its seeds is the bar.
        const mine = this.seeds(refId, r);
        const bar = mean(mine.map((k) => this.value(refId, r, k) as number));
        const ahead = scored.filter((x) => x.v < this.sign * bar).length;
        if (
          scored.length >= eta * eta &&
          ahead < scored.length / (eta * eta) &&
          mine.length < this.input.replicates
        ) {
          const k = Math.max(...mine) + 1;
          if (
            !this.busy(refId, r, k) &&
            !this.exhaustedAttempts(refId, r, k) &&
            this.affordable(this.cost(r))
          )
            return { configId: refId, rung: r, k, purpose: refId === BASELINE_ID ? 'baseline' : 'screen' };
        }
        ref = bar;
      }
      for (const { id, v } of scored.slice(0, keep)) {
        const entry = s.configs[id] as ConfigEntry;
        if (entry.closed || entry.rung > r) continue;
        if (ref !== undefined && v >= this.sign * ref) continue;
        return { configId: id, rung: r + 1, k: 0, purpose: r + 1 === top ? 'race' : 'screen' };
      }
    }
    return undefined;
  }

  // ---- proposals ----------------------------------------------------------------------------

  /** The space-filling start: every knob moved once from the baseline, and a Latin hypercube. */
  private design(): void {
    const s = this.state;
    if (s.design.done) return;
    s.design.done = true;
    const random = seededRandom(mixSeed(this.input.seed, 0xde51, s.approval.feedback.length));
    const oat = shuffle(this.space.oneAtATime({}), random);
    const totalTop = this.remainingTopRuns();
    const bottomCost = this.cost(s.bottom).gpuHours / this.cost(this.top).gpuHours;
    const costRatio = Number.isFinite(bottomCost) && bottomCost > 0 ? bottomCost : 1;
    // The design takes at most a third of the validation share.
    const affordableStarts = Number.isFinite(totalTop)
      ? Math.floor(
          (totalTop * this.input.split.validation) / 3 / (s.budget.gpuHours !== undefined ? costRatio : 1),
        )
      : oat.length;
    const lhsCount = Math.max(2, Math.ceil(this.space.dims.length / 2));
    const lhs = this.space.latinHypercube(lhsCount, random);
    const points: { config: Config; why: string }[] = [];
    // Interleave so that a short budget still moves every knob before it fills in the cube.
    const oatFirst = oat.map((c) => ({
      config: c,
      why: `design: move ${Object.keys(this.space.delta(c)).join(', ')} alone`,
    }));
    const cube = lhs.map((c) => ({ config: c, why: 'design: a Latin-hypercube point over every knob' }));
    while (oatFirst.length || cube.length) {
      points.push(...oatFirst.splice(0, 3));
      points.push(...cube.splice(0, 1));
    }
    let n = 0;
    for (const p of points) {
      if (n >= Math.max(this.space.dims.length, affordableStarts)) break;
      if (this.enqueue(p.config, 'planner', 'design', `planner ${p.why}`, 'bottom')) n += 1;
    }
  }

  /** Observations for the planner: every config at its highest measured rung, history as a fading prior. */
  observations(): Observation[] {
    const s = this.state;
    const out: Observation[] = [];
    // The model learns from the highest rung with enough configs measured there (BOHB's rule): lower
    // rungs reward what converges fast, which is not what full fidelity rewards. Configs measured only
    // below it stay in, with a small weight, so that nothing is proposed twice.
    const counts = s.rungs.map(
      (_, r) => Object.keys(s.configs).filter((id) => this.value(id, r, 0) !== undefined).length,
    );
    let model = 0;
    for (let r = this.top; r >= 0; r--)
      if ((counts[r] ?? 0) >= MODEL_MIN_CONFIGS) {
        model = r;
        break;
      }
    let own = 0;
    for (const [id, entry] of Object.entries(s.configs)) {
      let scored = false;
      for (let r = this.top; r >= 0 && !scored; r--) {
        if (r > model && this.value(id, model, 0) !== undefined) continue;
        const d = this.diffs(id, BASELINE_ID, r);
        if (!d.length && id !== BASELINE_ID) continue;
        if (id === BASELINE_ID && this.value(id, r, 0) === undefined) continue;
        out.push({
          config: this.config(id),
          score: id === BASELINE_ID ? 0 : mean(d),
          weight: r >= model ? 1 : 0.05,
        });
        scored = true;
        own += 1;
      }
      if (!scored && entry.closed?.startsWith('failed')) {
        out.push({ config: this.config(id), score: -Infinity, weight: 1 });
      }
    }
    const finite = out.filter((o) => Number.isFinite(o.score));
    const worst = finite.length ? Math.min(...finite.map((o) => o.score)) - 1 : -1;
    for (const o of out) if (!Number.isFinite(o.score)) o.score = worst;
    const fade = 8 / (8 + own);
    for (const p of s.evidence.prior) out.push({ ...p, weight: (p.weight ?? 0.5) * fade });
    return out;
  }

  private pendingConfigs(): Config[] {
    const s = this.state;
    return [
      ...Object.values(s.running).map((r) => this.config(r.configId)),
      ...s.queue.map((q) => this.config(q.configId)),
    ];
  }

  private propose(
    rungOverride?: number,
    topAffordable = true,
  ): { configId: string; rung: number; k: number; purpose: Purpose } | undefined {
    const s = this.state;
    const phase = this.spendPhase();
    const random = seededRandom(mixSeed(this.input.seed, 0x9a11, s.proposals++));
    const obs = this.observations();
    const pending = this.pendingConfigs();
    if (rungOverride === undefined && phase === 'exploitation' && topAffordable) {
      const local = this.localMove(obs, pending, random);
      const rung = this.entryRung('near-top');
      if (local) return { configId: local, rung, k: 0, purpose: rung === this.top ? 'race' : 'screen' };
    }
    const planner: Planner =
      this.input.planner === 'random' ? new RandomPlanner(this.space) : new TpePlanner(this.space);
    const [config] = planner.propose(obs, pending, 1, random);
    if (!config) return undefined;
    const how =
      planner.name === 'random'
        ? 'a uniform random point (random planner)'
        : obs.length < 6
          ? 'a random point while the model has little data'
          : `TPE pick over ${obs.length} observations`;
    const { id, fresh } = this.register(config, 'planner', 'model', `planner: ${how}`);
    if (!fresh) return undefined;
    const rung = rungOverride ?? s.bottom;
    return { configId: id, rung, k: 0, purpose: rung === this.top ? 'race' : 'screen' };
  }

  /** Merges of the best distinct configs (their best rung's gain), queued to race at full fidelity. */
  private merges(): void {
    const s = this.state;
    const ranked = Object.keys(s.configs)
      .filter((id) => id !== BASELINE_ID && !s.configs[id]?.closed?.startsWith('failed'))
      .flatMap((id) => {
        for (let r = this.top; r >= 0; r--) {
          const d = this.diffs(id, BASELINE_ID, r);
          if (d.length) return [{ id, rung: r, gain: mean(d) }];
        }
        return [];
      })
      // Merge only what held up above the bottom rung: a bottom-rung lead is too weak to build on.
      .filter((x) => x.gain > 0 && (x.rung > s.bottom || this.top === s.bottom))
      .sort((a, b) => b.rung - a.rung || b.gain - a.gain);
    const picked: string[] = [];
    for (const x of ranked) {
      if (picked.length >= TOP_MERGES) break;
      const knobs = Object.keys(s.configs[x.id]?.delta ?? {});
      // Distinct: a config whose knobs are all already covered by a better pick adds nothing to a merge.
      const covered = new Set(picked.flatMap((id) => Object.keys(s.configs[id]?.delta ?? {})));
      if (knobs.every((k) => covered.has(k))) continue;
      picked.push(x.id);
    }
    const sets: string[][] = [];
    for (let i = 0; i < picked.length; i++)
      for (let j = i + 1; j < picked.length; j++) sets.push([picked[i] as string, picked[j] as string]);
    if (picked.length > 2) sets.push([...picked]);
    for (const ids of sets) {
      const key = ids.join('+');
      if (s.merged.includes(key)) continue;
      s.merged.push(key);
      const delta: Config = {};
      // Best first: where two set one knob, the better one's value stays.
      for (const id of ids) for (const [k, v] of Object.entries(s.configs[id]?.delta ?? {})) delta[k] ??= v;
      this.enqueue(delta, 'planner', 'merge', `combine: ${ids.join(' + ')}`, 'near-top');
    }
  }

  /** A local move around the incumbent, the best of several by the planner's l(x)/g(x). */
  private localMove(obs: Observation[], pending: Config[], random: () => number): string | undefined {
    const s = this.state;
    const centre = this.config(s.incumbent);
    const planner = new TpePlanner(this.space);
    const seen = new Set([...Object.keys(s.configs)]);
    const candidates: Config[] = [];
    for (let i = 0; i < LOCAL_CANDIDATES * 3 && candidates.length < LOCAL_CANDIDATES; i++) {
      const c = this.space.perturb(centre, random, 0.12);
      const k = this.space.key(c);
      if (seen.has(k)) continue;
      seen.add(k);
      candidates.push(c);
    }
    const best = planner.rank(obs, pending, candidates)[0];
    if (!best) return undefined;
    const moved = Object.keys(best)
      .filter((k) => best[k] !== centre[k])
      .map((k) => `${k} ${String(centre[k])} → ${String(best[k])}`)
      .join(', ');
    const { id, fresh } = this.register(best, 'planner', 'local', `refine the incumbent: ${moved}`);
    return fresh ? id : undefined;
  }

  private maybeAskLlm(): void {
    const s = this.state;
    const phase = this.phaseNow();
    if (s.stage !== 'running' || s.llm.inFlight || s.aborting || s.paused || s.draining) return;
    if (phase !== 'validation' && phase !== 'combination') return;
    if (s.llm.calls >= Math.max(0, this.input.llm.maxCalls - 1)) return;
    // A bounded share: the LLM proposes at most a quarter of the configs the campaign tries.
    const tried = Object.keys(s.configs).length;
    if (s.llm.proposed > 0.25 * tried || s.queue.some((q) => s.configs[q.configId]?.origin === 'llm')) return;
    if (tried < 8) return;
    s.llm.calls += 1;
    s.llm.inFlight = true;
    this.effects.push({ type: 'askLlm', request: this.llmRequest(phase) });
  }

  private llmRequest(phase: Phase): LlmRequest {
    const s = this.state;
    const rows = Object.keys(s.configs)
      .filter((id) => id !== BASELINE_ID)
      .flatMap((id) => {
        for (let r = this.top; r >= 0; r--) {
          const d = this.diffs(id, BASELINE_ID, r);
          if (d.length)
            return [
              {
                delta: s.configs[id]?.delta ?? {},
                gainPct: Number(mean(d).toFixed(3)),
                fidelity: s.rungs[r] as number,
                runs: d.length,
              },
            ];
        }
        return [];
      })
      .sort((a, b) => b.fidelity - a.fidelity || b.gainPct - a.gainPct);
    const inc = this.posteriorOf(s.incumbent);
    return {
      round: s.llm.calls,
      count: 3,
      incumbent: { delta: s.configs[s.incumbent]?.delta ?? {}, gainPct: Number((inc?.raw ?? 0).toFixed(3)) },
      best: rows.slice(0, 8),
      worst: rows.slice(-5).map(({ delta, gainPct, fidelity }) => ({ delta, gainPct, fidelity })),
      tried: Object.keys(s.configs).length,
      excludeKnobs: s.excludedKnobs,
      phase,
    };
  }

  // ---- messages -----------------------------------------------------------------------------

  /** Why a message cannot be taken now, naming the field (the workflow's update validators), or undefined. */
  refusal(event: CampaignEvent): string | undefined {
    const s = this.state;
    const waiting = () =>
      s.approval.status === 'waiting'
        ? undefined
        : `no plan is waiting for approval (the campaign is in ${s.phase}/${s.stage}, approval ${s.approval.status})`;
    switch (event.type) {
      case 'approve':
        return waiting();
      case 'reject': {
        const unknown = event.excludeKnobs.filter((k) => !hasKnob(this.spec, k));
        return (
          waiting() ??
          (unknown.length
            ? `rejectPlan is invalid: excludeKnobs: unknown knobs ${unknown.join(', ')}`
            : undefined)
        );
      }
      case 'setBudget': {
        const problems = this.budgetProblems(event.budget);
        return problems.length ? `setBudget is invalid: ${problems.join('; ')}` : undefined;
      }
      case 'addHypothesis': {
        const problems = configProblems(this.spec, event.delta);
        if (problems.length)
          return `addHypothesis is invalid: ${problems.map((p) => `delta.${p}`).join('; ')}`;
        const id = this.idOf(event.delta);
        if (id === BASELINE_ID)
          return 'addHypothesis is invalid: delta: expected at least one knob that differs from the baseline (knobs inactive under the others do not count)';
        if (s.stage === 'finishing' || s.stage === 'done') return 'addHypothesis: the campaign is finishing';
        // The queue drops a config that moves an excluded knob: say so instead of accepting it.
        const excluded = Object.keys(this.space.delta(event.delta)).filter((k) =>
          s.excludedKnobs.includes(k),
        );
        if (excluded.length)
          return `addHypothesis is invalid: ${excluded.map((k) => `delta.${k}`).join(', ')}: a rejected plan excluded this knob (rejectPlan's excludeKnobs)`;
        if (s.configs[id]) return `addHypothesis: "${id}" is already part of this campaign`;
        return undefined;
      }
      default:
        return undefined;
    }
  }

  /** The `status` query's answer: where the campaign is, what it spent, its answer and leaderboard. */
  status(campaignId: string): CampaignStatus {
    const s = this.state;
    return {
      phase: s.phase,
      stage: s.stage,
      paused: s.paused,
      ...(s.aborting ? { aborting: s.aborting } : {}),
      approval: s.approval,
      ...(s.plan ? { plan: s.plan } : {}),
      budget: {
        limit: s.budget,
        used: s.used,
        byPhase: s.byPhase,
        split: this.input.split,
        spentPct: this.spentShare() * 100,
      },
      answer: this.answer(),
      incumbent: s.incumbent,
      rungs: s.rungs,
      running: Object.entries(s.running).map(([id, r]) => ({
        experimentId: `${campaignId}.e${id}`,
        hypothesisId: r.configId,
        fidelity: s.rungs[r.rung] as number,
        seed: this.input.seed + r.k,
        purpose: r.purpose,
      })),
      queued: s.queue.length,
      wins: s.wins,
      leaderboard: this.leaderboard(10),
      experiments: s.counts,
      run: s.runs,
      activityFailures: s.activityFailures ?? [],
    };
  }

  /** Notes an activity that failed for good, for the status and the details (the workflow logs it). */
  noteActivityFailure(note: ActivityFailureNote): void {
    const notes = (this.state.activityFailures ??= []);
    notes.push(note);
    notes.splice(0, Math.max(0, notes.length - ACTIVITY_FAILURES_KEPT));
  }

  // ---- views --------------------------------------------------------------------------------

  result(campaignId: string, status: CampaignResult['status'], reason?: string): CampaignResult {
    const s = this.state;
    const a = this.answer();
    const top = this.top;
    const base = this.seeds(BASELINE_ID, top).map((k) => this.value(BASELINE_ID, top, k) as number);
    const best = this.seeds(a.hypothesisId, top).map((k) => this.value(a.hypothesisId, top, k) as number);
    const h = this.hypothesis(a.hypothesisId);
    return {
      campaignId,
      model: this.spec.name,
      status,
      ...(reason ? { reason } : {}),
      metric: this.spec.metric.primary,
      direction: this.spec.metric.direction,
      fidelity: s.rungs[top] as number,
      baseline: { value: base.length ? mean(base) : NaN, replicates: base.length },
      best: {
        hypothesisId: h.id,
        source: h.source,
        config: this.config(h.id),
        delta: h.delta,
        value: best.length ? mean(best) : NaN,
        replicates: best.length,
      },
      gainPct: a.gainPct,
      gainCi: { low: a.low, high: a.high },
      significant: a.confirmed,
      confirmed: a.confirmed,
      probability: a.probability,
      minGainPct: this.input.minGainPct,
      wins: s.wins,
      ...(a.hypothesisId !== BASELINE_ID && !a.confirmed
        ? { unconfirmed: { hypothesisId: a.hypothesisId, gainPct: a.gainPct, low: a.low, high: a.high } }
        : {}),
      experiments: s.counts,
      budget: { limit: s.budget, used: s.used, byPhase: s.byPhase },
      spentPct: Number((this.spentShare() * 100).toFixed(2)),
      ...(s.stopReason ? { stopReason: s.stopReason } : {}),
      answerTrail: s.trail.map((t) => ({ ...t, delta: s.configs[t.hypothesisId]?.delta ?? {} })),
      split: this.input.split,
      failures: s.failures,
      rungs: s.rungs,
    };
  }

  /** Top of the leaderboard: configs at their highest rung, by gain over the baseline there. */
  leaderboard(
    limit: number,
  ): { hypothesisId: string; source: string; fidelity: number; n: number; gainPct: number; value: number }[] {
    const s = this.state;
    const rows = Object.keys(s.configs)
      .filter((id) => id !== BASELINE_ID)
      .flatMap((id) => {
        for (let r = this.top; r >= 0; r--) {
          const d = this.diffs(id, BASELINE_ID, r);
          if (!d.length) continue;
          const vals = this.seeds(id, r).map((k) => this.value(id, r, k) as number);
          return [
            {
              hypothesisId: id,
              source: s.configs[id]?.source ?? '?',
              fidelity: s.rungs[r] as number,
              n: d.length,
              gainPct: mean(d),
              value: mean(vals),
            },
          ];
        }
        return [];
      });
    return rows.sort((a, b) => b.fidelity - a.fidelity || b.gainPct - a.gainPct).slice(0, limit);
  }

  markdown(): string {
    const s = this.state;
    const b = s.budget;
    const a = this.answer();
    const budget = budgetLine(b, s.used);
    const table = leaderboardTable(this.leaderboard(10), this.spec.metric.primary);
    const flags = attentionFlags(s.paused, s.approval.status === 'waiting');
    const failing = s.activityFailures?.at(-1);
    return [
      `**Phase:** ${s.phase} (${s.stage}) ${flags}`.trim(),
      `**Budget used:** ${budget} · **running:** ${Object.keys(s.running).length} · **answer:** ${a.hypothesisId} (${a.gainPct.toFixed(2)}%, ${a.confirmed ? 'confirmed' : 'not confirmed'}) · **failed:** ${s.counts.failed}`,
      ...(failing
        ? [
            `**Activity failed** (${s.activityFailures?.length} so far, latest at ${new Date(failing.at).toISOString()}): ${failing.message}`,
          ]
        : []),
      '',
      table,
    ].join('\n');
  }

  /** The knobs a runbook fix would need, for the plan's notes. */
  runbookNotes(): string[] {
    const notes: string[] = [];
    if (!knobsWithRole(this.spec, 'batch_size').length && !knobsWithRole(this.spec, 'capacity').length)
      notes.push(
        'no knob declares role "batch_size" or "capacity": an out-of-memory job is dropped, not fixed',
      );
    if (!knobsWithRole(this.spec, 'learning_rate').length)
      notes.push('no knob declares role "learning_rate": a loss explosion is dropped, not fixed');
    return notes;
  }
}

/** The reducer form: applies `event` to `state` (in place) and returns the effects to carry out. */
/** A config's posterior as the answer shows it: mean gain, its 95 % interval, P(gain > minGainPct). */
function answerView(id: string, p: Posterior, c: { probability: number; confirmed: boolean }): AnswerView {
  return {
    hypothesisId: id,
    seeds: p.n,
    gainPct: p.mean,
    raw: p.raw,
    low: p.mean - 1.96 * p.sd,
    high: p.mean + 1.96 * p.sd,
    probability: c.probability,
    confirmed: c.confirmed,
  };
}

export function nextAction(
  state: CampaignState,
  event: CampaignEvent,
  ctx: { spec: ModelSpec; input: CampaignSettings },
): Effect[] {
  return new CampaignMachine(state, ctx.spec, ctx.input).handle(event);
}

/**
 * The campaign's state and its rules, kept apart from the workflow shell so that they are unit
 * tested and carried compactly across continue-as-new. Sandbox-safe and deterministic.
 *
 * Steps, by phase:
 *   preflight:    baseline (replicates at low fidelity, to measure noise) → plan (slate, cost, approval)
 *   validation:   screen (slate at low) → validate (best 1/eta at mid, with replicates, noise-aware)
 *   combination:  combine (merges of validated wins at mid, with replicates; synergy recorded)
 *   exploitation: exploit (best at high + baseline) → refine (local steps at high) → confirm (replicates)
 */
import { attentionFlags, budgetLine, leaderboardTable } from './campaign/details';
import type { Budget, CampaignSettings } from './campaign-input';
import { baselineConfig, jobCost, type Config, type ModelSpec } from './model-spec';
import { BASELINE_ID, hypothesisId, withoutBaselineValues } from './planner';
import { diffInterval, mean, sampleStd } from './stats';
import type { CampaignResult, FailureClass, Hypothesis, Phase, Spend } from './types';

export type Step =
  'baseline' | 'plan' | 'screen' | 'validate' | 'combine' | 'exploit' | 'refine' | 'confirm' | 'report';
export const STEPS: readonly Step[] = [
  'baseline',
  'plan',
  'screen',
  'validate',
  'combine',
  'exploit',
  'refine',
  'confirm',
  'report',
];

export function phaseOf(step: Step): Phase {
  switch (step) {
    case 'baseline':
    case 'plan':
      return 'preflight';
    case 'screen':
    case 'validate':
      return 'validation';
    case 'combine':
      return 'combination';
    case 'exploit':
    case 'refine':
    case 'confirm':
      return 'exploitation';
    case 'report':
      return 'done';
  }
}

export interface WorkItem {
  hypothesisId: string;
  role: 'baseline' | 'candidate';
  fidelity: number;
  seed: number;
  attempt: number;
}

export interface Plan {
  slate: { id: string; rationale: string }[];
  estimate: Spend;
  /** What the estimate includes, in words, for the engineer who approves. */
  strategy: string[];
  split: CampaignSettings['split'];
  fidelity: { low: number; mid: number; high: number };
  round: number;
}

/** `awaiting-plan`: approval is required, and the plan is not written yet. */
export type ApprovalStatus =
  'not-required' | 'awaiting-plan' | 'waiting' | 'approved' | 'rejected' | 'timed-out';

export interface CampaignState {
  version: 1;
  step: Step;
  /** The current step's work has been laid out in `pending`. */
  prepared: boolean;
  budget: Budget;
  used: Spend;
  byPhase: Record<string, Spend>;
  nextIndex: number;
  pending: WorkItem[];
  hypotheses: Record<string, Hypothesis>;
  /** Primary-metric values of successful runs, by `${hypothesisId}@${fidelity}`. */
  measurements: Record<string, number[]>;
  slate: string[];
  survivors: string[];
  combos: { hypothesisId: string; parts: string[] }[];
  wins: { hypothesisId: string; gainPct: number; phase: Phase; synergyPct?: number }[];
  bestId: string;
  /** The final candidate when its confirmation failed: reported, but the baseline stays best. */
  unconfirmed?: { hypothesisId: string; gainPct: number; low: number; high: number };
  /** Knobs an engineer asked the planner to leave alone. */
  excludedKnobs: string[];
  humanQueue: string[];
  dropped: { hypothesisId: string; why: string }[];
  failures: CampaignResult['failures'];
  counts: CampaignResult['experiments'];
  approval: { status: ApprovalStatus; feedback: string[] };
  plan?: Plan;
  paused: boolean;
  recordedStart: boolean;
  runs: number;
  /** Each change of the answer (bestId), with the budget used when it changed (absent in older runs). */
  trail?: AnswerChange[];
}

export interface AnswerChange {
  hypothesisId: string;
  experiments: number;
  gpuHours: number;
}

export { BASELINE_ID };
const MAX_LISTED = 200;

export function initialState(input: CampaignSettings): CampaignState {
  return {
    version: 1,
    step: 'baseline',
    prepared: false,
    budget: input.budget,
    used: { experiments: 0, gpuHours: 0 },
    byPhase: {},
    nextIndex: 0,
    pending: [],
    hypotheses: {
      [BASELINE_ID]: {
        id: BASELINE_ID,
        source: 'baseline',
        rationale: 'the model as it is today',
        delta: {},
      },
    },
    measurements: {},
    slate: [],
    survivors: [],
    combos: [],
    wins: [],
    bestId: BASELINE_ID,
    excludedKnobs: [],
    humanQueue: [],
    dropped: [],
    failures: [],
    counts: { total: 0, succeeded: 0, failed: 0, cancelled: 0, retried: 0, skipped: 0 },
    approval: { status: input.approval.required ? 'awaiting-plan' : 'not-required', feedback: [] },
    paused: false,
    recordedStart: false,
    runs: 1,
  };
}

const key = (id: string, fidelity: number) => `${id}@${fidelity}`;

export class Campaign {
  constructor(
    readonly state: CampaignState,
    readonly spec: ModelSpec,
    readonly input: CampaignSettings,
    readonly levels: { low: number; mid: number; high: number },
  ) {}

  get phase(): Phase {
    return phaseOf(this.state.step);
  }

  private get sign(): number {
    return this.spec.metric.direction === 'minimize' ? 1 : -1;
  }

  // ---- budget -------------------------------------------------------------------------------

  /** Share of the total budget that may be spent by the end of `phase` (unspent shares roll over). */
  private cumulativeShare(phase: Phase): number {
    const { validation, combination } = this.input.split;
    if (phase === 'preflight' || phase === 'validation') return validation;
    if (phase === 'combination') return validation + combination;
    return 1;
  }

  /** Why a job at `fidelity` cannot be paid for now, or undefined when it can. */
  unaffordable(fidelity: number): string | undefined {
    const cost = jobCost(this.spec, fidelity);
    const share = this.cumulativeShare(this.phase);
    const { experiments, gpuHours } = this.state.budget;
    const used = this.state.used;
    if (experiments !== undefined) {
      if (used.experiments + 1 > experiments) return `the experiment budget (${experiments}) is spent`;
      if (used.experiments + 1 > Math.max(1, Math.round(experiments * share))) {
        return `the ${this.phase} share of the experiment budget is spent`;
      }
    }
    if (gpuHours !== undefined) {
      if (used.gpuHours + cost > gpuHours + 1e-12) return `the GPU-hour budget (${gpuHours}) is spent`;
      if (used.gpuHours + cost > gpuHours * share + 1e-12)
        return `the ${this.phase} share of the GPU-hour budget is spent`;
    }
    return undefined;
  }

  /** Charges one job to the budget; returns its cost. Call only after `unaffordable` said no. */
  reserve(fidelity: number): number {
    const cost = jobCost(this.spec, fidelity);
    this.state.used = {
      experiments: this.state.used.experiments + 1,
      gpuHours: this.state.used.gpuHours + cost,
    };
    const p = (this.state.byPhase[this.phase] ??= { experiments: 0, gpuHours: 0 });
    p.experiments += 1;
    p.gpuHours += cost;
    this.state.counts.total += 1;
    return cost;
  }

  /** Problems with a new budget, by field; a budget may not drop below what is already spent. */
  budgetProblems(next: Budget): string[] {
    const problems: string[] = [];
    if (next.experiments !== undefined && next.experiments < this.state.used.experiments) {
      problems.push(`experiments: expected at least ${this.state.used.experiments} (already used)`);
    }
    if (next.gpuHours !== undefined && next.gpuHours < this.state.used.gpuHours) {
      problems.push(`gpuHours: expected at least ${this.state.used.gpuHours.toFixed(4)} (already used)`);
    }
    return problems;
  }

  // ---- hypotheses and measurements ----------------------------------------------------------

  /** The id a delta is known by: knobs at their baseline values do not count. */
  idOf(delta: Config): string {
    return hypothesisId(withoutBaselineValues(this.spec, delta));
  }

  register(h: Hypothesis): Hypothesis {
    const delta = withoutBaselineValues(this.spec, h.delta);
    const id = hypothesisId(delta);
    const existing = this.state.hypotheses[id];
    if (existing) return existing;
    const registered = { ...h, id, delta };
    this.state.hypotheses[id] = registered;
    return registered;
  }

  hypothesis(id: string): Hypothesis {
    const h = this.state.hypotheses[id];
    if (!h) throw new Error(`unknown hypothesis ${id} (a bug: every run's hypothesis is registered first)`);
    return h;
  }

  config(id: string): Config {
    return { ...baselineConfig(this.spec), ...(this.state.hypotheses[id]?.delta ?? {}) };
  }

  record(item: WorkItem, value: number): void {
    (this.state.measurements[key(item.hypothesisId, item.fidelity)] ??= []).push(value);
    this.state.counts.succeeded += 1;
  }

  values(id: string, fidelity: number): number[] {
    return this.state.measurements[key(id, fidelity)] ?? [];
  }

  /** The baseline's standard deviation at `fidelity` (replicates), the noise a win must beat. */
  noise(fidelity: number): number {
    return sampleStd(this.values(BASELINE_ID, fidelity));
  }

  /** Relative gain (%) of `id` over the baseline at `fidelity`, with its 95% interval. */
  gain(id: string, fidelity: number): { gainPct: number; low: number; high: number; n: number } | undefined {
    const cand = this.values(id, fidelity);
    const base = this.values(BASELINE_ID, fidelity);
    if (!cand.length || !base.length) return undefined;
    const baseMean = mean(base);
    // Lower-is-better scale: a positive diff is a win.
    const ci = diffInterval(
      base.map((v) => this.sign * v),
      cand.map((v) => this.sign * v),
      this.noise(fidelity),
    );
    const pct = (x: number) => (x / Math.abs(baseMean)) * 100;
    return { gainPct: pct(ci.diff), low: pct(ci.low), high: pct(ci.high), n: cand.length };
  }

  // ---- steps --------------------------------------------------------------------------------

  private items(id: string, role: WorkItem['role'], fidelity: number, seeds: number): WorkItem[] {
    const have = this.values(id, fidelity).length;
    return Array.from({ length: Math.max(0, seeds - have) }, (_, i) => ({
      hypothesisId: id,
      role,
      fidelity,
      seed: this.input.seed + have + i,
      attempt: 1,
    }));
  }

  /** The fidelity a step trains at: low to screen, mid to validate and combine, high to exploit. */
  stepFidelity(step: Step): number {
    const { low, mid, high } = this.levels;
    switch (phaseOf(step)) {
      case 'preflight':
      case 'validation':
        return step === 'validate' ? mid : low;
      case 'combination':
        return mid;
      case 'exploitation':
      case 'done':
        return high;
    }
  }

  /** Lays out the work of the current step (the plan step needs a slate first: see `setSlate`). */
  prepare(refinements: Hypothesis[] = [], merges: { parts: string[]; rationale: string }[] = []): void {
    const R = this.input.replicates;
    const s = this.state;
    const f = this.stepFidelity(s.step);
    switch (s.step) {
      case 'baseline':
        s.pending = this.items(BASELINE_ID, 'baseline', f, R);
        break;
      case 'plan':
      case 'report':
        s.pending = [];
        break;
      case 'screen':
        s.pending = [...s.slate, ...s.humanQueue.splice(0)].flatMap((id) =>
          this.items(id, 'candidate', f, 1),
        );
        break;
      case 'validate':
        // Nothing survived the screen: a baseline at mid fidelity would have nothing to judge.
        s.pending = s.survivors.length
          ? [
              ...this.items(BASELINE_ID, 'baseline', f, R),
              ...s.survivors.flatMap((id) => this.items(id, 'candidate', f, R)),
            ]
          : [];
        break;
      case 'combine':
        s.combos = this.combinations(merges).map(({ hypothesis, parts }) => ({
          hypothesisId: this.register(hypothesis).id,
          parts,
        }));
        s.pending = s.combos.flatMap((c) => this.items(c.hypothesisId, 'candidate', f, R));
        break;
      case 'exploit':
        s.pending = [
          ...this.items(BASELINE_ID, 'baseline', f, R),
          ...(s.bestId === BASELINE_ID ? [] : this.items(s.bestId, 'candidate', f, 1)),
        ];
        break;
      case 'refine':
        s.pending = refinements.flatMap((h) => this.items(this.register(h).id, 'candidate', f, 1));
        break;
      case 'confirm':
        s.pending = s.bestId === BASELINE_ID ? [] : this.items(s.bestId, 'candidate', f, R);
        break;
    }
    s.prepared = true;
  }

  setSlate(slate: Hypothesis[]): void {
    this.state.slate = slate.map((h) => this.register(h).id).filter((id) => id !== BASELINE_ID);
    this.state.plan = this.makePlan();
  }

  /** The written strategy and its cost estimate, for the approval gate. */
  makePlan(): Plan {
    const { low, mid, high } = this.levels;
    const R = this.input.replicates;
    const n = this.state.slate.length;
    const survivors = Math.ceil(n / this.input.eta);
    const combos = survivors >= 2 ? Math.min(4, survivors) : 0;
    const parts: [string, number, number][] = [
      [`baseline × ${R} replicates at ${low} (noise)`, R, low],
      [`screen ${n} hypotheses at ${low}`, n, low],
      [
        `validate the best ${survivors} (1/${this.input.eta}) + baseline at ${mid}, × ${R} replicates`,
        (survivors + 1) * R,
        mid,
      ],
      [`combine up to ${combos} merges of validated wins at ${mid}, × ${R}`, combos * R, mid],
      [`exploit: baseline × ${R} + best at ${high}`, R + 1, high],
      [`refine: ${this.input.refinements} local steps at ${high}`, this.input.refinements, high],
      [`confirm the final candidate × ${R} at ${high}`, R - 1, high],
    ];
    const estimate = parts.reduce(
      (acc, [, count, f]) => ({
        experiments: acc.experiments + count,
        gpuHours: acc.gpuHours + count * jobCost(this.spec, f),
      }),
      { experiments: 0, gpuHours: 0 },
    );
    return {
      slate: this.state.slate.map((id) => ({ id, rationale: this.state.hypotheses[id]?.rationale ?? '' })),
      estimate,
      strategy: parts.map(([text]) => text),
      split: this.input.split,
      fidelity: this.levels,
      round: this.state.approval.feedback.length + 1,
    };
  }

  /** Draws the conclusions of the finished step and moves to the next one. */
  conclude(): void {
    const s = this.state;
    const { low, mid, high } = this.levels;
    switch (s.step) {
      case 'screen': {
        const baseMean = mean(this.values(BASELINE_ID, low));
        const screened = Object.keys(s.hypotheses)
          .filter((id) => id !== BASELINE_ID && this.values(id, low).length > 0)
          .map((id) => ({ id, score: this.sign * mean(this.values(id, low)) }))
          .filter((c) => c.score < this.sign * baseMean)
          .sort((a, b) => a.score - b.score || a.id.localeCompare(b.id));
        const keep = Math.ceil(Math.max(1, s.slate.length) / this.input.eta);
        s.survivors = screened.slice(0, keep).map((c) => c.id);
        break;
      }
      case 'validate':
        for (const id of s.survivors) this.judge(id, mid, 'validation');
        break;
      case 'combine':
        for (const combo of s.combos) {
          // Synergy: the merge's gain beyond the best of its parts (positive: the wins add up).
          const partGains = combo.parts.map((id) => this.gain(id, mid)?.gainPct ?? 0);
          const g = this.gain(combo.hypothesisId, mid);
          this.judge(combo.hypothesisId, mid, 'combination', g && g.gainPct - Math.max(...partGains));
        }
        break;
      case 'exploit':
      case 'refine':
        s.bestId = this.bestAt(high) ?? s.bestId;
        break;
      case 'confirm': {
        // The final candidate stands only if its replicates beat the baseline beyond noise.
        const g = s.bestId === BASELINE_ID ? undefined : this.gain(s.bestId, high);
        if (s.bestId !== BASELINE_ID && !(g && g.n >= 2 && g.low > 0)) {
          s.unconfirmed = {
            hypothesisId: s.bestId,
            gainPct: g?.gainPct ?? 0,
            low: g?.low ?? 0,
            high: g?.high ?? 0,
          };
          this.drop(s.bestId, `not confirmed at ${high}: the 95% interval of its gain includes zero`);
          s.bestId = BASELINE_ID;
        }
        break;
      }
      default:
        break;
    }
    if (s.step === 'combine' || s.step === 'validate') {
      const top = [...s.wins].sort((a, b) => b.gainPct - a.gainPct)[0];
      s.bestId = top?.hypothesisId ?? BASELINE_ID;
    }
    this.noteAnswer();
    const next = STEPS[STEPS.indexOf(s.step) + 1];
    s.step = next ?? 'report';
    s.prepared = false;
    s.pending = [];
  }

  /** Records a change of the answer, so that the result can say how the answer evolved with spend. */
  private noteAnswer(): void {
    const s = this.state;
    const trail = (s.trail ??= []);
    const last = trail.at(-1)?.hypothesisId ?? BASELINE_ID;
    if (last !== s.bestId)
      trail.push({ hypothesisId: s.bestId, experiments: s.used.experiments, gpuHours: s.used.gpuHours });
  }

  /** A win only when the 95% interval of its gain over the rolling baseline excludes zero. */
  private judge(id: string, fidelity: number, phase: Phase, synergyPct?: number): void {
    const g = this.gain(id, fidelity);
    if (g && g.n >= 2 && g.low > 0 && !this.state.wins.some((w) => w.hypothesisId === id)) {
      this.state.wins.push({
        hypothesisId: id,
        gainPct: g.gainPct,
        phase,
        ...(synergyPct === undefined ? {} : { synergyPct }),
      });
    }
  }

  /** The candidate with the best mean at `fidelity` that beats the baseline there, if any. */
  private bestAt(fidelity: number): string | undefined {
    const base = this.values(BASELINE_ID, fidelity);
    if (!base.length) return undefined;
    const ranked = Object.keys(this.state.hypotheses)
      .filter((id) => id !== BASELINE_ID && this.values(id, fidelity).length)
      .map((id) => ({ id, score: this.sign * mean(this.values(id, fidelity)) }))
      .filter((c) => c.score < this.sign * mean(base))
      .sort((a, b) => a.score - b.score || a.id.localeCompare(b.id));
    return ranked[0]?.id;
  }

  /**
   * Merges of validated wins: the engine's choice when it made one (`chosen`), else all of them
   * together and the pairs among the best three.
   */
  combinations(
    chosen: { parts: string[]; rationale: string }[] = [],
  ): { hypothesis: Hypothesis; parts: string[] }[] {
    const wins = [...this.state.wins].sort((a, b) => b.gainPct - a.gainPct);
    if (wins.length < 2) return [];
    const rank = new Map(wins.map((w, i) => [w.hypothesisId, i]));
    const merge = (ids: string[], rationale?: string) => {
      const delta: Config = {};
      // Best first: where two wins set one knob, the better one's value stays.
      for (const id of ids)
        for (const [k, v] of Object.entries(this.state.hypotheses[id]?.delta ?? {})) delta[k] ??= v;
      const hypothesis: Hypothesis = {
        id: hypothesisId(delta),
        source: rationale ? 'llm' : 'planner',
        rationale: rationale
          ? `combine validated wins ${ids.join(' + ')}: ${rationale}`
          : `combine validated wins: ${ids.join(' + ')}`,
        delta,
      };
      return { hypothesis, parts: ids };
    };
    const valid = chosen
      .map((m) => ({ ...m, parts: m.parts.filter((id) => rank.has(id)) }))
      .filter((m) => m.parts.length >= 2);
    if (valid.length) {
      const seen = new Set<string>();
      return (
        valid
          // Best first, so that where two wins set one knob the better one's value stays.
          .map((m) =>
            merge(
              [...m.parts].sort((a, b) => (rank.get(a) ?? 0) - (rank.get(b) ?? 0)),
              m.rationale,
            ),
          )
          .filter(({ hypothesis }) => {
            const fresh = !seen.has(hypothesis.id) && !this.state.hypotheses[hypothesis.id];
            seen.add(hypothesis.id);
            return fresh;
          })
      );
    }
    const top = wins.slice(0, 3).map((w) => w.hypothesisId);
    const sets = [wins.map((w) => w.hypothesisId)];
    for (let i = 0; i < top.length; i++)
      for (let j = i + 1; j < top.length; j++) sets.push([top[i] as string, top[j] as string]);
    const seen = new Set<string>();
    return sets
      .map((ids) => merge(ids))
      .filter(({ hypothesis }) => {
        const fresh = !seen.has(hypothesis.id) && !this.state.hypotheses[hypothesis.id];
        seen.add(hypothesis.id);
        return fresh;
      });
  }

  // ---- failures -----------------------------------------------------------------------------

  noteFailure(f: {
    experimentId: string;
    hypothesisId: string;
    failureClass: FailureClass;
    action: string;
  }): void {
    if (f.failureClass === 'cancelled') this.state.counts.cancelled += 1;
    else this.state.counts.failed += 1;
    this.state.failures.push(f);
    if (this.state.failures.length > MAX_LISTED) this.state.failures.shift();
  }

  drop(hypothesisId: string, why: string): void {
    this.state.dropped.push({ hypothesisId, why });
    if (this.state.dropped.length > MAX_LISTED) this.state.dropped.shift();
  }

  // ---- reporting ----------------------------------------------------------------------------

  /** The fidelity at which both the baseline and the best were measured, highest first. */
  private comparisonFidelity(): number {
    const { low, mid, high } = this.levels;
    const id = this.state.bestId;
    return (
      [high, mid, low].find((f) => this.values(BASELINE_ID, f).length && this.values(id, f).length) ?? low
    );
  }

  /** The current best's gain over the baseline, as the result would report it (0 for the baseline). */
  bestGainPct(): number {
    if (this.state.bestId === BASELINE_ID) return 0;
    return this.gain(this.state.bestId, this.comparisonFidelity())?.gainPct ?? 0;
  }

  result(campaignId: string, status: CampaignResult['status'], reason?: string): CampaignResult {
    const s = this.state;
    const fidelity = this.comparisonFidelity();
    const base = this.values(BASELINE_ID, fidelity);
    const bestValues = this.values(s.bestId, fidelity);
    const g = s.bestId === BASELINE_ID ? undefined : this.gain(s.bestId, fidelity);
    const best = s.hypotheses[s.bestId] ?? this.hypothesis(BASELINE_ID);
    return {
      campaignId,
      model: this.spec.name,
      status,
      ...(reason ? { reason } : {}),
      metric: this.spec.metric.primary,
      direction: this.spec.metric.direction,
      fidelity,
      baseline: { value: base.length ? mean(base) : NaN, replicates: base.length },
      best: {
        hypothesisId: best.id,
        source: best.source,
        config: this.config(best.id),
        delta: best.delta,
        value: bestValues.length ? mean(bestValues) : NaN,
        replicates: bestValues.length,
      },
      gainPct: g?.gainPct ?? 0,
      gainCi: { low: g?.low ?? 0, high: g?.high ?? 0 },
      significant: g !== undefined && g.n >= 2 && g.low > 0,
      wins: s.wins,
      ...(s.unconfirmed ? { unconfirmed: s.unconfirmed } : {}),
      experiments: s.counts,
      budget: { limit: s.budget, used: s.used, byPhase: s.byPhase },
      answerTrail: (s.trail ?? []).map((t) => ({ ...t, delta: s.hypotheses[t.hypothesisId]?.delta ?? {} })),
      split: this.input.split,
      failures: s.failures,
    };
  }

  /** Top of the leaderboard: every measured hypothesis at its highest fidelity, by gain. */
  leaderboard(
    limit: number,
  ): { hypothesisId: string; source: string; fidelity: number; n: number; gainPct: number; value: number }[] {
    const { low, mid, high } = this.levels;
    const rows = Object.keys(this.state.hypotheses)
      .filter((id) => id !== BASELINE_ID)
      .flatMap((id) => {
        const f = [high, mid, low].find(
          (x) => this.values(id, x).length && this.values(BASELINE_ID, x).length,
        );
        const g = f === undefined ? undefined : this.gain(id, f);
        return f === undefined || !g
          ? []
          : [
              {
                hypothesisId: id,
                source: this.state.hypotheses[id]?.source ?? '?',
                fidelity: f,
                n: g.n,
                gainPct: g.gainPct,
                value: mean(this.values(id, f)),
              },
            ];
      });
    return rows.sort((a, b) => b.fidelity - a.fidelity || b.gainPct - a.gainPct).slice(0, limit);
  }

  markdown(running: number): string {
    const s = this.state;
    const b = s.budget;
    const budget = budgetLine(b, s.used);
    const table = leaderboardTable(this.leaderboard(10), this.spec.metric.primary);
    const flags = attentionFlags(s.paused, s.approval.status === 'waiting');
    return [
      `**Phase:** ${this.phase} (${s.step}) ${flags}`.trim(),
      `**Budget used:** ${budget} · **running:** ${running} · **wins:** ${s.wins.length} · **failed:** ${s.counts.failed}`,
      '',
      table,
    ].join('\n');
  }
}

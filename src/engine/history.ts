/**
 * The history source: what rea measured before, read from PostgreSQL. Every measurement becomes a
 * gain over the baseline of its own campaign at its own fidelity, so that runs from different
 * campaigns and fidelities can be compared, fed to the planner, and summarised for a prompt.
 *
 *   const h = await loadHistory(pool, spec, { campaignId: 'ctr-7', highFidelity: 3000 });
 *   h.observations; // this campaign's and earlier ones', weighted
 *   summarizeHistory(h, 3000); // compact text for the LLM
 */
import type { Pool } from 'pg';
import { baselineConfig, configProblems, type Config, type ModelSpec } from '../core/model-spec';
import { hypothesisId, withoutBaselineValues } from '../core/planner';
import { relativeGainPct } from '../core/types';
import { poolDifferences, type NoiseEstimate } from '../core/search/inference';
import type { Observation } from './tpe';

export interface Measurement {
  campaignId: string;
  model: string;
  hypothesisId: string;
  delta: Config;
  config: Config;
  fidelity: number;
  gainPct: number;
  runs: number;
  /** 'this' campaign, the 'same' model earlier, or a 'similar' model (sharing most knobs). */
  relation: 'this' | 'same' | 'similar';
}

export interface KnobEffect {
  knob: string;
  value: string | number | boolean;
  meanGainPct: number;
  runs: number;
}

export interface HistoryFailure {
  hypothesisId: string;
  failureClass: string;
  count: number;
}

export interface History {
  measurements: Measurement[];
  observations: Observation[];
  effects: KnobEffect[];
  failures: HistoryFailure[];
  notes: { campaignId: string; note: string }[];
  /** Hypothesis ids measured on this model before (to avoid repeating them blindly). */
  triedIds: Set<string>;
}

interface Row {
  campaign_id: string;
  model: string;
  hypothesis_id: string;
  role: string;
  fidelity: number;
  config: Record<string, unknown>;
  value: number;
  runs: number;
}

const WEIGHT = { this: 1, same: 0.5, similar: 0.25 } as const;

/** Knobs the spec shares with `config`, as a share of the spec's knobs. */
function overlap(spec: ModelSpec, config: Record<string, unknown>): number {
  const knobs = Object.keys(spec.knobs);
  return knobs.filter((k) => k in config).length / knobs.length;
}

/** One (campaign, hypothesis, role, fidelity) aggregate: the mean primary value of its successful runs. */
export interface HistoryRow {
  campaign_id: string;
  model: string;
  hypothesis_id: string;
  role: string;
  fidelity: number;
  config: Record<string, unknown>;
  value: number;
  runs: number;
}

export async function loadHistory(
  pool: Pool,
  spec: ModelSpec,
  opts: { campaignId?: string; highFidelity: number; limit?: number },
): Promise<History> {
  const { rows } = await pool.query<Row>(
    `SELECT e.campaign_id, e.model, e.hypothesis_id, e.role, e.fidelity, min(e.config::text)::jsonb AS config,
            avg(e.primary_value) AS value, count(*)::int AS runs
     FROM experiments e
     WHERE e.status = 'succeeded' AND e.primary_value IS NOT NULL
       AND e.campaign_id IN (SELECT id FROM campaigns ORDER BY (id = $1) DESC, started_at DESC LIMIT 50)
     GROUP BY e.campaign_id, e.model, e.hypothesis_id, e.role, e.fidelity
     LIMIT $2`,
    [opts.campaignId ?? '', opts.limit ?? 5000],
  );
  const failures = await pool.query<{ hypothesis_id: string; failure_class: string; count: number }>(
    `SELECT hypothesis_id, failure_class, count(*)::int AS count FROM experiments
     WHERE model = $1 AND status = 'failed' AND failure_class IS NOT NULL
     GROUP BY hypothesis_id, failure_class ORDER BY count DESC, hypothesis_id LIMIT 20`,
    [spec.name],
  );
  const notes = await pool.query<{ campaign_id: string; note: string }>(
    'SELECT campaign_id, note FROM insights WHERE model = $1 ORDER BY at DESC LIMIT 5',
    [spec.name],
  );
  return historyFromRows(
    spec,
    rows,
    failures.rows.map((f) => ({
      hypothesisId: f.hypothesis_id,
      failureClass: f.failure_class,
      count: f.count,
    })),
    notes.rows.map((n) => ({ campaignId: n.campaign_id, note: n.note })),
    opts,
  );
}

/** The history, from aggregated rows (PostgreSQL's or an in-memory store's): the same rules for both. */
export function historyFromRows(
  spec: ModelSpec,
  rows: readonly HistoryRow[],
  failures: HistoryFailure[],
  notes: { campaignId: string; note: string }[],
  opts: { campaignId?: string; highFidelity: number },
): History {
  const baselines = new Map<string, number>();
  for (const r of rows)
    if (r.role === 'baseline') baselines.set(`${r.campaign_id}@${r.fidelity}`, Number(r.value));
  const base = baselineConfig(spec);
  const measurements: Measurement[] = [];
  for (const r of rows) {
    if (r.role === 'baseline') continue;
    const baseline = baselines.get(`${r.campaign_id}@${r.fidelity}`);
    if (baseline === undefined) continue;
    const relation = r.campaign_id === opts.campaignId ? 'this' : r.model === spec.name ? 'same' : 'similar';
    if (relation === 'similar' && overlap(spec, r.config) < 0.6) continue;
    // Only the knobs this spec has, and only values it allows: the rest is another model's business.
    const known = Object.fromEntries(Object.entries(r.config).filter(([k]) => k in spec.knobs));
    if (configProblems(spec, known).length) continue;
    const config = { ...base, ...(known as Config) };
    const delta = withoutBaselineValues(spec, config);
    measurements.push({
      campaignId: r.campaign_id,
      model: r.model,
      hypothesisId: hypothesisId(delta),
      delta,
      config,
      fidelity: r.fidelity,
      gainPct: relativeGainPct(baseline, Number(r.value), spec.metric.direction),
      runs: r.runs,
      relation,
    });
  }
  return {
    measurements,
    observations: toObservations(measurements, opts.highFidelity),
    // Effects are this model's own; similar models only inform the planner, with a small weight.
    effects: knobEffects(measurements.filter((m) => m.relation !== 'similar')),
    failures,
    notes,
    triedIds: new Set(measurements.filter((m) => m.relation !== 'similar').map((m) => m.hypothesisId)),
  };
}

/** One successful run, seed by seed: what the noise of paired differences is pooled from. */
export interface SeedRow {
  campaign_id: string;
  hypothesis_id: string;
  role: string;
  fidelity: number;
  seed: number;
  value: number;
}

/**
 * The pooled variance of paired differences (gain-%², each campaign's own baseline on the same seed
 * and fidelity) over earlier campaigns: every config measured on two or more of its baseline's seeds.
 */
export function noiseFromRows(
  rows: readonly SeedRow[],
  direction: 'minimize' | 'maximize',
): NoiseEstimate | undefined {
  const base = new Map<string, number>();
  const baseSum = new Map<string, { sum: number; n: number }>();
  for (const r of rows) {
    if (r.role !== 'baseline') continue;
    base.set(`${r.campaign_id}@${r.fidelity}:${r.seed}`, Number(r.value));
    const a = baseSum.get(`${r.campaign_id}@${r.fidelity}`) ?? { sum: 0, n: 0 };
    a.sum += Number(r.value);
    a.n += 1;
    baseSum.set(`${r.campaign_id}@${r.fidelity}`, a);
  }
  const sets = new Map<string, number[]>();
  for (const r of rows) {
    if (r.role === 'baseline') continue;
    const b = base.get(`${r.campaign_id}@${r.fidelity}:${r.seed}`);
    const m = baseSum.get(`${r.campaign_id}@${r.fidelity}`);
    if (b === undefined || !m || m.sum === 0) continue;
    const k = `${r.campaign_id}|${r.hypothesis_id}@${r.fidelity}`;
    const gain = relativeGainPct(b, Number(r.value), direction) * (Math.abs(b) / Math.abs(m.sum / m.n));
    (sets.get(k) ?? sets.set(k, []).get(k) ?? []).push(gain);
  }
  const pooled = poolDifferences([...sets.values()]);
  return pooled.df > 0 ? pooled : undefined;
}

/**
 * One observation per hypothesis and campaign, at the highest fidelity it reached; higher fidelity
 * and this campaign count more. The baseline itself is an observation with gain 0.
 */
export function toObservations(measurements: readonly Measurement[], highFidelity: number): Observation[] {
  const best = new Map<string, Measurement>();
  for (const m of measurements) {
    const k = `${m.campaignId}|${m.hypothesisId}`;
    const seen = best.get(k);
    if (!seen || m.fidelity > seen.fidelity) best.set(k, m);
  }
  const observations = [...best.values()].map((m) => ({
    config: m.config,
    score: m.gainPct,
    weight: WEIGHT[m.relation] * (0.5 + 0.5 * Math.min(1, m.fidelity / Math.max(1, highFidelity))),
  }));
  return observations;
}

/** Mean gain of each single-knob change, over every campaign that measured it. */
export function knobEffects(measurements: readonly Measurement[]): KnobEffect[] {
  const acc = new Map<
    string,
    { knob: string; value: string | number | boolean; sum: number; runs: number }
  >();
  for (const m of measurements) {
    const entries = Object.entries(m.delta);
    if (entries.length !== 1) continue;
    const [knob, value] = entries[0] as [string, string | number | boolean];
    const k = `${knob}=${String(value)}`;
    const a = acc.get(k) ?? { knob, value, sum: 0, runs: 0 };
    a.sum += m.gainPct * m.runs;
    a.runs += m.runs;
    acc.set(k, a);
  }
  return [...acc.values()]
    .map((a) => ({ knob: a.knob, value: a.value, meanGainPct: a.sum / a.runs, runs: a.runs }))
    .sort((a, b) => b.meanGainPct - a.meanGainPct || a.knob.localeCompare(b.knob));
}

const round = (v: number) => Math.round(v * 100) / 100;

/** A compact, bounded summary of the history for a prompt: best and worst measured changes, failures, notes. */
export function summarizeHistory(h: History, maxChars = 4000): string {
  const lines: string[] = [];
  const ranked = [...h.measurements].sort((a, b) => b.fidelity - a.fidelity || b.gainPct - a.gainPct);
  const seen = new Set<string>();
  const unique = ranked.filter((m) => !seen.has(m.hypothesisId) && seen.add(m.hypothesisId));
  const byGain = [...unique].sort((a, b) => b.gainPct - a.gainPct);
  lines.push(
    `measured configs: ${unique.length} (gain is % better than that campaign's baseline at that fidelity)`,
  );
  for (const m of byGain.slice(0, 12))
    lines.push(
      `best: ${m.hypothesisId} gain ${round(m.gainPct)}% at fidelity ${m.fidelity} (${m.runs} runs, ${m.relation})`,
    );
  for (const m of byGain.slice(-8).reverse())
    if (m.gainPct < 0)
      lines.push(`worse: ${m.hypothesisId} gain ${round(m.gainPct)}% at fidelity ${m.fidelity}`);
  for (const e of h.effects.slice(0, 10))
    lines.push(
      `single-knob effect: ${e.knob}=${String(e.value)} mean ${round(e.meanGainPct)}% over ${e.runs} runs`,
    );
  for (const f of h.failures.slice(0, 8))
    lines.push(`failed: ${f.hypothesisId} ${f.failureClass} ×${f.count}`);
  for (const n of h.notes) lines.push(`track record ${n.campaignId}: ${n.note}`);
  let out = '';
  for (const line of lines) {
    if (out.length + line.length + 1 > maxChars) break;
    out += `${line}\n`;
  }
  return out.trim() || 'no earlier measurements for this model';
}

/**
 * The track-record note a finished campaign leaves for the next one: what won, what did not, what
 * failed, and the single-knob effects it measured. Written once per campaign (an upsert).
 */
export async function writeTrackRecord(
  pool: Pool,
  spec: ModelSpec,
  campaignId: string,
  highFidelity: number,
): Promise<string> {
  const h = await loadHistory(pool, spec, { campaignId, highFidelity });
  const mine = h.measurements.filter((m) => m.relation === 'this');
  const effects = knobEffects(mine);
  const byGain = [...mine].sort((a, b) => b.gainPct - a.gainPct);
  const top = byGain.slice(0, 3).map((m) => `${m.hypothesisId} ${round(m.gainPct)}% @${m.fidelity}`);
  const worst = byGain
    .slice(-3)
    .filter((m) => m.gainPct < 0)
    .map((m) => `${m.hypothesisId} ${round(m.gainPct)}% @${m.fidelity}`);
  const { rows } = await pool.query<{
    result: { gainPct?: number; significant?: boolean; best?: { hypothesisId: string } } | null;
    status: string;
  }>('SELECT result, status FROM campaigns WHERE id = $1', [campaignId]);
  const result = rows[0]?.result;
  const headline = result?.best
    ? `final ${result.best.hypothesisId} ${round(result.gainPct ?? 0)}% (${result.significant ? 'significant' : 'not significant'})`
    : `ended ${rows[0]?.status ?? 'unknown'}`;
  const note = [
    headline,
    top.length ? `best measured: ${top.join('; ')}` : 'nothing measured',
    worst.length ? `hurt: ${worst.join('; ')}` : '',
  ]
    .filter(Boolean)
    .join('. ');
  await pool.query(
    `INSERT INTO insights (campaign_id, model, note, effects) VALUES ($1, $2, $3, $4)
     ON CONFLICT (campaign_id) DO UPDATE SET note = EXCLUDED.note, effects = EXCLUDED.effects, at = now()`,
    [campaignId, spec.name, note, JSON.stringify(effects)],
  );
  return note;
}

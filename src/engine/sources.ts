/**
 * Where the hypothesis engine reads what rea knows: the history of experiments and the research
 * cards, behind two narrow interfaces (like Optuna's storages), with a PostgreSQL implementation for
 * the worker and an in-memory one for unit tests and the bench's in-process mode. SQL stays here
 * and in src/db.
 *
 *   const history: HistorySource = new PgHistory(pool);
 *   const knowledge: KnowledgeIndex = MemoryKnowledge.fromDir('knowledge');
 */
import type { Pool } from 'pg';
import type { Config, ModelSpec } from '../core/model-spec';
import type { NoiseEstimate } from '../core/search/inference';
import type { CampaignResult } from '../core/types';
import {
  historyFromRows,
  loadHistory,
  noiseFromRows,
  type History,
  type HistoryFailure,
  type HistoryRow,
  type SeedRow,
} from './history';
import { readCards, searchKnowledge, type KnowledgeCard, type RetrievedCard } from './knowledge';

/** An earlier campaign's answer on a model. */
export interface PastAnswer {
  campaignId: string;
  delta: Config;
  gainPct: number;
  confirmed: boolean;
}

export interface HistorySource {
  /** Measurements of this and earlier campaigns (this model and similar ones), as gains over their baselines. */
  load(spec: ModelSpec, opts: { campaignId?: string; highFidelity: number }): Promise<History>;
  /** Pooled paired-difference noise of earlier campaigns on this model (gain-%²). */
  noise(spec: ModelSpec): Promise<NoiseEstimate | undefined>;
  /** Earlier completed campaigns' answers on this model, newest first. */
  answers(spec: ModelSpec, limit: number): Promise<PastAnswer[]>;
}

export interface KnowledgeIndex {
  /** Cards that best match `query`, best first. */
  search(query: string, limit: number): Promise<RetrievedCard[]>;
}

const answerOf = (campaignId: string, r: CampaignResult | null | undefined): PastAnswer[] =>
  r?.best
    ? [{ campaignId, delta: r.best.delta, gainPct: r.gainPct, confirmed: r.confirmed ?? r.significant }]
    : [];

export class PgHistory implements HistorySource {
  constructor(private readonly pool: Pool) {}

  load(spec: ModelSpec, opts: { campaignId?: string; highFidelity: number }): Promise<History> {
    return loadHistory(this.pool, spec, opts);
  }

  async noise(spec: ModelSpec): Promise<NoiseEstimate | undefined> {
    const { rows } = await this.pool.query<SeedRow>(
      `SELECT e.campaign_id, e.hypothesis_id, e.role, e.fidelity, e.seed, e.primary_value AS value
       FROM experiments e
       WHERE e.model = $1 AND e.status = 'succeeded' AND e.primary_value IS NOT NULL
         AND e.campaign_id IN (SELECT id FROM campaigns WHERE model = $1 ORDER BY started_at DESC LIMIT 10)
       LIMIT 20000`,
      [spec.name],
    );
    return noiseFromRows(rows, spec.metric.direction);
  }

  async answers(spec: ModelSpec, limit: number): Promise<PastAnswer[]> {
    const { rows } = await this.pool.query<{ id: string; result: CampaignResult | null }>(
      `SELECT id, result FROM campaigns WHERE model = $1 AND status = 'completed' AND result IS NOT NULL
       ORDER BY finished_at DESC NULLS LAST LIMIT $2`,
      [spec.name, limit],
    );
    return rows.flatMap((r) => answerOf(r.id, r.result));
  }
}

export class PgKnowledge implements KnowledgeIndex {
  constructor(private readonly pool: Pool) {}
  search(query: string, limit: number): Promise<RetrievedCard[]> {
    return searchKnowledge(this.pool, query, limit);
  }
}

/** One run as an in-memory store keeps it. */
export interface MemoryRun {
  campaignId: string;
  model: string;
  hypothesisId: string;
  role: 'baseline' | 'candidate';
  fidelity: number;
  seed: number;
  config: Config;
  value?: number;
  failureClass?: string;
}

/** The history of campaigns run in this process (unit tests, the bench's in-process mode). */
export class MemoryHistory implements HistorySource {
  readonly runs: MemoryRun[] = [];
  readonly results = new Map<string, { model: string; result: CampaignResult }>();
  private order: string[] = [];

  record(run: MemoryRun): void {
    this.runs.push(run);
    if (!this.order.includes(run.campaignId)) this.order.push(run.campaignId);
  }

  finish(result: CampaignResult): void {
    this.results.set(result.campaignId, { model: result.model, result });
    if (!this.order.includes(result.campaignId)) this.order.push(result.campaignId);
  }

  clear(): void {
    this.runs.length = 0;
    this.results.clear();
    this.order = [];
  }

  load(spec: ModelSpec, opts: { campaignId?: string; highFidelity: number }): Promise<History> {
    const recent = new Set([...this.order].reverse().slice(0, 50));
    if (opts.campaignId) recent.add(opts.campaignId);
    const groups = new Map<string, HistoryRow & { sum: number }>();
    const failures = new Map<string, HistoryFailure>();
    for (const r of this.runs) {
      if (!recent.has(r.campaignId)) continue;
      if (r.value === undefined) {
        if (r.model === spec.name && r.failureClass) {
          const k = `${r.hypothesisId}|${r.failureClass}`;
          const f = failures.get(k) ?? {
            hypothesisId: r.hypothesisId,
            failureClass: r.failureClass,
            count: 0,
          };
          f.count += 1;
          failures.set(k, f);
        }
        continue;
      }
      const k = `${r.campaignId}|${r.hypothesisId}|${r.role}|${r.fidelity}`;
      const g = groups.get(k) ?? {
        campaign_id: r.campaignId,
        model: r.model,
        hypothesis_id: r.hypothesisId,
        role: r.role,
        fidelity: r.fidelity,
        config: r.config,
        value: 0,
        runs: 0,
        sum: 0,
      };
      g.sum += r.value;
      g.runs += 1;
      g.value = g.sum / g.runs;
      groups.set(k, g);
    }
    return Promise.resolve(historyFromRows(spec, [...groups.values()], [...failures.values()], [], opts));
  }

  noise(spec: ModelSpec): Promise<NoiseEstimate | undefined> {
    const recent = new Set(
      [...this.order]
        .reverse()
        .filter((id) => this.runs.some((r) => r.campaignId === id && r.model === spec.name))
        .slice(0, 10),
    );
    const rows: SeedRow[] = this.runs
      .filter((r) => r.model === spec.name && recent.has(r.campaignId) && r.value !== undefined)
      .map((r) => ({
        campaign_id: r.campaignId,
        hypothesis_id: r.hypothesisId,
        role: r.role,
        fidelity: r.fidelity,
        seed: r.seed,
        value: r.value as number,
      }));
    return Promise.resolve(noiseFromRows(rows, spec.metric.direction));
  }

  answers(spec: ModelSpec, limit: number): Promise<PastAnswer[]> {
    return Promise.resolve(
      [...this.order]
        .reverse()
        .flatMap((id) => {
          const r = this.results.get(id);
          return r && r.model === spec.name && r.result.status === 'completed' ? answerOf(id, r.result) : [];
        })
        .slice(0, limit),
    );
  }
}

/** Cards read from a folder and ranked by shared words: PostgreSQL full-text search's stand-in. */
export class MemoryKnowledge implements KnowledgeIndex {
  constructor(private readonly cards: KnowledgeCard[]) {}

  static fromDir(dir: string): MemoryKnowledge {
    return new MemoryKnowledge(readCards(dir).cards);
  }

  search(query: string, limit: number): Promise<RetrievedCard[]> {
    const words = new Set(query.toLowerCase().match(/[a-z][a-z0-9]{2,}/g) ?? []);
    const scored = this.cards
      .map((c) => {
        const text = `${c.title} ${c.tags.join(' ')} ${c.effect} ${c.body}`.toLowerCase();
        const found = (text.match(/[a-z][a-z0-9]{2,}/g) ?? []).filter((w) => words.has(w)).length;
        return { c, rank: found / Math.sqrt(1 + text.length / 100) };
      })
      .filter((x) => x.rank > 0)
      .sort((a, b) => b.rank - a.rank || a.c.id.localeCompare(b.c.id))
      .slice(0, limit);
    return Promise.resolve(
      scored.map(({ c, rank }) => ({
        id: c.id,
        title: c.title,
        category: c.category,
        suggests: c.suggests,
        effect: c.effect,
        citation: c.citation,
        body: c.body,
        rank,
      })),
    );
  }
}

/**
 * The campaign's leaderboard: results ranked by the primary metric, with gains over the baseline.
 * Rendered as markdown for the Web UI's current details. Sandbox-safe.
 */
import type { Config } from './model-spec';
import { relativeGainPct, type CampaignResult, type ExperimentResult } from './types';

interface Entry {
  experimentId: string;
  hypothesisId: string;
  source: string;
  config: Config;
  delta: Config;
  value: number;
}

export class Leaderboard {
  private readonly entries: Entry[] = [];
  private failed = 0;
  private baseline?: { experimentId: string; value: number };

  constructor(
    readonly metric: string,
    readonly direction: 'minimize' | 'maximize',
  ) {}

  setBaseline(experimentId: string, value: number): void {
    this.baseline = { experimentId, value };
  }

  add(result: ExperimentResult): void {
    if (result.outcome.status !== 'succeeded') {
      this.failed += 1;
      return;
    }
    const value = result.outcome.metrics[this.metric];
    if (value === undefined) {
      this.failed += 1;
      return;
    }
    this.entries.push({
      experimentId: result.experimentId,
      hypothesisId: result.hypothesis.id,
      source: result.hypothesis.source,
      config: result.config,
      delta: result.hypothesis.delta,
      value,
    });
  }

  private gain(value: number): number {
    return this.baseline ? relativeGainPct(this.baseline.value, value, this.direction) : 0;
  }

  ranked(): Entry[] {
    const sign = this.direction === 'minimize' ? 1 : -1;
    return [...this.entries].sort(
      (a, b) => sign * (a.value - b.value) || a.experimentId.localeCompare(b.experimentId),
    );
  }

  best(): { experimentId: string; hypothesisId: string; value: number; gainPct: number } | undefined {
    const top = this.ranked()[0];
    return (
      top && {
        experimentId: top.experimentId,
        hypothesisId: top.hypothesisId,
        value: top.value,
        gainPct: this.gain(top.value),
      }
    );
  }

  markdown(limit: number): string {
    const rows = this.ranked()
      .slice(0, limit)
      .map(
        (e, i) =>
          `| ${i + 1} | ${e.hypothesisId} | ${e.source} | ${e.value.toFixed(5)} | ${this.gain(e.value).toFixed(2)}% |`,
      );
    const header = [`| # | hypothesis | source | ${this.metric} | gain |`, '|---|---|---|---|---|'];
    const footer = `\n${this.entries.length} succeeded, ${this.failed} failed`;
    return rows.length ? [...header, ...rows].join('\n') + footer : `No results yet.${footer}`;
  }

  result(campaignId: string, model: string): CampaignResult {
    const top = this.ranked()[0];
    if (!this.baseline || !top) throw new Error('no baseline result: the campaign has nothing to report');
    return {
      campaignId,
      model,
      metric: this.metric,
      baseline: this.baseline,
      best: {
        experimentId: top.experimentId,
        hypothesisId: top.hypothesisId,
        config: top.config,
        value: top.value,
        delta: top.delta,
      },
      gainPct: this.gain(top.value),
      experiments: {
        total: this.entries.length + this.failed,
        succeeded: this.entries.length,
        failed: this.failed,
      },
    };
  }
}

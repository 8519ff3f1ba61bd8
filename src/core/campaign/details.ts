/**
 * Pieces of a campaign's "current details" markdown (the Temporal Web UI's summary), shared by the
 * v2 machine and the v1 state so that both campaigns read the same way.
 */
import type { Spend } from '../types';

/** "12/30 experiments, 0.004/0.006 GPU-h": what was used, against each limit set. */
export function budgetLine(budget: { experiments?: number; gpuHours?: number }, used: Spend): string {
  return [
    budget.experiments !== undefined
      ? `${used.experiments}/${budget.experiments} experiments`
      : `${used.experiments} experiments`,
    budget.gpuHours !== undefined
      ? `${used.gpuHours.toFixed(3)}/${budget.gpuHours} GPU-h`
      : `${used.gpuHours.toFixed(3)} GPU-h`,
  ].join(', ');
}

/** The leaderboard as a markdown table, or a note that nothing was measured yet. */
export function leaderboardTable(
  rows: {
    hypothesisId: string;
    source: string;
    fidelity: number;
    n: number;
    value: number;
    gainPct: number;
  }[],
  metric: string,
): string {
  if (!rows.length) return '_No results yet._';
  return [
    `| # | hypothesis | source | fidelity | runs | ${metric} | gain |`,
    '|---|---|---|---|---|---|---|',
    ...rows.map(
      (r, i) =>
        `| ${i + 1} | ${r.hypothesisId} | ${r.source} | ${r.fidelity} | ${r.n} | ${r.value.toFixed(5)} | ${r.gainPct.toFixed(2)}% |`,
    ),
  ].join('\n');
}

/** What needs a person: paused, or a plan waiting for approval. */
export function attentionFlags(paused: boolean, waitingForApproval: boolean): string {
  return [paused ? '**PAUSED**' : '', waitingForApproval ? '**waiting for plan approval**' : '']
    .filter(Boolean)
    .join(' ');
}

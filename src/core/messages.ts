/**
 * Names shared by workflows, activities, the event bridge and the CLI: workflow types, signals,
 * queries and search attributes. Sandbox-safe.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { ExperimentOutcome } from './types';

export const CAMPAIGN_WORKFLOW = 'campaign';
export const EXPERIMENT_WORKFLOW = 'experiment';

export const jobFinishedSignalName = 'jobFinished';
export interface JobFinished {
  jobId: string;
  outcome: ExperimentOutcome;
}

export const statusQueryName = 'status';

/** Registered by `rea dev` (and the tests); upserted by the campaign so the Web UI can filter. */
export const searchAttributes = {
  model: defineSearchAttributeKey('ReaModel', SearchAttributeType.KEYWORD),
  phase: defineSearchAttributeKey('ReaPhase', SearchAttributeType.KEYWORD),
  bestGainPct: defineSearchAttributeKey('ReaBestGainPct', SearchAttributeType.DOUBLE),
  budgetUsed: defineSearchAttributeKey('ReaBudgetUsed', SearchAttributeType.INT),
} as const;

/** `--search-attribute NAME=TYPE` arguments for `temporal server start-dev`. */
export function devServerSearchAttributeArgs(): string[] {
  const cliType: Record<string, string> = { KEYWORD: 'Keyword', DOUBLE: 'Double', INT: 'Int' };
  return Object.values(searchAttributes).flatMap((k) => [
    '--search-attribute',
    `${k.name}=${cliType[k.type]}`,
  ]);
}

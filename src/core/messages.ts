/**
 * Names and payloads shared by workflows, activities, the event bridge and the CLI: workflow
 * types, signals, updates, queries and search attributes. Sandbox-safe.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { z } from 'zod';
import { budgetSchema } from './campaign-input';
import type { ExperimentOutcome } from './types';

export const CAMPAIGN_WORKFLOW = 'campaign';
export const EXPERIMENT_WORKFLOW = 'experiment';
export const NIGHTLY_WORKFLOW = 'nightly';

export const jobFinishedSignalName = 'jobFinished';
export interface JobFinished {
  jobId: string;
  outcome: ExperimentOutcome;
}

export const statusQueryName = 'status';

/** The campaign's updates and signals, by the names the Temporal CLI and `rea` send. */
export const campaignMessages = {
  approvePlan: 'approvePlan',
  rejectPlan: 'rejectPlan',
  setBudget: 'setBudget',
  addHypothesis: 'addHypothesis',
  pause: 'pause',
  resume: 'resume',
  abort: 'abort',
} as const;

/** Payloads of the campaign's messages, validated where they arrive (update validators, CLI). */
export const rejectPlanSchema = z
  .object({
    feedback: z
      .string({ error: 'expected a note for the planner' })
      .trim()
      .min(1, 'expected a non-empty note')
      .max(4000),
    /** Knobs the next slate must leave alone. */
    excludeKnobs: z.array(z.string()).max(100).default([]),
  })
  .strict();
export type RejectPlan = z.input<typeof rejectPlanSchema>;

export const addHypothesisSchema = z
  .object({
    delta: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
    rationale: z.string().trim().min(1, 'expected a reason for the hypothesis').max(4000),
  })
  .strict();
export type AddHypothesis = z.input<typeof addHypothesisSchema>;

export const setBudgetSchema = budgetSchema;

export const abortSchema = z
  .object({ reason: z.string().max(4000).default('aborted by an operator') })
  .strict();

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

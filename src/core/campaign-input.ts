/**
 * The input of a campaign, as the ops team writes it for `temporal workflow start --input` or
 * `rea campaign start FILE`. Sandbox-safe: the campaign workflow validates its own input first.
 *
 *   {"model": "synthetic-ctr", "budget": {"experiments": 30}, "approval": {"required": true}}
 */
import { z } from 'zod';
import { parseOrThrow, refuseBadShape } from './errors';
import type { ModelSpec } from './model-spec';

/** Largest accepted input, in bytes of JSON: a campaign input is a handful of fields. */
export const MAX_CAMPAIGN_INPUT_BYTES = 64 * 1024;

const int = (what = 'an integer') => z.number({ error: `expected ${what}` }).int(`expected ${what}`);

export const budgetSchema = z
  .object({
    experiments: int('an integer count of training runs, baseline replicates included')
      .min(2, 'expected at least 2 (the baseline and one hypothesis)')
      .max(100_000, 'expected at most 100000')
      .optional(),
    gpuHours: z
      .number({ error: 'expected a number of GPU-hours' })
      .positive('expected a positive number of GPU-hours')
      .max(1_000_000)
      .optional(),
  })
  .strict()
  .refine((b) => b.experiments !== undefined || b.gpuHours !== undefined, {
    message: 'expected experiments, gpuHours or both',
  });
export type Budget = z.output<typeof budgetSchema>;

const share = z.number({ error: 'expected a share between 0 and 1' }).min(0).max(1);

export const campaignInputSchema = z
  .object({
    model: z
      .string({ error: 'expected the name of a model spec (a file in models/), e.g. "synthetic-ctr"' })
      .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected a model name: lowercase a-z, 0-9, - and _'),
    budget: budgetSchema,
    /** Shares of the budget for each phase; what a phase leaves unspent rolls over to the next. */
    split: z
      .object({ validation: share, combination: share, exploitation: share })
      .strict()
      .refine((s) => Math.abs(s.validation + s.combination + s.exploitation - 1) < 1e-9, {
        message: 'expected the three shares to add up to 1',
      })
      .default({ validation: 0.5, combination: 0.2, exploitation: 0.3 }),
    parallelism: int().min(1).max(64).default(2),
    seed: int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(0),
    /** Seeds per measurement that must be trusted: baselines and confirmations. */
    replicates: int().min(2).max(10).default(3),
    /** The smallest gain (% of the primary metric) worth calling a win: a confirmed win has P(gain > this) ≥ 0.95. */
    minGainPct: z.number({ error: 'expected a percentage' }).min(0).max(100).default(0.1),
    /** The model-based planner: multivariate TPE (default), or uniform random search (a baseline to compare with). */
    planner: z.enum(['tpe', 'random']).default('tpe'),
    /** Hypotheses in the first validation slate. */
    slateSize: int().min(1).max(1000).default(8),
    /** Successive halving keeps the best 1/eta of each rung. */
    eta: int().min(2).max(8).default(3),
    /** Local refinements tried around the best in exploitation. */
    refinements: int().min(0).max(1000).default(4),
    /** Narrows the spec's fidelity range for this campaign (e.g. a quick campaign). */
    fidelity: z
      .object({ low: int().positive().optional(), high: int().positive().optional() })
      .strict()
      .default({}),
    approval: z
      .object({
        required: z.boolean().default(false),
        /** How long the plan waits for approvePlan / rejectPlan. */
        timeoutHours: z
          .number()
          .positive()
          .max(24 * 365)
          .default(72),
        onTimeout: z.enum(['abort', 'approve']).default('abort'),
      })
      .strict()
      .default({ required: false, timeoutHours: 72, onTimeout: 'abort' }),
    /** How often a waiting experiment polls its job when no finish event arrives. */
    pollIntervalSec: int().min(1).max(86_400).default(60),
    /** Continue-as-new after this many experiments in one run, whatever Temporal suggests. */
    experimentsPerRun: int().min(10).max(10_000).default(500),
    /** The LLM's share of the campaign: calls, tokens and dollars it may spend (when an LLM is configured). */
    llm: z
      .object({
        maxCalls: int().min(0).max(10_000).default(20),
        maxTokens: int().min(0).max(100_000_000).default(200_000),
        maxCostUsd: z.number().min(0).max(1_000_000).optional(),
      })
      .strict()
      .default({ maxCalls: 20, maxTokens: 200_000 }),
  })
  .strict();

export type CampaignInput = z.input<typeof campaignInputSchema>;
export type CampaignSettings = z.output<typeof campaignInputSchema>;

/** Deepest nesting accepted: a campaign input is three levels deep; far deeper input could overflow the stack. */
export const MAX_CAMPAIGN_INPUT_DEPTH = 16;

/** Bytes of `text` in UTF-8, counted by hand: workflows have no Buffer. */
function utf8Bytes(text: string): number {
  let bytes = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return bytes;
}

export function parseCampaignInput(value: unknown): CampaignSettings {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    refuseBadShape(value, 'campaign input', MAX_CAMPAIGN_INPUT_DEPTH);
    const size = utf8Bytes(JSON.stringify(value));
    if (size > MAX_CAMPAIGN_INPUT_BYTES) {
      return parseOrThrow(
        z.never({ error: `input is ${size} bytes; at most ${MAX_CAMPAIGN_INPUT_BYTES} are accepted` }),
        value,
        'campaign input',
      );
    }
  }
  return parseOrThrow(campaignInputSchema, value, 'campaign input');
}

/** The fidelity levels a campaign uses: low for screening, mid to validate and combine, high to exploit. */
export function fidelityLevels(
  input: CampaignSettings,
  spec: ModelSpec,
): { low: number; mid: number; high: number } {
  const low = input.fidelity.low ?? spec.fidelity.low;
  const high = input.fidelity.high ?? spec.fidelity.high;
  return { low, mid: Math.round(Math.sqrt(low * high)), high };
}

/** Checks of the input that need the model spec; returns field-named problems. */
export function inputProblemsAgainstSpec(input: CampaignSettings, spec: ModelSpec): string[] {
  const problems: string[] = [];
  const { low, high } = spec.fidelity;
  for (const key of ['low', 'high'] as const) {
    const v = input.fidelity[key];
    if (v !== undefined && (v < low || v > high)) {
      problems.push(
        `fidelity.${key}: expected ${low}..${high} (${spec.fidelity.knob} of model "${spec.name}"), got ${v}`,
      );
    }
  }
  const levels = fidelityLevels(input, spec);
  if (levels.low > levels.high)
    problems.push(`fidelity.low: expected at most fidelity.high (${levels.high})`);
  return problems;
}

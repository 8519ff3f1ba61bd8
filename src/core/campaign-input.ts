/**
 * The input of a campaign, as the ops team writes it for `temporal workflow start --input` or
 * `rea campaign start FILE`. Sandbox-safe: the campaign workflow validates its own input first.
 *
 *   {"model": "synthetic-ctr", "budget": {"experiments": 6}, "parallelism": 2}
 */
import { z } from 'zod';
import { parseOrThrow } from './errors';
import type { ModelSpec } from './model-spec';

/** Largest accepted input, in bytes of JSON: a campaign input is a handful of fields. */
export const MAX_CAMPAIGN_INPUT_BYTES = 64 * 1024;

export const campaignInputSchema = z
  .object({
    model: z
      .string({ error: 'expected the name of a model spec (a file in models/), e.g. "synthetic-ctr"' })
      .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected a model name: lowercase a-z, 0-9, - and _'),
    budget: z
      .object({
        experiments: z
          .number({ error: 'expected an integer count of training runs, baseline included' })
          .int('expected an integer')
          .min(2, 'expected at least 2 (the baseline and one hypothesis)')
          .max(500, 'expected at most 500'),
      })
      .strict(),
    parallelism: z.number().int('expected an integer').min(1).max(64).default(2),
    /** Value of the model's fidelity knob (training steps); defaults to the spec's low fidelity. */
    fidelity: z.number().int('expected an integer').positive().optional(),
    seed: z
      .number()
      .int('expected an integer')
      .min(0)
      .max(2 ** 31 - 1)
      .default(0),
    /** How often a waiting experiment polls its job when no finish event arrives. */
    pollIntervalSec: z.number().int().min(1).max(86_400).default(60),
  })
  .strict();

export type CampaignInput = z.input<typeof campaignInputSchema>;
export type CampaignSettings = z.output<typeof campaignInputSchema>;

export function parseCampaignInput(value: unknown): CampaignSettings {
  if (value === undefined || value === null || typeof value !== 'object' || Array.isArray(value)) {
    return parseOrThrow(campaignInputSchema, value, 'campaign input');
  }
  const size = JSON.stringify(value).length;
  if (size > MAX_CAMPAIGN_INPUT_BYTES) {
    return parseOrThrow(
      z.never({ error: `input is ${size} bytes; at most ${MAX_CAMPAIGN_INPUT_BYTES} are accepted` }),
      value,
      'campaign input',
    );
  }
  return parseOrThrow(campaignInputSchema, value, 'campaign input');
}

/** Checks of the input that need the model spec; returns field-named problems. */
export function inputProblemsAgainstSpec(input: CampaignSettings, spec: ModelSpec): string[] {
  const problems: string[] = [];
  if (
    input.fidelity !== undefined &&
    (input.fidelity < spec.fidelity.low || input.fidelity > spec.fidelity.high)
  ) {
    problems.push(
      `fidelity: expected ${spec.fidelity.low}..${spec.fidelity.high} (${spec.fidelity.knob} of model "${spec.name}"), got ${input.fidelity}`,
    );
  }
  return problems;
}

/**
 * The LLM source's client: any OpenAI-compatible endpoint through the `openai` package, answers as
 * JSON validated by zod, every call recorded in PostgreSQL (tokens, latency, cost) and capped by the
 * campaign's LLM budget. Timeouts, 429 and 5xx are retried with backoff by the client; a malformed
 * or schema-violating answer gets one repair request; after that the caller goes on without it.
 *
 *   const llm = new LlmClient(settings, pool, log);
 *   const r = await llm.complete({ campaignId, purpose: 'slate', system, user, schema, jsonSchema, budget });
 *   if (r.ok) use(r.value); else log(r.reason);
 */
import OpenAI from 'openai';
import type { Pool } from 'pg';
import type { z } from 'zod';
import { formatIssues } from '../core/errors';
import { CENSOR, scrubSecrets, type Logger } from '../logging';

export interface LlmSettings {
  baseURL: string;
  apiKey?: string;
  model: string;
  timeoutSec: number;
  maxRetries: number;
  /** USD per million tokens. */
  priceInput: number;
  priceOutput: number;
  /**
   * Whether the endpoint enforces lengths, counts and numeric bounds in a JSON Schema while decoding
   * (llama.cpp, vLLM). OpenAI's strict mode refuses them, so they are sent only when this is on.
   */
  schemaLimits?: boolean;
  /** At most this many hypotheses asked for in one call: a slow local model answers fewer faster. */
  hypothesesPerCall?: number;
}

export interface LlmBudget {
  maxCalls: number;
  maxTokens: number;
  maxCostUsd?: number;
}

export interface LlmUsage {
  calls: number;
  tokens: number;
  costUsd: number;
}

export type LlmAnswer<T> =
  | { ok: true; value: T; usage: { promptTokens: number; completionTokens: number; costUsd: number } }
  | { ok: false; reason: string };

type CallStatus = 'ok' | 'invalid' | 'error' | 'refused';

const MAX_OUTPUT_TOKENS = 4000;
/** A request needs at least this long before the caller's deadline to be worth sending. */
const MIN_REQUEST_MS = 2000;
const estimateTokens = (text: string) => Math.ceil(text.length / 4);

export class LlmClient {
  private readonly client: OpenAI;

  constructor(
    readonly settings: LlmSettings,
    private readonly pool: Pool,
    private readonly log: Logger,
  ) {
    this.client = new OpenAI({
      baseURL: settings.baseURL,
      // Local servers (llama.cpp, Ollama, vLLM) need no key; the client insists on one.
      apiKey: settings.apiKey ?? 'no-key',
      timeout: settings.timeoutSec * 1000,
      maxRetries: settings.maxRetries,
    });
  }

  async usage(campaignId: string): Promise<LlmUsage> {
    const { rows } = await this.pool.query<{ calls: number; tokens: string | null; cost: number | null }>(
      `SELECT count(*)::int AS calls, sum(prompt_tokens + completion_tokens) AS tokens, sum(cost_usd) AS cost
       FROM llm_calls WHERE campaign_id = $1 AND status <> 'refused'`,
      [campaignId],
    );
    const r = rows[0];
    return { calls: r?.calls ?? 0, tokens: Number(r?.tokens ?? 0), costUsd: Number(r?.cost ?? 0) };
  }

  /** Why a call of about `promptTokens` would break the budget, or undefined with the output cap to use. */
  private async admit(
    campaignId: string,
    promptTokens: number,
    budget: LlmBudget,
  ): Promise<{ refused: string } | { maxOutput: number }> {
    const used = await this.usage(campaignId);
    if (used.calls >= budget.maxCalls)
      return { refused: `LLM budget spent: ${used.calls} of ${budget.maxCalls} calls` };
    const left = budget.maxTokens - used.tokens - promptTokens;
    if (left < 256)
      return {
        refused: `LLM budget spent: ${used.tokens} of ${budget.maxTokens} tokens used, the prompt needs about ${promptTokens}`,
      };
    const maxOutput = Math.min(MAX_OUTPUT_TOKENS, left);
    if (budget.maxCostUsd !== undefined) {
      const worst = this.cost(promptTokens, maxOutput);
      if (used.costUsd + worst > budget.maxCostUsd)
        return {
          refused: `LLM budget spent: $${used.costUsd.toFixed(4)} of $${budget.maxCostUsd} used, a call may cost $${worst.toFixed(4)}`,
        };
    }
    return { maxOutput };
  }

  private scrub(text: string): string {
    const key = this.settings.apiKey;
    return scrubSecrets(key && key.length >= 4 ? text.split(key).join(CENSOR) : text);
  }

  private cost(promptTokens: number, completionTokens: number): number {
    return (promptTokens * this.settings.priceInput + completionTokens * this.settings.priceOutput) / 1e6;
  }

  private async record(row: {
    campaignId: string;
    purpose: string;
    status: CallStatus;
    promptTokens?: number;
    completionTokens?: number;
    latencyMs?: number;
    proposed?: number;
    error?: string;
    evidence?: string[];
  }): Promise<number> {
    const cost = this.cost(row.promptTokens ?? 0, row.completionTokens ?? 0);
    const { rows } = await this.pool.query<{ id: string }>(
      `INSERT INTO llm_calls (campaign_id, purpose, model, status, prompt_tokens, completion_tokens, cost_usd, latency_ms, proposed, error, evidence)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
      [
        row.campaignId,
        row.purpose,
        this.settings.model,
        row.status,
        row.promptTokens ?? 0,
        row.completionTokens ?? 0,
        cost,
        Math.round(row.latencyMs ?? 0),
        row.proposed ?? 0,
        // An endpoint may quote the key back in its error (OpenAI does on a 401): never store it.
        row.error === undefined ? null : this.scrub(row.error).slice(0, 2000),
        JSON.stringify(row.evidence ?? []),
      ],
    );
    return Number(rows[0]?.id);
  }

  /** Notes how many of a call's proposals survived validation. */
  async recordAccepted(callId: number, accepted: number): Promise<void> {
    await this.pool.query('UPDATE llm_calls SET accepted = $2 WHERE id = $1', [callId, accepted]);
  }

  /**
   * Asks for a JSON answer matching `schema`. `jsonSchema` is sent as the structured-output format;
   * the answer is still validated here, since not every server enforces it.
   */
  async complete<T>(req: {
    campaignId: string;
    purpose: string;
    system: string;
    user: string;
    schema: z.ZodType<T>;
    jsonSchema: Record<string, unknown>;
    schemaName: string;
    budget: LlmBudget;
    count?: (value: T) => number;
    /** The most output tokens a complete answer needs (the budget may allow fewer). */
    maxOutputTokens?: number;
    /** Epoch ms by which the caller must have its answer (an activity's own timeout); retries included. */
    deadline?: number;
    /** The ids of the evidence the prompt carried, recorded with the call. */
    evidence?: string[];
  }): Promise<LlmAnswer<T> & { callId?: number }> {
    const evidence = req.evidence ?? [];
    const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
      { role: 'system', content: req.system },
      { role: 'user', content: req.user },
    ];
    for (let attempt = 1; attempt <= 2; attempt++) {
      const prompt = messages
        .map((m) => (typeof m.content === 'string' ? m.content : JSON.stringify(m.content)))
        .join('\n');
      const admitted = await this.admit(req.campaignId, estimateTokens(prompt), req.budget);
      if ('refused' in admitted) {
        await this.record({
          campaignId: req.campaignId,
          purpose: req.purpose,
          status: 'refused',
          error: admitted.refused,
          evidence,
        });
        return { ok: false, reason: admitted.refused };
      }
      const started = Date.now();
      const left = req.deadline === undefined ? Infinity : req.deadline - started;
      if (left < MIN_REQUEST_MS) {
        const reason = `no time left for an LLM call: the caller's deadline is ${Math.max(0, Math.round(left / 1000))}s away`;
        await this.record({
          campaignId: req.campaignId,
          purpose: req.purpose,
          status: 'refused',
          error: reason,
          evidence,
        });
        return { ok: false, reason };
      }
      const maxTokens = Math.min(admitted.maxOutput, req.maxOutputTokens ?? MAX_OUTPUT_TOKENS);
      let content: string;
      let promptTokens: number;
      let completionTokens: number;
      let truncated: boolean;
      try {
        const response = await this.client.chat.completions.create(
          {
            model: this.settings.model,
            messages,
            temperature: 0.7,
            max_tokens: maxTokens,
            response_format: {
              type: 'json_schema',
              json_schema: { name: req.schemaName, schema: req.jsonSchema, strict: true },
            },
          },
          // The client's timeout applies to each try; the deadline bounds them all.
          Number.isFinite(left)
            ? { timeout: Math.min(this.settings.timeoutSec * 1000, left), signal: AbortSignal.timeout(left) }
            : {},
        );
        const choice = response.choices[0];
        content = choice?.message?.content ?? '';
        truncated = choice?.finish_reason === 'length';
        promptTokens = response.usage?.prompt_tokens ?? estimateTokens(prompt);
        completionTokens = response.usage?.completion_tokens ?? estimateTokens(content);
      } catch (err) {
        const reason = describeError(err);
        await this.record({
          campaignId: req.campaignId,
          purpose: req.purpose,
          status: 'error',
          latencyMs: Date.now() - started,
          error: reason,
          evidence,
        });
        this.log.warn({ campaignId: req.campaignId, purpose: req.purpose, reason }, 'LLM call failed');
        return { ok: false, reason };
      }
      const latencyMs = Date.now() - started;
      const parsed = parseAnswer(content, req.schema, truncated ? maxTokens : undefined);
      if (parsed.ok) {
        const callId = await this.record({
          campaignId: req.campaignId,
          purpose: req.purpose,
          status: 'ok',
          promptTokens,
          completionTokens,
          latencyMs,
          proposed: req.count?.(parsed.value) ?? 0,
          evidence,
        });
        return {
          ok: true,
          value: parsed.value,
          callId,
          usage: { promptTokens, completionTokens, costUsd: this.cost(promptTokens, completionTokens) },
        };
      }
      await this.record({
        campaignId: req.campaignId,
        purpose: req.purpose,
        status: 'invalid',
        promptTokens,
        completionTokens,
        latencyMs,
        error: parsed.reason,
        evidence,
      });
      this.log.warn({ campaignId: req.campaignId, attempt, reason: parsed.reason }, 'LLM answer invalid');
      if (attempt === 2) return { ok: false, reason: parsed.reason };
      // One repair request: the model sees its answer and what was wrong with it.
      messages.push(
        { role: 'assistant', content: content.slice(0, 8000) },
        {
          role: 'user',
          content: `That answer was not usable: ${parsed.reason}. Reply again with only a JSON object that matches the schema ${req.schemaName}.`,
        },
      );
    }
    return { ok: false, reason: 'unreachable' };
  }
}

/** An answer's JSON read with `schema`, or why not: malformed JSON, or the fields at fault (exported for the tests). */
export function parseAnswer<T>(
  content: string,
  schema: z.ZodType<T>,
  cutAt?: number,
): { ok: true; value: T } | { ok: false; reason: string } {
  // Some servers wrap JSON in a markdown fence even when asked for JSON.
  const text = content
    .trim()
    .replace(/^```(?:json)?\s*/i, '')
    .replace(/```$/, '')
    .trim();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const cut = cutAt === undefined ? '' : `; the answer was cut at max_tokens ${cutAt}`;
    return { ok: false, reason: `malformed JSON (${(err as Error).message.slice(0, 200)})${cut}` };
  }
  const result = schema.safeParse(json);
  if (!result.success)
    return { ok: false, reason: `${formatIssues('the answer', result.error.issues).slice(0, 1000)}` };
  return { ok: true, value: result.data };
}

function describeError(err: unknown): string {
  if (err instanceof OpenAI.APIConnectionTimeoutError) return 'timed out (after the client retries)';
  if (err instanceof OpenAI.APIUserAbortError) return "timed out: the caller's deadline passed";
  if (err instanceof OpenAI.APIError) {
    const status = err.status === undefined ? 'no response' : `HTTP ${err.status}`;
    return `${status} after the client retries: ${err.message.slice(0, 300)}`;
  }
  return `${(err as Error).name}: ${(err as Error).message.slice(0, 300)}`;
}

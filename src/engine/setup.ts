/**
 * Wiring the hypothesis engine from rea's configuration: the LLM client when an endpoint is
 * configured, and the knowledge base indexed when a worker starts.
 *
 *   const llm = llmFromConfig(config, pool, log); // undefined: the planner works alone
 */
import { existsSync } from 'node:fs';
import type { Pool } from 'pg';
import type { ReaConfig } from '../config';
import type { Logger } from '../logging';
import { indexKnowledge } from './knowledge';
import { LlmClient } from './llm';

const OPENAI_URL = 'https://api.openai.com/v1';

export function llmFromConfig(config: ReaConfig, pool: Pool, log: Logger): LlmClient | undefined {
  if (!config.REA_LLM_BASE_URL && !config.REA_LLM_API_KEY) return undefined;
  const baseURL = config.REA_LLM_BASE_URL ?? OPENAI_URL;
  // The host only: a base URL can carry credentials, and logs must never show them.
  log.info(
    { llmHost: new URL(baseURL).host, model: config.REA_LLM_MODEL },
    'LLM hypothesis source configured',
  );
  return new LlmClient(
    {
      baseURL,
      ...(config.REA_LLM_API_KEY ? { apiKey: config.REA_LLM_API_KEY } : {}),
      model: config.REA_LLM_MODEL,
      timeoutSec: config.REA_LLM_TIMEOUT_SEC,
      maxRetries: config.REA_LLM_MAX_RETRIES,
      priceInput: config.REA_LLM_PRICE_INPUT,
      priceOutput: config.REA_LLM_PRICE_OUTPUT,
      schemaLimits: config.REA_LLM_SCHEMA_LIMITS,
      hypothesesPerCall: config.REA_LLM_HYPOTHESES_PER_CALL,
    },
    pool,
    log,
  );
}

/** Indexes the knowledge folder; a bad card is logged with its file and field and skipped, never fatal. */
export async function indexKnowledgeOnStart(pool: Pool, dir: string, log: Logger): Promise<void> {
  if (!existsSync(dir)) {
    log.warn({ dir }, 'no knowledge folder: the research source has no cards');
    return;
  }
  const { indexed, unchanged, refused } = await indexKnowledge(pool, dir);
  for (const r of refused) log.error({ card: r.file, problem: r.problem }, 'knowledge card refused');
  log.info({ indexed, unchanged, refused: refused.length }, 'knowledge indexed');
}

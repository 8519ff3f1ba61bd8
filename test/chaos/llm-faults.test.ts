/**
 * The full chaos suite, LLM faults: campaigns whose OpenAI-compatible endpoint hangs, answers 429
 * storms and 500s, truncated, schema-violating, out-of-range and injected JSON, with a research card
 * and trainer logs that carry prompt-injection text. Run by `npm run test:chaos`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { knowledgeWithInjection, LLM_FAULTS, llmScenario } from '../helpers/chaos-scenarios';
import { ChaosStack } from '../helpers/chaos-stack';
import { startFakeLlm, type FakeLlm } from '../helpers/fake-llm';

const SEED = Number(process.env.REA_CHAOS_SEED ?? 2025);

describe('chaos: LLM faults and prompt injection', () => {
  let stack: ChaosStack;
  let llm: FakeLlm;
  before(async () => {
    llm = await startFakeLlm();
    stack = await ChaosStack.start({
      name: 'llm',
      agents: 2,
      slots: 3,
      injectLogs: true,
      workerEnv: {
        REA_LLM_BASE_URL: llm.url,
        REA_LLM_TIMEOUT_SEC: '2',
        REA_LLM_MAX_RETRIES: '1',
        REA_KNOWLEDGE_DIR: knowledgeWithInjection(
          path.join(mkdtempSync(path.join(tmpdir(), 'rea-chaos-cards-')), 'k'),
        ),
      },
    });
  });
  after(async () => {
    await stack?.stop();
    await llm?.close();
  });

  it('every campaign completes, no config outside the spec reaches a trainer, reports carry injected text escaped', async () => {
    const f = await llmScenario(stack, llm, {
      scenario: 'LLM faults and injection',
      seed: SEED + 10,
      campaigns: 8,
      script: LLM_FAULTS,
    });
    assert.deepEqual(
      { lost: f.lost, duplicated: f.duplicated, overruns: f.overruns, problems: f.problems },
      { lost: 0, duplicated: 0, overruns: 0, problems: [] },
      f.notes.join('; '),
    );
    assert.equal(f.completed, 8);
    assert.ok(Object.keys(f.faults).length >= 5, JSON.stringify(f.faults));
  });
});

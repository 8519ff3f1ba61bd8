/**
 * The chaos suite's short run, part of `npm test`: one campaign through kill -9 of a gpu-agent, a
 * trainer and the worker; one whose PostgreSQL connections a TCP proxy cuts and refuses; a campaign
 * whose LLM misbehaves in every way the fake knows, with injected text in a research card and in the
 * trainer's logs; and a modest fuzz of bad campaign inputs and model specs through `rea campaign
 * start` and the Temporal CLI. Everything runs on a private stack (test/helpers/chaos-stack.ts). The
 * full suite is `npm run test:chaos` (test/chaos/).
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ScenarioFigures } from '../helpers/chaos-checks';
import {
  badInputScenario,
  faultScenario,
  fastCampaign,
  knowledgeWithInjection,
  llmScenario,
} from '../helpers/chaos-scenarios';
import { ChaosStack } from '../helpers/chaos-stack';
import { startFakeLlm, type FakeLlm } from '../helpers/fake-llm';

function assertClean(f: ScenarioFigures): void {
  assert.deepEqual(
    { lost: f.lost, duplicated: f.duplicated, overruns: f.overruns, problems: f.problems },
    { lost: 0, duplicated: 0, overruns: 0, problems: [] },
    `${f.scenario}: ${f.notes.join('; ')}`,
  );
}

describe('chaos (short): rea keeps every result, starts no job twice and keeps to the budget', () => {
  let stack: ChaosStack;
  let llm: FakeLlm;

  before(async () => {
    llm = await startFakeLlm();
    stack = await ChaosStack.start({
      name: 'short',
      agents: 2,
      slots: 2,
      injectLogs: true,
      proxies: true,
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

  it('a campaign survives kill -9 of a gpu-agent, a trainer and the worker at random moments', async () => {
    const f = await faultScenario(stack, {
      scenario: 'short-kills',
      seed: 11,
      campaigns: 1,
      input: fastCampaign({ budget: { experiments: 14 } }),
      faults: ['agent-kill', 'trainer-kill', 'worker-kill'],
      pauseMs: [500, 3000],
    });
    assertClean(f);
    assert.equal(f.completed, 1);
    assert.ok(
      Object.values(f.faults).reduce((a, b) => a + b, 0) >= 2,
      `faults injected: ${JSON.stringify(f.faults)}`,
    );
  });

  it('a campaign survives its PostgreSQL connections cut by a proxy, and refused for seconds', async () => {
    const f = await faultScenario(stack, {
      scenario: 'short-postgres-cuts',
      seed: 14,
      campaigns: 1,
      input: fastCampaign({ budget: { experiments: 12 } }),
      faults: ['postgres-cut', 'postgres-cut', 'postgres-refuse', 'postgres-cut', 'postgres-cut'],
      pauseMs: [300, 1500],
      journalMayHaveGaps: true,
    });
    assertClean(f);
    assert.equal(f.completed, 1);
    assert.ok((f.faults['postgres-cut'] ?? 0) >= 2, `faults injected: ${JSON.stringify(f.faults)}`);
  });

  it('a campaign completes through LLM hangs, 429s, 500s, broken and injected JSON, an injected card and injected logs', async () => {
    const f = await llmScenario(stack, llm, {
      scenario: 'short-llm',
      seed: 12,
      campaigns: 2,
      script: [
        'hang',
        '429',
        '429',
        '500',
        'malformed',
        'schema',
        'injected',
        'unknown-knobs',
        'out-of-range',
      ],
    });
    assertClean(f);
    assert.equal(f.completed, 2);
    assert.ok(
      Object.keys(f.faults).some((k) => k.startsWith('llm-')),
      JSON.stringify(f.faults),
    );
  });

  it('refuses generated campaign inputs, model specs and updates through rea, the Temporal CLI and the workflow, naming the field, starting nothing', async () => {
    const f = await badInputScenario(stack, {
      scenario: 'short-bad-input',
      seed: 13,
      reaInputs: 10,
      temporalInputs: 5,
      reaSpecs: 3,
      temporalSpecs: 2,
      updates: 10,
    });
    assert.deepEqual(f.problems, [], f.notes.join('; '));
    assert.equal(f.badInputs, 30);
  });
});

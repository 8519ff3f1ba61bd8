/**
 * The embedded LLM refuses weights that are not the pinned, verified file, before it starts anything;
 * and gives a worker the settings of any endpoint, with the local model's defaults.
 */
import assert from 'node:assert/strict';
import {
  closeSync,
  copyFileSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config';
import { stackLlmChoice } from '../../src/dev/stack';
import {
  localLlmEnv,
  localModelPath,
  localModelProblem,
  readLocalLlmPins,
  startLocalLlm,
  LocalLlmError,
  type LocalLlm,
} from '../../src/llm/local-server';

const repo = loadConfig().root;

describe('the embedded LLM: weights', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'rea-llm-pins-'));
  mkdirSync(path.join(root, 'scripts'));
  copyFileSync(path.join(repo, 'scripts', 'local-llm.json'), path.join(root, 'scripts', 'local-llm.json'));
  const pins = readLocalLlmPins(root);
  const file = localModelPath(root);
  const stamp = (sha: string) => {
    const st = statSync(file);
    writeFileSync(`${file}.verified`, `${sha} ${st.size} ${Math.floor(st.mtimeMs / 1000)}\n`);
  };
  after(() => rmSync(root, { recursive: true, force: true }));

  it('pins one server version and one model file by size and sha256', () => {
    assert.equal(pins.server.package, 'xllamacpp');
    assert.equal(pins.model.bytes, 1_117_320_768);
    assert.equal(pins.model.sha256, 'cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046');
    assert.equal(file, path.join(root, '.llm', 'qwen2.5-coder-1.5b-instruct-q4_k_m.gguf'));
  });

  it('says how to install missing weights, and refuses to start without them', async () => {
    assert.match((await localModelProblem(root)) ?? '', /not installed .*npm run setup.*REA_LLM=off/);
    await assert.rejects(startLocalLlm({ root }), LocalLlmError);
  });

  it('refuses a file of the wrong size', async () => {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, 'not a model');
    assert.match((await localModelProblem(root)) ?? '', /has 11 bytes, the pinned model 1117320768/);
  });

  it('refuses a file of the right size that the install never verified, or that changed since', async () => {
    const fd = openSync(file, 'w');
    ftruncateSync(fd, pins.model.bytes); // sparse: no disk used
    closeSync(fd);
    assert.match((await localModelProblem(root)) ?? '', /changed or never verified/);
    stamp('0'.repeat(64));
    assert.match(
      (await localModelProblem(root)) ?? '',
      /changed or never verified/,
      'a stamp for other weights',
    );
  });

  it('trusts the install stamp for a quick start, and the full check catches forged weights', async () => {
    stamp(pins.model.sha256);
    assert.equal(await localModelProblem(root), undefined);
    assert.match(
      (await localModelProblem(root, { full: true })) ?? '',
      /has sha256 [0-9a-f]{64}, the pinned model cc324af0/,
    );
  });
});

describe('the embedded LLM: settings', () => {
  const llm = { baseUrl: 'http://127.0.0.1:4000/v1', model: 'qwen-local' } as LocalLlm;

  it('gives a worker its URL and model, no key, zero prices, and schema limits', () => {
    const env = localLlmEnv(llm, {});
    assert.equal(env.REA_LLM_BASE_URL, 'http://127.0.0.1:4000/v1');
    assert.equal(env.REA_LLM_MODEL, 'qwen-local');
    const config = loadConfig({ ...env, REA_LLM_API_KEY: 'sk-from-the-shell', ...localLlmEnv(llm, {}) });
    assert.equal(config.REA_LLM_API_KEY, undefined, 'a hosted key is not sent to the local server');
    assert.deepEqual([config.REA_LLM_PRICE_INPUT, config.REA_LLM_PRICE_OUTPUT], [0, 0]);
    assert.equal(config.REA_LLM_SCHEMA_LIMITS, true);
    assert.equal(config.REA_LLM_HYPOTHESES_PER_CALL, 2);
    assert.equal(config.REA_LLM_MAX_RETRIES, 0);
  });

  it("lets the user's own settings win, except the endpoint and the prices", () => {
    const env = localLlmEnv(llm, { REA_LLM_TIMEOUT_SEC: '400', REA_LLM_PRICE_INPUT: '5' });
    assert.equal(env.REA_LLM_TIMEOUT_SEC, '400');
    assert.equal(env.REA_LLM_PRICE_INPUT, '0');
  });

  it('is what rea dev uses unless an endpoint is configured or REA_LLM=off', () => {
    assert.equal(stackLlmChoice(loadConfig({})), 'local');
    assert.equal(stackLlmChoice(loadConfig({ REA_LLM: 'off' })), 'off');
    assert.equal(stackLlmChoice(loadConfig({ REA_LLM_BASE_URL: 'http://vllm:8000/v1' })), 'endpoint');
    assert.equal(stackLlmChoice(loadConfig({ REA_LLM_API_KEY: 'sk-x' })), 'endpoint', 'OpenAI by key');
    assert.throws(() => loadConfig({ REA_LLM: 'on' }), /REA_LLM: expected local or off/);
  });
});

/** rea's logs: JSON lines, never a secret in any of them, and the ids of the activity that wrote them. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { configSecrets, loadConfig } from '../../src/config';
import { createLogger, registerSecrets, scrubSecrets, type Logger } from '../../src/logging';

const API_KEY = 'sk-test-4f9a1c7e2b8d6a0f';
const QUOTED = 'pa"ss\\word-77';

registerSecrets([API_KEY, QUOTED]);

/** A logger whose lines land in `lines`, as they would be written to stdout. */
function captured(level = 'trace'): { log: Logger; lines: string[]; text: () => string } {
  const lines: string[] = [];
  const log = createLogger('test', level, { write: (line: string) => void lines.push(line) });
  return { log, lines, text: () => lines.join('') };
}

function parsedLines(lines: string[]): Record<string, unknown>[] {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('secrets never reach a log line', () => {
  it('scrubs a registered key from the message, keeping the rest of it', () => {
    const { log, lines, text } = captured();
    log.info(`calling the LLM with key ${API_KEY} now`);
    assert.ok(!text().includes(API_KEY), text());
    assert.equal(parsedLines(lines)[0]?.msg, 'calling the LLM with key *** now');
  });

  it('scrubs a key from fields at any depth, from arrays and from field names', () => {
    const { log, text } = captured();
    log.warn(
      {
        request: { options: { query: { auth: API_KEY } } },
        tried: ['one', `two ${API_KEY}`],
        [API_KEY]: 1,
      },
      'nested',
    );
    assert.ok(!text().includes(API_KEY), text());
  });

  it("scrubs a key from an error's message and stack", () => {
    const { log, lines, text } = captured();
    log.error({ err: new Error(`401 Incorrect API key provided: ${API_KEY}`) }, 'LLM call failed');
    assert.ok(!text().includes(API_KEY), text());
    const err = parsedLines(lines)[0]?.err as { message: string; stack: string };
    assert.equal(err.message, '401 Incorrect API key provided: ***');
    assert.match(err.stack, /Incorrect API key provided: \*\*\*/);
  });

  it("scrubs a key from a child logger's bindings", () => {
    const { log, text } = captured();
    log.child({ client: `openai(${API_KEY})` }).info('bound');
    assert.ok(!text().includes(API_KEY), text());
  });

  it('scrubs a secret with quotes and backslashes, raw and as JSON escapes it, and the line stays JSON', () => {
    const { log, lines, text } = captured();
    log.info({ note: `password is ${QUOTED}` }, `or ${QUOTED}`);
    assert.ok(!text().includes(QUOTED), text());
    assert.ok(!text().includes(JSON.stringify(QUOTED).slice(1, -1)), text());
    assert.deepEqual(
      { note: parsedLines(lines)[0]?.note, msg: parsedLines(lines)[0]?.msg },
      { note: 'password is ***', msg: 'or ***' },
    );
  });

  it('scrubs the password of any URL, a bearer token and a PEM private key, registered or not', () => {
    const { log, text } = captured();
    const pem = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----';
    log.info(
      { url: 'postgres://rea:unregistered-pw@db:5432/rea', headers: `Authorization: Bearer eyJhbGciOi.xyz` },
      `connecting to redis://:other-pw@cache:6379 with ${pem}`,
    );
    for (const secret of [
      'unregistered-pw',
      'other-pw',
      'eyJhbGciOi.xyz',
      'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC',
    ])
      assert.ok(!text().includes(secret), `${secret} in ${text()}`);
    assert.match(text(), /postgres:\/\/rea:\*\*\*@db:5432\/rea/);
  });

  it('censors fields named like secrets, and leaves LLM token counts alone', () => {
    const { log, lines } = captured();
    log.info(
      { password: 'x1', apiKey: 'x2', headers: { authorization: 'x3' }, kube: { token: 'x4' }, tokens: 1234 },
      'fields',
    );
    const line = parsedLines(lines)[0] as Record<string, unknown>;
    assert.deepEqual(
      [line.password, line.apiKey, (line.headers as { authorization: string }).authorization],
      ['***', '***', '***'],
    );
    assert.equal((line.kube as { token: string }).token, '***');
    assert.equal(line.tokens, 1234);
  });

  it("registers the configuration's API keys and URL passwords when the configuration is loaded", () => {
    const config = loadConfig({
      REA_LLM_API_KEY: 'sk-from-config-91b2',
      REA_TEMPORAL_API_KEY: 'tmprl-key-5d3e7f',
      REA_DATABASE_URL: 'postgres://rea:db%40pass-42@db:5432/rea',
      REA_REDIS_URL: 'redis://default:redis-pass-17@cache:6379',
    });
    assert.deepEqual(configSecrets(config).sort(), [
      'db%40pass-42',
      'db@pass-42',
      'redis-pass-17',
      'sk-from-config-91b2',
      'tmprl-key-5d3e7f',
    ]);
    const { log, text } = captured();
    log.info(`sk-from-config-91b2 tmprl-key-5d3e7f db@pass-42 redis-pass-17`);
    for (const secret of configSecrets(config)) assert.ok(!text().includes(secret), text());
  });

  it('leaves a line without secrets exactly as pino wrote it', () => {
    const { log, lines } = captured();
    log.info({ experimentId: 'c1.e0001', value: 0.25 }, 'nothing secret');
    assert.match(
      lines[0] ?? '',
      /^\{"level":30,"time":\d+,.*"experimentId":"c1.e0001","value":0.25,"msg":"nothing secret"\}\n$/,
    );
  });

  it('scrubSecrets works on plain text too', () => {
    assert.equal(scrubSecrets(`key=${API_KEY}`), 'key=***');
  });
});

describe('logs written inside an activity carry its ids', () => {
  it('an experiment activity: the experiment id and the campaign it belongs to', async () => {
    const { log, lines } = captured();
    const env = new MockActivityEnvironment({
      activityType: 'submitTrainingJob',
      workflowType: 'experiment',
      workflowExecution: { workflowId: 'tiny-ctr-20260101T000000-ab12.e0007', runId: 'r1' },
    });
    await env.run(() => Promise.resolve(log.info('training job submitted')));
    const line = parsedLines(lines)[0];
    assert.equal(line?.experimentId, 'tiny-ctr-20260101T000000-ab12.e0007');
    assert.equal(line?.campaignId, 'tiny-ctr-20260101T000000-ab12');
    assert.equal(line?.activity, 'submitTrainingJob');
  });

  it('a campaign activity: the campaign id; an explicit field wins over the context', async () => {
    const { log, lines } = captured();
    const env = new MockActivityEnvironment({
      activityType: 'recordCampaignFinished',
      workflowType: 'campaign',
      workflowExecution: { workflowId: 'camp-1', runId: 'r1' },
    });
    await env.run(() => {
      log.info('finished');
      log.info({ campaignId: 'explicit' }, 'explicit');
      return Promise.resolve();
    });
    assert.deepEqual(
      parsedLines(lines).map((l) => l.campaignId),
      ['camp-1', 'explicit'],
    );
  });

  it('outside an activity: no ids added', () => {
    const { log, lines } = captured();
    log.info('plain');
    const line = parsedLines(lines)[0] ?? {};
    assert.ok(!('campaignId' in line) && !('experimentId' in line) && !('activity' in line));
  });
});

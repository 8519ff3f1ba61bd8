/** Temporal connection options from rea's configuration: plain, TLS, mTLS, Temporal Cloud API key. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config';
import {
  describeTemporalConnection,
  temporalConnectionOptions,
  type TemporalConnectionConfig,
} from '../../src/temporal/connection';

const dir = mkdtempSync(path.join(os.tmpdir(), 'rea-tls-'));
function pemFile(name: string, label: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, `-----BEGIN ${label}-----\n${name}\n-----END ${label}-----\n`);
  return file;
}
const CERT = pemFile('client.pem', 'CERTIFICATE');
const KEY = pemFile('client.key', 'PRIVATE KEY');
const CA = pemFile('ca.pem', 'CERTIFICATE');

const plain: TemporalConnectionConfig = {
  REA_TEMPORAL_ADDRESS: '127.0.0.1:7233',
  REA_TEMPORAL_TLS: undefined,
  REA_TEMPORAL_TLS_CERT: undefined,
  REA_TEMPORAL_TLS_KEY: undefined,
  REA_TEMPORAL_TLS_CA: undefined,
  REA_TEMPORAL_TLS_SERVER_NAME: undefined,
  REA_TEMPORAL_API_KEY: undefined,
};
const options = (overrides: Partial<TemporalConnectionConfig>) =>
  temporalConnectionOptions({ ...plain, ...overrides });
const refusal = (overrides: Partial<TemporalConnectionConfig>, message: RegExp) =>
  assert.throws(
    () => options(overrides),
    (err: Error) => err instanceof ConfigError && message.test(err.message),
  );

describe('Temporal connection options', () => {
  it('connects in plain TCP when nothing asks for TLS (a local dev server)', () => {
    assert.deepEqual(options({}), { address: '127.0.0.1:7233', tls: false });
    assert.equal(describeTemporalConnection(plain), '127.0.0.1:7233 (plain TCP)');
  });

  it('turns TLS on with REA_TEMPORAL_TLS=true, with the system CAs', () => {
    assert.deepEqual(options({ REA_TEMPORAL_TLS: true }), { address: '127.0.0.1:7233', tls: {} });
  });

  it('sends a Temporal Cloud API key over TLS, without being asked for TLS', () => {
    const cloud = {
      REA_TEMPORAL_ADDRESS: 'rea.a1b2c.tmprl.cloud:7233',
      REA_TEMPORAL_API_KEY: 'eyJ-cloud-key',
    };
    assert.deepEqual(options(cloud), {
      address: 'rea.a1b2c.tmprl.cloud:7233',
      tls: {},
      apiKey: 'eyJ-cloud-key',
    });
    const described = describeTemporalConnection({ ...plain, ...cloud });
    assert.equal(described, 'rea.a1b2c.tmprl.cloud:7233 (TLS, system CAs, API key)');
    assert.ok(!described.includes('eyJ-cloud-key'));
  });

  it('reads the mTLS client certificate and key, the CA and the server name', () => {
    const got = options({
      REA_TEMPORAL_TLS_CERT: CERT,
      REA_TEMPORAL_TLS_KEY: KEY,
      REA_TEMPORAL_TLS_CA: CA,
      REA_TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    });
    assert.ok(got.tls);
    assert.equal(got.tls.serverNameOverride, 'temporal.internal');
    assert.match(Buffer.from(got.tls.serverRootCACertificate ?? []).toString(), /ca\.pem/);
    assert.match(Buffer.from(got.tls.clientCertPair?.crt ?? []).toString(), /client\.pem/);
    assert.match(Buffer.from(got.tls.clientCertPair?.key ?? []).toString(), /client\.key/);
    assert.equal(
      describeTemporalConnection({
        ...plain,
        REA_TEMPORAL_TLS_CERT: CERT,
        REA_TEMPORAL_TLS_KEY: KEY,
        REA_TEMPORAL_TLS_CA: CA,
      }),
      `127.0.0.1:7233 (mTLS, CA ${CA})`,
    );
  });

  it('refuses a certificate without its key, and a key without its certificate', () => {
    refusal({ REA_TEMPORAL_TLS_CERT: CERT }, /REA_TEMPORAL_TLS_CERT is set but REA_TEMPORAL_TLS_KEY is not/);
    refusal({ REA_TEMPORAL_TLS_KEY: KEY }, /REA_TEMPORAL_TLS_KEY is set but REA_TEMPORAL_TLS_CERT is not/);
  });

  it('names the variable and the path of a file it cannot read, or that is not PEM', () => {
    const missing = path.join(dir, 'nope.pem');
    refusal(
      { REA_TEMPORAL_TLS_CA: missing },
      new RegExp(`^REA_TEMPORAL_TLS_CA: cannot read ${missing} \\(ENOENT\\)`),
    );
    const notPem = path.join(dir, 'key.der');
    writeFileSync(notPem, Buffer.from([0x30, 0x82, 0x01]));
    refusal(
      { REA_TEMPORAL_TLS_CERT: CERT, REA_TEMPORAL_TLS_KEY: notPem },
      /^REA_TEMPORAL_TLS_KEY: .*key\.der is not a PEM file/,
    );
  });

  it('refuses REA_TEMPORAL_TLS=false next to settings that need TLS (an API key never goes in plain text)', () => {
    refusal(
      { REA_TEMPORAL_TLS: false, REA_TEMPORAL_API_KEY: 'k-123' },
      /REA_TEMPORAL_TLS=false, but REA_TEMPORAL_API_KEY needs TLS/,
    );
    refusal(
      { REA_TEMPORAL_TLS: false, REA_TEMPORAL_TLS_CA: CA, REA_TEMPORAL_TLS_SERVER_NAME: 'x' },
      /REA_TEMPORAL_TLS_CA, REA_TEMPORAL_TLS_SERVER_NAME need TLS/,
    );
  });
});

describe('Temporal TLS and metrics variables', () => {
  it('reads REA_TEMPORAL_TLS as true or false, and names it when it is neither', () => {
    assert.equal(loadConfig({ REA_TEMPORAL_TLS: 'true' }).REA_TEMPORAL_TLS, true);
    assert.equal(loadConfig({ REA_TEMPORAL_TLS: '0' }).REA_TEMPORAL_TLS, false);
    assert.equal(loadConfig({}).REA_TEMPORAL_TLS, undefined);
    assert.throws(
      () => loadConfig({ REA_TEMPORAL_TLS: 'maybe' }),
      /REA_TEMPORAL_TLS: expected true or false/,
    );
  });

  it('takes host:port metrics addresses, and names the variable of a bad one', () => {
    assert.equal(loadConfig({ REA_METRICS_ADDRESS: '0.0.0.0:9464' }).REA_METRICS_ADDRESS, '0.0.0.0:9464');
    assert.equal(
      loadConfig({ REA_TEMPORAL_METRICS_ADDRESS: '[::]:9465' }).REA_TEMPORAL_METRICS_ADDRESS,
      '[::]:9465',
    );
    assert.throws(
      () => loadConfig({ REA_METRICS_ADDRESS: '9464' }),
      /REA_METRICS_ADDRESS: expected host:port/,
    );
  });
});

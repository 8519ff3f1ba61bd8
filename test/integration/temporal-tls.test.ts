/**
 * rea's Temporal connections over mutual TLS. The dev server speaks plain TCP only, so a TLS proxy
 * in front of it (Node's tls, requiring a client certificate from the test CA) plays a TLS frontend;
 * the certificates come from openssl.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { NativeConnection } from '@temporalio/worker';
import { connectClient } from '../../src/temporal/client';
import { temporalConnectionOptions } from '../../src/temporal/connection';
import { startTemporal, testConfig } from '../helpers/stack';

const SERVER_NAME = 'temporal.rea.test';

/** A CA, a server certificate for SERVER_NAME and a client certificate, all signed by the CA. */
function makeCertificates(
  dir: string,
): Record<'ca' | 'caKey' | 'server' | 'serverKey' | 'client' | 'clientKey', string> {
  const f = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=rea test CA',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=keyCertSign',
  );
  for (const [name, cn, ext] of [
    ['server', SERVER_NAME, `subjectAltName=DNS:${SERVER_NAME}\nextendedKeyUsage=serverAuth`],
    ['client', 'rea worker', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${cn}`,
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.csr`),
    );
    writeFileSync(f(`${name}.ext`), `${ext}\n`);
    openssl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      f(`${name}.ext`),
      '-out',
      f(`${name}.pem`),
    );
  }
  return {
    ca: f('ca.pem'),
    caKey: f('ca.key'),
    server: f('server.pem'),
    serverKey: f('server.key'),
    client: f('client.pem'),
    clientKey: f('client.key'),
  };
}

describe('Temporal over mutual TLS', () => {
  let env: TestWorkflowEnvironment;
  let proxy: tls.Server;
  let certs: ReturnType<typeof makeCertificates>;
  let address: string;

  before(async () => {
    certs = makeCertificates(mkdtempSync(path.join(os.tmpdir(), 'rea-mtls-')));
    env = await startTemporal();
    const [host, port] = env.address.split(':') as [string, string];
    proxy = tls.createServer(
      {
        key: readFileSync(certs.serverKey),
        cert: readFileSync(certs.server),
        ca: readFileSync(certs.ca),
        requestCert: true,
        rejectUnauthorized: true,
        ALPNProtocols: ['h2'],
      },
      (socket) => {
        const upstream = net.connect(Number(port), host);
        socket.pipe(upstream).pipe(socket);
        socket.on('error', () => upstream.destroy());
        upstream.on('error', () => socket.destroy());
      },
    );
    proxy.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    address = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise((resolve) => proxy?.close(resolve));
    await env?.teardown();
  });

  const mtls = (overrides: Record<string, string> = {}) =>
    testConfig({
      REA_TEMPORAL_ADDRESS: address,
      REA_TEMPORAL_TLS_CA: certs.ca,
      REA_TEMPORAL_TLS_CERT: certs.client,
      REA_TEMPORAL_TLS_KEY: certs.clientKey,
      REA_TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
      ...overrides,
    });

  it('the CLI client connects with the client certificate, the CA and the server name', async () => {
    const client = await connectClient(mtls());
    try {
      const info = await client.workflowService.getSystemInfo({});
      assert.ok(info.serverVersion, 'a server answered through TLS');
    } finally {
      await client.connection.close();
    }
  });

  it("the worker's native connection connects with the same options", async () => {
    const connection = await NativeConnection.connect(temporalConnectionOptions(mtls()));
    try {
      const info = await connection.workflowService.getSystemInfo({});
      assert.ok(info.serverVersion);
    } finally {
      await connection.close();
    }
  });

  it('without a client certificate the frontend refuses, and the error says where rea tried to connect', async () => {
    await assert.rejects(
      connectClient(mtls({ REA_TEMPORAL_TLS_CERT: '', REA_TEMPORAL_TLS_KEY: '' })),
      new RegExp(
        `^Error: cannot connect to Temporal at ${address} \\(TLS, CA .*ca\\.pem, server name ${SERVER_NAME}\\)`,
      ),
    );
  });
});

/**
 * The one place that turns rea's configuration into Temporal connection options (address, TLS, mTLS
 * client certificate, Temporal Cloud API key), for the client (`Connection`) and the worker
 * (`NativeConnection`) alike.
 *
 *   const connection = await Connection.connect(temporalConnectionOptions(config));
 *
 * TLS is on when REA_TEMPORAL_TLS says so, or, when it is unset, as soon as a certificate, a CA, a
 * server name or an API key is configured. Files are read at each connection, so a rotated
 * certificate is picked up by the next one.
 */
import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/client';
import { ConfigError, type ReaConfig } from '../config';

export type TemporalConnectionConfig = Pick<
  ReaConfig,
  | 'REA_TEMPORAL_ADDRESS'
  | 'REA_TEMPORAL_TLS'
  | 'REA_TEMPORAL_TLS_CERT'
  | 'REA_TEMPORAL_TLS_KEY'
  | 'REA_TEMPORAL_TLS_CA'
  | 'REA_TEMPORAL_TLS_SERVER_NAME'
  | 'REA_TEMPORAL_API_KEY'
>;

/** Accepted as they are by `Connection.connect` and `NativeConnection.connect`. */
export interface TemporalConnectionOptions {
  address: string;
  /** `false`: plain TCP (a local dev server). */
  tls: TLSConfig | false;
  apiKey?: string;
}

/** Reads a PEM file named by `variable`; errors name the variable, the path and what to do. */
function readPem(variable: string, file: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new ConfigError(
      `${variable}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give the path of a readable PEM file`,
    );
  }
  if (!pem.includes('-----BEGIN')) {
    throw new ConfigError(`${variable}: ${file} is not a PEM file (no "-----BEGIN" line)`);
  }
  return pem;
}

/**
 * The connection options for `config`, or a ConfigError that names the variable to fix.
 *
 *   temporalConnectionOptions({ REA_TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', REA_TEMPORAL_API_KEY: 'eyJ…' })
 *   // { address: 'ns.acct.tmprl.cloud:7233', tls: {}, apiKey: 'eyJ…' }
 */
export function temporalConnectionOptions(config: TemporalConnectionConfig): TemporalConnectionOptions {
  const {
    REA_TEMPORAL_TLS_CERT: cert,
    REA_TEMPORAL_TLS_KEY: key,
    REA_TEMPORAL_TLS_CA: ca,
    REA_TEMPORAL_TLS_SERVER_NAME: serverName,
    REA_TEMPORAL_API_KEY: apiKey,
  } = config;
  if (cert !== undefined && key === undefined)
    throw new ConfigError(
      'REA_TEMPORAL_TLS_CERT is set but REA_TEMPORAL_TLS_KEY is not: mTLS needs the client certificate and its private key',
    );
  if (key !== undefined && cert === undefined)
    throw new ConfigError(
      'REA_TEMPORAL_TLS_KEY is set but REA_TEMPORAL_TLS_CERT is not: mTLS needs the client certificate and its private key',
    );
  const needsTls = Object.entries({
    REA_TEMPORAL_TLS_CERT: cert,
    REA_TEMPORAL_TLS_CA: ca,
    REA_TEMPORAL_TLS_SERVER_NAME: serverName,
    REA_TEMPORAL_API_KEY: apiKey,
  }).filter(([, v]) => v !== undefined);
  if (config.REA_TEMPORAL_TLS === false && needsTls.length) {
    const names = needsTls.map(([name]) => name).join(', ');
    throw new ConfigError(
      `REA_TEMPORAL_TLS=false, but ${names} ${needsTls.length > 1 ? 'need' : 'needs'} TLS (an API key is never sent in plain text); unset REA_TEMPORAL_TLS or ${names}`,
    );
  }
  const apiKeyOption = apiKey === undefined ? {} : { apiKey };
  if (!(config.REA_TEMPORAL_TLS ?? needsTls.length > 0)) {
    return { address: config.REA_TEMPORAL_ADDRESS, tls: false, ...apiKeyOption };
  }
  const tls: TLSConfig = {};
  if (serverName !== undefined) tls.serverNameOverride = serverName;
  if (ca !== undefined) tls.serverRootCACertificate = readPem('REA_TEMPORAL_TLS_CA', ca);
  if (cert !== undefined && key !== undefined) {
    tls.clientCertPair = {
      crt: readPem('REA_TEMPORAL_TLS_CERT', cert),
      key: readPem('REA_TEMPORAL_TLS_KEY', key),
    };
  }
  return { address: config.REA_TEMPORAL_ADDRESS, tls, ...apiKeyOption };
}

/**
 * How rea connects, in words, for logs and errors (never the key itself).
 *
 *   describeTemporalConnection(config) // '127.0.0.1:7233 (plain TCP)'
 */
export function describeTemporalConnection(config: TemporalConnectionConfig): string {
  const options = temporalConnectionOptions(config);
  if (options.tls === false) return `${options.address} (plain TCP)`;
  const parts = [
    options.tls.clientCertPair ? 'mTLS' : 'TLS',
    options.tls.serverRootCACertificate ? `CA ${config.REA_TEMPORAL_TLS_CA}` : 'system CAs',
    ...(options.tls.serverNameOverride ? [`server name ${options.tls.serverNameOverride}`] : []),
    ...(options.apiKey ? ['API key'] : []),
  ];
  return `${options.address} (${parts.join(', ')})`;
}

/** A failed connection, with where rea tried to connect and which variables decide it. */
export function temporalConnectionError(config: TemporalConnectionConfig, err: unknown): Error {
  const message = err instanceof Error ? err.message : String(err);
  return new Error(
    `cannot connect to Temporal at ${describeTemporalConnection(config)}: ${message}; check REA_TEMPORAL_ADDRESS and the REA_TEMPORAL_TLS_* / REA_TEMPORAL_API_KEY settings`,
    { cause: err },
  );
}

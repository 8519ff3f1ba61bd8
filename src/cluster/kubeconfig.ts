/**
 * Where the Kubernetes API server is and how to authenticate to it: from a kubeconfig file
 * (REA_KUBECONFIG, else KUBECONFIG, else ~/.kube/config) or from inside a pod (the service account's
 * token, CA and namespace). Errors name the variable, file and field to fix.
 *
 *   const conn = resolveConnection({ kubeconfig: config.REA_KUBECONFIG });
 *   // { server: 'https://10.0.0.1:6443', ca: <Buffer>, token: () => 'eyJ…', source: 'REA_KUBECONFIG=/etc/rea/kubeconfig' }
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { registerSecrets } from '../logging';

export class KubernetesConfigError extends Error {
  override readonly name = 'KubernetesConfigError';
}

export interface KubernetesConnection {
  /** The API server's base URL, e.g. https://10.0.0.1:6443 (no trailing slash). */
  server: string;
  /** PEM of the CA that signed the server's certificate; the system CAs when absent. */
  ca?: Buffer;
  /** PEM client certificate and key, for certificate authentication. */
  cert?: Buffer;
  key?: Buffer;
  /** The bearer token, read again when its file may have been rotated; never logged. */
  token?: () => string;
  insecureSkipTlsVerify: boolean;
  tlsServerName?: string;
  /** The namespace the kubeconfig context or the pod's service account names, when any. */
  namespace?: string;
  /** Where this came from, for logs and errors (never a secret). */
  source: string;
}

export const IN_CLUSTER_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Projected service account tokens rotate; re-read the file at most this often. */
const TOKEN_FILE_TTL_MS = 60_000;

export interface ResolveOptions {
  /** REA_KUBECONFIG from rea's config, when set. */
  kubeconfig?: string;
  env?: NodeJS.ProcessEnv;
  /** The service account folder (tests point it elsewhere). */
  inClusterDir?: string;
}

/**
 * The connection to use: REA_KUBECONFIG, then KUBECONFIG, then in-cluster (KUBERNETES_SERVICE_HOST
 * set), then ~/.kube/config. Throws KubernetesConfigError naming what to set when none works.
 */
export function resolveConnection(opts: ResolveOptions = {}): KubernetesConnection {
  const env = opts.env ?? process.env;
  if (opts.kubeconfig) return loadKubeconfig(opts.kubeconfig, 'REA_KUBECONFIG');
  const fromEnv = env.KUBECONFIG?.split(path.delimiter).filter((p) => p !== '');
  if (fromEnv && fromEnv.length > 0) {
    const first = fromEnv.find((p) => existsSync(p));
    if (!first) throw new KubernetesConfigError(`KUBECONFIG: none of its files exists (${env.KUBECONFIG})`);
    return loadKubeconfig(first, 'KUBECONFIG');
  }
  if (env.KUBERNETES_SERVICE_HOST) return inClusterConnection(env, opts.inClusterDir ?? IN_CLUSTER_DIR);
  const home = path.join(env.HOME ?? os.homedir(), '.kube', 'config');
  if (existsSync(home)) return loadKubeconfig(home, '~/.kube/config');
  throw new KubernetesConfigError(
    'no Kubernetes connection: set REA_KUBECONFIG (or KUBECONFIG) to a kubeconfig file, or run rea in a pod ' +
      '(KUBERNETES_SERVICE_HOST and a mounted service account token)',
  );
}

function loadKubeconfig(file: string, variable: string): KubernetesConnection {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new KubernetesConfigError(`${variable}: cannot read kubeconfig ${file}: ${(err as Error).message}`);
  }
  return parseKubeconfig(text, { file, source: `${variable}=${file}` });
}

const record = (v: unknown): Record<string, unknown> | undefined =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;

/**
 * Reads a kubeconfig's current context (or `context`): its cluster's server and CA, its user's
 * token or client certificate, its namespace. Relative file paths resolve against the kubeconfig's
 * folder, as kubectl does. exec and auth-provider plugins are refused: rea runs no plugin programs.
 *
 *   parseKubeconfig(readFileSync(file, 'utf8'), { file, source: `REA_KUBECONFIG=${file}` })
 */
export function parseKubeconfig(
  text: string,
  opts: { file: string; source: string; context?: string },
): KubernetesConnection {
  const where = `kubeconfig ${opts.file}`;
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new KubernetesConfigError(`${where} is not valid YAML: ${(err as Error).message}`);
  }
  const root = record(doc);
  if (!root) throw new KubernetesConfigError(`${where} is not a kubeconfig (expected a YAML mapping)`);
  const dir = path.dirname(opts.file);

  const named = (list: string, name: string, inner: string): Record<string, unknown> => {
    const items = root[list];
    if (!Array.isArray(items))
      throw new KubernetesConfigError(`${where}: "${list}" is missing or not a list`);
    const found = items.map(record).find((i) => i?.name === name);
    if (!found) {
      const known = items.map((i) => String(record(i)?.name)).join(', ') || 'none';
      throw new KubernetesConfigError(`${where}: no ${list} entry named "${name}" (known: ${known})`);
    }
    const value = record(found[inner]);
    if (!value) throw new KubernetesConfigError(`${where}: ${list} "${name}" has no "${inner}" mapping`);
    return value;
  };
  const str = (obj: Record<string, unknown>, key: string, field: string): string | undefined => {
    const v = obj[key];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw new KubernetesConfigError(`${where}: ${field}.${key} must be a string`);
    return v;
  };
  const fileOrData = (obj: Record<string, unknown>, key: string, field: string): Buffer | undefined => {
    const data = str(obj, `${key}-data`, field);
    if (data) return Buffer.from(data, 'base64');
    const file = str(obj, key, field);
    if (!file) return undefined;
    const full = path.resolve(dir, file);
    try {
      return readFileSync(full);
    } catch (err) {
      throw new KubernetesConfigError(
        `${where}: ${field}.${key}: cannot read ${full}: ${(err as Error).message}`,
      );
    }
  };

  const contextName =
    opts.context ?? (typeof root['current-context'] === 'string' ? root['current-context'] : '');
  if (!contextName) throw new KubernetesConfigError(`${where}: "current-context" is not set`);
  const context = named('contexts', contextName, 'context');
  const clusterName = str(context, 'cluster', `contexts["${contextName}"].context`);
  if (!clusterName)
    throw new KubernetesConfigError(`${where}: context "${contextName}" names no cluster (context.cluster)`);
  const cluster = named('clusters', clusterName, 'cluster');
  const clusterField = `clusters["${clusterName}"].cluster`;
  const server = str(cluster, 'server', clusterField);
  if (!server) throw new KubernetesConfigError(`${where}: ${clusterField}.server is not set`);
  try {
    const u = new URL(server);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('not http(s)');
  } catch {
    throw new KubernetesConfigError(`${where}: ${clusterField}.server "${server}" is not an http(s) URL`);
  }

  const conn: KubernetesConnection = {
    server: server.replace(/\/+$/, ''),
    ca: fileOrData(cluster, 'certificate-authority', clusterField),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    tlsServerName: str(cluster, 'tls-server-name', clusterField),
    namespace: str(context, 'namespace', `contexts["${contextName}"].context`),
    source: opts.source,
  };

  const userName = str(context, 'user', `contexts["${contextName}"].context`);
  if (userName) {
    const user = named('users', userName, 'user');
    const userField = `users["${userName}"].user`;
    if (user.exec !== undefined)
      throw new KubernetesConfigError(
        `${where}: ${userField}.exec (a credential plugin) is not supported: rea runs no plugin programs; ` +
          'use a service account token (user.token or user.tokenFile) or a client certificate',
      );
    if (user['auth-provider'] !== undefined)
      throw new KubernetesConfigError(
        `${where}: ${userField}.auth-provider is not supported; use a service account token or a client certificate`,
      );
    if (user.username !== undefined || user.password !== undefined)
      throw new KubernetesConfigError(
        `${where}: ${userField}.username/password (basic auth) is not supported; use a token or a client certificate`,
      );
    conn.cert = fileOrData(user, 'client-certificate', userField);
    conn.key = fileOrData(user, 'client-key', userField);
    if (Boolean(conn.cert) !== Boolean(conn.key))
      throw new KubernetesConfigError(
        `${where}: ${userField} needs both client-certificate(-data) and client-key(-data), or neither`,
      );
    const token = str(user, 'token', userField);
    const tokenFile = str(user, 'tokenFile', userField);
    if (token) {
      registerSecrets([token]);
      conn.token = () => token;
    } else if (tokenFile)
      conn.token = tokenFromFile(path.resolve(dir, tokenFile), `${where}: ${userField}.tokenFile`);
  }
  return conn;
}

/** The pod's own service account: its token (re-read as it rotates), the cluster CA and its namespace. */
export function inClusterConnection(
  env: NodeJS.ProcessEnv,
  dir: string = IN_CLUSTER_DIR,
): KubernetesConnection {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT || '443';
  if (!host)
    throw new KubernetesConfigError('KUBERNETES_SERVICE_HOST is not set: rea is not running in a pod');
  const tokenPath = path.join(dir, 'token');
  const token = tokenFromFile(tokenPath, 'in-cluster service account token');
  token(); // fail now, with the path, rather than at the first request
  let ca: Buffer | undefined;
  try {
    ca = readFileSync(path.join(dir, 'ca.crt'));
  } catch (err) {
    throw new KubernetesConfigError(
      `in-cluster: cannot read ${path.join(dir, 'ca.crt')}: ${(err as Error).message}`,
    );
  }
  let namespace: string | undefined;
  try {
    namespace = readFileSync(path.join(dir, 'namespace'), 'utf8').trim() || undefined;
  } catch {
    namespace = undefined; // optional: the spec's cluster.namespace or "default" applies
  }
  const hostPart = host.includes(':') ? `[${host}]` : host; // IPv6 service addresses
  return {
    server: `https://${hostPart}:${port}`,
    ca,
    token,
    insecureSkipTlsVerify: false,
    namespace,
    source: `in-cluster (KUBERNETES_SERVICE_HOST=${host})`,
  };
}

function tokenFromFile(file: string, what: string): () => string {
  let cached: { value: string; at: number } | undefined;
  return () => {
    if (cached && Date.now() - cached.at < TOKEN_FILE_TTL_MS) return cached.value;
    let value: string;
    try {
      value = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new KubernetesConfigError(`${what}: cannot read ${file}: ${(err as Error).message}`);
    }
    if (!value) throw new KubernetesConfigError(`${what}: ${file} is empty`);
    // A rotated token is a new secret: no log line may carry it either.
    registerSecrets([value]);
    cached = { value, at: Date.now() };
    return value;
  };
}

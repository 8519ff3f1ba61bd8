/**
 * rea's configuration, read from environment variables once, validated, with errors that name the
 * variable. Every process (worker, gpu-agent, CLI) reads the same names.
 *
 *   REA_DATABASE_URL=postgres://postgres@db:5432/rea rea worker
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { registerSecrets } from './logging';

/** The repository root: the nearest folder above this file whose package.json is rea's. */
export function projectRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'rea')
      return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find rea's package.json above ${__dirname}`);
    dir = parent;
  }
}

const urlWithScheme = (schemes: string[]) =>
  z.string().refine(
    (v) => {
      try {
        return schemes.includes(new URL(v).protocol.replace(/:$/, ''));
      } catch {
        return false;
      }
    },
    `expected a URL starting with ${schemes.map((s) => `${s}://`).join(' or ')}`,
  );

/** host:port for a listening socket: `0.0.0.0:9464`, `127.0.0.1:0`, `[::]:9464`. */
const bindAddress = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):\d{1,5}$/, 'expected host:port, e.g. 0.0.0.0:9464');

const flag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'expected true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

export function configSchema(root: string) {
  return z.object({
    REA_DATABASE_URL: urlWithScheme(['postgres', 'postgresql']).default(
      'postgres://postgres@127.0.0.1:5432/rea',
    ),
    REA_REDIS_URL: urlWithScheme(['redis', 'rediss']).default('redis://127.0.0.1:6379'),
    REA_TEMPORAL_ADDRESS: z
      .string()
      .regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:7233')
      .default('127.0.0.1:7233'),
    REA_TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
    /**
     * TLS to the Temporal frontend. Unset: on when any REA_TEMPORAL_TLS_* file or REA_TEMPORAL_API_KEY
     * is set, off otherwise (see src/temporal/connection.ts).
     */
    REA_TEMPORAL_TLS: flag.optional(),
    /** mTLS client certificate and key (PEM files); give both or neither. */
    REA_TEMPORAL_TLS_CERT: z.string().min(1).optional(),
    REA_TEMPORAL_TLS_KEY: z.string().min(1).optional(),
    /** The CA that signed the server's certificate (PEM file); unset: the system's CAs. */
    REA_TEMPORAL_TLS_CA: z.string().min(1).optional(),
    /** The name the server's certificate must carry, when it is not the address's host. */
    REA_TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
    /** A Temporal Cloud API key, sent as a bearer token over TLS. */
    REA_TEMPORAL_API_KEY: z.string().min(1).optional(),
    /** The Temporal SDK's Prometheus endpoint in `rea worker` (temporal_* metrics); unset: off. */
    REA_TEMPORAL_METRICS_ADDRESS: bindAddress.optional(),
    /** rea's own Prometheus endpoint in `rea worker` (rea_* metrics from PostgreSQL); unset: off. */
    REA_METRICS_ADDRESS: bindAddress.optional(),
    REA_TASK_QUEUE: z.string().min(1).default('rea'),
    REA_QUEUE_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/, 'expected letters, digits, - and _')
      .default('rea'),
    /**
     * The GPU pool's job lock in seconds: how long a job stays with an agent that stopped renewing it
     * (killed, stopped, cut off) before another agent may re-run it. Workers and agents must agree;
     * every other pool timing follows from it (see docs/clusters.md).
     */
    REA_POOL_LOCK_SEC: z.coerce
      .number({ error: 'expected a number of seconds' })
      .min(2, 'expected at least 2 seconds')
      .max(3600, 'expected at most 3600 seconds')
      .default(30),
    /**
     * How often `rea worker` looks for campaigns whose workflow Temporal ended from outside
     * (terminated, timed out) and records it (src/temporal/reconcile.ts); 0: never.
     */
    REA_RECONCILE_SEC: z.coerce
      .number({ error: 'expected a number of seconds' })
      .int('expected a whole number of seconds')
      .min(0, 'expected 0 (off) or more seconds')
      .max(86400, 'expected at most 86400 seconds (a day)')
      .default(300),
    /**
     * Memory, in MB, that `rea worker` may spend on cached workflows (Temporal's sticky cache). It sets
     * how many stay cached (src/temporal/worker.ts); an evicted workflow costs nothing until its next
     * event, when Temporal replays its history (a second or less; bench/results/orchestration.md).
     */
    REA_WORKFLOW_CACHE_MB: z.coerce
      .number({ error: 'expected a number of megabytes' })
      .min(1, 'expected at least 1 MB')
      .max(1_048_576, 'expected at most 1048576 MB (1 TiB)')
      .default(150),
    REA_MODELS_DIR: z.string().min(1).default(path.join(root, 'models')),
    REA_PYTHON: z
      .string()
      .min(1)
      .default(path.join(root, '.venv', 'bin', 'python')),
    REA_TEMPORAL_CLI: z
      .string()
      .min(1)
      .default(path.join(root, '.venv', 'bin', 'temporal')),
    REA_UI_PORT: z.coerce.number({ error: 'expected a port number' }).int().min(1).max(65535).default(8233),
    REA_WORK_DIR: z.string().min(1).default(path.join(root, '.rea')),
    /** Where sbatch, squeue, sacct and scancel are; unset: found on PATH. */
    REA_SLURM_BIN_DIR: z.string().min(1).optional(),
    /** The node binary that Slurm jobs run (the same path on every Slurm node). */
    REA_SLURM_NODE: z.string().min(1).default(process.execPath),
    /** The kubeconfig for the Kubernetes adapter; else KUBECONFIG, in-cluster, ~/.kube/config. */
    REA_KUBECONFIG: z.string().min(1).optional(),
    REA_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    REA_KNOWLEDGE_DIR: z.string().min(1).default(path.join(root, 'knowledge')),
    /**
     * The embedded LLM (docs/llm.md): `local` installs it at set-up and has `rea dev` and the demo run
     * it when no endpoint is configured; `off` does neither (bring your own endpoint, or none).
     */
    REA_LLM: z.enum(['local', 'off'], { error: 'expected local or off' }).default('local'),
    /** CPU threads of the embedded LLM; unset: every core. */
    REA_LLM_THREADS: z.coerce
      .number({ error: 'expected a whole number of threads' })
      .int('expected a whole number of threads')
      .min(1)
      .max(256)
      .optional(),
    /**
     * Any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, Ollama). Unset in a worker: the planner
     * works alone (or OpenAI's, when REA_LLM_API_KEY is set); `rea dev` sets it to the embedded LLM's.
     */
    REA_LLM_BASE_URL: urlWithScheme(['http', 'https']).optional(),
    REA_LLM_API_KEY: z.string().min(1).optional(),
    REA_LLM_MODEL: z.string().min(1).default('gpt-4o-mini'),
    REA_LLM_TIMEOUT_SEC: z.coerce
      .number({ error: 'expected a number of seconds' })
      .positive()
      .max(600)
      .default(60),
    REA_LLM_MAX_RETRIES: z.coerce
      .number({ error: 'expected a whole number' })
      .int()
      .min(0)
      .max(10)
      .default(3),
    /**
     * Send lengths, counts and numeric bounds in the answer's JSON Schema (llama.cpp and vLLM enforce
     * them while decoding, which keeps a small model's answers short; OpenAI's strict mode refuses them).
     */
    REA_LLM_SCHEMA_LIMITS: flag.default(false),
    /** At most this many hypotheses asked for per call (a slow local model: fewer, sooner). */
    REA_LLM_HYPOTHESES_PER_CALL: z.coerce
      .number({ error: 'expected a whole number' })
      .int('expected a whole number')
      .min(1)
      .max(50)
      .default(8),
    /** USD per million input and output tokens, for the cost recorded with each call. */
    REA_LLM_PRICE_INPUT: z.coerce.number({ error: 'expected USD per million tokens' }).min(0).default(0),
    REA_LLM_PRICE_OUTPUT: z.coerce.number({ error: 'expected USD per million tokens' }).min(0).default(0),
  });
}

export type ReaConfig = z.output<ReturnType<typeof configSchema>> & { root: string };

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): ReaConfig {
  const root = projectRoot();
  const picked = Object.fromEntries(
    Object.keys(configSchema(root).shape).map((k) => [k, env[k] === '' ? undefined : env[k]]),
  );
  const result = configSchema(root).safeParse(picked);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${String(i.path[0])}: ${i.message}`);
    throw new ConfigError(`configuration is invalid: ${lines.join('; ')}`);
  }
  const config = { ...result.data, root };
  // Every process loads its configuration before it logs: from here on its logs never carry these.
  registerSecrets(configSecrets(config));
  return config;
}

/**
 * The secret values in a configuration: API keys and the passwords in the database and Redis URLs
 * (as written, and percent-decoded as the drivers send them).
 *
 *   configSecrets(loadConfig()) // ['sk-…', 's3cret', …]
 */
export function configSecrets(config: ReaConfig): string[] {
  const secrets = [config.REA_LLM_API_KEY, config.REA_TEMPORAL_API_KEY];
  for (const url of [config.REA_DATABASE_URL, config.REA_REDIS_URL]) {
    try {
      const { password } = new URL(url);
      if (password) secrets.push(password, decodeURIComponent(password));
    } catch {
      // The schema already refused a URL that does not parse.
    }
  }
  return [...new Set(secrets.filter((s): s is string => s !== undefined && s !== ''))];
}

/** A URL with its password replaced, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable url)';
  }
}

/**
 * The embedded LLM: llama.cpp's own OpenAI-compatible server (the xllamacpp wheel, run by
 * scripts/llm_server.py) on the pinned model that scripts/install-llm.sh installed and verified.
 * `rea dev`, `npm run demo`, the tests and the benchmark start it here; the worker talks to it
 * through the same `openai` client as to any endpoint, only the base URL differs.
 *
 *   const llm = await startLocalLlm({ root: config.root });
 *   startWorker(loadConfig({ ...process.env, ...localLlmEnv(llm) }), log);
 *   await llm.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';

const pinsSchema = z.object({
  server: z.object({ package: z.string(), version: z.string() }),
  model: z.object({
    name: z.string().min(1),
    title: z.string().min(1),
    file: z.string().regex(/^[A-Za-z0-9._-]+\.gguf$/),
    bytes: z.number().int().positive(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  }),
});
export type LocalLlmPins = z.output<typeof pinsSchema>;

/** The pins in scripts/local-llm.json: the one place the server's version and the model's hash live. */
export function readLocalLlmPins(root: string): LocalLlmPins {
  const file = path.join(root, 'scripts', 'local-llm.json');
  return pinsSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
}

/** Where scripts/install-llm.sh puts the weights, and its stamp of a verified file. */
export function localModelPath(root: string, pins = readLocalLlmPins(root)): string {
  return path.join(root, '.llm', pins.model.file);
}

/**
 * Why the installed weights cannot be used, or undefined when they are the verified, pinned file.
 * Quick: it compares the install's stamp (sha256, bytes, mtime) with the pins and the file's stat;
 * `full` hashes the whole file as well (about 5 s).
 */
export async function localModelProblem(
  root: string,
  opts: { full?: boolean } = {},
): Promise<string | undefined> {
  const pins = readLocalLlmPins(root);
  const file = localModelPath(root, pins);
  const fix = 'run `npm run setup` (scripts/install-llm.sh) to install it, or set REA_LLM=off';
  if (!existsSync(file)) return `the local LLM's weights are not installed (${file}): ${fix}`;
  const stat = statSync(file);
  if (stat.size !== pins.model.bytes)
    return `${file} has ${stat.size} bytes, the pinned model ${pins.model.bytes}: ${fix}`;
  let stamp = '';
  try {
    stamp = readFileSync(`${file}.verified`, 'utf8').trim();
  } catch {
    // no stamp: never verified
  }
  const expected = `${pins.model.sha256} ${stat.size} ${Math.floor(stat.mtimeMs / 1000)}`;
  if (stamp !== expected)
    return `${file} was changed or never verified against sha256 ${pins.model.sha256.slice(0, 12)}…: ${fix}`;
  if (opts.full) {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    const got = hash.digest('hex');
    if (got !== pins.model.sha256)
      return `${file} has sha256 ${got}, the pinned model ${pins.model.sha256}: ${fix}`;
  }
  return undefined;
}

export interface LocalLlmOptions {
  /** The repository root (scripts/, .llm/). */
  root: string;
  /** The venv's Python, where xllamacpp is installed. Default: ROOT/.venv/bin/python. */
  python?: string;
  /**
   * CPU threads for decoding. Default: all cores but one (at least one), which leaves a core to
   * rea's own processes; two threads on two busy cores wait on each other and slow down severalfold.
   */
  threads?: number;
  /** Context size in tokens. */
  ctx?: number;
  host?: string;
  /** 0: a free port. */
  port?: number;
  /** Where the server's own log goes (llama.cpp is chatty); default: nowhere. */
  logFile?: string;
  /** How long loading may take before giving up. */
  startTimeoutMs?: number;
}

export interface LocalLlm {
  /** The OpenAI base URL: http://127.0.0.1:PORT/v1. */
  baseUrl: string;
  /** The model name to send (the server's alias for the file). */
  model: string;
  /** A human name for banners: "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF)". */
  title: string;
  threads: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

const readyLine = z.object({ url: z.string().regex(/^http:\/\/[^/\s]+$/) });

export class LocalLlmError extends Error {
  override readonly name = 'LocalLlmError';
}

/**
 * Starts the embedded model server on a free port and resolves once it answers; refuses to start
 * on weights that are missing or not the verified, pinned file. The server stops when `stop()` is
 * called or when this process dies (it exits when its standard input closes).
 */
export async function startLocalLlm(opts: LocalLlmOptions): Promise<LocalLlm> {
  const problem = await localModelProblem(opts.root);
  if (problem) throw new LocalLlmError(problem);
  const pins = readLocalLlmPins(opts.root);
  const python = opts.python ?? path.join(opts.root, '.venv', 'bin', 'python');
  if (!existsSync(python)) throw new LocalLlmError(`no Python at ${python}: run \`npm run setup\``);
  const threads = opts.threads ?? Math.max(1, os.availableParallelism() - 1);
  const args = [
    path.join(opts.root, 'scripts', 'llm_server.py'),
    '--model',
    localModelPath(opts.root, pins),
    '--alias',
    pins.model.name,
    '--host',
    opts.host ?? '127.0.0.1',
    '--port',
    String(opts.port ?? 0),
    '--threads',
    String(threads),
    '--ctx',
    String(opts.ctx ?? 8192),
  ];
  const err = opts.logFile ? openSync(opts.logFile, 'a') : 'pipe';
  // stdin stays a pipe that this process holds: when it dies, the server sees EOF and exits.
  // Its own process group, so that a terminal's Ctrl-C reaches `rea dev` alone, which stops it in order.
  const child = spawn(python, args, { stdio: ['pipe', 'pipe', err], detached: true });
  let stderrTail = '';
  child.stderr?.on('data', (d: Buffer) => (stderrTail = (stderrTail + d.toString()).slice(-2000)));
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => resolve(`exited (${signal ?? `code ${String(code)}`})`)),
  );
  child.once('error', () => undefined); // reported through 'exit'
  // The launcher prints one JSON line with its address; anything a library printed before it is skipped.
  const ready = new Promise<{ url: string }>((resolve) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        return;
      }
      const address = readyLine.safeParse(parsed);
      if (address.success) {
        lines.close();
        resolve(address.data);
      }
    });
  });
  const timeoutMs = opts.startTimeoutMs ?? 120_000;
  let timer: NodeJS.Timeout | undefined;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.kill('SIGTERM');
    await exited;
    clearTimeout(kill);
  };
  try {
    const { url } = await Promise.race([
      ready,
      exited.then((how) => {
        const log = opts.logFile ? ` (log: ${opts.logFile})` : `: ${stderrTail.trim().slice(-600)}`;
        throw new LocalLlmError(`the LLM server ${how} while starting${log}`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(new LocalLlmError(`the LLM server did not load the model within ${timeoutMs / 1000}s`)),
          timeoutMs,
        );
      }),
    ]);
    // From here on its log is not read: let it go, so that the pipe never fills and blocks it.
    child.stderr?.resume();
    child.stdout?.resume();
    return {
      baseUrl: `${url.replace(/\/$/, '')}/v1`,
      model: pins.model.name,
      title: pins.model.title,
      threads,
      process: child,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The settings a worker needs to use `llm`: its URL and model, no key, zero prices (tokens and
 * latency are still recorded), schema limits on (llama.cpp enforces them), and answers sized for a
 * model that reads ~70 and writes ~13 tokens a second on two idle cores: two hypotheses a call, which
 * take well under a minute there. The timeout bounds how long a busy machine makes a campaign wait
 * before the planner fills in; a retry would only queue behind the request that timed out. A setting
 * in `env` wins over these.
 */
export function localLlmEnv(llm: LocalLlm, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const own = (name: string, value: string) => (env[name] ? env[name] : value);
  return {
    REA_LLM_BASE_URL: llm.baseUrl,
    REA_LLM_MODEL: llm.model,
    REA_LLM_API_KEY: '',
    REA_LLM_PRICE_INPUT: '0',
    REA_LLM_PRICE_OUTPUT: '0',
    REA_LLM_SCHEMA_LIMITS: own('REA_LLM_SCHEMA_LIMITS', 'true'),
    REA_LLM_HYPOTHESES_PER_CALL: own('REA_LLM_HYPOTHESES_PER_CALL', '2'),
    REA_LLM_TIMEOUT_SEC: own('REA_LLM_TIMEOUT_SEC', '240'),
    REA_LLM_MAX_RETRIES: own('REA_LLM_MAX_RETRIES', '0'),
  };
}

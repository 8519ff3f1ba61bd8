/**
 * The embedded stack behind `rea dev` and `npm run demo`: the Temporal dev server, the embedded LLM
 * (unless an endpoint is configured or REA_LLM=off), one rea worker and one gpu-agent, each its own
 * process as in production. Stops them all when one dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ReaConfig } from '../config';
import { localLlmEnv, localModelPath, startLocalLlm, type LocalLlm } from '../llm/local-server';
import type { Logger } from '../logging';
import { startDevServer, stopChild, type DevServer } from './temporal-server';

/** Which LLM the stack's worker asks, for the banner. */
export type StackLlm =
  | { kind: 'local'; title: string; model: string; baseUrl: string; threads: number }
  | { kind: 'endpoint'; host: string; model: string }
  | { kind: 'off' };

/** The LLM the embedded stack uses: a configured endpoint, else the embedded one unless REA_LLM=off. */
export function stackLlmChoice(config: ReaConfig): 'local' | 'endpoint' | 'off' {
  // An API key alone means OpenAI's endpoint (src/engine/setup.ts).
  if (config.REA_LLM_BASE_URL || config.REA_LLM_API_KEY) return 'endpoint';
  return config.REA_LLM === 'off' ? 'off' : 'local';
}

export interface Stack {
  server: DevServer;
  llm: StackLlm;
  children: { name: string; process: ChildProcess }[];
  /** Resolves with the name of the first process that exits on its own. */
  firstExit: Promise<string>;
  stop(): Promise<void>;
}

export interface StackOptions {
  /** 'inherit' shows the processes' logs here; a folder writes each to NAME.log there. */
  output: 'inherit' | { logsDir: string };
  agentSlots: number;
}

const CLI = path.join(__dirname, '..', 'cli', 'main.js');

function pidFile(workDir: string): string {
  return path.join(workDir, 'dev-stack.json');
}

/**
 * Kills what a `rea dev` that died without cleaning up (kill -9, a crash) left running: its process
 * groups, when their command line still matches what was recorded, so an unrelated process that
 * reused a pid is never touched.
 */
export async function reapStack(workDir: string): Promise<number> {
  let recorded: { pid: number; marker: string }[];
  try {
    recorded = JSON.parse(readFileSync(pidFile(workDir), 'utf8')) as { pid: number; marker: string }[];
  } catch {
    return 0;
  }
  let reaped = 0;
  for (const { pid, marker } of recorded) {
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue; // gone already
    }
    if (!cmdline.includes(marker)) continue;
    try {
      process.kill(-pid, 'SIGKILL');
      reaped += 1;
    } catch {
      // exited meanwhile
    }
    for (let i = 0; i < 50 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 100));
  }
  rmSync(pidFile(workDir), { force: true });
  return reaped;
}

export async function startStack(config: ReaConfig, log: Logger, opts: StackOptions): Promise<Stack> {
  const reaped = await reapStack(config.REA_WORK_DIR);
  if (reaped) log.warn({ reaped }, 'stopped processes left behind by an earlier rea dev');
  const dbFile = path.join(config.REA_WORK_DIR, 'temporal.db');
  const logsDir = opts.output === 'inherit' ? path.join(config.REA_WORK_DIR, 'logs') : opts.output.logsDir;
  mkdirSync(logsDir, { recursive: true });
  const choice = stackLlmChoice(config);
  // The model loads while Temporal starts: each takes a few seconds.
  const [serverResult, llmResult] = await Promise.allSettled([
    startDevServer({
      cli: config.REA_TEMPORAL_CLI,
      address: config.REA_TEMPORAL_ADDRESS,
      uiPort: config.REA_UI_PORT,
      dbFile,
      namespace: config.REA_TEMPORAL_NAMESPACE,
      log,
    }),
    choice === 'local'
      ? startLocalLlm({
          root: config.root,
          python: config.REA_PYTHON,
          ...(config.REA_LLM_THREADS ? { threads: config.REA_LLM_THREADS } : {}),
          logFile: path.join(logsDir, 'llm.log'),
        })
      : Promise.resolve(undefined),
  ]);
  if (serverResult.status === 'rejected' || llmResult.status === 'rejected') {
    if (serverResult.status === 'fulfilled') await serverResult.value.stop();
    if (llmResult.status === 'fulfilled') await llmResult.value?.stop();
    throw serverResult.status === 'rejected'
      ? serverResult.reason
      : (llmResult as PromiseRejectedResult).reason;
  }
  const server = serverResult.value;
  const local: LocalLlm | undefined = llmResult.value;
  const llm: StackLlm = local
    ? {
        kind: 'local',
        title: local.title,
        model: local.model,
        baseUrl: local.baseUrl,
        threads: local.threads,
      }
    : choice === 'endpoint'
      ? {
          kind: 'endpoint',
          host: config.REA_LLM_BASE_URL ? new URL(config.REA_LLM_BASE_URL).host : 'api.openai.com',
          model: config.REA_LLM_MODEL,
        }
      : { kind: 'off' };
  const children: Stack['children'] = [{ name: 'temporal', process: server.process }];
  if (local) children.push({ name: 'llm', process: local.process });
  const launch = (name: string, args: string[], env: NodeJS.ProcessEnv) => {
    let stdio: 'inherit' | ['ignore', number, number];
    if (opts.output === 'inherit') {
      stdio = 'inherit';
    } else {
      const fd = openSync(path.join(logsDir, `${name}.log`), 'a');
      stdio = ['ignore', fd, fd];
    }
    // Own process group: a terminal's Ctrl-C reaches `rea dev` alone, which then stops these in order.
    const child = spawn(process.execPath, [CLI, ...args], { stdio, env, detached: true });
    children.push({ name, process: child });
  };
  // Only the worker asks the LLM; it reaches the embedded one like any endpoint, by its URL.
  // Two malloc arenas, as the image sets (Dockerfile); a value of the user's own wins.
  const env = { MALLOC_ARENA_MAX: '2', ...process.env };
  launch('worker', ['worker'], local ? { ...env, ...localLlmEnv(local) } : env);
  launch('gpu-agent', ['gpu-agent', '--slots', String(opts.agentSlots)], env);
  const markers: Record<string, string> = {
    temporal: dbFile,
    llm: localModelPath(config.root),
    worker: `${CLI} worker`,
    'gpu-agent': `${CLI} gpu-agent`,
  };
  writeFileSync(
    pidFile(config.REA_WORK_DIR),
    JSON.stringify(children.map((c) => ({ pid: c.process.pid, marker: markers[c.name] }))),
  );
  const firstExit = Promise.race(
    children.map(
      ({ name, process: p }) => new Promise<string>((resolve) => p.once('exit', () => resolve(name))),
    ),
  );
  return {
    server,
    llm,
    children,
    firstExit,
    async stop() {
      // The worker and agent first, so that they drain before the server and the model go away.
      await Promise.all(
        children
          .filter((c) => c.name === 'worker' || c.name === 'gpu-agent')
          .map((c) => stopChild(c.process, 15_000)),
      );
      await Promise.all([local?.stop(), server.stop()]);
    },
  };
}

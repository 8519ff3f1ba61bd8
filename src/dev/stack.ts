/**
 * The embedded stack behind `rea dev` and `npm run demo`: the Temporal dev server, one rea worker and
 * one gpu-agent, each its own process as in production. Stops them all when one dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ReaConfig } from '../config';
import type { Logger } from '../logging';
import { startDevServer, stopChild, type DevServer } from './temporal-server';

export interface Stack {
  server: DevServer;
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
  const server = await startDevServer({
    cli: config.REA_TEMPORAL_CLI,
    address: config.REA_TEMPORAL_ADDRESS,
    uiPort: config.REA_UI_PORT,
    dbFile,
    namespace: config.REA_TEMPORAL_NAMESPACE,
    log,
  });
  const children: Stack['children'] = [{ name: 'temporal', process: server.process }];
  const launch = (name: string, args: string[]) => {
    let stdio: 'inherit' | ['ignore', number, number];
    if (opts.output === 'inherit') {
      stdio = 'inherit';
    } else {
      mkdirSync(opts.output.logsDir, { recursive: true });
      const fd = openSync(path.join(opts.output.logsDir, `${name}.log`), 'a');
      stdio = ['ignore', fd, fd];
    }
    // Own process group: a terminal's Ctrl-C reaches `rea dev` alone, which then stops these in order.
    const child = spawn(process.execPath, [CLI, ...args], { stdio, env: process.env, detached: true });
    children.push({ name, process: child });
  };
  launch('worker', ['worker']);
  launch('gpu-agent', ['gpu-agent', '--slots', String(opts.agentSlots)]);
  const markers: Record<string, string> = {
    temporal: dbFile,
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
    children,
    firstExit,
    async stop() {
      // The worker and agent first, so that they drain before the server goes away.
      await Promise.all(
        children.filter((c) => c.name !== 'temporal').map((c) => stopChild(c.process, 15_000)),
      );
      await server.stop();
    },
  };
}

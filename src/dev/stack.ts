/**
 * The embedded stack behind `rea dev` and `npm run demo`: the Temporal dev server, one rea worker and
 * one gpu-agent, each its own process as in production. Stops them all when one dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
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

export async function startStack(config: ReaConfig, log: Logger, opts: StackOptions): Promise<Stack> {
  const server = await startDevServer({
    cli: config.REA_TEMPORAL_CLI,
    address: config.REA_TEMPORAL_ADDRESS,
    uiPort: config.REA_UI_PORT,
    dbFile: path.join(config.REA_WORK_DIR, 'temporal.db'),
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

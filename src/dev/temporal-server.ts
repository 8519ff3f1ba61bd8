/**
 * The embedded Temporal: `temporal server start-dev` with a SQLite file (state survives a restart),
 * the Web UI, and rea's search attributes registered.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { devServerSearchAttributeArgs } from '../core/messages';
import type { Logger } from '../logging';

export interface DevServerOptions {
  cli: string;
  address: string;
  uiPort: number;
  dbFile: string;
  namespace: string;
  log: Logger;
}

export interface DevServer {
  process: ChildProcess;
  uiUrl: string;
  stop(): Promise<void>;
}

export function portInUse(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function waitForTemporal(
  address: string,
  timeoutMs: number,
  alive: () => boolean = () => true,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    if (!alive()) throw new Error('the Temporal dev server exited while starting');
    try {
      const connection = await Connection.connect({ address, connectTimeout: '2s' });
      await connection.workflowService.getSystemInfo({});
      await connection.close();
      return;
    } catch (err) {
      lastError = (err as Error).message;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`Temporal at ${address} did not answer within ${timeoutMs / 1000}s: ${lastError}`);
}

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  if (!existsSync(opts.cli)) {
    throw new Error(`REA_TEMPORAL_CLI: no Temporal CLI at ${opts.cli}; run \`npm run setup\` to install it`);
  }
  const [host, portText] = opts.address.split(':') as [string, string];
  if (await portInUse(host, Number(portText))) {
    throw new Error(
      `port ${opts.address} is already in use: is \`rea dev\` already running? Stop it, or point REA_TEMPORAL_ADDRESS elsewhere`,
    );
  }
  mkdirSync(path.dirname(opts.dbFile), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    opts.dbFile,
    '--ip',
    host,
    '--port',
    portText,
    '--ui-port',
    String(opts.uiPort),
    '--namespace',
    opts.namespace,
    '--log-level',
    'warn',
    ...devServerSearchAttributeArgs(),
  ];
  const child = spawn(opts.cli, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let exited = false;
  child.once('exit', () => (exited = true));
  child.stdout?.on('data', (d: Buffer) => opts.log.debug({ out: d.toString().trim() }, 'temporal'));
  child.stderr?.on('data', (d: Buffer) => opts.log.debug({ err: d.toString().trim() }, 'temporal'));
  try {
    await waitForTemporal(opts.address, 60_000, () => !exited);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    process: child,
    uiUrl: `http://${host}:${opts.uiPort}`,
    stop: () => stopChild(child, 10_000),
  };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Routes the Temporal SDK's own logs through rea's level, once per process, before any connection. */
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';

const LEVELS: Record<string, LogLevel> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARN',
  error: 'ERROR',
  fatal: 'ERROR',
  silent: 'ERROR',
};

let installed = false;

export function installTemporalRuntime(level: string): void {
  if (installed) return;
  installed = true;
  Runtime.install({ logger: new DefaultLogger(LEVELS[level] ?? 'WARN') });
}

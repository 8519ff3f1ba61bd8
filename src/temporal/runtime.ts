/**
 * The Temporal SDK's runtime, installed once per process before any connection: its logs (the SDK's,
 * the native core's, workflows' and activities' context loggers) go through a rea logger, so they are
 * JSON and scrubbed of secrets like rea's own; its metrics go to a Prometheus endpoint when asked.
 *
 *   installTemporalRuntime('warn', { metricsAddress: '0.0.0.0:9464' }); // then GET :9464/metrics
 */
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import { Runtime } from '@temporalio/worker';
import type pino from 'pino';
import { createLogger, type Logger } from '../logging';

const LEVELS: Record<string, LogLevel> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARN',
  error: 'ERROR',
  fatal: 'ERROR',
  silent: 'ERROR',
};

const PINO_LEVEL: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** The SDK's logger interface on a pino logger. */
class SdkLogger implements TemporalLogger {
  constructor(private readonly pino: Logger) {}
  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    // The SDK puts failures under `error`; as a plain object an Error serialises to {}.
    const error: unknown = meta?.error;
    const fields =
      error instanceof Error
        ? {
            ...meta,
            error: {
              type: error.name,
              message: error.message,
              ...('cause' in error && error.cause instanceof Error ? { cause: error.cause.message } : {}),
            },
          }
        : (meta ?? {});
    this.pino[PINO_LEVEL[level]](fields, message);
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}

export interface TemporalRuntimeOptions {
  /** host:port of the SDK's Prometheus endpoint (REA_TEMPORAL_METRICS_ADDRESS); unset: no metrics. */
  metricsAddress?: string;
  /** Where the SDK's log lines go; unset: stdout. */
  destination?: pino.DestinationStream;
}

let installed: { metricsAddress?: string } | undefined;

/**
 * Installs the runtime with rea's log level and, optionally, the SDK's Prometheus endpoint. The SDK
 * allows one runtime per process: a later call is a no-op, unless it asks for a metrics endpoint the
 * installed runtime does not have, which is an error (the endpoint cannot be added afterwards).
 */
export function installTemporalRuntime(level: string, opts: TemporalRuntimeOptions = {}): void {
  if (installed) {
    if (opts.metricsAddress !== undefined && opts.metricsAddress !== installed.metricsAddress) {
      throw new Error(
        `cannot serve Temporal metrics on ${opts.metricsAddress}: this process installed the Temporal runtime ` +
          `${installed.metricsAddress ? `with metrics on ${installed.metricsAddress}` : 'without metrics'} already; ` +
          'install it once, with REA_TEMPORAL_METRICS_ADDRESS, before any Temporal connection',
      );
    }
    return;
  }
  const { metricsAddress } = opts;
  try {
    Runtime.install({
      logger: new SdkLogger(createLogger('temporal', level, opts.destination)),
      telemetryOptions: {
        logging: { filter: { core: LEVELS[level] ?? 'WARN', other: 'ERROR' }, forward: {} },
        ...(metricsAddress ? { metrics: { prometheus: { bindAddress: metricsAddress } } } : {}),
      },
    });
  } catch (err) {
    if (!metricsAddress) throw err;
    throw new Error(
      `REA_TEMPORAL_METRICS_ADDRESS=${metricsAddress}: the Temporal runtime could not start its metrics endpoint: ${(err as Error).message}`,
      { cause: err },
    );
  }
  installed = metricsAddress ? { metricsAddress } : {};
}

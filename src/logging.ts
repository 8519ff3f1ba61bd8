/** One pino logger per process, named by role; secrets in well-known fields are redacted. */
import pino from 'pino';

export type Logger = pino.Logger;

export function createLogger(role: string, level = process.env.REA_LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name: `rea-${role}`,
    level,
    redact: {
      paths: ['*.password', '*.apiKey', '*.api_key', '*.authorization', 'password', 'apiKey'],
      censor: '***',
    },
  });
}

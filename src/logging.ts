/**
 * rea's logs: one pino logger per process, named by role, one JSON object a line on stdout.
 *
 *   const log = createLogger('worker', config.REA_LOG_LEVEL);
 *   log.info({ experimentId }, 'training job submitted');
 *
 * Secrets never reach a line, whatever a message embeds. Three layers:
 * - fields with well-known secret names (password, apiKey, authorization, token...) are censored;
 * - every line is checked, as written, for the secret values registered at process start (the
 *   configuration's API keys and URL passwords, see `configSecrets`; a kubeconfig's token when read)
 *   and for secret shapes (a URL's password, a bearer token, a PEM private key); a line that holds
 *   one is parsed, scrubbed string by string, and written again;
 * - a log written inside a Temporal activity carries its campaign or experiment id.
 */
import { asyncLocalStorage } from '@temporalio/activity';
import pino from 'pino';
import { CAMPAIGN_WORKFLOW, EXPERIMENT_WORKFLOW } from './core/messages';

export type Logger = pino.Logger;

/** What replaces a secret. */
export const CENSOR = '***';

/**
 * Shorter values are not scrubbed by value: a 3-character password would turn every such substring
 * of every log line into `***`. Such a password is still scrubbed where it sits in a URL.
 */
const MIN_SECRET_LENGTH = 4;

/** Raw secret values, and the forms they take inside a JSON string (escaped quotes, backslashes). */
const secrets = new Set<string>();
const secretsInJson = new Set<string>();

/**
 * Registers values that no log line may contain, from now on, in every logger of this process.
 *
 *   registerSecrets([process.env.REA_LLM_API_KEY]);
 */
export function registerSecrets(values: Iterable<string | undefined>): void {
  for (const value of values) {
    if (value === undefined || value.length < MIN_SECRET_LENGTH) continue;
    secrets.add(value);
    secretsInJson.add(value);
    secretsInJson.add(JSON.stringify(value).slice(1, -1));
  }
}

const SHAPES: { pattern: RegExp; replace: string }[] = [
  // scheme://user:password@host
  { pattern: /([a-z][a-z0-9+.-]*:\/\/[^\s:/?#@"]*:)[^\s@/?#"]+@/gi, replace: `$1${CENSOR}@` },
  // Authorization: Bearer <token>
  { pattern: /\b(bearer\s+)[A-Za-z0-9\-._~+/]+=*/gi, replace: `$1${CENSOR}` },
  {
    pattern: /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
    replace: `[private key ${CENSOR}]`,
  },
];

function byLengthDescending(values: Set<string>): string[] {
  // Longest first: a secret that contains another is replaced whole.
  return [...values].sort((a, b) => b.length - a.length);
}

/**
 * The text with every registered secret and every secret shape replaced by `***`.
 *
 *   scrubSecrets('connect postgres://rea:hunter22@db/rea') // 'connect postgres://rea:***@db/rea'
 */
export function scrubSecrets(text: string): string {
  let out = text;
  for (const s of byLengthDescending(secretsInJson)) out = out.split(s).join(CENSOR);
  for (const { pattern, replace } of SHAPES) out = out.replace(pattern, replace);
  return out;
}

function mayHoldSecret(text: string): boolean {
  for (const s of secretsInJson) if (text.includes(s)) return true;
  return SHAPES.some(({ pattern }) => {
    pattern.lastIndex = 0;
    return pattern.test(text);
  });
}

function scrubValue(value: unknown): unknown {
  if (typeof value === 'string') return scrubSecrets(value);
  if (typeof value === 'number') {
    const text = String(value);
    return [...secrets].some((s) => text.includes(s)) ? CENSOR : value;
  }
  if (Array.isArray(value)) return value.map(scrubValue);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [scrubSecrets(k), scrubValue(v)]));
  }
  return value;
}

/**
 * One serialized log line, scrubbed. A line that holds no secret is returned as it is; one that does
 * is parsed and rebuilt, so that the line stays valid JSON.
 */
export function scrubLogLine(line: string): string {
  if (!mayHoldSecret(line)) return line;
  try {
    return `${JSON.stringify(scrubValue(JSON.parse(line)))}\n`;
  } catch {
    return scrubSecrets(line);
  }
}

/** A destination that scrubs every line before `dest` sees it. */
function scrubbing(dest: pino.DestinationStream): pino.DestinationStream {
  return { write: (line: string) => dest.write(scrubLogLine(line)) };
}

let stdout: pino.DestinationStream | undefined;

/** The ids of the Temporal activity running now, if any: its campaign or experiment. */
function activityIds(): Record<string, string | number> {
  const info = asyncLocalStorage.getStore()?.info;
  if (!info) return {};
  const activity = { activity: info.activityType, attempt: info.attempt };
  // Absent for an activity started on its own, outside a workflow.
  const id = info.workflowExecution?.workflowId;
  if (id === undefined) return activity;
  if (info.workflowType === CAMPAIGN_WORKFLOW) return { campaignId: id, ...activity };
  if (info.workflowType === EXPERIMENT_WORKFLOW) {
    // Experiment ids are `<campaign id>.eNNNN` (workflows/campaign.ts); activities have no parent id.
    const campaignId = /^(.+)\.e\d+$/.exec(id)?.[1];
    return { experimentId: id, ...(campaignId ? { campaignId } : {}), ...activity };
  }
  return { workflowId: id, ...activity };
}

/**
 * Fields censored wherever they sit (top level or one level down). `tokens` is left alone: it counts
 * LLM tokens.
 */
const REDACT_PATHS = [
  'password',
  '*.password',
  'apiKey',
  '*.apiKey',
  'api_key',
  '*.api_key',
  'authorization',
  '*.authorization',
  'Authorization',
  '*.Authorization',
  'headers.authorization',
  'headers.Authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
  'token',
  '*.token',
  'bearerToken',
  '*.bearerToken',
  'clientKey',
  '*.clientKey',
];

/**
 * The process's logger for `role` (worker, gpu-agent, dev...), writing to stdout, or to
 * `destination` (tests capture lines there).
 *
 *   createLogger('worker', 'info').info({ campaignId }, 'campaign started');
 */
export function createLogger(
  role: string,
  level = process.env.REA_LOG_LEVEL ?? 'info',
  destination?: pino.DestinationStream,
): Logger {
  // One stdout stream per process, shared by its loggers.
  const dest = destination ?? (stdout ??= pino.destination(1));
  return pino(
    {
      name: `rea-${role}`,
      level,
      redact: { paths: REDACT_PATHS, censor: CENSOR },
      mixin: activityIds,
    },
    scrubbing(dest),
  );
}

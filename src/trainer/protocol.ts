/**
 * The trainer protocol, TypeScript side (docs/trainers.md is the full text): a trainer prints
 * `rea:progress {json}` lines, writes a metrics JSON file, and on failure prints
 * `rea:error {"class": ..., "message": ...}` to stderr and exits with the class's code.
 *
 *   parseLine('rea:progress {"step":30,"steps":300,"loss":0.41,"examples_per_s":5e4}')
 *   // → { kind: 'progress', progress: { step: 30, steps: 300, loss: 0.41, examplesPerSec: 50000 } }
 */
import { z } from 'zod';
import { formatIssues } from '../core/errors';
import type { FailureClass, Metrics } from '../core/types';
import type { MemorySeen } from './memory-watch';

export interface Progress {
  step: number;
  steps: number;
  loss: number;
  examplesPerSec: number;
}

const progressSchema = z.object({
  step: z.number().int().min(0),
  steps: z.number().int().min(1),
  loss: z.number(),
  examples_per_s: z.number().min(0),
});

const errorSchema = z.object({
  class: z.enum(['bad_config', 'oom', 'nan', 'crash']),
  message: z.string(),
});

export const metricsSchema = z.record(z.string(), z.unknown()).transform((raw, ctx) => {
  const metrics: Metrics = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v === 'number') {
      if (!Number.isFinite(v))
        ctx.addIssue({ code: 'custom', path: [k], message: 'expected a finite number' });
      metrics[k] = v;
    }
  }
  return metrics;
});

export type ParsedLine =
  | { kind: 'progress'; progress: Progress }
  | { kind: 'metrics'; metrics: Metrics }
  | { kind: 'error'; failureClass: FailureClass; message: string }
  /** Any other line; `refused` says why a line with a protocol prefix was not taken, naming the field. */
  | { kind: 'log'; text: string; refused?: string };

const NOT_JSON = Symbol('not JSON');

function parseJsonAfter(prefix: string, line: string): unknown {
  try {
    return JSON.parse(line.slice(prefix.length));
  } catch {
    return NOT_JSON;
  }
}

/** Reads the JSON after `prefix` with `schema`, or says why not: malformed JSON, or the fields at fault. */
function protocolJson<T>(
  prefix: string,
  line: string,
  schema: z.ZodType<T>,
): { ok: true; data: T } | { ok: false; refused: string } {
  const what = prefix.trim();
  const json = parseJsonAfter(prefix, line);
  if (json === NOT_JSON) return { ok: false, refused: `${what} is invalid: (root): not valid JSON` };
  const r = schema.safeParse(json);
  return r.success ? { ok: true, data: r.data } : { ok: false, refused: formatIssues(what, r.error.issues) };
}

export function parseLine(line: string): ParsedLine {
  let refused: string | undefined;
  if (line.startsWith('rea:progress ')) {
    const p = protocolJson('rea:progress ', line, progressSchema);
    if (p.ok) {
      const { step, steps, loss, examples_per_s } = p.data;
      return { kind: 'progress', progress: { step, steps, loss, examplesPerSec: examples_per_s } };
    }
    refused = p.refused;
  } else if (line.startsWith('rea:metrics ')) {
    const m = protocolJson('rea:metrics ', line, metricsSchema);
    if (m.ok) return { kind: 'metrics', metrics: m.data };
    refused = m.refused;
  } else if (line.startsWith('rea:error ')) {
    const e = protocolJson('rea:error ', line, errorSchema);
    if (e.ok) return { kind: 'error', failureClass: e.data.class, message: e.data.message };
    refused = e.refused;
  }
  return refused === undefined ? { kind: 'log', text: line } : { kind: 'log', text: line, refused };
}

/** Exit codes of the protocol. */
export const EXIT_CODES: Record<number, FailureClass> = { 2: 'bad_config', 3: 'oom', 4: 'nan', 1: 'crash' };

/** The failure class of an exit code (a kill by signal: see `classifyForeignKill`). */
export function failureClassForExit(code: number | null): FailureClass {
  return code === null ? 'crash' : (EXIT_CODES[code] ?? 'crash');
}

/** What a trainer prints when a write meets a full disk or quota (errno names and their strerror texts). */
const DISK_FULL_TEXT = /\b(ENOSPC|EDQUOT)\b|No space left on device|Disk quota exceeded/i;

/**
 * A trainer that failed because a write met a full disk (or quota): the run itself was fine, so it is
 * `lost` (the runbook runs it again once) rather than `crash` (which drops the hypothesis). The
 * evidence is the trainer's own output naming the error; the message quotes it, with the free space
 * under the run folder now when known. Undefined when the output does not name a full disk.
 *
 *   classifyDiskFull(['OSError: [Errno 28] No space left on device'], '/runs/e1', 0)?.failureClass // 'lost'
 */
export function classifyDiskFull(
  tail: readonly string[],
  runDir: string,
  freeMb?: number,
): { failureClass: FailureClass; message: string } | undefined {
  const line = [...tail].reverse().find((l) => DISK_FULL_TEXT.test(l));
  if (line === undefined) return undefined;
  const free = freeMb === undefined ? 'free space unknown' : `${mb(freeMb)} free there now`;
  return {
    failureClass: 'lost',
    message:
      `trainer met a full disk (or quota) while it wrote: "${line.trim().slice(0, 300)}"; ` +
      `run folder ${runDir} (${free}): run it again once there is room`,
  };
}

/** Peak resident memory at or above this share of the spec's cap counts as "at the cap". */
export const NEAR_CAP = 0.9;

const mb = (x: number) => `${Math.round(x)} MB`;

/**
 * A trainer killed by a signal that rea did not send (not its time limit, a cancel, or its
 * supervisor). The OOM killer sends SIGKILL: with SIGKILL, an OOM kill counted by the trainer's
 * memory cgroup, or a peak resident memory at the spec's cap, makes it `oom` (the runbook shrinks the
 * batch). Any other foreign kill (an operator's kill -9, a node shutting down) is `lost`: the run
 * itself was fine, so it runs again. The message states the evidence either way.
 *
 *   classifyForeignKill('SIGKILL', { peakRssMb: 1990, oomKills: [] }, 2048).failureClass // 'oom'
 */
export function classifyForeignKill(
  signal: string,
  seen: MemorySeen,
  capMb?: number,
): { failureClass: FailureClass; message: string } {
  const peak =
    seen.peakRssMb === undefined
      ? 'peak resident memory unknown'
      : `peak resident memory ${mb(seen.peakRssMb)}${capMb ? ` of the spec's ${capMb} MB (resources.memoryMb)` : ''}`;
  const counted = seen.oomKills[0];
  if (signal === 'SIGKILL' && counted)
    return {
      failureClass: 'oom',
      message:
        `trainer was killed by SIGKILL from the OOM killer: its memory cgroup counted ${counted.after - counted.before} ` +
        `OOM kill(s) while it ran (${counted.cgroup}: oom_kill ${counted.before} → ${counted.after}); ${peak}`,
    };
  if (signal === 'SIGKILL' && capMb && seen.peakRssMb !== undefined && seen.peakRssMb >= NEAR_CAP * capMb)
    return {
      failureClass: 'oom',
      message: `trainer was killed by SIGKILL at its memory cap, most likely by the OOM killer: ${peak} (${Math.round((100 * seen.peakRssMb) / capMb)} %)`,
    };
  return {
    failureClass: 'lost',
    message:
      `trainer was killed by ${signal}, a signal rea did not send (an operator, the node, another program); ` +
      `no sign of the OOM killer (${peak}; no OOM kill counted by its memory cgroup): run it again`,
  };
}

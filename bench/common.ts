/**
 * What every part of the benchmark shares: where things are, the stamp each result carries, the
 * per-part lock, raw result files, and small helpers (lanes, specs, the Optuna install).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../src/logging';

export const ROOT = path.resolve(__dirname, '..', '..');
export const WORK = path.join(ROOT, '.rea', 'bench');
export const SMOKE = process.argv.includes('--smoke');
export const RESULTS = SMOKE ? path.join(WORK, 'smoke-results') : path.join(ROOT, 'bench', 'results');
/** Where rea's bench worker reads model specs (the bench writes the specs it searches here). */
export const MODELS = path.join(WORK, 'models');
export const PYTHON = process.env.REA_PYTHON || path.join(ROOT, '.venv', 'bin', 'python');
export const log = createLogger('bench', process.env.REA_LOG_LEVEL ?? 'warn');

export function say(message: string): void {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

// ---- model specs, as the bench reads and writes them -------------------------------------------

export interface Knob {
  type: string;
  min?: number;
  max?: number;
  choices?: (string | number | boolean)[];
  baseline: string | number | boolean;
  [other: string]: unknown;
}
export interface Spec {
  name: string;
  knobs: Record<string, Knob>;
  fixed: { dataset?: { data_seed?: number } & Record<string, unknown> } & Record<string, unknown>;
  fidelity: { knob: string; low: number; high: number };
  cost: { gpuHoursPerUnit: number };
  resources: { gpus: number } & Record<string, unknown>;
  metric: { primary: string; direction: 'minimize' | 'maximize' } & Record<string, unknown>;
  trainer: { argv: string[]; cwd?: string; env?: Record<string, string> };
  [other: string]: unknown;
}

export function readSpec(file: string): Spec {
  return JSON.parse(readFileSync(file, 'utf8')) as Spec;
}

/** A spec by name: models/ (the example models), else bench/models/ (the bench's stand-in). */
export function modelSpec(name: string): Spec {
  const file = [
    path.join(ROOT, 'models', `${name}.json`),
    path.join(ROOT, 'bench', 'models', `${name}.json`),
  ].find((f) => existsSync(f));
  if (!file) throw new Error(`no model spec "${name}" in models/ or bench/models/`);
  return readSpec(file);
}

/**
 * Writes `spec` (with `dataSeed` as its data set's seed, when given) into `dir`: MODELS is where the
 * bench's rea worker reads specs; the peers read theirs from another folder, so a drifted copy for
 * rea never changes what a peer trains.
 */
export function writeSpec(spec: Spec, dataSeed?: number, dir = MODELS): string {
  const copy = JSON.parse(JSON.stringify(spec)) as Spec;
  if (dataSeed !== undefined && copy.fixed.dataset) copy.fixed.dataset.data_seed = dataSeed;
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${copy.name}.json`);
  writeFileSync(file, `${JSON.stringify(copy, null, 2)}\n`);
  return file;
}

// ---- the Python side ----------------------------------------------------------------------------

/** Installs bench/requirements.txt into the venv once (adds packages only; skipped when the pins hold). */
export function ensureBenchPackages(): void {
  const file = path.join(ROOT, 'bench', 'requirements.txt');
  const req = readFileSync(file, 'utf8');
  const pins = req
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
  const check = `import importlib.metadata as m, sys\npins = ${JSON.stringify(pins)}\ndef ok(p):\n    name, version = p.split('==')\n    try:\n        return m.version(name) == version\n    except m.PackageNotFoundError:\n        return False\nsys.exit(0 if all(ok(p) for p in pins) else 1)`;
  if (spawnSync(PYTHON, ['-c', check]).status === 0) return;
  say(`installing ${pins.join(' ')} into ${PYTHON}'s environment (hash ${hash(req)})`);
  execFileSync(PYTHON, ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', '-r', file], {
    stdio: 'inherit',
  });
}

export const hash = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 12);

// ---- stamps, locks and raw results --------------------------------------------------------------

/** The commit this process runs (read once: a commit made while a long run goes on is not its code). */
const COMMIT = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).stdout.toString().trim();

/** Machine, date, commit and command of a run: every result file carries the stamp of its run. */
export function stamp(tierName: string, startedAt: Date): string {
  const dirty = spawnSync(
    'git',
    ['status', '--porcelain', '--', 'src', 'workflows', 'activities', 'trainers', 'bench'],
    { cwd: ROOT },
  )
    .stdout.toString()
    .trim();
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return [
    `Machine: ${os.hostname()}, ${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version} (shared with other work: timings are noisy)`,
    `Date: ${startedAt.toISOString()} (finished ${new Date().toISOString()})`,
    `Commit: ${COMMIT}${dirty ? ' (with uncommitted changes)' : ''}; tier: ${tierName}; command: \`npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\``,
  ].join('  \n');
}

/**
 * One bench process per part at a time: two search runs would clear each other's campaign history
 * (and rows) mid-campaign, and both write the same raw files. The lock is a pid file in .rea/bench;
 * a lock whose process is gone is taken over.
 */
export function lockPart(part: string): void {
  const file = path.join(WORK, `${part}.lock`);
  mkdirSync(WORK, { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      process.on('exit', () => {
        try {
          if (readFileSync(file, 'utf8') === String(process.pid)) unlinkSync(file);
        } catch {
          // already gone
        }
      });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(file, 'utf8'));
      let alive = false;
      try {
        process.kill(pid, 0);
        alive = Number.isInteger(pid) && pid > 0;
      } catch {
        alive = false;
      }
      if (alive)
        throw new Error(
          `another bench process (pid ${pid}) is running the ${part} part; two at once would clear each other's campaigns (lock: ${file})`,
        );
      unlinkSync(file);
    }
  }
  throw new Error(`could not take the bench lock ${file}`);
}

export function saveRaw(part: string, data: object): void {
  mkdirSync(path.join(RESULTS, 'raw'), { recursive: true });
  writeFileSync(path.join(RESULTS, 'raw', `${part}.json`), `${JSON.stringify(data)}\n`);
}

export function loadRaw<T extends { tier: string }>(part: string, tier: string): T | undefined {
  const file = path.join(RESULTS, 'raw', `${part}.json`);
  if (!existsSync(file)) return undefined;
  const data = JSON.parse(readFileSync(file, 'utf8')) as T;
  return data.tier === tier ? data : undefined;
}

/** Runs `jobs` with at most `lanes` at once; results in the jobs' order. */
export async function inLanes<T>(lanes: number, jobs: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array<T>(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.max(1, lanes) }, async () => {
      while (next < jobs.length) {
        const i = next++;
        results[i] = await (jobs[i] as () => Promise<T>)();
      }
    }),
  );
  return results;
}

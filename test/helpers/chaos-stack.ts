/**
 * A private rea stack for the chaos suite, every part of it a real process that a test may kill:
 * its own PostgreSQL cluster (initdb into a temp folder), its own redis-server, its own Temporal
 * dev server (SQLite file kept across restarts), `rea worker` and `rea gpu-agent` children. Nothing
 * here touches the machine's shared PostgreSQL (5432) or Redis (6379).
 *
 *   const stack = await ChaosStack.start({ name: 'faults', agents: 2, slots: 3 });
 *   const handle = await stack.startCampaign({ model: 'fast-ctr', budget: { experiments: 12 } });
 *   await stack.inject('postgres-restart', rng);
 *   await stack.stop();
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { Redis } from 'ioredis';
import { Pool } from 'pg';
import type { CampaignInput } from '../../src/core/campaign-input';
import { devServerSearchAttributeArgs } from '../../src/core/messages';
import type { CampaignResult } from '../../src/core/types';
import { loadConfig, type ReaConfig } from '../../src/config';
import { migrate } from '../../src/db/migrate';
import { ensureDatabase } from '../../src/db/pool';
import { waitForTemporal } from '../../src/dev/temporal-server';
import { startCampaign } from '../../src/temporal/client';
import { TcpProxy } from './chaos-proxy';
import { FIXTURE_MODELS, waitFor } from './stack';

const run = promisify(execFile);
const ROOT = loadConfig().root;

export type CampaignHandle = WorkflowHandle<(input: CampaignInput) => Promise<CampaignResult>>;

/** A small seeded generator (mulberry32): the same seed, the same faults at the same moments. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function killHard(child: ChildProcess | undefined): Promise<void> {
  if (!child || exited(child)) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

/** The newest PostgreSQL server binaries on this machine (REA_CHAOS_PG_BIN overrides). */
function postgresBin(): string {
  if (process.env.REA_CHAOS_PG_BIN) return process.env.REA_CHAOS_PG_BIN;
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base)
    ? readdirSync(base)
        .filter((v) => existsSync(path.join(base, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!versions[0])
    throw new Error(
      'chaos suite: no PostgreSQL server binaries in /usr/lib/postgresql/*/bin; set REA_CHAOS_PG_BIN',
    );
  return path.join(base, versions[0], 'bin');
}

/**
 * A PostgreSQL cluster of our own: trust auth on 127.0.0.1 and a free port, fsync off. PostgreSQL
 * refuses to run as root, so as root its commands run as the `postgres` user (runuser).
 */
export class PrivatePostgres {
  private readonly bin = postgresBin();
  private readonly data: string;
  constructor(
    private readonly dir: string,
    readonly port: number,
  ) {
    this.data = path.join(dir, 'data');
  }

  url(database: string): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  private async pg(program: string, args: string[]): Promise<void> {
    const argv = [path.join(this.bin, program), ...args];
    const [cmd, ...rest] = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--', ...argv] : argv;
    await run(cmd as string, rest, { cwd: this.dir, timeout: 120_000 });
  }

  async init(): Promise<void> {
    if (process.getuid?.() === 0) {
      const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
      const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
      chownSync(this.dir, uid, gid);
    }
    await this.pg('initdb', ['-D', this.data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
    await this.start();
  }

  async start(): Promise<void> {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
    await this.pg('pg_ctl', [
      '-D',
      this.data,
      '-l',
      path.join(this.dir, 'postgres.log'),
      '-w',
      '-t',
      '60',
      '-o',
      options,
      'start',
    ]);
  }

  /** As a crash would: no checkpoint, every connection cut. */
  async stopImmediately(): Promise<void> {
    await this.pg('pg_ctl', ['-D', this.data, '-m', 'immediate', '-w', 'stop']);
  }

  async destroy(): Promise<void> {
    await this.stopImmediately().catch(() => undefined);
  }
}

/** A redis-server of our own, without persistence: a restart loses everything, as a crash would. */
export class PrivateRedis {
  private proc: ChildProcess | undefined;
  constructor(readonly port: number) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    this.proc = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    const probe = new Redis(this.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    probe.on('error', () => undefined);
    await waitFor('redis-server', async () => {
      await probe.connect().catch(() => undefined);
      return (await probe.ping()) === 'PONG' ? true : undefined;
    });
    probe.disconnect();
  }
  kill(): Promise<void> {
    return killHard(this.proc);
  }
}

/** `temporal server start-dev` with a SQLite file, on fixed free ports so that a restart is the same server. */
export class PrivateTemporal {
  private proc: ChildProcess | undefined;
  constructor(
    private readonly dir: string,
    readonly port: number,
    private readonly httpPort: number,
    private readonly metricsPort: number,
  ) {}
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    const args = [
      'server',
      'start-dev',
      '--db-filename',
      path.join(this.dir, 'temporal.db'),
      '--ip',
      '127.0.0.1',
      '--port',
      String(this.port),
      '--http-port',
      String(this.httpPort),
      '--metrics-port',
      String(this.metricsPort),
      '--headless',
      '--log-level',
      'error',
      ...devServerSearchAttributeArgs(),
    ];
    const log = openSync(path.join(this.dir, 'temporal.log'), 'a');
    const proc = spawn(loadConfig().REA_TEMPORAL_CLI, args, { stdio: ['ignore', log, log] });
    closeSync(log);
    this.proc = proc;
    await waitForTemporal(this.address, 90_000, () => !exited(proc));
  }
  kill(): Promise<void> {
    return killHard(this.proc);
  }
}

/** `node bin/rea worker` or `node bin/rea gpu-agent --slots N` as a child process, its log in a file. */
export class ReaProcess {
  readonly child: ChildProcess;
  private readonly logFile: string;
  private readonly from: number;
  killedAt: number | undefined;

  constructor(
    readonly role: 'worker' | 'gpu-agent',
    args: string[],
    env: NodeJS.ProcessEnv,
    logDir: string,
  ) {
    this.logFile = path.join(logDir, `${role}.log`);
    this.from = existsSync(this.logFile) ? statSync(this.logFile).size : 0;
    const out = openSync(this.logFile, 'a');
    this.child = spawn(process.execPath, [path.join(ROOT, 'bin', 'rea'), role, ...args], {
      env,
      stdio: ['ignore', out, out],
    });
    closeSync(out);
  }

  /** host:pid, the name a gpu-agent gives itself in job_events. */
  get name(): string {
    return `${hostname()}:${this.child.pid}`;
  }

  get alive(): boolean {
    return !exited(this.child);
  }

  async ready(timeoutMs = 180_000): Promise<this> {
    const marker = this.role === 'worker' ? 'worker ready' : 'gpu-agent ready';
    await waitFor(
      `${this.role} ${this.child.pid} to be ready`,
      () => {
        const text = readFileSync(this.logFile, 'utf8').slice(this.from);
        if (!this.alive) throw new Error(`${this.role} exited: ${text.slice(-2000)}`);
        return Promise.resolve(text.includes(marker) ? true : undefined);
      },
      timeoutMs,
    );
    return this;
  }

  async kill9(): Promise<void> {
    this.killedAt = Date.now();
    await killHard(this.child);
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    await gone;
    clearTimeout(timer);
  }
}

export type Fault =
  | 'worker-kill'
  | 'agent-kill'
  | 'trainer-kill'
  | 'temporal-restart'
  | 'postgres-restart'
  | 'redis-flushall'
  | 'redis-restart'
  /** Every open connection between rea and PostgreSQL reset by the proxy (stack option `proxies`). */
  | 'postgres-cut'
  /** PostgreSQL connections refused by the proxy for 1-4 s, open ones reset. */
  | 'postgres-refuse'
  | 'redis-cut'
  | 'redis-refuse'
  /** The run folder's file system (a tmpfs, stack option `runsDiskMb`) filled for 1-3 s while candidates train. */
  | 'disk-full'
  /** A candidate's trainer moved into a memory cgroup too small for it: the kernel OOM-kills it. */
  | 'trainer-oom';

export interface ChaosStackOptions {
  /** Names the temp folder. */
  name: string;
  agents?: number;
  slots?: number;
  /** REA_POOL_LOCK_SEC for worker and agents: short, so that a dead agent's job moves on in seconds. */
  lockSec?: number;
  /** How long one run of the fast trainer takes. */
  fastSeconds?: number;
  /** The fast trainer prints prompt-injection text in its logs and error messages. */
  injectLogs?: boolean;
  /** Extra environment for the worker (an LLM endpoint, a knowledge folder). */
  workerEnv?: Record<string, string>;
  /** rea's processes reach PostgreSQL and Redis through TCP proxies that a fault can cut. */
  proxies?: boolean;
  /** The run folder (REA_WORK_DIR/runs) on a tmpfs of this size, for the `disk-full` fault. Needs root. */
  runsDiskMb?: number;
  /**
   * The fast trainer allocates (and touches) batch_size × this many KiB as its last step, as a
   * real trainer's memory follows its batch: what the `trainer-oom` fault's cgroup limit bites on.
   */
  allocKbPerBatch?: number;
}

/** The memory limit of the cgroup a `trainer-oom` fault puts a trainer in: below what it is about to allocate. */
export const OOM_LIMIT_MB = 2;

/**
 * The memory cgroup this process lives in, as a folder we can make children in (cgroup v2: the
 * unified hierarchy; v1: the memory controller's), or why not.
 */
export function ownMemoryCgroup(): { dir: string; v2: boolean } | string {
  let lines: string[];
  try {
    lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  } catch (err) {
    return `cannot read /proc/self/cgroup: ${(err as Error).message}`;
  }
  for (const line of lines) {
    const [, controllers, where] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (where === undefined) continue;
    if (controllers?.split(',').includes('memory')) {
      const dir = path.join('/sys/fs/cgroup/memory', where);
      if (existsSync(path.join(dir, 'memory.limit_in_bytes'))) return { dir, v2: false };
    }
  }
  for (const line of lines) {
    const where = /^0::(.*)$/.exec(line)?.[1];
    for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
      const dir = where === undefined ? '' : path.join(root, where);
      if (dir && existsSync(path.join(dir, 'memory.max'))) return { dir, v2: true };
    }
  }
  return 'no memory cgroup controller is mounted for this process (neither v1 nor v2)';
}

/** The model specs the suite uses: `fast-ctr` (the fast stand-in trainer) and `tiny-ctr` (the real one). */
function writeModels(dir: string, opts: ChaosStackOptions): void {
  mkdirSync(dir, { recursive: true });
  copyFileSync(path.join(FIXTURE_MODELS, 'tiny-ctr.json'), path.join(dir, 'tiny-ctr.json'));
  const tiny = JSON.parse(readFileSync(path.join(FIXTURE_MODELS, 'tiny-ctr.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const fast = {
    ...tiny,
    name: 'fast-ctr',
    description:
      'A stand-in trainer that answers in a fraction of a second (test/fixtures/trainers/fast.py).',
    trainer: {
      argv: [
        '{python}',
        // The same trainer, its memory growing with its batch (test/chaos/trainers/growing.py).
        opts.allocKbPerBatch ? 'test/chaos/trainers/growing.py' : 'test/fixtures/trainers/fast.py',
        '--config',
        '{config}',
        '--metrics',
        '{metrics}',
      ],
      cwd: '.',
    },
    fixed: {
      seconds: opts.fastSeconds ?? 0.5,
      ...(opts.injectLogs ? { inject_logs: true } : {}),
      ...(opts.allocKbPerBatch ? { alloc_kb_per_batch: opts.allocKbPerBatch } : {}),
    },
    resources: { gpus: 1, cpus: 1, memoryMb: 256, timeLimitSec: 60 },
  };
  writeFileSync(path.join(dir, 'fast-ctr.json'), JSON.stringify(fast, null, 2));
}

/** REA_* variables for the stack's processes; none is inherited from the caller's environment. */
function cleanEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('REA_')) env[k] = v;
  return { ...env, ...vars };
}

export class ChaosStack {
  readonly faults: Record<string, number> = {};
  /** Every injected fault with when it began and ended: read to explain a problem the checks find. */
  readonly timeline: { what: string; from: number; to: number }[] = [];
  /** When each killed gpu-agent died, by its journal name: the end of any run it left unfinished. */
  readonly agentDeaths = new Map<string, number>();
  worker!: ReaProcess;
  agents: ReaProcess[] = [];
  db!: Pool;
  client!: Client;
  admin!: Redis;
  config!: ReaConfig;
  /** The memory cgroups `trainer-oom` made, one per trainer it hit. */
  readonly oomCgroups: string[] = [];
  private readonly vars: Record<string, string>;

  private constructor(
    readonly dir: string,
    readonly pg: PrivatePostgres,
    readonly redis: PrivateRedis,
    readonly temporal: PrivateTemporal,
    private readonly opts: ChaosStackOptions,
    /** Between rea's processes and PostgreSQL / Redis, when the stack has them. */
    readonly proxies?: { pg: TcpProxy; redis: TcpProxy },
  ) {
    this.vars = {
      REA_DATABASE_URL: proxies ? `postgres://postgres@127.0.0.1:${proxies.pg.port}/rea` : pg.url('rea'),
      REA_REDIS_URL: proxies ? `redis://127.0.0.1:${proxies.redis.port}` : redis.url,
      REA_TEMPORAL_ADDRESS: temporal.address,
      REA_TASK_QUEUE: 'rea-chaos',
      REA_QUEUE_PREFIX: 'chaos',
      REA_POOL_LOCK_SEC: String(opts.lockSec ?? 6),
      REA_MODELS_DIR: this.modelsDir,
      REA_WORK_DIR: path.join(dir, 'work'),
      REA_LOG_LEVEL: 'info',
      REA_CHAOS_DIR: this.chaosDir,
      ...(process.env.REA_PYTHON ? { REA_PYTHON: process.env.REA_PYTHON } : {}),
    };
  }

  get modelsDir(): string {
    return path.join(this.dir, 'models');
  }
  /** Where the fast trainer keeps its locks, pid files and overlaps.txt. */
  get chaosDir(): string {
    return path.join(this.dir, 'chaos');
  }
  get reportsDir(): string {
    return path.join(this.dir, 'work', 'reports');
  }
  get logsDir(): string {
    return path.join(this.dir, 'logs');
  }
  /** Where the gpu-agents make each trainer's run folder. */
  get runsDir(): string {
    return path.join(this.dir, 'work', 'runs');
  }

  /** The environment of a rea process (worker, agent, CLI) on this stack. */
  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return cleanEnv({ ...this.vars, ...extra });
  }

  static async start(opts: ChaosStackOptions): Promise<ChaosStack> {
    const dir = mkdtempSync(path.join(tmpdir(), `rea-chaos-${opts.name}-`));
    chmodSync(dir, 0o755); // the postgres user must reach its cluster inside
    const ports = await Promise.all(Array.from({ length: 7 }, freePort));
    const [pgPort, redisPort, tPort, tHttp, tMetrics, pgProxy, redisProxy] = ports as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const stack = new ChaosStack(
      dir,
      new PrivatePostgres(mkdirp(path.join(dir, 'pg')), pgPort),
      new PrivateRedis(redisPort),
      new PrivateTemporal(mkdirp(path.join(dir, 'temporal')), tPort, tHttp, tMetrics),
      opts,
      opts.proxies
        ? {
            pg: await TcpProxy.start(pgProxy, pgPort),
            redis: await TcpProxy.start(redisProxy, redisPort),
          }
        : undefined,
    );
    if (opts.runsDiskMb) {
      mkdirp(stack.runsDir);
      await run('mount', ['-t', 'tmpfs', '-o', `size=${opts.runsDiskMb}m,mode=0755`, 'tmpfs', stack.runsDir]);
    }
    mkdirp(stack.logsDir);
    mkdirp(stack.chaosDir);
    writeModels(stack.modelsDir, opts);
    await Promise.all([stack.pg.init(), stack.redis.start(), stack.temporal.start()]);
    stack.config = loadConfig(stack.env());
    await ensureDatabase(stack.config.REA_DATABASE_URL);
    // The suite's own connection goes around the proxy: its checks are not the ones being cut.
    stack.db = new Pool({ connectionString: stack.pg.url('rea'), max: 3 });
    // Idle connections die when PostgreSQL restarts; the next query opens a new one.
    stack.db.on('error', () => undefined);
    await migrate(stack.db, path.join(ROOT, 'migrations'));
    stack.admin = new Redis(stack.redis.url, { maxRetriesPerRequest: null });
    stack.admin.on('error', () => undefined);
    stack.client = new Client({
      connection: await Connection.connect({ address: stack.temporal.address }),
    });
    stack.worker = await stack.spawnWorker();
    for (let i = 0; i < (opts.agents ?? 2); i++) stack.agents.push(await stack.spawnAgent());
    return stack;
  }

  spawnWorker(): Promise<ReaProcess> {
    return new ReaProcess('worker', [], this.env(this.opts.workerEnv ?? {}), this.logsDir).ready();
  }

  spawnAgent(): Promise<ReaProcess> {
    return new ReaProcess(
      'gpu-agent',
      ['--slots', String(this.opts.slots ?? 2)],
      this.env(),
      this.logsDir,
    ).ready();
  }

  startCampaign(input: CampaignInput, id: string): Promise<CampaignHandle> {
    return startCampaign(this.client, this.config, input, id);
  }

  /** Live fast-trainer processes: pid → experiment id. */
  trainers(): Map<number, string> {
    const dir = path.join(this.chaosDir, 'pids');
    const found = new Map<number, string>();
    if (!existsSync(dir)) return found;
    for (const name of readdirSync(dir)) {
      const pid = Number(name);
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue;
        found.set(pid, readFileSync(path.join(dir, name), 'utf8'));
      } catch {
        // gone, or its file half-written
      }
    }
    return found;
  }

  /** Experiment ids that two fast-trainer runs held at once (the flock witness). */
  overlaps(): string[] {
    const file = path.join(this.chaosDir, 'overlaps.txt');
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
  }

  /**
   * Injects one fault and waits until the stack has recovered from our side (a restarted service
   * answers, a killed process has its replacement): the rest is rea's job. `rng` chooses what is
   * hit (which agent, which trainer) and how long a service stays down; `canHitTrainer` narrows
   * which experiments' trainers may be killed.
   */
  async inject(
    fault: Fault,
    rng: () => number,
    canHitTrainer: (experimentId: string) => Promise<boolean> = () => Promise.resolve(true),
  ): Promise<string> {
    let what: string = fault;
    const from = Date.now();
    switch (fault) {
      case 'worker-kill': {
        await this.worker.kill9();
        await sleep(rng() * 2000);
        this.worker = await this.spawnWorker();
        break;
      }
      case 'agent-kill': {
        const live = this.agents.filter((a) => a.alive);
        const victim = live[Math.floor(rng() * live.length)];
        if (!victim) throw new Error('agent-kill: no gpu-agent is alive');
        await victim.kill9();
        this.agentDeaths.set(victim.name, victim.killedAt ?? Date.now());
        this.agents = this.agents.filter((a) => a !== victim);
        this.agents.push(await this.spawnAgent());
        what = `agent-kill ${victim.name}`;
        break;
      }
      case 'trainer-kill': {
        const pick = await waitFor(
          'a trainer to kill',
          async () => {
            const live = [];
            for (const entry of this.trainers()) if (await canHitTrainer(entry[1])) live.push(entry);
            return live.length ? live[Math.floor(rng() * live.length)] : undefined;
          },
          60_000,
        );
        try {
          process.kill(pick[0], 'SIGKILL');
        } catch {
          // it finished between the pick and the kill: still a trainer killed at a random moment, or none
        }
        what = `trainer-kill ${pick[1]}`;
        break;
      }
      case 'temporal-restart': {
        await this.temporal.kill();
        await sleep(500 + rng() * 3000);
        await this.temporal.start();
        break;
      }
      case 'postgres-restart': {
        await this.pg.stopImmediately();
        await sleep(500 + rng() * 4000);
        await this.pg.start();
        break;
      }
      case 'redis-flushall':
        await this.admin.flushall();
        break;
      case 'redis-restart': {
        await this.redis.kill();
        await sleep(rng() * 2000);
        await this.redis.start();
        break;
      }
      case 'postgres-cut':
      case 'redis-cut': {
        const proxy = this.proxy(fault);
        // A cut with nothing open hits nothing: wait (briefly) for a connection to cut.
        for (const until = Date.now() + 5000; proxy.open === 0 && Date.now() < until;) await sleep(50);
        what = `${fault} ${proxy.cut()} connections`;
        break;
      }
      case 'postgres-refuse':
      case 'redis-refuse': {
        const ms = Math.round(1000 + rng() * 3000);
        what = `${fault} ${ms} ms, ${await this.proxy(fault).refuse(ms)} connections cut`;
        break;
      }
      case 'disk-full': {
        // Only while every live trainer is a candidate's: a baseline that meets the full disk is
        // retried at once and fails again while the disk stays full (see docs/reliability.md).
        const onlyCandidates = await waitFor(
          'only candidates training',
          async () => {
            const live = [...this.trainers().values()];
            for (const id of live) if (!(await canHitTrainer(id))) return undefined;
            return live.length ? true : undefined;
          },
          30_000,
        ).catch(() => false);
        if (!onlyCandidates) return 'disk-full missed: no time when only candidates trained, within 30 s';
        what = `disk-full ${await this.fillRunsDisk(1000 + rng() * 2000)}`;
        break;
      }
      case 'trainer-oom': {
        const hit = await this.oomKillTrainer(rng, canHitTrainer);
        // The campaigns may end while we wait for a trainer to start: then nothing was injected.
        if (!hit) return 'trainer-oom missed: no candidate trainer started within 30 s';
        what = `trainer-oom ${hit}`;
        break;
      }
    }
    this.faults[fault] = (this.faults[fault] ?? 0) + 1;
    this.timeline.push({ what, from, to: Date.now() });
    return what;
  }

  private proxy(fault: Fault): TcpProxy {
    const proxy = fault.startsWith('postgres') ? this.proxies?.pg : this.proxies?.redis;
    if (!proxy) throw new Error(`${fault}: this stack has no proxies (ChaosStack.start({ proxies: true }))`);
    return proxy;
  }

  /**
   * Fills the run folder's tmpfs to the last byte, keeps it full for `ms`, and frees it: every
   * trainer run that writes meanwhile (its config, its metrics, its log) meets ENOSPC.
   */
  private async fillRunsDisk(ms: number): Promise<string> {
    if (!this.opts.runsDiskMb)
      throw new Error('disk-full: the run folder is not on a tmpfs (ChaosStack.start({ runsDiskMb }))');
    const filler = path.join(this.runsDir, '.chaos-filler');
    const fd = openSync(filler, 'w');
    const chunk = Buffer.alloc(64 * 1024, 1);
    let bytes = 0;
    try {
      for (;;) bytes += writeSync(fd, chunk);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    }
    // The last few bytes, so that even a small file cannot be written.
    for (let size = 4096; size >= 1; size = Math.floor(size / 2)) {
      try {
        bytes += writeSync(fd, chunk.subarray(0, size));
      } catch {
        // full at this size: try a smaller one
      }
    }
    closeSync(fd);
    await sleep(ms);
    unlinkSync(filler);
    return `${Math.round(bytes / 1024)} KiB for ${Math.round(ms)} ms`;
  }

  /**
   * Moves a candidate's trainer that has just started (so that it has yet to allocate its batch:
   * allocKbPerBatch) into a memory cgroup of its own limited to OOM_LIMIT_MB (2 MB). The kernel's OOM killer
   * kills it when it allocates; rea must class that `oom` from the cgroup's evidence.
   */
  private async oomKillTrainer(
    rng: () => number,
    canHitTrainer: (experimentId: string) => Promise<boolean>,
  ): Promise<string | undefined> {
    if (!this.opts.allocKbPerBatch) throw new Error('trainer-oom: the fast trainer allocates nothing');
    const own = ownMemoryCgroup();
    if (typeof own === 'string') throw new Error(`trainer-oom: ${own}`);
    // The trainer allocates after `fastSeconds`: hit only runs younger than half of that.
    const youngMs = ((this.opts.fastSeconds ?? 0.5) * 1000) / 2;
    let pick: readonly [number, string] | undefined;
    for (const deadline = Date.now() + 30_000; !pick; await sleep(20)) {
      if (Date.now() > deadline) return undefined;
      const young = [];
      for (const [pid, experimentId] of this.trainers()) {
        const born = statSync(path.join(this.chaosDir, 'pids', String(pid)), {
          throwIfNoEntry: false,
        })?.mtimeMs;
        if (born !== undefined && Date.now() - born < youngMs && (await canHitTrainer(experimentId)))
          young.push([pid, experimentId] as const);
      }
      pick = young[Math.floor(rng() * young.length)];
    }
    const [pid, experimentId] = pick;
    const cgroup = path.join(own.dir, `rea-chaos-oom-${pid}-${Date.now()}`);
    mkdirSync(cgroup);
    this.oomCgroups.push(cgroup);
    const limit = String(OOM_LIMIT_MB * 1024 * 1024);
    writeFileSync(path.join(cgroup, own.v2 ? 'memory.max' : 'memory.limit_in_bytes'), limit);
    if (own.v2) writeFileSync(path.join(cgroup, 'memory.swap.max'), '0');
    try {
      writeFileSync(path.join(cgroup, 'cgroup.procs'), String(pid));
    } catch {
      // it ended between the pick and the move: a fault that missed, its cgroup counts no kill
    }
    return `${experimentId} (pid ${pid}, ${OOM_LIMIT_MB} MB cgroup)`;
  }

  /** OOM kills the kernel counted in the `trainer-oom` cgroups; removes those that are empty. */
  oomKills(): number {
    let kills = 0;
    for (const cgroup of this.oomCgroups) {
      const text = readFileSync(
        path.join(
          cgroup,
          existsSync(path.join(cgroup, 'memory.events')) ? 'memory.events' : 'memory.oom_control',
        ),
        'utf8',
      );
      kills += Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0);
    }
    return kills;
  }

  private removeOomCgroups(): void {
    for (const cgroup of this.oomCgroups.splice(0)) {
      try {
        rmdirSync(cgroup);
      } catch {
        // still holds a process, or gone
      }
    }
  }

  /** Copies the stack's logs next to a failed test's output, for a post-mortem. */
  keepLogs(to: string): void {
    mkdirSync(to, { recursive: true });
    cpSync(this.logsDir, to, { recursive: true });
  }

  async stop(): Promise<void> {
    await Promise.all([this.worker, ...this.agents].map((p) => p?.stop().catch(() => undefined)));
    this.admin?.disconnect();
    await this.client?.connection.close().catch(() => undefined);
    await this.db?.end().catch(() => undefined);
    await this.temporal.kill();
    await this.redis.kill();
    await this.pg.destroy();
    await this.proxies?.pg.stop();
    await this.proxies?.redis.stop();
    this.removeOomCgroups();
    if (this.opts.runsDiskMb) await run('umount', ['-l', this.runsDir]).catch(() => undefined);
    if (!process.env.REA_CHAOS_KEEP) rmSync(this.dir, { recursive: true, force: true });
  }
}

function mkdirp(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

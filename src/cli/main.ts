#!/usr/bin/env node
/**
 * The `rea` command. Each action is a small function; `rea help` lists them.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import {
  inputProblemsAgainstSpec,
  MAX_CAMPAIGN_INPUT_BYTES,
  parseCampaignInput,
} from '../core/campaign-input';
import { InvalidInputError } from '../core/errors';
import { campaignMessages as m, statusQueryName } from '../core/messages';
import type { CampaignResult } from '../core/types';
import type { CampaignInput } from '../core/campaign-input';

type CampaignWorkflow = (input: CampaignInput) => Promise<CampaignResult>;
import { startGpuAgent } from '../cluster/gpu-agent';
import { ConfigError, loadConfig, redactUrl, type ReaConfig } from '../config';
import { createPool, ensureDatabase } from '../db/pool';
import { migrate } from '../db/migrate';
import { Store } from '../db/store';
import { UnknownCampaignError, writeCampaignReport } from '../report';
import { loadReportData } from '../report/data';
import { buildReport, formatPct, type LlmSection } from '../report/summary';
import { indexKnowledge, readCard as readCardFile, searchKnowledge, upsertCard } from '../engine/knowledge';
import { startStack, type StackLlm } from '../dev/stack';
import { createLogger } from '../logging';
import { readModelSpec } from '../models';
import { connectClient, startCampaign } from '../temporal/client';
import { installTemporalRuntime } from '../temporal/runtime';
import { upsertNightlySchedule } from '../temporal/schedule';
import { startWorker } from '../temporal/worker';
import { reconcileCampaigns } from '../temporal/reconcile';

const USAGE = `usage: rea <command>

  dev                          start the embedded stack: Temporal dev server + Web UI, worker, gpu-agent
  demo                         run a short real campaign on the embedded stack and print its result
  worker                       run a rea worker (workflows + activities + job event bridge)
  gpu-agent [--gpus 0,1 | --slots N]
                               run training jobs from the GPU pool, one per GPU (or CPU slot)
  migrate                      create the database if needed and apply SQL migrations
  campaign start FILE [--id ID] [--wait]
                               validate a campaign input (JSON file, or - for stdin) and start it
  campaign status ID           print a running campaign's status
  campaign result ID           wait for a campaign and print its result
  campaign reconcile [ID]      record campaigns whose workflow was terminated or timed out (the worker
                               also does this every REA_RECONCILE_SEC seconds)
  campaign report ID [--out DIR]
                               write the campaign's report (markdown + HTML with charts) from PostgreSQL
  campaign approve ID          approve the plan a campaign waits on
  campaign reject ID --feedback TEXT [--exclude-knobs a,b]
                               reject the plan; the campaign re-plans with the feedback
  campaign pause|resume ID     stop launching new experiments / go on
  campaign abort ID [--reason TEXT]
                               cancel running jobs, record, and report
  campaign set-budget ID [--experiments N] [--gpu-hours X]
  campaign add-hypothesis ID --delta JSON --rationale TEXT
  schedule nightly --models a,b [--cron EXPR] [--input FILE]
                               create or update the Temporal Schedule for nightly campaigns
  knowledge add FILE           validate a technique card, copy it into knowledge/ and index it
  knowledge index              (re)index every card in knowledge/
  knowledge search WORDS       the cards a campaign would retrieve for these words

Configuration comes from REA_* environment variables (see README.md).`;

class UsageError extends Error {}

async function cmdMigrate(config: ReaConfig): Promise<void> {
  await ensureDatabase(config.REA_DATABASE_URL);
  const pool = createPool(config.REA_DATABASE_URL, 1);
  try {
    const applied = await migrate(pool, path.join(config.root, 'migrations'));
    console.log(
      applied.length
        ? `applied migrations ${applied.join(', ')} to ${redactUrl(config.REA_DATABASE_URL)}`
        : `database ${redactUrl(config.REA_DATABASE_URL)} is up to date`,
    );
  } finally {
    await pool.end();
  }
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
}

async function cmdWorker(config: ReaConfig): Promise<void> {
  const log = createLogger('worker', config.REA_LOG_LEVEL);
  const running = await startWorker(config, log);
  void untilSignal().then(() => running.shutdown());
  await running.done;
}

function agentSlots(args: string[]): string[] {
  const { values } = parseArgs({ args, options: { gpus: { type: 'string' }, slots: { type: 'string' } } });
  if (values.gpus !== undefined && values.slots !== undefined)
    throw new UsageError('give --gpus or --slots, not both');
  if (values.gpus !== undefined) {
    const gpus = values.gpus.split(',').map((g) => g.trim());
    if (!gpus.every((g) => /^\d+$/.test(g)))
      throw new UsageError(`--gpus: expected GPU indices like 0,1,2, got "${values.gpus}"`);
    return gpus;
  }
  const slots = Number(values.slots ?? '1');
  if (!Number.isInteger(slots) || slots < 1 || slots > 256)
    throw new UsageError(`--slots: expected 1..256, got "${values.slots}"`);
  return Array.from({ length: slots }, () => '');
}

async function cmdGpuAgent(config: ReaConfig, args: string[]): Promise<void> {
  const log = createLogger('gpu-agent', config.REA_LOG_LEVEL);
  const agent = await startGpuAgent({
    redisUrl: config.REA_REDIS_URL,
    prefix: config.REA_QUEUE_PREFIX,
    slots: agentSlots(args),
    python: config.REA_PYTHON,
    projectRoot: config.root,
    workDir: config.REA_WORK_DIR,
    log,
    lockSec: config.REA_POOL_LOCK_SEC,
    databaseUrl: config.REA_DATABASE_URL,
  });
  await untilSignal();
  log.info('gpu-agent stopping: finishing running jobs');
  await agent.close();
}

async function cmdDev(config: ReaConfig): Promise<void> {
  const log = createLogger('dev', config.REA_LOG_LEVEL);
  await cmdMigrate(config);
  const stack = await startStack(config, log, { output: 'inherit', agentSlots: 1 });
  console.log(`
rea dev is running.
  Temporal:   ${config.REA_TEMPORAL_ADDRESS} (namespace ${config.REA_TEMPORAL_NAMESPACE}, task queue ${config.REA_TASK_QUEUE})
  Web UI:     ${stack.server.uiUrl}
  State:      ${path.join(config.REA_WORK_DIR, 'temporal.db')} (kept across restarts)
  LLM:        ${describeStackLlm(stack.llm)}
  Metrics:    rea ${config.REA_METRICS_ADDRESS ? `http://${config.REA_METRICS_ADDRESS}/metrics` : 'off (REA_METRICS_ADDRESS)'}, Temporal SDK ${config.REA_TEMPORAL_METRICS_ADDRESS ? `http://${config.REA_TEMPORAL_METRICS_ADDRESS}/metrics` : 'off (REA_TEMPORAL_METRICS_ADDRESS)'}
Start a campaign:  rea campaign start examples/campaign.json
Press Ctrl-C to stop.
`);
  const reason = await Promise.race([untilSignal(), stack.firstExit.then((name) => `exit of ${name}`)]);
  console.log(`stopping (${reason})...`);
  await stack.stop();
  if (reason.startsWith('exit of'))
    throw new Error(`rea dev stopped because the ${reason.slice(8)} process exited`);
}

/** Which LLM writes hypotheses, in one line for a banner. */
function describeStackLlm(llm: StackLlm): string {
  switch (llm.kind) {
    case 'local':
      return `${llm.title}, embedded (llama.cpp server at ${llm.baseUrl}, model ${llm.model}, ${llm.threads} threads)`;
    case 'endpoint':
      return `${llm.model} at ${llm.host} (REA_LLM_BASE_URL)`;
    case 'off':
      return 'off (REA_LLM=off and no REA_LLM_BASE_URL): the planner and the research cards propose alone';
  }
}

/** The LLM's part in a campaign, for the terminal: its calls, and how each hypothesis it wrote fared. */
function printLlmSection(llm: LlmSection | undefined): void {
  if (!llm) {
    console.log('\nthe LLM: no calls, no hypotheses');
    return;
  }
  const statuses = Object.entries(llm.byStatus)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  const latency = llm.meanLatencySec === undefined ? '' : `, ${llm.meanLatencySec.toFixed(1)} s per answer`;
  console.log(
    `\nthe LLM (${llm.models.join(', ') || 'no model'}): ${llm.calls} call${llm.calls === 1 ? '' : 's'} (${statuses}), ` +
      `${llm.promptTokens} prompt + ${llm.completionTokens} completion tokens${latency}, $${llm.costUsd.toFixed(4)}`,
  );
  for (const err of llm.errors) console.log(`  ${err}`);
  console.log(`hypotheses the LLM wrote (${llm.hypotheses.length}):`);
  for (const h of llm.hypotheses) {
    const measured =
      h.fidelity === undefined
        ? ''
        : ` at ${h.fidelity} (${h.runs} run${h.runs === 1 ? '' : 's'}${h.gainPct === undefined ? '' : `, ${formatPct(h.gainPct)}`})`;
    console.log(`  ${h.hypothesisId.padEnd(40)} ${h.outcome}${measured}`);
    console.log(`      ${h.rationale}`);
  }
}

/** Reads a campaign input file (or stdin); one past the size limit is refused before it is parsed. */
function readInput(file: string): unknown {
  const bytes = file === '-' ? readFileSync(0) : readFileSync(file);
  if (bytes.length > MAX_CAMPAIGN_INPUT_BYTES) {
    throw new InvalidInputError(
      `campaign input ${file} is ${bytes.length} bytes; at most ${MAX_CAMPAIGN_INPUT_BYTES} are accepted (a campaign input is a handful of fields: remove what does not belong in it)`,
      ['(root)'],
    );
  }
  const text = bytes.toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError(`campaign input ${file} is not valid JSON: ${(err as Error).message}`, [
      '(root)',
    ]);
  }
}

/** Everything that can be checked before a workflow starts: shape, model, fidelity range. */
async function validateCampaign(config: ReaConfig, raw: unknown): Promise<void> {
  const input = parseCampaignInput(raw);
  const spec = await readModelSpec(config.REA_MODELS_DIR, input.model);
  const problems = inputProblemsAgainstSpec(input, spec);
  if (problems.length)
    throw new InvalidInputError(`campaign input is invalid: ${problems.join('; ')}`, ['fidelity']);
}

function printResult(result: CampaignResult): void {
  const e = result.experiments;
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(5) : 'n/a');
  console.log(
    `campaign ${result.campaignId} on ${result.model}: ${result.status}${result.reason ? ` (${result.reason})` : ''}`,
  );
  console.log(
    `  experiments: ${e.total} run, ${e.succeeded} succeeded, ${e.failed} failed, ${e.retried} retried, ${e.cancelled} cancelled, ${e.skipped} not run`,
  );
  const limit = [result.budget.limit.experiments, result.budget.limit.gpuHours];
  console.log(
    `  budget: ${result.budget.used.experiments}${limit[0] === undefined ? '' : `/${limit[0]}`} experiments, ` +
      `${result.budget.used.gpuHours.toFixed(4)}${limit[1] === undefined ? '' : `/${limit[1]}`} GPU-h`,
  );
  console.log(`  compared at ${result.fidelity} (fidelity), ${result.metric} (${result.direction}):`);
  console.log(`    baseline ${f(result.baseline.value)} over ${result.baseline.replicates} runs`);
  console.log(
    `    best     ${f(result.best.value)} over ${result.best.replicates} runs: ${result.best.hypothesisId} (${result.best.source})`,
  );
  if (result.confirmed !== undefined) {
    // Campaigns since v2: a posterior on paired seeds, and what the answer is worth.
    console.log(
      `  answer's gain over baseline: ${result.gainPct.toFixed(2)}% (95% interval ${result.gainCi.low.toFixed(2)}% .. ${result.gainCi.high.toFixed(2)}%), ` +
        `P(gain > ${result.minGainPct ?? 0}%) = ${(result.probability ?? 0).toFixed(3)}: ` +
        (result.best.hypothesisId === 'baseline'
          ? 'nothing beat the baseline'
          : result.confirmed
            ? 'a confirmed win'
            : 'the best found, NOT confirmed'),
    );
    if (result.spentPct !== undefined)
      console.log(
        `  spent ${result.spentPct.toFixed(1)}% of the budget${result.stopReason ? `: ${result.stopReason}` : ''}`,
      );
    for (const w of result.wins.slice(-5))
      console.log(`  took the lead (${w.phase}): ${w.hypothesisId} ${w.gainPct.toFixed(2)}%`);
  } else {
    console.log(
      `  gain over baseline: ${result.gainPct.toFixed(2)}% (95% CI ${result.gainCi.low.toFixed(2)}% .. ${result.gainCi.high.toFixed(2)}%)` +
        (result.significant ? ', more than noise' : ', not significant'),
    );
    for (const w of result.wins) {
      console.log(
        `  win (${w.phase}): ${w.hypothesisId} ${w.gainPct.toFixed(2)}%${w.synergyPct === undefined ? '' : `, synergy ${w.synergyPct.toFixed(2)}%`}`,
      );
    }
    if (result.unconfirmed) {
      const u = result.unconfirmed;
      console.log(
        `  not confirmed: ${u.hypothesisId} ${u.gainPct.toFixed(2)}% (95% CI ${u.low.toFixed(2)}% .. ${u.high.toFixed(2)}%): the baseline stays`,
      );
    }
  }
  console.log(`  best config: ${JSON.stringify(result.best.config)}`);
  if (result.report) console.log(`  report: ${result.report.html}\n          ${result.report.markdown}`);
}

function parseJsonOption(name: string, text: string | undefined): unknown {
  if (text === undefined) throw new UsageError(`--${name} is required`);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--${name}: not valid JSON (${(err as Error).message})`);
  }
}

function numberOption(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n)) throw new UsageError(`--${name}: expected a number, got "${text}"`);
  return n;
}

/** Updates rejected by the campaign's validator come back as errors that name the field. */
async function update<R>(run: () => Promise<R>): Promise<R> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      throw new InvalidInputError(err.cause?.message ?? err.message, []);
    }
    throw err;
  }
}

async function cmdCampaign(config: ReaConfig, args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      id: { type: 'string' },
      wait: { type: 'boolean', default: false },
      feedback: { type: 'string' },
      'exclude-knobs': { type: 'string' },
      reason: { type: 'string' },
      experiments: { type: 'string' },
      'gpu-hours': { type: 'string' },
      delta: { type: 'string' },
      rationale: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const target = positionals[0];
  if (sub === 'reconcile') return cmdReconcile(config, target);
  if (!target) throw new UsageError(`rea campaign ${sub ?? ''}: missing ${sub === 'start' ? 'FILE' : 'ID'}`);
  // A report needs only PostgreSQL: it works for a finished campaign with no Temporal server up.
  if (sub === 'report') return cmdReport(config, target, values.out);
  // A campaign input is checked before any connection: a bad one never starts a workflow.
  const startInput = sub === 'start' ? readInput(target) : undefined;
  if (startInput !== undefined) await validateCampaign(config, startInput);
  const client = await connectClient(config);
  try {
    const handle = client.workflow.getHandle<CampaignWorkflow>(target);
    switch (sub) {
      case 'start': {
        const started = await startCampaign(client, config, startInput, values.id);
        console.log(`started campaign ${started.workflowId} (run ${started.firstExecutionRunId})`);
        if (values.wait) printResult(await started.result());
        break;
      }
      case 'status':
        console.log(JSON.stringify(await handle.query(statusQueryName), null, 2));
        break;
      case 'result':
        printResult(await handle.result());
        break;
      case 'approve':
        console.log(JSON.stringify(await update(() => handle.executeUpdate(m.approvePlan, { args: [{}] }))));
        break;
      case 'reject': {
        const excludeKnobs = values['exclude-knobs']?.split(',').map((k) => k.trim()) ?? [];
        const payload = { feedback: values.feedback ?? '', excludeKnobs };
        console.log(
          JSON.stringify(await update(() => handle.executeUpdate(m.rejectPlan, { args: [payload] }))),
        );
        break;
      }
      case 'set-budget': {
        const budget = {
          experiments: numberOption('experiments', values.experiments),
          gpuHours: numberOption('gpu-hours', values['gpu-hours']),
        };
        console.log(
          JSON.stringify(await update(() => handle.executeUpdate(m.setBudget, { args: [budget] }))),
        );
        break;
      }
      case 'add-hypothesis': {
        const payload = { delta: parseJsonOption('delta', values.delta), rationale: values.rationale ?? '' };
        console.log(
          JSON.stringify(await update(() => handle.executeUpdate(m.addHypothesis, { args: [payload] }))),
        );
        break;
      }
      case 'pause':
      case 'resume':
        await handle.signal(m[sub]);
        console.log(`sent ${sub} to ${target}`);
        break;
      case 'abort':
        await handle.signal(m.abort, { reason: values.reason ?? 'aborted from the rea CLI' });
        console.log(`sent abort to ${target}`);
        break;
      default:
        throw new UsageError(`rea campaign: unknown subcommand "${sub ?? ''}"\n\n${USAGE}`);
    }
  } finally {
    await client.connection.close();
  }
}

async function cmdReconcile(config: ReaConfig, campaignId: string | undefined): Promise<void> {
  const pool = createPool(config.REA_DATABASE_URL, 1);
  const client = await connectClient(config);
  try {
    const changed = await reconcileCampaigns(client, pool, createLogger('cli', 'error'), {
      minAgeSec: 0,
      ...(campaignId ? { campaignId } : {}),
      reportsDir: path.join(config.REA_WORK_DIR, 'reports'),
      modelsDir: config.REA_MODELS_DIR,
    });
    if (!changed.length)
      console.log('nothing to reconcile: every running campaign row has a running workflow');
    for (const c of changed) {
      console.log(`campaign ${c.id}: ${c.status} (${c.reason})`);
      if (c.experiments.length)
        console.log(`  experiments recorded as cancelled: ${c.experiments.join(', ')}`);
      if (c.report) console.log(`  report: ${c.report}`);
    }
  } finally {
    await client.connection.close();
    await pool.end();
  }
}

async function cmdSchedule(config: ReaConfig, args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub !== 'nightly')
    throw new UsageError(`rea schedule: unknown subcommand "${sub ?? ''}" (expected nightly)`);
  const { values } = parseArgs({
    args: rest,
    options: {
      models: { type: 'string' },
      cron: { type: 'string', default: '0 2 * * *' },
      input: { type: 'string' },
    },
  });
  const models =
    values.models
      ?.split(',')
      .map((name) => name.trim())
      .filter(Boolean) ?? [];
  if (!models.length) throw new UsageError('--models: expected a comma-separated list of model names');
  const template = (values.input ? readInput(values.input) : { budget: { experiments: 40 } }) as Record<
    string,
    unknown
  >;
  if ('model' in template) throw new UsageError(`--input: the template must not name a model (use --models)`);
  for (const model of models) await validateCampaign(config, { ...template, model });
  // Validated just above, with each model filled in.
  const validTemplate = template as Omit<CampaignInput, 'model'>;
  const client = await connectClient(config);
  try {
    const { scheduleId, created } = await upsertNightlySchedule(client, config, {
      models,
      cron: values.cron,
      template: validTemplate,
    });
    console.log(
      `${created ? 'created' : 'updated'} schedule ${scheduleId}: ${values.cron} → campaigns for ${models.join(', ')}`,
    );
  } finally {
    await client.connection.close();
  }
}

async function cmdReport(config: ReaConfig, campaignId: string, out?: string): Promise<void> {
  const pool = createPool(config.REA_DATABASE_URL, 1);
  try {
    const paths = await writeCampaignReport(
      pool,
      campaignId,
      out ?? path.join(config.REA_WORK_DIR, 'reports'),
      config.REA_MODELS_DIR,
    );
    console.log(`wrote ${paths.markdown}\nwrote ${paths.html}`);
  } catch (err) {
    if (err instanceof UnknownCampaignError) throw new UsageError(err.message);
    throw err;
  } finally {
    await pool.end();
  }
}

async function cmdKnowledge(config: ReaConfig, args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  const pool = createPool(config.REA_DATABASE_URL, 1);
  try {
    switch (sub) {
      case 'add': {
        const file = rest[0];
        if (!file) throw new UsageError('rea knowledge add: expected the card file');
        if (!existsSync(file)) throw new UsageError(`rea knowledge add: no file ${file}`);
        const card = readCardFile(file);
        mkdirSync(config.REA_KNOWLEDGE_DIR, { recursive: true });
        const target = path.join(config.REA_KNOWLEDGE_DIR, `${card.id}.md`);
        if (path.resolve(file) !== path.resolve(target)) copyFileSync(file, target);
        const changed = await upsertCard(pool, card);
        console.log(`${changed ? 'indexed' : 'unchanged'} card ${card.id} (${card.category}) → ${target}`);
        break;
      }
      case 'index': {
        const { indexed, unchanged, refused } = await indexKnowledge(pool, config.REA_KNOWLEDGE_DIR);
        for (const r of refused) console.error(`refused ${r.problem}`);
        console.log(`${indexed} cards indexed, ${unchanged} unchanged, ${refused.length} refused`);
        if (refused.length) process.exitCode = 1;
        break;
      }
      case 'search': {
        const cards = await searchKnowledge(pool, rest.join(' '), 10);
        for (const c of cards) console.log(`${c.rank.toFixed(3)}  ${c.id}  ${c.title}`);
        if (!cards.length) console.log('no card matches');
        break;
      }
      default:
        throw new UsageError(
          `rea knowledge: unknown subcommand "${sub ?? ''}" (expected add, index or search)`,
        );
    }
  } finally {
    await pool.end();
  }
}

async function cmdDemo(config: ReaConfig): Promise<void> {
  const log = createLogger('demo', config.REA_LOG_LEVEL);
  await cmdMigrate(config);
  const logsDir = path.join(config.REA_WORK_DIR, 'logs');
  console.log(`starting the embedded stack (logs in ${logsDir})...`);
  const stack = await startStack(config, log, { output: { logsDir }, agentSlots: 2 });
  console.log(`LLM: ${describeStackLlm(stack.llm)}`);
  const client = await connectClient(config);
  const pool = createPool(config.REA_DATABASE_URL, 1);
  try {
    const input = JSON.parse(
      readFileSync(path.join(config.root, 'examples', 'campaign.json'), 'utf8'),
    ) as unknown;
    await validateCampaign(config, input);
    const handle = await startCampaign(client, config, input);
    console.log(
      `campaign ${handle.workflowId} started; watch it at ${stack.server.uiUrl}/namespaces/${config.REA_TEMPORAL_NAMESPACE}/workflows/${handle.workflowId}`,
    );
    const result = await Promise.race([
      handle.result(),
      stack.firstExit.then((name) =>
        Promise.reject(new Error(`the ${name} process exited during the demo; see ${logsDir}`)),
      ),
    ]);
    const described = await handle.describe();
    const rows = await new Store(pool).experiments(handle.workflowId);
    console.log(`\nexperiments recorded in PostgreSQL (${rows.length}):`);
    for (const r of rows) {
      const value =
        r.primary_value === null ? `${r.status}: ${r.failure_class ?? ''}` : r.primary_value.toFixed(5);
      console.log(
        `  ${r.id.padEnd(42)} ${r.phase.padEnd(13)} ${r.role.padEnd(10)} ${r.hypothesis_id.padEnd(28)} ${String(r.fidelity).padStart(5)}  ${value}`,
      );
    }
    printLlmSection(buildReport(await loadReportData(pool, handle.workflowId)).llm);
    console.log(`\nworkflow ${handle.workflowId}: ${described.status.name}`);
    printResult(result);
  } finally {
    await pool.end();
    await client.connection.close();
    await stack.stop();
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  try {
    if (command === undefined || command === 'help' || command === '--help') {
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    }
    const config = loadConfig();
    installTemporalRuntime(config.REA_LOG_LEVEL === 'info' ? 'warn' : config.REA_LOG_LEVEL, {
      // The worker's own process serves the SDK's metrics; `rea dev` passes the variable on to it.
      ...(command === 'worker' ? { metricsAddress: config.REA_TEMPORAL_METRICS_ADDRESS } : {}),
    });
    switch (command) {
      case 'migrate':
        await cmdMigrate(config);
        break;
      case 'worker':
        await cmdWorker(config);
        break;
      case 'gpu-agent':
        await cmdGpuAgent(config, args);
        break;
      case 'dev':
        await cmdDev(config);
        break;
      case 'demo':
        await cmdDemo(config);
        break;
      case 'campaign':
        await cmdCampaign(config, args);
        break;
      case 'schedule':
        await cmdSchedule(config, args);
        break;
      case 'knowledge':
        await cmdKnowledge(config, args);
        break;
      default:
        throw new UsageError(`unknown command "${command}"\n\n${USAGE}`);
    }
    return 0;
  } catch (err) {
    if (err instanceof InvalidInputError || err instanceof ConfigError || err instanceof UsageError) {
      console.error(`rea: ${err.message}`);
      return 2;
    }
    if (err instanceof WorkflowFailedError) {
      console.error(`rea: campaign failed: ${err.cause?.message ?? err.message}`);
      return 1;
    }
    // An id the ops team typed: say which, and where to look, not a stack trace.
    if (err instanceof WorkflowNotFoundError) {
      console.error(
        `rea: no campaign ${err.workflowId} on this Temporal server and namespace: check the id with \`temporal workflow list\`, and REA_TEMPORAL_ADDRESS / REA_TEMPORAL_NAMESPACE`,
      );
      return 1;
    }
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      console.error(
        `rea: a campaign with id ${err.workflowId} already exists (ids are never reused): pick another --id, or see it with \`rea campaign status ${err.workflowId}\``,
      );
      return 2;
    }
    console.error(`rea: ${(err as Error).stack ?? String(err)}`);
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}

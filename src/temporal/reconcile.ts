/**
 * The reconciler: a campaign records its own end in PostgreSQL (completed, aborted, failed) as its
 * last activity. A workflow that Temporal ends from outside — `temporal workflow terminate`, a
 * workflow execution timeout, a failure at the Temporal level — runs no more code, so its row would
 * stay `running` forever, and so would the rows of experiments that ended with it. The reconciler
 * finds such rows, asks Temporal how the workflow ended, and records it: the campaign becomes
 * `terminated`, `timed_out` or `failed` with Temporal's reason, its experiments that were left
 * queued or running and whose workflows are closed become `cancelled`, and its report is written.
 *
 * It changes a row only on positive evidence: the workflow is found on this worker's Temporal
 * namespace, its chain of runs is the row's (the first run id matches: a reused workflow id on
 * another server or namespace is left alone), and it is closed. A row whose workflow is not found
 * is never touched (it may belong to another Temporal namespace sharing the database). Every update
 * is conditional on the row still being `running`, so any number of workers may reconcile at once.
 *
 * `rea worker` runs it every REA_RECONCILE_SEC seconds (0: off); `rea campaign reconcile` runs it
 * once.
 */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import type { Pool } from 'pg';
import type { Logger } from '../logging';
import { writeCampaignReport, writeReport } from '../report';

export type ReconciledStatus = 'terminated' | 'timed_out' | 'failed';

export interface ReconciledCampaign {
  id: string;
  status: ReconciledStatus;
  /** Temporal's reason: the terminate reason and identity, the timeout, or the failure message. */
  reason: string;
  /** Experiments left queued or running that are now recorded as cancelled. */
  experiments: string[];
  /** The report written for the campaign, when it could be. */
  report?: string;
}

export interface ReconcileOptions {
  /** Rows younger than this are skipped. Default 0: only closed workflows are acted on anyway. */
  minAgeSec?: number;
  /** Only this campaign. */
  campaignId?: string;
  /** Where reports go; unset: no report is written. */
  reportsDir?: string;
  /** Where model specs are, for the report's metric name and direction. */
  modelsDir?: string;
}

/** Closed states a campaign cannot have recorded itself, and what its row becomes. */
const ENDED_OUTSIDE: Record<string, ReconciledStatus> = {
  TERMINATED: 'terminated',
  TIMED_OUT: 'timed_out',
  FAILED: 'failed',
};
/** Closed workflow states; an experiment row still open under one of them will never be updated. */
const CLOSED = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED', 'CONTINUED_AS_NEW', 'TIMED_OUT']);

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** Temporal's own account of how the run ended: its last history event. */
async function endReason(client: Client, workflowId: string, runId: string, status: string): Promise<string> {
  try {
    const res = await client.workflowService.getWorkflowExecutionHistoryReverse({
      namespace: client.options.namespace,
      execution: { workflowId, runId },
      maximumPageSize: 1,
    });
    const event: HistoryEvent | undefined = res.history?.events?.[0];
    const terminated = event?.workflowExecutionTerminatedEventAttributes;
    if (terminated) {
      const who = terminated.identity ? ` by ${terminated.identity}` : '';
      return `the workflow was terminated${who}${terminated.reason ? `: ${terminated.reason}` : ' (no reason given)'}`;
    }
    if (event?.workflowExecutionTimedOutEventAttributes) return 'the workflow reached its execution timeout';
    const failed = event?.workflowExecutionFailedEventAttributes;
    if (failed) return `the workflow failed: ${failed.failure?.message ?? 'no message'}`;
  } catch {
    // The history may be gone (retention) or unreadable: the status alone still says enough.
  }
  return `the workflow ended ${status.toLowerCase().replace('_', ' ')} without recording its end`;
}

async function closedStatus(client: Client, workflowId: string): Promise<string | undefined> {
  try {
    const d = await client.workflow.getHandle(workflowId).describe();
    return CLOSED.has(d.status.name) ? d.status.name : undefined;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return 'NOT_FOUND';
    throw err;
  }
}

/**
 * One pass: every `running` campaign row older than `minAgeSec` whose workflow Temporal has closed
 * without the campaign recording its end. Returns what it changed.
 */
export async function reconcileCampaigns(
  client: Client,
  pool: Pool,
  log: Logger,
  opts: ReconcileOptions = {},
): Promise<ReconciledCampaign[]> {
  const rows = await pool.query<{ id: string; first_run_id: string }>(
    `SELECT id, first_run_id FROM campaigns
      WHERE status = 'running' AND started_at < now() - make_interval(secs => $1)
        AND ($2::text IS NULL OR id = $2) ORDER BY started_at`,
    [opts.minAgeSec ?? 0, opts.campaignId ?? null],
  );
  const changed: ReconciledCampaign[] = [];
  for (const row of rows.rows) {
    let described;
    try {
      described = await client.workflow.getHandle(row.id).describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) continue;
      log.warn({ campaignId: row.id, err }, 'reconcile: could not describe the campaign workflow');
      continue;
    }
    const info = described.raw.workflowExecutionInfo;
    // Another chain of runs under the same id (another server or namespace, or a reused id).
    if (info?.firstRunId && info.firstRunId !== row.first_run_id) continue;
    const status = ENDED_OUTSIDE[described.status.name];
    if (!status) continue;
    const reason = await endReason(client, row.id, described.runId, described.status.name);
    const closeTime = described.closeTime ?? new Date();
    const updated = await pool.query(
      `UPDATE campaigns SET status = $3, error = $4, finished_at = COALESCE(finished_at, $5)
        WHERE id = $1 AND first_run_id = $2 AND status = 'running'`,
      [row.id, row.first_run_id, status, reason, closeTime],
    );
    if (!updated.rowCount) continue;
    const experiments = await reconcileExperiments(client, pool, row.id, reason);
    const report = await reportOf(pool, row.id, opts, log);
    log.warn(
      { campaignId: row.id, status, reason, experiments: experiments.length, ...(report ? { report } : {}) },
      'reconcile: the campaign workflow ended without recording its end; recorded it',
    );
    changed.push({ id: row.id, status, reason, experiments, ...(report ? { report } : {}) });
  }
  return changed;
}

/** The campaign's experiment rows left queued or running whose workflows are closed or gone. */
async function reconcileExperiments(
  client: Client,
  pool: Pool,
  campaignId: string,
  campaignReason: string,
): Promise<string[]> {
  const open = await pool.query<{ id: string }>(
    `SELECT id FROM experiments WHERE campaign_id = $1 AND status IN ('queued', 'running') ORDER BY id`,
    [campaignId],
  );
  const done: string[] = [];
  for (const { id } of open.rows) {
    // A still-running experiment workflow is cancelling (the campaign's children are cancelled when
    // it closes) and records its own end; only rows nothing will ever update are closed here.
    const status = await closedStatus(client, id);
    if (!status) continue;
    const res = await pool.query(
      `UPDATE experiments SET status = 'cancelled', failure_class = 'cancelled', error = $2,
         finished_at = COALESCE(finished_at, now()), updated_at = now()
        WHERE id = $1 AND status IN ('queued', 'running')`,
      [
        id,
        `the experiment's workflow ended (${status.toLowerCase()}) without recording a result, after ${campaignReason}`,
      ],
    );
    if (res.rowCount) done.push(id);
  }
  return done;
}

async function reportOf(
  pool: Pool,
  campaignId: string,
  opts: ReconcileOptions,
  log: Logger,
): Promise<string | undefined> {
  if (!opts.reportsDir) return undefined;
  try {
    const paths = opts.modelsDir
      ? await writeCampaignReport(pool, campaignId, opts.reportsDir, opts.modelsDir)
      : await writeReport(pool, campaignId, opts.reportsDir);
    return paths.markdown;
  } catch (err) {
    log.warn({ campaignId, err }, 'reconcile: could not write the report');
    return undefined;
  }
}

/** Runs `reconcileCampaigns` every `intervalSec` until stopped; a failed pass is logged, not fatal. */
export function startReconciler(
  client: Client,
  pool: Pool,
  log: Logger,
  intervalSec: number,
  opts: Omit<ReconcileOptions, 'campaignId'> = {},
): { stop(): Promise<void> } {
  let stopped = false;
  let running: Promise<unknown> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    running = reconcileCampaigns(client, pool, log, opts)
      .catch((err: unknown) => log.warn({ err }, 'reconcile: pass failed; trying again later'))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalSec * 1000);
      });
  };
  // The first pass waits a little, so that a worker starting up serves its workflows first.
  timer = setTimeout(tick, Math.min(intervalSec, 10) * 1000);
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

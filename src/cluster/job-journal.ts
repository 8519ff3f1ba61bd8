/**
 * The gpu-agent's journal of trainer runs in PostgreSQL (`job_events`, migrations/003): when each
 * run started, when its trainer was gone (with its whole outcome), whether the agent gave the job
 * up, and whether the queue accepted its result. Best-effort: a write that fails is tried again for
 * about a minute (a PostgreSQL restart), then logged and dropped, never a job's failure.
 *
 * It is also where a result outlives Redis: a job that Redis forgot (FLUSHALL, an empty restart)
 * after the queue accepted its result is read back from here instead of being trained again.
 *
 *   const journal = new JobJournal({ databaseUrl, agent: 'gpu-node-3:4121', log });
 *   journal.record('camp-1.e4', runId, 'started', { slot: '0' });
 *   await journal.close(); // waits for the writes in flight (one more try each)
 *
 *   await new JobJournalReader(pool).acceptedOutcome('camp-1.e4'); // { status: 'succeeded', ... } or undefined
 */
import { Pool } from 'pg';
import type { ExperimentOutcome } from '../core/types';
import type { Logger } from '../logging';
import { outcomeOfFailedJob, parseOutcome } from './bullmq-pool';

/** Waits between tries of a journal write that failed: about a minute in all. */
const RETRY_DELAYS_MS = [500, 1_000, 2_000, 4_000, 8_000, 15_000, 30_000];

/**
 * started: the trainer is about to start. finished: its process group is gone. lost: the agent no
 * longer holds the job (lock gone, Redis unreachable) and dropped the run's result. completed and
 * failed: the queue accepted this run's end.
 */
export type JobEvent = 'started' | 'finished' | 'lost' | 'completed' | 'failed';

export class JobJournal {
  private readonly pool: Pool;
  private readonly inFlight = new Set<Promise<void>>();
  private closing = false;

  constructor(private readonly opts: { databaseUrl: string; agent: string; log: Logger }) {
    // Short timeouts: a journal that cannot write must not hold anything up.
    this.pool = new Pool({
      connectionString: opts.databaseUrl,
      max: 2,
      connectionTimeoutMillis: 5_000,
      query_timeout: 10_000,
      idleTimeoutMillis: 30_000,
    });
    this.pool.on('error', (err) =>
      opts.log.warn({ err: err.message }, 'job journal: idle connection failed'),
    );
  }

  /** Records one event with the time it happened (now); returns at once. */
  record(experimentId: string, runId: string, event: JobEvent, detail: Record<string, unknown> = {}): void {
    const at = new Date();
    const args = [experimentId, runId, this.opts.agent, event, at, JSON.stringify(detail)];
    const write = async (): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.pool.query(
            `INSERT INTO job_events (experiment_id, run_id, agent, event, at, detail)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id, event) DO NOTHING`,
            args,
          );
          return;
        } catch (err) {
          const delay = RETRY_DELAYS_MS[attempt];
          if (delay === undefined || this.closing) {
            this.opts.log.warn(
              { experimentId, event, attempts: attempt + 1, err: (err as Error).message },
              'job journal: could not record the event in PostgreSQL (job_events); the job goes on',
            );
            return;
          }
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    };
    const done = write();
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }

  async close(): Promise<void> {
    this.closing = true; // writes still failing get one more try, not a minute
    await Promise.allSettled([...this.inFlight]);
    await this.pool.end().catch(() => undefined);
  }
}

/**
 * Reads the journal back: the result the queue accepted for a job, whatever Redis still holds.
 * Only the gpu-agents' own rows count (a run's `finished` outcome, once the same run is `completed`
 * or `failed`), so a job trained elsewhere (Slurm, Kubernetes) has none.
 */
export class JobJournalReader {
  constructor(private readonly pool: Pool) {}

  async acceptedOutcome(experimentId: string): Promise<ExperimentOutcome | undefined> {
    const { rows } = await this.pool.query<{
      event: 'completed' | 'failed';
      accepted: { reason?: string };
      outcome: unknown;
    }>(
      `SELECT a.event, a.detail AS accepted, f.detail AS outcome
         FROM job_events a LEFT JOIN job_events f ON f.run_id = a.run_id AND f.event = 'finished'
        WHERE a.experiment_id = $1 AND a.event IN ('completed', 'failed')
        ORDER BY a.at DESC LIMIT 1`,
      [experimentId],
    );
    const row = rows[0];
    if (!row) return undefined;
    if (row.event === 'failed') return outcomeOfFailedJob(row.accepted.reason);
    // A row written before the journal kept whole outcomes has no metrics: not a result to hand back.
    return parseOutcome(row.outcome);
  }
}

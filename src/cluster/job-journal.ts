/**
 * The gpu-agent's journal of trainer runs in PostgreSQL (`job_events`, migrations/003): when each
 * run started, when its trainer was gone, whether the agent gave the job up, and whether the queue
 * accepted its result. Best-effort: a write that fails is logged and dropped, never a job's failure.
 *
 *   const journal = new JobJournal({ databaseUrl, agent: 'gpu-node-3:4121', log });
 *   journal.record('camp-1.e4', runId, 'started', { slot: '0' });
 *   await journal.close(); // waits for the writes in flight
 */
import { Pool } from 'pg';
import type { Logger } from '../logging';

/**
 * started: the trainer is about to start. finished: its process group is gone. lost: the agent no
 * longer holds the job (lock gone, Redis unreachable) and dropped the run's result. completed and
 * failed: the queue accepted this run's end.
 */
export type JobEvent = 'started' | 'finished' | 'lost' | 'completed' | 'failed';

export class JobJournal {
  private readonly pool: Pool;
  private readonly inFlight = new Set<Promise<void>>();

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
    const write = this.pool
      .query(
        `INSERT INTO job_events (experiment_id, run_id, agent, event, at, detail)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id, event) DO NOTHING`,
        [experimentId, runId, this.opts.agent, event, at, JSON.stringify(detail)],
      )
      .then(
        () => undefined,
        (err: Error) =>
          this.opts.log.warn(
            { experimentId, event, err: err.message },
            'job journal: could not record the event in PostgreSQL (job_events); the job goes on',
          ),
      );
    this.inFlight.add(write);
    void write.finally(() => this.inFlight.delete(write));
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    await this.pool.end().catch(() => undefined);
  }
}

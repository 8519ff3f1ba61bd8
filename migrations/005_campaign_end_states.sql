-- A campaign whose workflow ended without recording its end (terminated, timed out, or failed at the
-- Temporal level) is marked by the worker's reconciler (src/temporal/reconcile.ts): its row gets one
-- of these states instead of staying 'running' forever.
ALTER TABLE campaigns DROP CONSTRAINT campaigns_status_check;
ALTER TABLE campaigns ADD CONSTRAINT campaigns_status_check
  CHECK (status IN ('running', 'completed', 'aborted', 'failed', 'terminated', 'timed_out'));

-- The gpu-agents' journal of trainer runs: one row per event of one run of one experiment's job, so
-- that anyone can check that no experiment ran twice at once and that the pool accepted one result.
-- Written best-effort by the agents (a job never fails because PostgreSQL is down); idempotent on
-- (run_id, event). No foreign key: an agent may run jobs that this database has not recorded yet.

CREATE TABLE job_events (
  experiment_id text NOT NULL,               -- the job id
  run_id        text NOT NULL,               -- one trainer run: a fresh id per attempt on an agent
  agent         text NOT NULL,               -- host:pid of the gpu-agent
  event         text NOT NULL CHECK (event IN ('started', 'finished', 'lost', 'completed', 'failed')),
  at            timestamptz NOT NULL,        -- the agent's clock, taken when it happened
  detail        jsonb NOT NULL DEFAULT '{}',
  PRIMARY KEY (run_id, event)
);
CREATE INDEX job_events_experiment_idx ON job_events (experiment_id, at);

-- Campaigns and their experiments: the durable record of what rea tried and what it measured.
-- Writes are idempotent upserts keyed by ids that Temporal makes stable across retries.

CREATE TABLE campaigns (
  id           text PRIMARY KEY,              -- the campaign workflow id
  first_run_id text NOT NULL,                 -- stable across continue-as-new; tells reused ids apart
  model        text NOT NULL,
  input        jsonb NOT NULL,
  status       text NOT NULL CHECK (status IN ('running', 'completed', 'aborted', 'failed')),
  phase        text NOT NULL DEFAULT 'preflight',
  plan         jsonb,                         -- the approved plan: slate, cost estimate, budget split
  result       jsonb,
  error        text,
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz
);
CREATE INDEX campaigns_model_idx ON campaigns (model, started_at DESC);

CREATE TABLE experiments (
  id              text PRIMARY KEY,           -- the experiment workflow id, also the job id
  campaign_id     text NOT NULL REFERENCES campaigns (id),
  model           text NOT NULL,
  phase           text NOT NULL,
  role            text NOT NULL CHECK (role IN ('baseline', 'candidate')),
  hypothesis_id   text NOT NULL,
  source          text NOT NULL,
  rationale       text NOT NULL,
  delta           jsonb NOT NULL,
  config          jsonb NOT NULL,
  fidelity        integer NOT NULL,
  seed            integer NOT NULL,
  attempt         integer NOT NULL DEFAULT 1,
  cost_gpu_hours  double precision NOT NULL,  -- what the budget was charged
  status          text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  metrics         jsonb,
  primary_value   double precision,
  failure_class   text,
  error           text,
  runbook_action  text,                       -- what the campaign did about a failure
  wall_time_s     double precision,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz,
  UNIQUE (campaign_id, hypothesis_id, fidelity, seed, attempt)
);
CREATE INDEX experiments_campaign_idx ON experiments (campaign_id, created_at);

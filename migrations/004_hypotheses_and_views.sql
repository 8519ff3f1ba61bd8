-- Every hypothesis a campaign considered (proposed, added by a person, or run), and the views an
-- analyst queries: the leaderboard of each campaign, per-knob effects per model, cost per campaign,
-- and the metrics of each experiment as rows.

CREATE TABLE hypotheses (
  campaign_id  text NOT NULL REFERENCES campaigns (id),
  id           text NOT NULL,                 -- derived from the delta: equal configs, equal ids
  source       text NOT NULL,                 -- planner, llm, research, history, human, baseline
  rationale    text NOT NULL,
  delta        jsonb NOT NULL,
  proposed_for text NOT NULL,                 -- slate, refinement, experiment
  proposed_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (campaign_id, id)
);

-- Each successful experiment's metrics, one row per metric.
CREATE VIEW experiment_metrics AS
SELECT e.id AS experiment_id, e.campaign_id, e.model, e.hypothesis_id, e.fidelity, e.seed, m.key AS metric,
       (m.value)::double precision AS value
FROM experiments e, jsonb_each_text(e.metrics) AS m
WHERE e.status = 'succeeded';

-- Per campaign, hypothesis and fidelity: runs, mean and spread of the primary metric, and the
-- relative difference from the same campaign's baseline at the same fidelity (positive: higher).
CREATE VIEW campaign_leaderboard AS
WITH runs AS (
  SELECT campaign_id, model, hypothesis_id, min(source) AS source, fidelity, count(*) AS runs,
         avg(primary_value) AS mean, stddev_samp(primary_value) AS stddev
  FROM experiments WHERE status = 'succeeded' AND primary_value IS NOT NULL
  GROUP BY campaign_id, model, hypothesis_id, fidelity
)
SELECT r.campaign_id, r.model, r.hypothesis_id, r.source, r.fidelity, r.runs, r.mean, r.stddev,
       b.mean AS baseline_mean,
       CASE WHEN b.mean IS NULL OR b.mean = 0 THEN NULL ELSE (r.mean - b.mean) / abs(b.mean) * 100 END
         AS diff_from_baseline_pct
FROM runs r
LEFT JOIN runs b ON b.campaign_id = r.campaign_id AND b.fidelity = r.fidelity AND b.hypothesis_id = 'baseline';

-- Single-knob changes per model: how far each moved the primary metric from its campaign's
-- baseline at the same fidelity, over every campaign that tried it (sign: positive is higher).
CREATE VIEW knob_effects AS
SELECT l.model, k.key AS knob, k.value AS value, count(DISTINCT l.campaign_id) AS campaigns,
       sum(l.runs) AS runs, avg(l.diff_from_baseline_pct) AS mean_diff_pct,
       min(l.diff_from_baseline_pct) AS min_diff_pct, max(l.diff_from_baseline_pct) AS max_diff_pct
FROM campaign_leaderboard l
JOIN LATERAL (SELECT delta FROM experiments e
              WHERE e.campaign_id = l.campaign_id AND e.hypothesis_id = l.hypothesis_id LIMIT 1) d ON true,
     jsonb_each(d.delta) AS k
WHERE l.hypothesis_id <> 'baseline' AND l.diff_from_baseline_pct IS NOT NULL
  AND (SELECT count(*) FROM jsonb_object_keys(d.delta)) = 1
GROUP BY l.model, k.key, k.value;

-- What each campaign spent: experiments by outcome, GPU-hours charged, trainer wall time, LLM use.
CREATE VIEW campaign_costs AS
SELECT c.id AS campaign_id, c.model, c.status, c.started_at, c.finished_at,
       coalesce(e.experiments, 0) AS experiments, coalesce(e.succeeded, 0) AS succeeded,
       coalesce(e.failed, 0) AS failed, coalesce(e.cancelled, 0) AS cancelled,
       coalesce(e.gpu_hours, 0) AS gpu_hours, coalesce(e.wall_time_s, 0) AS trainer_wall_time_s,
       coalesce(l.calls, 0) AS llm_calls, coalesce(l.tokens, 0) AS llm_tokens, coalesce(l.cost_usd, 0) AS llm_cost_usd
FROM campaigns c
LEFT JOIN (SELECT campaign_id, count(*) AS experiments,
                  count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
                  count(*) FILTER (WHERE status = 'failed') AS failed,
                  count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                  sum(cost_gpu_hours) AS gpu_hours, sum(wall_time_s) AS wall_time_s
           FROM experiments GROUP BY campaign_id) e ON e.campaign_id = c.id
LEFT JOIN (SELECT campaign_id, count(*) FILTER (WHERE status <> 'refused') AS calls,
                  sum(prompt_tokens + completion_tokens) AS tokens, sum(cost_usd) AS cost_usd
           FROM llm_calls GROUP BY campaign_id) l ON l.campaign_id = c.id;

-- Which evidence each LLM call's prompt carried (research card ids, history lines, the optimizer's
-- state, engineers' notes), so that a hypothesis's cited sources can be checked against what the
-- model was shown.
ALTER TABLE llm_calls ADD COLUMN evidence jsonb NOT NULL DEFAULT '[]';

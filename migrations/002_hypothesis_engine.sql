-- The hypothesis engine's memory: research cards (full-text indexed), every LLM call with its
-- tokens, latency and cost, and the track-record note each finished campaign leaves for the next.

CREATE TABLE knowledge_cards (
  id          text PRIMARY KEY,               -- the card's id, also its file name in knowledge/
  title       text NOT NULL,
  category    text NOT NULL,
  tags        text[] NOT NULL DEFAULT '{}',
  suggests    jsonb NOT NULL DEFAULT '[]',     -- partial configs that express the technique
  effect      text NOT NULL,
  citation    text NOT NULL,
  body        text NOT NULL,
  checksum    text NOT NULL,                   -- re-indexing an unchanged card writes nothing
  document    tsvector NOT NULL,               -- title (A), tags, category and effect (B), body (C)
  indexed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX knowledge_cards_document_idx ON knowledge_cards USING GIN (document);

CREATE TABLE llm_calls (
  id                 bigserial PRIMARY KEY,
  campaign_id        text NOT NULL,
  purpose            text NOT NULL,          -- slate, merges
  model              text NOT NULL,
  status             text NOT NULL CHECK (status IN ('ok', 'invalid', 'error', 'refused')),
  prompt_tokens      integer NOT NULL DEFAULT 0,
  completion_tokens  integer NOT NULL DEFAULT 0,
  cost_usd           double precision NOT NULL DEFAULT 0,
  latency_ms         integer NOT NULL DEFAULT 0,
  proposed           integer NOT NULL DEFAULT 0,  -- hypotheses the answer held
  accepted           integer NOT NULL DEFAULT 0,  -- of those, valid after repair and new
  error              text,
  at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX llm_calls_campaign_idx ON llm_calls (campaign_id, at);

CREATE TABLE insights (
  campaign_id  text PRIMARY KEY REFERENCES campaigns (id),
  model        text NOT NULL,
  note         text NOT NULL,                  -- the track record, in words, for the next campaign
  effects      jsonb NOT NULL,                 -- per-knob effect estimates measured by this campaign
  at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX insights_model_idx ON insights (model, at DESC);

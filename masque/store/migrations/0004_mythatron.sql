-- MythaTron: rollout stage changes of masks/masques and the log of every LLM generation.
CREATE TABLE mask_stages (
  id            TEXT PRIMARY KEY,
  masque        TEXT NOT NULL,
  version       TEXT NOT NULL,
  from_stage    TEXT NOT NULL,
  to_stage      TEXT NOT NULL,
  actor         TEXT,
  content_hash  TEXT,
  source_path   TEXT,
  changed_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
COMMENT ON TABLE mask_stages IS 'Append-only rollout history; the newest row per (masque, version) is the effective stage, overriding the file''s stage field';
COMMENT ON COLUMN mask_stages.id IS 'Time-sortable id (stg_...); newest-first is an index scan';
COMMENT ON COLUMN mask_stages.masque IS 'Registry key (case-folded name; mask ids like mask.professor)';
COMMENT ON COLUMN mask_stages.version IS 'Exact version whose stage changed';
COMMENT ON COLUMN mask_stages.from_stage IS 'Stage before: draft, beta or live';
COMMENT ON COLUMN mask_stages.to_stage IS 'Stage after: beta, live or retired (soft delete)';
COMMENT ON COLUMN mask_stages.actor IS 'Actor named by MASQUE_ACTOR when the change was made; NULL when unset';
COMMENT ON COLUMN mask_stages.content_hash IS 'SHA-256 of the file promoted, so a later edit of the file is visible';
COMMENT ON COLUMN mask_stages.source_path IS 'File the masque was loaded from';
COMMENT ON COLUMN mask_stages.changed_at IS 'When the stage changed';
CREATE INDEX mask_stages_ref ON mask_stages (masque, version);

CREATE TABLE generations (
  id                 TEXT PRIMARY KEY,
  session_id         TEXT,
  masque             TEXT NOT NULL,
  version            TEXT NOT NULL,
  provider           TEXT NOT NULL,
  model              TEXT NOT NULL,
  system_prompt      TEXT NOT NULL,
  prompt             TEXT NOT NULL,
  response           TEXT,
  prompt_tokens      INTEGER,
  completion_tokens  INTEGER,
  latency_ms         DOUBLE,
  status             TEXT NOT NULL,
  error              TEXT,
  created_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
COMMENT ON TABLE generations IS 'One row per `mythatron generate` / `masque generate` call, successful or not';
COMMENT ON COLUMN generations.id IS 'Time-sortable id (gen_...)';
COMMENT ON COLUMN generations.session_id IS 'Session the generation ran under; NULL when a mask was named directly';
COMMENT ON COLUMN generations.masque IS 'Registry key of the mask/masque whose lens framed the call';
COMMENT ON COLUMN generations.version IS 'Exact version of that mask';
COMMENT ON COLUMN generations.provider IS 'offline (answers from the persona''s examples) or openai (any OpenAI-compatible server)';
COMMENT ON COLUMN generations.model IS 'Model the server reported (or requested); offline-nearest-example for the offline provider';
COMMENT ON COLUMN generations.system_prompt IS 'System prompt sent: the lens plus the context';
COMMENT ON COLUMN generations.prompt IS 'User prompt as given';
COMMENT ON COLUMN generations.response IS 'Full answer text; NULL when the call failed';
COMMENT ON COLUMN generations.prompt_tokens IS 'Prompt tokens reported by the server (offline: whitespace words); NULL when unknown';
COMMENT ON COLUMN generations.completion_tokens IS 'Completion tokens reported by the server (offline: whitespace words); NULL when unknown';
COMMENT ON COLUMN generations.latency_ms IS 'Wall time of the call in milliseconds, first byte sent to last byte received';
COMMENT ON COLUMN generations.status IS 'ok or error';
COMMENT ON COLUMN generations.error IS 'One-line error message when status is error';
COMMENT ON COLUMN generations.created_at IS 'When the call finished';
CREATE INDEX generations_session ON generations (session_id);
CREATE INDEX generations_masque ON generations (masque, version);

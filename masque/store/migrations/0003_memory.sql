-- Memory shards (issue 5): shard registry and sharing settings, opt-outs, the compliance log, the
-- change history of memories and the condensed summaries. Memory text itself lives only in LanceDB
-- (and in ai_memory_summary, which is derived text by design); the log and history never hold it.
CREATE TABLE memory_shards (
  masque      TEXT PRIMARY KEY,
  table_name  TEXT NOT NULL,
  embedder    TEXT,
  dim         INTEGER,
  mode        TEXT NOT NULL DEFAULT 'isolated',
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at  TIMESTAMPTZ,
  updated_by  TEXT
);
COMMENT ON TABLE memory_shards IS 'One row per masque memory shard (LanceDB table mask_memory_{name}) and its sharing mode';
COMMENT ON COLUMN memory_shards.masque IS 'Masque key (case-folded name) owning the shard';
COMMENT ON COLUMN memory_shards.table_name IS 'LanceDB table name under $MASQUE_HOME/memory';
COMMENT ON COLUMN memory_shards.embedder IS 'Embedder id the vectors were made with (hash-v1-256, openai:MODEL); NULL until the first write';
COMMENT ON COLUMN memory_shards.dim IS 'Vector dimension; NULL until the first write';
COMMENT ON COLUMN memory_shards.mode IS 'Sync mode: isolated, scoped_share or global_snapshot';
COMMENT ON COLUMN memory_shards.created_at IS 'When the shard was registered';
COMMENT ON COLUMN memory_shards.updated_at IS 'When mode or embedder last changed';
COMMENT ON COLUMN memory_shards.updated_by IS 'Actor who last changed mode or embedder';

CREATE TABLE memory_shares (
  owner       TEXT NOT NULL,
  reader      TEXT NOT NULL,
  created_by  TEXT,
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (owner, reader)
);
COMMENT ON TABLE memory_shares IS 'Sharing whitelist: reader masques allowed to read the owner shard while it is in scoped_share mode';
COMMENT ON COLUMN memory_shares.owner IS 'Masque key owning the shard';
COMMENT ON COLUMN memory_shares.reader IS 'Masque key allowed to read it';
COMMENT ON COLUMN memory_shares.created_by IS 'Actor who granted the share';
COMMENT ON COLUMN memory_shares.created_at IS 'When the share was granted';

CREATE TABLE memory_optouts (
  actor       TEXT NOT NULL,
  masque      TEXT NOT NULL,
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (actor, masque)
);
COMMENT ON TABLE memory_optouts IS 'Per-actor opt-outs: nothing is stored for the actor in that shard and reads return nothing';
COMMENT ON COLUMN memory_optouts.actor IS 'Actor who opted out';
COMMENT ON COLUMN memory_optouts.masque IS 'Masque key of the shard opted out of';
COMMENT ON COLUMN memory_optouts.created_at IS 'When the actor opted out';

CREATE TABLE memory_log (
  id             TEXT PRIMARY KEY,
  ts             TIMESTAMPTZ NOT NULL,
  action         TEXT NOT NULL,
  shard          TEXT NOT NULL,
  reader_masque  TEXT,
  actor          TEXT,
  session_id     TEXT,
  access         TEXT NOT NULL,
  rows           INTEGER NOT NULL DEFAULT 0,
  memory_ids     JSON,
  detail         JSON
);
COMMENT ON TABLE memory_log IS 'Compliance log: every memory read and write; never the memory text or the query text';
COMMENT ON COLUMN memory_log.id IS 'Time-sortable id (mlg_...)';
COMMENT ON COLUMN memory_log.ts IS 'When the read or write happened';
COMMENT ON COLUMN memory_log.action IS 'add, import, search, list, get, history, export, forget, prune, snapshot, summary, mode, share, unshare, opt_out, opt_in, reembed, index';
COMMENT ON COLUMN memory_log.shard IS 'Masque key of the shard touched';
COMMENT ON COLUMN memory_log.reader_masque IS 'Masque worn by the caller (from its session); NULL outside a session';
COMMENT ON COLUMN memory_log.actor IS 'Actor who acted';
COMMENT ON COLUMN memory_log.session_id IS 'Session the caller acted in; NULL outside a session';
COMMENT ON COLUMN memory_log.access IS 'Why it was allowed: own, shared, admin, operator; denied or opted_out when refused or emptied';
COMMENT ON COLUMN memory_log.rows IS 'Number of memories returned, written or removed';
COMMENT ON COLUMN memory_log.memory_ids IS 'Ids of the memories returned, written or removed (capped at 1000)';
COMMENT ON COLUMN memory_log.detail IS 'Other non-sensitive details (k, filters, query length); never text';
CREATE INDEX memory_log_shard ON memory_log (shard);
CREATE INDEX memory_log_session ON memory_log (session_id);

CREATE TABLE memory_history (
  id            TEXT PRIMARY KEY,
  memory_id     TEXT NOT NULL,
  masque        TEXT NOT NULL,
  event         TEXT NOT NULL,
  content_hash  TEXT,
  session_id    TEXT,
  actor         TEXT,
  ts            TIMESTAMPTZ NOT NULL,
  detail        JSON
);
COMMENT ON TABLE memory_history IS 'Change history of each memory (mem0-style); hashes only, so a forgotten memory leaves no text behind';
COMMENT ON COLUMN memory_history.id IS 'Time-sortable id (mhi_...)';
COMMENT ON COLUMN memory_history.memory_id IS 'Memory concerned (mem_...)';
COMMENT ON COLUMN memory_history.masque IS 'Masque key of the shard';
COMMENT ON COLUMN memory_history.event IS 'added, imported, forgotten, expired';
COMMENT ON COLUMN memory_history.content_hash IS 'SHA-256 of the memory text at the time of the event';
COMMENT ON COLUMN memory_history.session_id IS 'Session the change was made in; NULL outside a session';
COMMENT ON COLUMN memory_history.actor IS 'Actor who made the change';
COMMENT ON COLUMN memory_history.ts IS 'When the change happened';
COMMENT ON COLUMN memory_history.detail IS 'Event details: ttl, reason, old and new embedder';
CREATE INDEX memory_history_memory ON memory_history (memory_id);
CREATE INDEX memory_history_session ON memory_history (session_id);

CREATE TABLE ai_memory_summary (
  id           TEXT PRIMARY KEY,
  masque       TEXT NOT NULL,
  summary      TEXT NOT NULL,
  method       TEXT NOT NULL,
  model        TEXT,
  source_rows  INTEGER NOT NULL,
  first_at     TIMESTAMPTZ,
  last_at      TIMESTAMPTZ,
  created_at   TIMESTAMPTZ NOT NULL,
  created_by   TEXT
);
COMMENT ON TABLE ai_memory_summary IS 'Condensed shard summaries written by memory snapshot (global_snapshot mode); newest row per masque is current';
COMMENT ON COLUMN ai_memory_summary.id IS 'Time-sortable id (msm_...)';
COMMENT ON COLUMN ai_memory_summary.masque IS 'Masque key of the shard summarised';
COMMENT ON COLUMN ai_memory_summary.summary IS 'The summary text';
COMMENT ON COLUMN ai_memory_summary.method IS 'extractive (built-in) or llm';
COMMENT ON COLUMN ai_memory_summary.model IS 'LLM model used; NULL for extractive';
COMMENT ON COLUMN ai_memory_summary.source_rows IS 'Live memories the summary was built from';
COMMENT ON COLUMN ai_memory_summary.first_at IS 'Oldest memory covered';
COMMENT ON COLUMN ai_memory_summary.last_at IS 'Newest memory covered';
COMMENT ON COLUMN ai_memory_summary.created_at IS 'When the summary was made';
COMMENT ON COLUMN ai_memory_summary.created_by IS 'Actor who ran the snapshot';

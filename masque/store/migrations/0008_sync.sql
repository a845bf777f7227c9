-- Sync (seed 001 §2): remotes this home pushes to and pulls from, what each confirmed, and on the server
-- side which pushed batches and records were applied (so a repeated push creates nothing twice).
CREATE TABLE remotes (
  name        TEXT PRIMARY KEY,
  url         TEXT NOT NULL,
  key_file    TEXT NOT NULL,
  added_by    TEXT NOT NULL,
  added_at    TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE remotes IS 'Servers this home syncs with (`masque remote add`); the key itself is never stored';
COMMENT ON COLUMN remotes.name IS 'Short name used with --remote';
COMMENT ON COLUMN remotes.url IS 'Base URL of the `masque serve` server';
COMMENT ON COLUMN remotes.key_file IS 'Absolute path of the file holding an actor key of that server (read at each push/pull)';
COMMENT ON COLUMN remotes.added_by IS 'Local actor who added it';
COMMENT ON COLUMN remotes.added_at IS 'When it was added';

CREATE TABLE sync_confirmed (
  remote       TEXT NOT NULL,
  kind         TEXT NOT NULL,
  record_id    TEXT NOT NULL,
  batch_id     TEXT NOT NULL,
  confirmed_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (remote, kind, record_id)
);
COMMENT ON TABLE sync_confirmed IS 'Local records a remote confirmed; the outbox is every local record not in here';
COMMENT ON COLUMN sync_confirmed.remote IS 'Remote name';
COMMENT ON COLUMN sync_confirmed.kind IS 'observation, feedback, session or score';
COMMENT ON COLUMN sync_confirmed.record_id IS 'Local id of the record';
COMMENT ON COLUMN sync_confirmed.batch_id IS 'Content-derived id of the batch the server confirmed it in';
COMMENT ON COLUMN sync_confirmed.confirmed_at IS 'When the confirmation arrived';

CREATE TABLE sync_state (
  remote          TEXT PRIMARY KEY,
  pull_watermark  TEXT,
  last_push_at    TIMESTAMPTZ,
  last_pull_at    TIMESTAMPTZ
);
COMMENT ON TABLE sync_state IS 'Per remote: the downstream watermark and when a push or pull last completed';
COMMENT ON COLUMN sync_state.remote IS 'Remote name';
COMMENT ON COLUMN sync_state.pull_watermark IS 'Watermark the server returned with the last applied pull (opaque)';
COMMENT ON COLUMN sync_state.last_push_at IS 'When a push last ended with every batch confirmed';
COMMENT ON COLUMN sync_state.last_pull_at IS 'When a pull was last applied';

CREATE TABLE sync_remote_profiles (
  remote      TEXT NOT NULL,
  masque      TEXT NOT NULL,
  version     INTEGER NOT NULL,
  body        JSON NOT NULL,
  stale       BOOLEAN NOT NULL,
  built_at    TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (remote, masque)
);
COMMENT ON TABLE sync_remote_profiles IS 'Persona profiles a remote knows (pulled cache; local profiles stay derived from local observations)';
COMMENT ON COLUMN sync_remote_profiles.remote IS 'Remote name';
COMMENT ON COLUMN sync_remote_profiles.masque IS 'Masque key';
COMMENT ON COLUMN sync_remote_profiles.version IS 'The profile version on the remote';
COMMENT ON COLUMN sync_remote_profiles.body IS 'The profile (traits, counts, summary) as the remote built it';
COMMENT ON COLUMN sync_remote_profiles.stale IS 'Whether the remote marked it stale';
COMMENT ON COLUMN sync_remote_profiles.built_at IS 'When the remote built it';

CREATE TABLE sync_remote_definitions (
  remote        TEXT NOT NULL,
  masque        TEXT NOT NULL,
  version       TEXT NOT NULL,
  content_hash  TEXT NOT NULL,
  pinned_at     TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (remote, masque, version)
);
COMMENT ON TABLE sync_remote_definitions IS 'Masque definitions (name@version -> content hash) a remote trusts; informational, never pins anything here';
COMMENT ON COLUMN sync_remote_definitions.remote IS 'Remote name';
COMMENT ON COLUMN sync_remote_definitions.masque IS 'Masque name';
COMMENT ON COLUMN sync_remote_definitions.version IS 'Masque version';
COMMENT ON COLUMN sync_remote_definitions.content_hash IS 'SHA-256 of the definition the remote pinned';
COMMENT ON COLUMN sync_remote_definitions.pinned_at IS 'When the remote pinned it';

CREATE TABLE sync_batches (
  actor        TEXT NOT NULL,
  id           TEXT NOT NULL,
  received_at  TIMESTAMPTZ NOT NULL,
  records      INTEGER NOT NULL,
  result       JSON NOT NULL,
  PRIMARY KEY (actor, id)
);
COMMENT ON TABLE sync_batches IS 'Server side: every applied pushed batch, so a repeated one (a lost reply) is answered, not re-applied';
COMMENT ON COLUMN sync_batches.actor IS 'Proven actor who pushed it';
COMMENT ON COLUMN sync_batches.id IS 'Content-derived batch id (bat_ + sha256 of its records)';
COMMENT ON COLUMN sync_batches.received_at IS 'When it was applied';
COMMENT ON COLUMN sync_batches.records IS 'How many records it held';
COMMENT ON COLUMN sync_batches.result IS 'The answer sent (counts, record mapping), sent again for a repeat';

CREATE TABLE sync_received (
  actor        TEXT NOT NULL,
  kind         TEXT NOT NULL,
  origin_id    TEXT NOT NULL,
  local_id     TEXT,
  batch_id     TEXT NOT NULL,
  origin       JSON NOT NULL,
  received_at  TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (actor, kind, origin_id)
);
COMMENT ON TABLE sync_received IS 'Server side: each pushed record once per pushing actor, so a record re-sent in another batch creates nothing';
COMMENT ON COLUMN sync_received.actor IS 'Proven actor who pushed it (the record is attributed to this actor)';
COMMENT ON COLUMN sync_received.kind IS 'observation, feedback, session or score';
COMMENT ON COLUMN sync_received.origin_id IS 'The record''s id in the pushing home';
COMMENT ON COLUMN sync_received.local_id IS 'Its id here (NULL when it was skipped, e.g. a session id already taken)';
COMMENT ON COLUMN sync_received.batch_id IS 'Batch that brought it';
COMMENT ON COLUMN sync_received.origin IS 'What the client said about its origin (machine, local actor, original time): kept, never trusted';
COMMENT ON COLUMN sync_received.received_at IS 'When it arrived';

-- Core tables: actors, sessions, credentials, events, scores. Shipped migrations are never edited.
CREATE TABLE actors (
  name        TEXT PRIMARY KEY,
  ring        TEXT NOT NULL,
  key_hash    TEXT,
  is_founder  BOOLEAN NOT NULL DEFAULT false,
  created_by  TEXT,
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
COMMENT ON TABLE actors IS 'Who may don masques, and the trust ring they currently hold';
COMMENT ON COLUMN actors.name IS 'Unique actor name';
COMMENT ON COLUMN actors.ring IS 'Current ring: admin, player, guest or outsider';
COMMENT ON COLUMN actors.key_hash IS 'SHA-256 of the actor key (the key itself is shown once and never stored)';
COMMENT ON COLUMN actors.is_founder IS 'True for the actor created by masque init (founders start at the centre)';
COMMENT ON COLUMN actors.created_by IS 'Actor who added this actor';
COMMENT ON COLUMN actors.created_at IS 'When the actor was added';

CREATE TABLE disapprovals (
  id          TEXT PRIMARY KEY,
  actor       TEXT NOT NULL,
  by_actor    TEXT NOT NULL,
  reason      TEXT NOT NULL,
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  lifted_at   TIMESTAMPTZ,
  lifted_by   TEXT
);
COMMENT ON TABLE disapprovals IS 'Continual approval: an open disapproval from a higher ring suspends qualification';
COMMENT ON COLUMN disapprovals.id IS 'Time-sortable id';
COMMENT ON COLUMN disapprovals.actor IS 'The disapproved actor';
COMMENT ON COLUMN disapprovals.by_actor IS 'The higher-ring actor who disapproved';
COMMENT ON COLUMN disapprovals.reason IS 'Why, in words';
COMMENT ON COLUMN disapprovals.created_at IS 'When the disapproval was recorded';
COMMENT ON COLUMN disapprovals.lifted_at IS 'When it was lifted by an approval; NULL while open';
COMMENT ON COLUMN disapprovals.lifted_by IS 'Who lifted it';

CREATE TABLE sessions (
  id            TEXT PRIMARY KEY,
  masque        TEXT NOT NULL,
  version       TEXT NOT NULL,
  content_hash  TEXT,
  source_path   TEXT,
  masque_ring   TEXT NOT NULL,
  actor         TEXT NOT NULL,
  actor_ring    TEXT NOT NULL,
  originator    TEXT NOT NULL,
  parent_id     TEXT,
  scope         TEXT NOT NULL DEFAULT 'global',
  intent        TEXT NOT NULL,
  role          TEXT,
  status        TEXT NOT NULL DEFAULT 'active',
  started_at    TIMESTAMPTZ NOT NULL,
  expires_at    TIMESTAMPTZ,
  ended_at      TIMESTAMPTZ,
  end_reason    TEXT,
  exit_code     INTEGER,
  holder_pid    INTEGER,
  holder_host   TEXT,
  metadata      JSON
);
COMMENT ON TABLE sessions IS 'One row per donning of a masque; written only by masque.sessions';
COMMENT ON COLUMN sessions.id IS 'Time-sortable session id (ses_...)';
COMMENT ON COLUMN sessions.masque IS 'Registry key (case-folded name) of the masque worn';
COMMENT ON COLUMN sessions.version IS 'Exact version worn';
COMMENT ON COLUMN sessions.content_hash IS 'SHA-256 of the masque file used';
COMMENT ON COLUMN sessions.source_path IS 'File the masque was loaded from';
COMMENT ON COLUMN sessions.masque_ring IS 'Ring the masque requires';
COMMENT ON COLUMN sessions.actor IS 'Actor wearing the masque';
COMMENT ON COLUMN sessions.actor_ring IS 'Ring of the actor at assumption time';
COMMENT ON COLUMN sessions.originator IS 'Actor who started the chain (like STS SourceIdentity); unchanged along the chain';
COMMENT ON COLUMN sessions.parent_id IS 'Session this one was assumed from (chaining, local scope, sub-agents)';
COMMENT ON COLUMN sessions.scope IS 'global (agent lifetime) or local (per-prompt, nested in a global session)';
COMMENT ON COLUMN sessions.intent IS 'Stated intent, as given';
COMMENT ON COLUMN sessions.role IS 'access.vault_role credentials were minted for; NULL when none';
COMMENT ON COLUMN sessions.status IS 'active, revoking, ended, revoked or abandoned';
COMMENT ON COLUMN sessions.started_at IS 'When the masque was donned';
COMMENT ON COLUMN sessions.expires_at IS 'When credentials expire at the latest; NULL for ttl session without cap';
COMMENT ON COLUMN sessions.ended_at IS 'When the masque was doffed';
COMMENT ON COLUMN sessions.end_reason IS 'released, revoked, expired, abandoned, parent_ended, ...';
COMMENT ON COLUMN sessions.exit_code IS 'Exit code of the command run by masque exec';
COMMENT ON COLUMN sessions.holder_pid IS 'PID of the process holding the session (exec child or assuming shell)';
COMMENT ON COLUMN sessions.holder_host IS 'Host name of the holder, so stale detection only judges local PIDs';
COMMENT ON COLUMN sessions.metadata IS 'Free JSON: knowledge resolution, memory diff, ...';
CREATE INDEX sessions_masque ON sessions (masque, version);
CREATE INDEX sessions_status ON sessions (status);

CREATE TABLE credentials (
  accessor        TEXT PRIMARY KEY,
  session_id      TEXT NOT NULL,
  token_hash      TEXT NOT NULL UNIQUE,
  role            TEXT NOT NULL,
  actor           TEXT NOT NULL,
  issued_at       TIMESTAMPTZ NOT NULL,
  expires_at      TIMESTAMPTZ,
  max_expires_at  TIMESTAMPTZ,
  revoked_at      TIMESTAMPTZ,
  revoke_reason   TEXT
);
COMMENT ON TABLE credentials IS 'Minted credentials; only a keyed hash of each token is stored';
COMMENT ON COLUMN credentials.accessor IS 'Non-secret id that can look up and revoke the credential (like a Vault accessor)';
COMMENT ON COLUMN credentials.session_id IS 'Session the credential is bound to';
COMMENT ON COLUMN credentials.token_hash IS 'HMAC-SHA256 of the token under the store secret';
COMMENT ON COLUMN credentials.role IS 'Role (access.vault_role) the credential is for';
COMMENT ON COLUMN credentials.actor IS 'Actor the credential was minted for';
COMMENT ON COLUMN credentials.issued_at IS 'Mint time';
COMMENT ON COLUMN credentials.expires_at IS 'Current expiry; NULL means at session end';
COMMENT ON COLUMN credentials.max_expires_at IS 'Latest expiry renewals may reach';
COMMENT ON COLUMN credentials.revoked_at IS 'When revoked (release, revoke, demotion); NULL while live';
COMMENT ON COLUMN credentials.revoke_reason IS 'Why it was revoked';
CREATE INDEX credentials_session ON credentials (session_id);

CREATE TABLE events (
  id          TEXT PRIMARY KEY,
  ts          TIMESTAMPTZ NOT NULL,
  type        TEXT NOT NULL,
  session_id  TEXT,
  masque      TEXT,
  version     TEXT,
  actor       TEXT,
  originator  TEXT,
  payload     JSON
);
COMMENT ON TABLE events IS 'Append-only, immutable log; derived tables can be rebuilt from it';
COMMENT ON COLUMN events.id IS 'Time-sortable event id (evt_...)';
COMMENT ON COLUMN events.ts IS 'When it happened';
COMMENT ON COLUMN events.type IS 'mask_session_started, mask_session_ended, intent_denied, ring_refused, credential_minted, ...';
COMMENT ON COLUMN events.session_id IS 'Session concerned; NULL for refusals before a session exists';
COMMENT ON COLUMN events.masque IS 'Masque key';
COMMENT ON COLUMN events.version IS 'Masque version';
COMMENT ON COLUMN events.actor IS 'Actor who acted';
COMMENT ON COLUMN events.originator IS 'Originator of the chain';
COMMENT ON COLUMN events.payload IS 'Event details as JSON; never secrets';
CREATE INDEX events_type ON events (type);
CREATE INDEX events_session ON events (session_id);

CREATE TABLE masque_skills (
  masque   TEXT NOT NULL,
  version  TEXT NOT NULL,
  skill    TEXT NOT NULL,
  level    TEXT NOT NULL,
  PRIMARY KEY (masque, version, skill)
);
COMMENT ON TABLE masque_skills IS 'Skills each worn masque version claims; written at assume and import, for skill-level reflection';
COMMENT ON COLUMN masque_skills.masque IS 'Masque key';
COMMENT ON COLUMN masque_skills.version IS 'Masque version';
COMMENT ON COLUMN masque_skills.skill IS 'skill:// URI';
COMMENT ON COLUMN masque_skills.level IS 'Claimed level';

CREATE TABLE scores (
  id          TEXT PRIMARY KEY,
  session_id  TEXT NOT NULL,
  symbol      TEXT NOT NULL,
  notes       TEXT,
  scored_by   TEXT,
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
COMMENT ON TABLE scores IS 'Session scores; re-scoring appends, the newest row per session is current';
COMMENT ON COLUMN scores.id IS 'Time-sortable id';
COMMENT ON COLUMN scores.session_id IS 'Session scored';
COMMENT ON COLUMN scores.symbol IS 'Contribution symbol: + - / * e';
COMMENT ON COLUMN scores.notes IS 'Free-text notes';
COMMENT ON COLUMN scores.scored_by IS 'Actor who scored';
COMMENT ON COLUMN scores.created_at IS 'When scored';
CREATE INDEX scores_session ON scores (session_id);

CREATE TABLE settings (
  key    TEXT PRIMARY KEY,
  value  TEXT NOT NULL
);
COMMENT ON TABLE settings IS 'Store-wide settings, e.g. the HMAC secret for token hashes';
COMMENT ON COLUMN settings.key IS 'Setting name';
COMMENT ON COLUMN settings.value IS 'Setting value';

-- Teams (seed 003: masques as positions in a formation) and the collaboration bus (seed 000 §5).
CREATE TABLE teams (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  intent      TEXT NOT NULL,
  actor       TEXT NOT NULL,
  arbiter     TEXT,
  status      TEXT NOT NULL DEFAULT 'active',
  created_at  TIMESTAMPTZ NOT NULL,
  ended_at    TIMESTAMPTZ,
  score       TEXT,
  notes       TEXT
);
COMMENT ON TABLE teams IS 'One row per spawned team; its members are sessions (team_members)';
COMMENT ON COLUMN teams.id IS 'Time-sortable team id (team_...)';
COMMENT ON COLUMN teams.name IS 'Name given with --name (or derived); unique among active teams';
COMMENT ON COLUMN teams.intent IS 'The one team intent, checked against every member';
COMMENT ON COLUMN teams.actor IS 'Actor who spawned the team (wears every member session)';
COMMENT ON COLUMN teams.arbiter IS 'Member (or masque) that resolves bus conflicts; NULL: a human resolves them';
COMMENT ON COLUMN teams.status IS 'active or released';
COMMENT ON COLUMN teams.created_at IS 'When the team was spawned';
COMMENT ON COLUMN teams.ended_at IS 'When the team was released';
COMMENT ON COLUMN teams.score IS 'The one team outcome recorded at release (+ - / * e)';
COMMENT ON COLUMN teams.notes IS 'Notes on the outcome';

CREATE TABLE team_members (
  team_id     TEXT NOT NULL,
  member      TEXT NOT NULL,
  session_id  TEXT NOT NULL,
  masque      TEXT NOT NULL,
  version     TEXT NOT NULL,
  role        TEXT NOT NULL,
  PRIMARY KEY (team_id, member)
);
COMMENT ON TABLE team_members IS 'The positions of a team: one session each, none inheriting another''s masque';
COMMENT ON COLUMN team_members.team_id IS 'The team';
COMMENT ON COLUMN team_members.member IS 'Member name, unique in the team (engineer:backend -> backend; else the masque key)';
COMMENT ON COLUMN team_members.session_id IS 'The member''s own session (own credential)';
COMMENT ON COLUMN team_members.masque IS 'Masque key worn';
COMMENT ON COLUMN team_members.version IS 'Version worn';
COMMENT ON COLUMN team_members.role IS 'Formation role (orchestrator, reviewer, engineer; tank, healer, dps; ...)';
CREATE INDEX team_members_session ON team_members (session_id);

CREATE TABLE mask_events (
  id              TEXT PRIMARY KEY,
  team_id         TEXT NOT NULL,
  kind            TEXT NOT NULL,
  topic           TEXT NOT NULL,
  author_session  TEXT,
  author_member   TEXT,
  actor           TEXT NOT NULL,
  reply_to        TEXT,
  payload         JSON,
  ts              TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE mask_events IS 'The collaboration bus: append-only; conflicts are surfaced as events and resolved by events';
COMMENT ON COLUMN mask_events.id IS 'Time-sortable bus event id (bus_...); readers page with it';
COMMENT ON COLUMN mask_events.team_id IS 'Team the event belongs to';
COMMENT ON COLUMN mask_events.kind IS 'proposal, critique, revision, approval, output, context_delta, conflict or resolution';
COMMENT ON COLUMN mask_events.topic IS 'member.kind, what subscriptions match (e.g. lyricist.output)';
COMMENT ON COLUMN mask_events.author_session IS 'Member session that posted it (proven by its token); NULL for a human';
COMMENT ON COLUMN mask_events.author_member IS 'Member name of the author; NULL for a human or Masque itself';
COMMENT ON COLUMN mask_events.actor IS 'Actor who posted it';
COMMENT ON COLUMN mask_events.reply_to IS 'Event this one answers (a critique of a proposal, ...)';
COMMENT ON COLUMN mask_events.payload IS 'Event body as JSON';
COMMENT ON COLUMN mask_events.ts IS 'When it was posted';
CREATE INDEX mask_events_team ON mask_events (team_id);

CREATE TABLE bus_subscriptions (
  team_id     TEXT NOT NULL,
  member      TEXT NOT NULL,
  pattern     TEXT NOT NULL,
  created_at  TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (team_id, member, pattern)
);
COMMENT ON TABLE bus_subscriptions IS 'Which topics a member listens to (from its masque''s collaboration.subscribes, or bus subscribe)';
COMMENT ON COLUMN bus_subscriptions.team_id IS 'The team';
COMMENT ON COLUMN bus_subscriptions.member IS 'The listening member';
COMMENT ON COLUMN bus_subscriptions.pattern IS 'Topic glob, member.kind';
COMMENT ON COLUMN bus_subscriptions.created_at IS 'When the subscription was made';

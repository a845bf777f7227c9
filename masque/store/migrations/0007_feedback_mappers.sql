-- Observations, mappers, suggestions, feedback and derived profiles (seed 001, PersonaKit §3-§6).
CREATE TABLE observations (
  id             TEXT PRIMARY KEY,
  masque         TEXT NOT NULL,
  seq            BIGINT NOT NULL,
  kind           TEXT NOT NULL,
  actor_subject  TEXT,
  data           JSON NOT NULL,
  recorded_by    TEXT NOT NULL,
  session_id     TEXT,
  ts             TIMESTAMPTZ NOT NULL,
  prev_hash      TEXT NOT NULL,
  hash           TEXT NOT NULL,
  UNIQUE (masque, seq)
);
COMMENT ON TABLE observations IS 'Immutable facts about a masque (or an actor wearing it): insert-only, hash-chained per masque';
COMMENT ON COLUMN observations.id IS 'Time-sortable observation id (obs_...)';
COMMENT ON COLUMN observations.masque IS 'Masque key the fact is about';
COMMENT ON COLUMN observations.seq IS 'Position in the masque''s chain, 1-based without gaps';
COMMENT ON COLUMN observations.kind IS 'What kind of fact (focus, preference, feedback, ...)';
COMMENT ON COLUMN observations.actor_subject IS 'Actor the fact is about, when it is about one actor wearing the masque';
COMMENT ON COLUMN observations.data IS 'The fact as a JSON object';
COMMENT ON COLUMN observations.recorded_by IS 'Proven actor who recorded it';
COMMENT ON COLUMN observations.session_id IS 'Session whose token proved the recorder, if any';
COMMENT ON COLUMN observations.ts IS 'When it was recorded';
COMMENT ON COLUMN observations.prev_hash IS 'hash of the previous observation of this masque (64 zeros for the first)';
COMMENT ON COLUMN observations.hash IS 'sha256 over prev_hash and this row''s content; `masque observations verify` recomputes it';

CREATE TABLE mappers (
  id           TEXT NOT NULL,
  version      INTEGER NOT NULL,
  doc          JSON NOT NULL,
  declared     TEXT NOT NULL,
  reason       TEXT NOT NULL,
  actor        TEXT NOT NULL,
  created_at   TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (id, version)
);
COMMENT ON TABLE mappers IS 'Every version of every mapper configuration; the highest version is current';
COMMENT ON COLUMN mappers.id IS 'metadata.id of the mapper';
COMMENT ON COLUMN mappers.version IS 'Store version, 1, 2, ... without gaps; an update names the version it read (optimistic lock)';
COMMENT ON COLUMN mappers.doc IS 'The whole mapper document (with the weights as of this version)';
COMMENT ON COLUMN mappers.declared IS 'metadata.version as written in the file (semantic version)';
COMMENT ON COLUMN mappers.reason IS 'put (a file uploaded) or feedback (weights learned: which rules, from which feedback)';
COMMENT ON COLUMN mappers.actor IS 'Actor whose put or feedback made this version';
COMMENT ON COLUMN mappers.created_at IS 'When this version was written';

CREATE TABLE suggestions (
  id              TEXT PRIMARY KEY,
  mapper_id       TEXT NOT NULL,
  mapper_version  INTEGER NOT NULL,
  rule_id         TEXT NOT NULL,
  type            TEXT NOT NULL,
  masque          TEXT NOT NULL,
  actor           TEXT NOT NULL,
  session_id      TEXT,
  text            TEXT NOT NULL,
  weight          DOUBLE NOT NULL,
  ts              TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE suggestions IS 'Every suggestion `masque map` produced, so feedback can name it';
COMMENT ON COLUMN suggestions.id IS 'Time-sortable suggestion id (sug_...)';
COMMENT ON COLUMN suggestions.mapper_id IS 'Mapper that produced it';
COMMENT ON COLUMN suggestions.mapper_version IS 'Store version of that mapper';
COMMENT ON COLUMN suggestions.rule_id IS 'Rule whose conditions matched';
COMMENT ON COLUMN suggestions.type IS 'Suggestion type (a key of trait_mappings when feedback should inform traits)';
COMMENT ON COLUMN suggestions.masque IS 'Masque key it was made for';
COMMENT ON COLUMN suggestions.actor IS 'Proven actor who asked for it (only this actor may give feedback on it)';
COMMENT ON COLUMN suggestions.session_id IS 'Session whose token proved the actor, if any';
COMMENT ON COLUMN suggestions.text IS 'The rendered suggestion';
COMMENT ON COLUMN suggestions.weight IS 'Rule weight at the time';
COMMENT ON COLUMN suggestions.ts IS 'When it was made';
CREATE INDEX suggestions_session ON suggestions (session_id);

CREATE TABLE feedback (
  id              TEXT PRIMARY KEY,
  suggestion_id   TEXT NOT NULL,
  target          TEXT NOT NULL,
  mapper_id       TEXT NOT NULL,
  rule_id         TEXT NOT NULL,
  score           DOUBLE NOT NULL,
  notes           TEXT,
  actor           TEXT NOT NULL,
  ts              TIMESTAMPTZ NOT NULL,
  applied_in      INTEGER
);
COMMENT ON TABLE feedback IS 'Feedback on suggestions, mapped back to the rule that produced each';
COMMENT ON COLUMN feedback.id IS 'Time-sortable feedback id (fbk_...)';
COMMENT ON COLUMN feedback.suggestion_id IS 'Suggestion judged';
COMMENT ON COLUMN feedback.target IS 'What the caller named: the suggestion id, or a session id (feedback on each of its suggestions)';
COMMENT ON COLUMN feedback.mapper_id IS 'Mapper of the suggestion';
COMMENT ON COLUMN feedback.rule_id IS 'Rule of the suggestion';
COMMENT ON COLUMN feedback.score IS 'From -1 (-) to 1 (+)';
COMMENT ON COLUMN feedback.notes IS 'Free text';
COMMENT ON COLUMN feedback.actor IS 'Proven actor who gave it';
COMMENT ON COLUMN feedback.ts IS 'When it was given';
COMMENT ON COLUMN feedback.applied_in IS 'Mapper version whose weights include it; NULL while fewer than min_feedback_count are pending';
CREATE INDEX feedback_rule ON feedback (mapper_id, rule_id);

CREATE TABLE profiles (
  masque        TEXT PRIMARY KEY,
  version       INTEGER NOT NULL,
  body          JSON NOT NULL,
  built_upto    BIGINT NOT NULL,
  source        TEXT NOT NULL,
  stale         BOOLEAN NOT NULL,
  built_by      TEXT NOT NULL,
  built_at      TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE profiles IS 'Derived persona profiles: a materialized view over observations, marked stale by new ones';
COMMENT ON COLUMN profiles.masque IS 'Masque key';
COMMENT ON COLUMN profiles.version IS 'Bumped on every rebuild; a rebuild names the version it read (optimistic lock)';
COMMENT ON COLUMN profiles.body IS 'The profile (traits, counts, summary)';
COMMENT ON COLUMN profiles.built_upto IS 'Observation seq the profile includes';
COMMENT ON COLUMN profiles.source IS 'local (built from observations) or llm (summary by the configured model)';
COMMENT ON COLUMN profiles.stale IS 'True once an observation newer than built_upto exists';
COMMENT ON COLUMN profiles.built_by IS 'Actor who rebuilt it';
COMMENT ON COLUMN profiles.built_at IS 'When it was rebuilt';

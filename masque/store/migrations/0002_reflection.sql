-- Reflection: a derived, rebuildable table of score facts so `masque stats` never joins a million
-- sessions to their scores at query time. Written by masque.scoring (each score) and masque.transfer
-- (each import); masque.reflection rebuilds it from `scores` + `sessions` whenever its row count
-- differs from `scores` (a writer that bypassed it), so it can never silently drift.
CREATE TABLE score_facts (
  score_id    TEXT NOT NULL,
  session_id  TEXT NOT NULL,
  symbol      TEXT NOT NULL,
  created_at  TIMESTAMPTZ NOT NULL,
  is_current  BOOLEAN NOT NULL,
  masque      TEXT,
  version     TEXT,
  masque_ring TEXT,
  actor       TEXT,
  actor_ring  TEXT,
  started_at  TIMESTAMPTZ
);
COMMENT ON TABLE score_facts IS 'Derived from scores + sessions (rebuildable): one row per score with the scored session''s fixed attributes';
COMMENT ON COLUMN score_facts.score_id IS 'scores.id of the score';
COMMENT ON COLUMN score_facts.session_id IS 'Session scored';
COMMENT ON COLUMN score_facts.symbol IS 'Contribution symbol: + - / * e';
COMMENT ON COLUMN score_facts.created_at IS 'When scored (scores.created_at)';
COMMENT ON COLUMN score_facts.is_current IS 'True for the newest score of its session (re-scoring appends and clears the older row''s flag)';
COMMENT ON COLUMN score_facts.masque IS 'sessions.masque of the scored session; NULL when the session is not in the store';
COMMENT ON COLUMN score_facts.version IS 'sessions.version of the scored session';
COMMENT ON COLUMN score_facts.masque_ring IS 'sessions.masque_ring of the scored session';
COMMENT ON COLUMN score_facts.actor IS 'sessions.actor of the scored session (who wore the masque, not who scored)';
COMMENT ON COLUMN score_facts.actor_ring IS 'sessions.actor_ring of the scored session';
COMMENT ON COLUMN score_facts.started_at IS 'sessions.started_at of the scored session (drives --since/--until and weekly trends)';

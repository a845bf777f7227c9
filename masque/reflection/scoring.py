"""Scoring sessions with the contribution symbols, and writing scores back into masque files.

Re-scoring appends a row (the newest row per session is current); nothing is overwritten, so the
history of judgements survives. Symbols aggregate through numeric values that default to
`- = -1, / = 0, + = 1, * = 2, e = 3` and can be changed under `[scoring]` in masque.toml.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from masque import config
from masque.durations import utcnow
from masque.enums import DEFAULT_SCORE_VALUES, Level, Score
from masque.errors import NotFound, UsageError
from masque.ids import new_id
from masque.store.events import record_event

if TYPE_CHECKING:
    import duckdb

    from masque.trust.rings import Selection

MAX_NOTES_CHARS = 4000

# Symbol names usable in masque.toml and on the command line (a bare `*` is a shell glob).
SYMBOL_NAMES: Mapping[str, Score] = {
    "negative": Score.NEGATIVE,
    "dividing": Score.DIVIDING,
    "additive": Score.ADDITIVE,
    "multiplicative": Score.MULTIPLICATIVE,
    "exponential": Score.EXPONENTIAL,
}

# What a claimed level should deliver on the numeric scale, by default. A competent masque is a
# steady additive contributor (+ = 1); an expert multiplies others (* = 2); a master approaches `e`.
DEFAULT_EXPECTED: Mapping[str, float] = {
    Level.NOVICE.value: 0.5,
    Level.COMPETENT.value: 1.0,
    Level.PROFICIENT.value: 1.5,
    Level.EXPERT.value: 2.0,
    Level.MASTER.value: 2.5,
}
DEFAULT_TOLERANCE = 0.5
DEFAULT_MIN_SCORED = 3


@dataclass(frozen=True)
class ScoringConfig:
    """Numeric values of the symbols and the rules for judging skill claims."""

    values: Mapping[str, float]  # symbol -> value
    expected: Mapping[str, float]  # claimed level -> expected mean score
    tolerance: float  # how far the observed mean may stray from the expectation before flagging
    min_scored: int  # scored sessions needed before a claim is judged

    def value(self, symbol: str) -> float:
        return self.values[symbol]

    def nearest_symbol(self, mean: float) -> Score:
        """The symbol whose value is closest to `mean`; ties go to the lower value (conservative)."""
        best = min(self.values.items(), key=lambda item: (abs(item[1] - mean), item[1]))
        return Score(best[0])


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(
            f"config {where}: expected a number, got {value!r}",
            hint="fix masque.toml ([scoring] values are numbers, e.g. additive = 1)",
        )
    return float(value)


def scoring_config() -> ScoringConfig:
    """The scoring rules in force: defaults overridden by `[scoring]` in masque.toml."""
    raw = dict(config.section("scoring"))
    values = dict(DEFAULT_SCORE_VALUES)
    expected = dict(DEFAULT_EXPECTED)
    tolerance = DEFAULT_TOLERANCE
    min_scored = DEFAULT_MIN_SCORED
    for key, value in raw.items():
        if key == "expected":
            if not isinstance(value, dict):
                raise UsageError("config [scoring.expected] must be a table of level = number")
            for level, number in value.items():
                if level not in DEFAULT_EXPECTED:
                    raise UsageError(
                        f"config [scoring.expected]: unknown level {level!r}",
                        hint=f"levels are {', '.join(DEFAULT_EXPECTED)}",
                    )
                expected[level] = _number(f"[scoring.expected] {level}", number)
        elif key == "claim_tolerance":
            tolerance = _number("[scoring] claim_tolerance", value)
        elif key == "min_scored":
            min_scored = int(_number("[scoring] min_scored", value))
        elif key in SYMBOL_NAMES or key in DEFAULT_SCORE_VALUES:
            symbol = SYMBOL_NAMES[key].value if key in SYMBOL_NAMES else key
            values[symbol] = _number(f"[scoring] {key}", value)
        else:
            raise UsageError(
                f"config [scoring]: unknown key {key!r}",
                hint="known keys: negative, dividing, additive, multiplicative, exponential "
                "(or the symbols), claim_tolerance, min_scored, [scoring.expected]",
            )
    return ScoringConfig(values, expected, tolerance, min_scored)


def parse_symbol(text: str) -> Score:
    """A contribution symbol from `+ - / * e` or its name (`additive`, `negative`, ...)."""
    cleaned = text.strip()
    for score in Score:
        if cleaned == score.value:
            return score
    named = SYMBOL_NAMES.get(cleaned.casefold())
    if named is not None:
        return named
    raise UsageError(
        f"not a score symbol: {text!r}",
        hint="use + (additive), - (negative), / (dividing), * (multiplicative) or e (exponential); "
        "quote * in the shell or write `multiplicative`",
    )


@dataclass(frozen=True)
class ScoreRow:
    """One recorded score of a session."""

    id: str
    session_id: str
    symbol: Score
    notes: str | None
    scored_by: str | None
    created_at: datetime
    value: float


def add_score(
    conn: duckdb.DuckDBPyConnection,
    session_id: str,
    symbol: str | Score,
    notes: str | None = None,
    actor: str | None = None,
) -> ScoreRow:
    """Append a score for a session (plus a `session_scored` event) on the caller's connection.

    The canonical scoring write: `masque release --score` and `masque score` both come here. Call it
    inside `masque.store.transaction()` so the score and its event land together.
    """
    score = symbol if isinstance(symbol, Score) else parse_symbol(symbol)
    if notes is not None and len(notes) > MAX_NOTES_CHARS:
        raise UsageError(f"score notes are {len(notes)} characters; the limit is {MAX_NOTES_CHARS}")
    row = conn.execute("SELECT masque, version, originator FROM sessions WHERE id = ?", [session_id]).fetchone()
    if row is None:
        raise NotFound(
            f"no session {session_id!r} to score",
            hint="list sessions with `masque sessions`; ids look like ses_01J...",
        )
    masque, version, originator = row
    now = utcnow()
    score_id = new_id("scr_")
    conn.execute(
        "INSERT INTO scores (id, session_id, symbol, notes, scored_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        [score_id, session_id, score.value, notes, actor, now],
    )
    _add_score_fact(conn, score_id, session_id, score.value, now)
    payload = {"score_id": score_id, "symbol": score.value, "notes": notes}
    record_event(
        conn,
        "session_scored",
        session_id=session_id,
        masque=masque,
        version=version,
        actor=actor,
        originator=originator,
        payload=payload,
        ts=now,
    )
    return ScoreRow(score_id, session_id, score, notes, actor, now, scoring_config().value(score.value))


def score_session(
    session_id: str, symbol: str | Score, notes: str | None = None, *, selection: Selection | None = None
) -> ScoreRow:
    """Score a session in its own transaction, as the acting actor (founder, key or session)."""
    from masque import store
    from masque.trust import rings

    score = symbol if isinstance(symbol, Score) else parse_symbol(symbol)
    with store.transaction() as conn:
        who = rings.resolve_acting(conn, selection or rings.selection_from_env()).actor
        found = conn.execute("SELECT actor_ring FROM sessions WHERE id = ?", [session_id]).fetchone()
        # Scoring needs sight of the session: a more trusted actor's session is reported as unknown.
        if found and not rings.sees(who, found[0]):
            raise NotFound(
                f"no session {session_id!r} to score", hint="`masque sessions` lists the sessions you can see"
            )
        return add_score(conn, session_id, score, notes, who.name)


def session_scores(conn: duckdb.DuckDBPyConnection, session_id: str) -> list[ScoreRow]:
    """Every score of one session, oldest first (the last one is current)."""
    values = scoring_config().values
    found = conn.execute(
        "SELECT id, session_id, symbol, notes, scored_by, created_at FROM scores"
        " WHERE session_id = ? ORDER BY created_at, id",
        [session_id],
    ).fetchall()
    return [ScoreRow(r[0], r[1], Score(r[2]), r[3], r[4], r[5], values.get(r[2], 0.0)) for r in found]


# score_facts (migration 0002) is a derived copy of scores joined to their sessions, so reflection
# reads scores without a join. It is kept in step here and by imports, and rebuilt from scratch
# whenever its row count differs from `scores` (some writer went around it).


def _add_score_fact(
    conn: duckdb.DuckDBPyConnection, score_id: str, session_id: str, symbol: str, created_at: datetime
) -> None:
    if not score_facts_in_step(conn, extra_scores=-1):
        return  # already out of step: the next reader rebuilds the whole table
    conn.execute("UPDATE score_facts SET is_current = false WHERE session_id = ? AND is_current", [session_id])
    conn.execute(
        "INSERT INTO score_facts SELECT ?, id, ?, ?, true, masque, version, masque_ring, actor,"
        " actor_ring, started_at FROM sessions WHERE id = ?",
        [score_id, symbol, created_at, session_id],
    )


def score_facts_in_step(conn: duckdb.DuckDBPyConnection, extra_scores: int = 0) -> bool:
    """True when score_facts holds one row per score (the cheap check readers make)."""
    row = conn.execute("SELECT (SELECT count(*) FROM scores), (SELECT count(*) FROM score_facts)").fetchone()
    return row is not None and int(row[0]) + extra_scores == int(row[1])


def rebuild_score_facts(conn: duckdb.DuckDBPyConnection) -> int:
    """Recompute score_facts from scores + sessions; returns its row count."""
    conn.execute("DELETE FROM score_facts")
    conn.execute(
        "INSERT INTO score_facts SELECT sc.id, sc.session_id, sc.symbol, sc.created_at,"
        " row_number() OVER (PARTITION BY sc.session_id ORDER BY sc.created_at DESC, sc.id DESC) = 1,"
        " s.masque, s.version, s.masque_ring, s.actor, s.actor_ring, s.started_at"
        " FROM scores sc LEFT JOIN sessions s ON s.id = sc.session_id"
    )
    row = conn.execute("SELECT count(*) FROM score_facts").fetchone()
    return int(row[0]) if row else 0

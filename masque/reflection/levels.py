"""The five reflection levels (session, masque, skill, ring, system) as SQL over the store.

Every level answers the same core questions over its slice of sessions (counts by status, duration
p50/p95, score distribution and mean, weekly trend, refusals, top intents) and adds what is specific
to it. A session's score is its newest score row; symbols become numbers through `masque.reflection.scoring`.
Each report is two grouping-set scans (sessions; score_facts, the derived per-score table that
spares a million-row join) and a few tiny queries. Weeks start on Monday, in UTC.

Scope and filters live in `masque.reflection.scope`, the level-specific tables in
`masque.reflection.tables`; this module assembles the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from masque.enums import Ring, Score
from masque.reflection.scope import STATUSES, Filters, Level, Scope, Selection, fetch, round3
from masque.reflection.scoring import ScoringConfig, scoring_config
from masque.reflection.tables import details, empty_row

if TYPE_CHECKING:
    import duckdb

    from masque.trust.rings import Selection as ActorSelection

__all__ = ["STATUSES", "Filters", "Level", "Report", "Selection", "build_report", "report", "visible_to"]

REFUSALS = ("intent_denied", "ring_refused")


@dataclass(frozen=True)
class Report:
    """One level's reflection. `to_json()` is the stable documented shape (docs/reflection.md)."""

    level: Level
    subject: str | None
    filters: Filters
    sessions: Mapping[str, int]
    duration_seconds: Mapping[str, float | int | None]
    score_counts: Mapping[str, int]
    scored_sessions: int
    mean_score: float | None
    trend: tuple[Mapping[str, Any], ...]
    refusals: Mapping[str, int]
    top_intents: tuple[Mapping[str, Any], ...]
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level.value,
            "subject": self.subject,
            "filters": self.filters.as_json(),
            "sessions": dict(self.sessions),
            "duration_seconds": dict(self.duration_seconds),
            "score_counts": dict(self.score_counts),
            "scored_sessions": self.scored_sessions,
            "mean_score": self.mean_score,
            "trend": [dict(t) for t in self.trend],
            "refusals": dict(self.refusals),
            "top_intents": [dict(t) for t in self.top_intents],
            **self.details,
        }


def _value_case(rules: ScoringConfig, column: str = "c.symbol") -> str:
    # Values come from masque.toml as floats and symbols are a closed set, so inlining them is safe.
    whens = " ".join(f"WHEN '{s.value}' THEN {float(rules.values[s.value])!r}" for s in Score)
    return f"CASE {column} {whens} END"


# Week buckets as integers: microseconds since the first Monday of the Unix epoch (1970-01-05) divided
# by a week. Integer arithmetic on epoch_us is ~10x cheaper than date_trunc on TIMESTAMPTZ, which
# goes through ICU time zone rules for every row.
_MONDAY_US = 4 * 86_400_000_000
_WEEK_US = 7 * 86_400_000_000
_EPOCH_MONDAY = datetime(1970, 1, 5, tzinfo=timezone.utc)


_QUANTILE_SETS = {(), ("in_ring",), ("version",), ("masque", "version")}


def _mask(keys: list[str], group: tuple[str, ...]) -> int:
    """The value DuckDB's grouping(keys...) returns for rows of `group` (1 bits: rolled up)."""
    mask = 0
    for key in keys:
        mask = (mask << 1) | (0 if key in group else 1)
    return mask


def _grouped(
    conn: duckdb.DuckDBPyConnection,
    q: Scope,
    rules: ScoringConfig,
    sets: list[tuple[str, ...]],
    flags: str = "",
) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Every aggregate of the slice, for each grouping set, in two scans and no join.

    Session facts (status, duration, weeks) come from `sessions`; score facts from `score_facts`,
    which already carries each score's session attributes and flags the current (newest) score, so
    a million sessions never have to be joined to their scores at query time.
    Returns rows keyed by grouping set, each with sessions, a count per status, scored, mean_score,
    a count per symbol, duration p50/p95 (seconds), measured, first/last started.
    """
    keys = sorted({k for group in sets for k in group})
    masks = {_mask(keys, group): group for group in sets}
    key_cols = f"grouping({', '.join(keys)}) AS _g, {', '.join(keys)}," if keys else "0 AS _g,"
    spec = ", ".join("(" + ", ".join(group) + ")" for group in sets)
    columns = (
        "s.masque, s.version, s.masque_ring, s.actor, s.status, s.started_at, s.ended_at,"
        f" (epoch_us(s.started_at) - {_MONDAY_US}) // {_WEEK_US} AS week {flags}"
    )
    statuses = ", ".join(f"count(*) FILTER (WHERE status = '{s}') AS \"{s}\"" for s in STATUSES)
    slice_sql = f"SELECT {columns} FROM sessions s WHERE {q.base_where()}"
    session_rows = fetch(
        conn,
        f"SELECT {key_cols} count(*) AS sessions, {statuses}, count(ended_at) AS measured,"
        " min(started_at) AS first_started, max(started_at) AS last_started"
        f" FROM ({slice_sql}) GROUP BY GROUPING SETS ({spec})",
        q.params,
    )
    # Quantiles are holistic (they keep every value), so they are computed only for the whole slice
    # and the small per-version tables of the masque and skill levels.
    shown = [group for group in sets if group in _QUANTILE_SETS]
    shown_keys = sorted({k for group in shown for k in group})
    shown_masks = {_mask(shown_keys, group): group for group in shown}
    shown_cols = f"grouping({', '.join(shown_keys)}) AS _g, {', '.join(shown_keys)}," if shown_keys else "0 AS _g,"
    quantile_rows = fetch(
        conn,
        f"SELECT {shown_cols} quantile_cont((epoch_us(ended_at) - epoch_us(started_at)) / 1e6, [0.5, 0.95])"
        f" AS quantiles FROM ({slice_sql}) GROUP BY GROUPING SETS ("
        + ", ".join("(" + ", ".join(group) + ")" for group in shown)
        + ")",
        q.params,
    )
    quantiles = {}
    for row in quantile_rows:
        group = shown_masks[int(row["_g"])]
        quantiles[(group, tuple(row[k] for k in group))] = row["quantiles"]
    symbols = ", ".join(f"count(*) FILTER (WHERE symbol = '{s.value}') AS \"{s.value}\"" for s in Score)
    score_columns = (
        "s.masque, s.version, s.masque_ring, s.actor, s.symbol,"
        f" (epoch_us(s.started_at) - {_MONDAY_US}) // {_WEEK_US} AS week {flags}"
    )
    score_rows = fetch(
        conn,
        f"SELECT {key_cols} count(*) AS scored, avg({_value_case(rules, 'symbol')}) AS mean_score, {symbols}"
        f" FROM (SELECT {score_columns} FROM (SELECT *, session_id AS id FROM score_facts) s"
        f"       WHERE s.is_current AND s.masque IS NOT NULL AND {q.base_where()})"
        f" GROUP BY GROUPING SETS ({spec})",
        q.params,
    )
    scored = {}
    for row in score_rows:
        group = masks[int(row["_g"])]
        scored[(group, tuple(row[k] for k in group))] = row
    out: dict[tuple[str, ...], list[dict[str, Any]]] = {group: [] for group in sets}
    for row in session_rows:
        group = masks[int(row.pop("_g"))]
        score = scored.get((group, tuple(row[k] for k in group)), {})
        for key in keys:
            if key not in group:
                row.pop(key)
        pair = quantiles.get((group, tuple(row[k] for k in group))) or [None, None]
        row["duration_p50"], row["duration_p95"] = round3(pair[0]), round3(pair[1])
        row["scored"] = int(score.get("scored", 0))
        row["mean_score"] = round3(score.get("mean_score"))
        row["score_counts"] = {s.value: int(score.get(s.value, 0)) for s in Score}
        out[group].append(row)
    return out


def report(
    selection: Selection, filters: Filters | None = None, *, top: int = 5, acting: ActorSelection | None = None
) -> Report:
    """Reflect on one level, as the acting actor sees it (MASQUE_ACTOR/MASQUE_TOKEN, else the founder).

    Opens a read-only connection for the duration of the queries.
    """
    from masque import store
    from masque.reflection.scoring import rebuild_score_facts, score_facts_in_step

    if store.shared_url() is not None:  # a PostgreSQL store: DuckDB's SQL over an in-memory copy
        with store.analytics() as conn:
            seen = visible_to(conn, filters or Filters(), acting)
            if not score_facts_in_step(conn):
                rebuild_score_facts(conn)  # in the copy only: the shared store stays as it is
            return build_report(conn, selection, seen, top=top)
    with store.connect(read_only=True) as conn:
        seen = visible_to(conn, filters or Filters(), acting)
        if score_facts_in_step(conn):
            return build_report(conn, selection, seen, top=top)
    # Some writer added scores without score_facts (or this store predates it): rebuild once.
    with store.transaction() as conn:
        if not score_facts_in_step(conn):
            rebuild_score_facts(conn)
        return build_report(conn, selection, seen, top=top)


def visible_to(conn: duckdb.DuckDBPyConnection, filters: Filters, acting: ActorSelection | None) -> Filters:
    """`filters` narrowed to the sessions of actors the acting actor may see: its own ring and below."""
    from masque.trust import rings

    who = rings.resolve_acting(conn, acting or rings.selection_from_env()).actor
    if who.ring is Ring.ADMIN:
        return filters
    return replace(filters, rings=tuple(r.value for r in rings.visible_rings(who)))


_SETS: dict[Level, list[tuple[str, ...]]] = {
    Level.SESSION: [(), ("week",)],
    Level.MASQUE: [(), ("week",), ("version",)],
    Level.SKILL: [(), ("week",), ("masque", "version")],
    Level.RING: [("in_ring",), ("in_ring", "week"), ("in_ring", "masque"), ("by_ring", "actor")],
    Level.SYSTEM: [(), ("week",), ("masque",), ("masque_ring",)],
}


def build_report(conn: duckdb.DuckDBPyConnection, selection: Selection, filters: Filters, *, top: int = 5) -> Report:
    """The report for `selection` on an open connection (the store's or any with the same tables)."""
    rules = scoring_config()
    from masque.store import for_analytics

    for_analytics(conn)
    q = Scope(conn, selection, filters)
    level = selection.level
    flags = ", s.masque_ring = $ring AS in_ring, s.actor_ring = $ring AS by_ring" if level is Level.RING else ""
    if level is Level.SESSION:
        # One row by primary key: no scan is needed, and a scan of a million rows is most of the cost.
        groups, intents, population = _one_session(conn, q, rules)
    else:
        groups = _grouped(conn, q, rules, _SETS[level], flags)
        intents = fetch(
            conn,
            "SELECT lower(trim(s.intent)) AS intent, count(*) AS sessions FROM sessions s"
            f" WHERE {q.where()} GROUP BY 1 ORDER BY sessions DESC, intent LIMIT {int(top)}",
            q.params,
        )
        population = fetch(
            conn,
            "SELECT count(DISTINCT masque) AS masques, count(DISTINCT actor) AS actors"
            f" FROM sessions s WHERE {q.where()}",
            q.params,
        )[0]
    if level is Level.RING:
        # The ring's slice also holds sessions its actors wore elsewhere; keep each set's own side.
        groups = {g: [r for r in rows if r.pop(g[0])] for g, rows in groups.items()}
        groups[()] = groups.pop(("in_ring",))
        groups[("week",)] = groups.pop(("in_ring", "week"))
    summary = groups[()][0] if groups[()] else empty_row()
    refusals = {t: 0 for t in REFUSALS}
    for row in fetch(
        conn,
        # Refusals are recorded before any session exists (session_id IS NULL); saying so lets
        # `stats --from` skip the sessions' own nested events.
        f"SELECT type, count(*) AS n FROM events e WHERE type IN {REFUSALS!r} AND e.session_id IS NULL"
        f" AND {q.event_filter()} GROUP BY type",
        q.params,
    ):
        refusals[row["type"]] = int(row["n"])
    extra = details(conn, q, rules, top, groups)
    extra["population"] = {"masques": int(population["masques"]), "actors": int(population["actors"])}
    return Report(
        level=level,
        subject=q.subject,
        filters=q.filters,
        sessions={"total": int(summary["sessions"]), **{s: int(summary[s]) for s in STATUSES}},
        duration_seconds={
            "p50": summary["duration_p50"],
            "p95": summary["duration_p95"],
            "measured": int(summary["measured"]),
        },
        score_counts=summary["score_counts"],
        scored_sessions=int(summary["scored"]),
        mean_score=summary["mean_score"],
        trend=tuple(_fill_weeks(groups[("week",)])),
        refusals=refusals,
        top_intents=tuple({"intent": r["intent"], "sessions": int(r["sessions"])} for r in intents),
        details=extra,
    )


def _one_session(
    conn: duckdb.DuckDBPyConnection, q: Scope, rules: ScoringConfig
) -> tuple[dict[tuple[str, ...], list[dict[str, Any]]], list[dict[str, Any]], dict[str, Any]]:
    """The grouped rows, intents and population of a one-session slice, from point lookups."""
    sid = q.params["session"]
    found = conn.execute(
        "SELECT status, started_at, intent, epoch_us(started_at), epoch_us(ended_at) FROM sessions WHERE id = ?",
        [sid],
    ).fetchone()
    assert found is not None  # Scope checked the session exists
    status, started, intent, start_us, end_us = found
    current = conn.execute(
        "SELECT symbol FROM scores WHERE session_id = ? ORDER BY created_at DESC, id DESC LIMIT 1", [sid]
    ).fetchone()
    symbol = current[0] if current else None
    duration = round3((end_us - start_us) / 1e6) if end_us is not None else None
    row: dict[str, Any] = {
        "sessions": 1,
        **{s: int(status == s) for s in STATUSES},
        "measured": int(duration is not None),
        "first_started": started,
        "last_started": started,
        "duration_p50": duration,
        "duration_p95": duration,
        "scored": int(symbol is not None),
        "mean_score": round3(rules.values.get(symbol)) if symbol is not None else None,
        "score_counts": {s.value: int(symbol == s.value) for s in Score},
    }
    week = {**row, "week": (start_us - _MONDAY_US) // _WEEK_US}
    intents = [{"intent": str(intent).strip().lower(), "sessions": 1}]
    return {(): [row], ("week",): [week]}, intents, {"masques": 1, "actors": 1}


def _fill_weeks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Weekly buckets from the first to the last week with sessions, empty weeks included."""
    if not rows:
        return []
    by_week = {int(r["week"]): r for r in rows}
    out = []
    for week in range(min(by_week), max(by_week) + 1):
        r = by_week.get(week, {})
        out.append(
            {
                "week": (_EPOCH_MONDAY + timedelta(weeks=week)).date().isoformat(),
                "sessions": int(r.get("sessions", 0)),
                "scored": int(r.get("scored", 0)),
                "mean_score": r.get("mean_score"),
            }
        )
    return out

"""The five reflection levels (session, masque, skill, ring, system) as SQL over the store.

Every level answers the same core questions over its slice of sessions (counts by status, duration
p50/p95, score distribution and mean, weekly trend, refusals, top intents) and adds what is specific
to it. A session's score is its newest score row; symbols become numbers through `masque.scoring`.
The slice is materialised once per report in a temporary table (one scan and one score join),
and every section is a small aggregate over it. Weeks start on Monday, in UTC.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any

from masque.errors import NotFound, UsageError
from masque.model import Ref, Ring, Score
from masque.scoring import ScoringConfig, scoring_config

if TYPE_CHECKING:
    import duckdb

STATUSES = ("active", "revoking", "ended", "revoked", "abandoned")
REFUSALS = ("intent_denied", "ring_refused")


class Level(str, Enum):
    """The five reflection levels, narrowest first."""

    SESSION = "session"
    MASQUE = "masque"
    SKILL = "skill"
    RING = "ring"
    SYSTEM = "system"


@dataclass(frozen=True)
class Filters:
    """Which sessions count: started in [since, until) and worn by `actor` (all when None)."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None

    @classmethod
    def parse(cls, since: str | None = None, until: str | None = None, actor: str | None = None) -> Filters:
        from masque.durations import parse_since

        now = datetime.now(timezone.utc)
        start = parse_since(since, now=now) if since else None
        end = parse_since(until, now=now) if until else None
        if start and end and start >= end:
            raise UsageError(f"--since ({start.isoformat()}) must be before --until ({end.isoformat()})")
        return cls(start, end, actor)

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "actor": self.actor,
        }


@dataclass(frozen=True)
class Selection:
    """What to reflect on: one level and its subject."""

    level: Level
    subject: str | None = None  # session id, masque ref, skill, ring; None for the system

    @classmethod
    def choose(
        cls,
        masque: str | None = None,
        skill: str | None = None,
        ring: str | None = None,
        session: str | None = None,
    ) -> Selection:
        given = [
            (lvl, v)
            for lvl, v in ((Level.MASQUE, masque), (Level.SKILL, skill), (Level.RING, ring), (Level.SESSION, session))
            if v
        ]
        if len(given) > 1:
            raise UsageError(
                "choose one level: a masque NAME, --skill, --ring or --session",
                hint="run `masque stats` without any of them for the whole system",
            )
        return cls(*given[0]) if given else cls(Level.SYSTEM)


@dataclass(frozen=True)
class Report:
    """One level's reflection. `to_json()` is the stable documented shape (docs/stats.md)."""

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


def _round(value: Any, places: int = 3) -> float | None:
    return None if value is None else round(float(value), places)


def _value_case(rules: ScoringConfig, column: str = "c.symbol") -> str:
    # Values come from masque.toml as floats and symbols are a closed set, so inlining them is safe.
    whens = " ".join(f"WHEN '{s.value}' THEN {float(rules.values[s.value])!r}" for s in Score)
    return f"CASE {column} {whens} END"


class _Query:
    """Builds the WHERE fragments and parameters for one selection + filters."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, selection: Selection, filters: Filters) -> None:
        self.conn = conn
        self.selection = selection
        self.filters = filters if selection.level is not Level.SESSION else Filters()
        self.params: dict[str, Any] = {}
        self.session_where = ["true"]
        self.event_where = ["true"]
        self.subject = selection.subject
        self._scope()
        self._filters()

    def _scope(self) -> None:
        level, subject = self.selection.level, self.selection.subject or ""
        if level is Level.SESSION:
            self._require_session(subject)
            self.params["session"] = subject
            self.session_where.append("s.id = $session")
            self.event_where.append("e.session_id = $session")
        elif level is Level.MASQUE:
            ref = Ref.parse(subject)
            key = ref.name.casefold()
            self._require_masque(key, ref.version)
            self.params["masque"] = key
            self.session_where.append("s.masque = $masque")
            self.event_where.append("e.masque = $masque")
            if ref.version:
                self.params["version"] = ref.version
                self.session_where.append("s.version = $version")
                self.event_where.append("e.version = $version")
            self.subject = f"{key}@{ref.version}" if ref.version else key
        elif level is Level.SKILL:
            self.subject = self._resolve_skill(subject)
            self.params["skill"] = self.subject
            claim = "(SELECT masque, version FROM masque_skills WHERE skill = $skill)"
            self.session_where.append(f"(s.masque, s.version) IN {claim}")
            self.event_where.append(f"(e.masque, e.version) IN {claim}")
        elif level is Level.RING:
            try:
                self.subject = Ring(subject.strip().casefold()).value
            except ValueError:
                raise UsageError(
                    f"not a trust ring: {subject!r}", hint=f"rings are {', '.join(r.value for r in Ring)}"
                ) from None
            self.params["ring"] = self.subject
            self.session_where.append("s.masque_ring = $ring")
            # Refusals may come before any session exists: the ring is taken from the event payload
            # when recorded there, else from sessions of the same masque version.
            self.event_where.append(
                "coalesce(json_extract_string(e.payload, '$.masque_ring'), (SELECT any_value(x.masque_ring)"
                " FROM sessions x WHERE x.masque = e.masque AND x.version = e.version)) = $ring"
            )

    def _filters(self) -> None:
        f = self.filters
        if f.since:
            self.params["since"] = f.since
            self.session_where.append("s.started_at >= $since")
            self.event_where.append("e.ts >= $since")
        if f.until:
            self.params["until"] = f.until
            self.session_where.append("s.started_at < $until")
            self.event_where.append("e.ts < $until")
        if f.actor:
            self.params["actor"] = f.actor
            self.session_where.append("s.actor = $actor")
            self.event_where.append("e.actor = $actor")

    def _require_session(self, session_id: str) -> None:
        if not self.conn.execute("SELECT 1 FROM sessions WHERE id = ?", [session_id]).fetchone():
            raise NotFound(f"no session {session_id!r}", hint="list sessions with `masque sessions`")

    def _require_masque(self, key: str, version: str | None) -> None:
        found = self.conn.execute(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM sessions WHERE masque = ? LIMIT 1))"
            " + (SELECT count(*) FROM (SELECT 1 FROM events WHERE masque = ? LIMIT 1))",
            [key, key],
        ).fetchone()
        if not found or not found[0]:
            names = [r[0] for r in self.conn.execute("SELECT DISTINCT masque FROM sessions").fetchall()]
            close = difflib.get_close_matches(key, names, n=3)
            raise NotFound(
                f"no sessions or events recorded for masque {key!r}",
                hint=f"did you mean {', '.join(close)}?" if close else "`masque stats` lists the masques with sessions",
            )
        if version:
            versions = sorted(
                r[0]
                for r in self.conn.execute(
                    "SELECT DISTINCT version FROM sessions WHERE masque = ?"
                    " UNION SELECT DISTINCT version FROM events WHERE masque = ? AND version IS NOT NULL",
                    [key, key],
                ).fetchall()
            )
            if version not in versions:
                raise NotFound(
                    f"no sessions recorded for {key}@{version}",
                    hint=f"versions with sessions: {', '.join(versions)}",
                )

    def _resolve_skill(self, text: str) -> str:
        skills = [r[0] for r in self.conn.execute("SELECT DISTINCT skill FROM masque_skills ORDER BY 1").fetchall()]
        wanted = text.strip()
        if wanted.startswith("skill://"):
            if wanted in skills:
                return wanted
            matches: list[str] = []
        else:
            matches = [s for s in skills if s.rstrip("/").rsplit("/", 1)[-1] == wanted.casefold()]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UsageError(f"skill {text!r} is ambiguous: {', '.join(matches)}", hint="pass the full skill:// URI")
        raise NotFound(
            f"no masque with recorded sessions claims skill {text!r}",
            hint=f"claimed skills: {', '.join(skills[:10])}" if skills else "no skills recorded yet",
        )

    def where(self) -> str:
        return " AND ".join(self.session_where)

    def base_where(self) -> str:
        """The slice the grouped scan reads; at ring level it adds the ring's actors' sessions."""
        if self.selection.level is Level.RING:
            return self.where().replace("s.masque_ring = $ring", "(s.masque_ring = $ring OR s.actor_ring = $ring)")
        return self.where()

    def event_filter(self) -> str:
        return " AND ".join(self.event_where)


def _fetch(conn: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    cur = conn.execute(sql, dict(params or {}))
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


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
    q: _Query,
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
    session_rows = _fetch(
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
    quantile_rows = _fetch(
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
    score_rows = _fetch(
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
        row["duration_p50"], row["duration_p95"] = _round(pair[0]), _round(pair[1])
        row["scored"] = int(score.get("scored", 0))
        row["mean_score"] = _round(score.get("mean_score"))
        row["score_counts"] = {s.value: int(score.get(s.value, 0)) for s in Score}
        out[group].append(row)
    return out


def _table_row(row: Mapping[str, Any], *keys: str, durations: bool = False) -> dict[str, Any]:
    """A row for a per-version/masque/actor table: its keys, then the headline numbers."""
    out = {
        **{k: row[k] for k in keys},
        "sessions": int(row["sessions"]),
        "active": int(row["active"]) + int(row["revoking"]),
        "abandoned": int(row["abandoned"]),
        "scored": int(row["scored"]),
        "mean_score": row["mean_score"],
        "score_counts": row["score_counts"],
    }
    if durations:
        out["duration_p50"] = row["duration_p50"]
        out["duration_p95"] = row["duration_p95"]
    return out


def report(selection: Selection, filters: Filters | None = None, *, top: int = 5) -> Report:
    """Reflect on one level. Opens a read-only connection for the duration of the queries."""
    from masque import store
    from masque.scoring import rebuild_score_facts, score_facts_in_step

    with store.connect(read_only=True) as conn:
        if score_facts_in_step(conn):
            return build_report(conn, selection, filters or Filters(), top=top)
    # Some writer added scores without score_facts (or this store predates it): rebuild once.
    with store.transaction() as conn:
        if not score_facts_in_step(conn):
            rebuild_score_facts(conn)
        return build_report(conn, selection, filters or Filters(), top=top)


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
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET enable_progress_bar = false")
    q = _Query(conn, selection, filters)
    level = selection.level
    flags = ", s.masque_ring = $ring AS in_ring, s.actor_ring = $ring AS by_ring" if level is Level.RING else ""
    groups = _grouped(conn, q, rules, _SETS[level], flags)
    if level is Level.RING:
        # The ring's slice also holds sessions its actors wore elsewhere; keep each set's own side.
        groups = {g: [r for r in rows if r.pop(g[0])] for g, rows in groups.items()}
        groups[()] = groups.pop(("in_ring",))
        groups[("week",)] = groups.pop(("in_ring", "week"))
    summary = groups[()][0] if groups[()] else _empty_row()
    refusals = {t: 0 for t in REFUSALS}
    for row in _fetch(
        conn,
        f"SELECT type, count(*) AS n FROM events e WHERE type IN {REFUSALS!r} AND {q.event_filter()} GROUP BY type",
        q.params,
    ):
        refusals[row["type"]] = int(row["n"])
    intents = _fetch(
        conn,
        "SELECT lower(trim(s.intent)) AS intent, count(*) AS sessions FROM sessions s"
        f" WHERE {q.where()} GROUP BY 1 ORDER BY sessions DESC, intent LIMIT {int(top)}",
        q.params,
    )
    population = _fetch(
        conn,
        f"SELECT count(DISTINCT masque) AS masques, count(DISTINCT actor) AS actors FROM sessions s WHERE {q.where()}",
        q.params,
    )[0]
    details = _details(conn, q, rules, top, groups)
    details["population"] = {"masques": int(population["masques"]), "actors": int(population["actors"])}
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
        details=details,
    )


def _empty_row() -> dict[str, Any]:
    return {
        "sessions": 0,
        **{s: 0 for s in STATUSES},
        "scored": 0,
        "mean_score": None,
        "score_counts": {s.value: 0 for s in Score},
        "duration_p50": None,
        "duration_p95": None,
        "measured": 0,
    }


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


def _details(
    conn: duckdb.DuckDBPyConnection,
    q: _Query,
    rules: ScoringConfig,
    top: int,
    groups: dict[tuple[str, ...], list[dict[str, Any]]],
) -> dict[str, Any]:
    level = q.selection.level
    if level is Level.SESSION:
        return _session_details(conn, q)
    if level is Level.MASQUE:
        versions = [
            {
                **_table_row(r, "version", durations=True),
                "first_started": r["first_started"],
                "last_started": r["last_started"],
            }
            for r in groups[("version",)]
        ]
        versions.sort(key=lambda r: _version_key(r["version"]))
        skills = _fetch(
            conn,
            "SELECT version, skill, level FROM masque_skills WHERE masque = $masque ORDER BY version, skill",
            {"masque": q.params["masque"]},
        )
        return {"versions": versions, "skills": skills}
    if level is Level.SKILL:
        return _skill_details(conn, q, rules, groups[("masque", "version")])
    if level is Level.RING:
        masques = sorted(
            (_table_row(r, "masque") for r in groups[("in_ring", "masque")]),
            key=lambda r: (-r["sessions"], r["masque"]),
        )
        actors = sorted(
            (_table_row(r, "actor") for r in groups[("by_ring", "actor")]),
            key=lambda r: (-r["sessions"], r["actor"]),
        )
        return {"masques": masques, "actors": actors}
    masques = [_table_row(r, "masque") for r in groups[("masque",)]]
    judged = [m for m in masques if m["scored"] >= rules.min_scored and m["mean_score"] is not None]
    judged.sort(key=lambda m: (-m["mean_score"], -m["scored"], m["masque"]))
    bottom = sorted(judged, key=lambda m: (m["mean_score"], -m["scored"], m["masque"]))[:top]
    rings = [_table_row(r, "masque_ring") for r in groups[("masque_ring",)]]
    rings.sort(key=lambda r: _ring_rank(r["masque_ring"]))
    return {"top_masques": judged[:top], "bottom_masques": bottom, "rings": rings}


def _ring_rank(name: str) -> int:
    try:
        return Ring(name).rank
    except ValueError:
        return len(Ring)


def _version_key(version: str) -> tuple[int, Any]:
    try:
        import semver

        return (0, semver.Version.parse(version))
    except (ValueError, TypeError):
        return (1, version)


def _skill_details(
    conn: duckdb.DuckDBPyConnection, q: _Query, rules: ScoringConfig, per_version: list[dict[str, Any]]
) -> dict[str, Any]:
    observed = {(r["masque"], r["version"]): r for r in per_version}
    claims = []
    by_level: dict[str, dict[str, Any]] = {}
    for masque, version, level in conn.execute(
        "SELECT masque, version, level FROM masque_skills WHERE skill = ? ORDER BY masque, version",
        [q.params["skill"]],
    ).fetchall():
        row = _table_row(
            observed.get((masque, version)) or {**_empty_row(), "masque": masque, "version": version},
            "masque",
            "version",
            durations=True,
        )
        expected = rules.expected.get(level)
        row = {"masque": masque, "version": version, "level": level, "expected": expected, **row}
        row["verdict"] = _verdict(row["mean_score"], expected, row["scored"], rules)
        claims.append(row)
        acc = by_level.setdefault(level, {"masques": 0, "scored": 0, "total": 0.0})
        acc["masques"] += 1
        acc["scored"] += row["scored"]
        acc["total"] += (row["mean_score"] or 0.0) * row["scored"]
    order = list(rules.expected)
    levels = []
    for level in sorted(by_level, key=lambda lv: order.index(lv) if lv in order else len(order)):
        acc = by_level[level]
        mean = _round(acc["total"] / acc["scored"]) if acc["scored"] else None
        expected = rules.expected.get(level)
        levels.append(
            {
                "level": level,
                "expected": expected,
                "masques": acc["masques"],
                "scored": acc["scored"],
                "mean_score": mean,
                "verdict": _verdict(mean, expected, acc["scored"], rules),
            }
        )
    return {
        "claims": claims,
        "levels": levels,
        "over_claiming": [f"{c['masque']}@{c['version']}" for c in claims if c["verdict"] == "over"],
        "under_claiming": [f"{c['masque']}@{c['version']}" for c in claims if c["verdict"] == "under"],
    }


def _verdict(mean: float | None, expected: float | None, scored: int, rules: ScoringConfig) -> str:
    """over (claims more than observed), under (delivers more than claimed), ok, or unjudged."""
    if mean is None or expected is None or scored < rules.min_scored:
        return "unjudged"
    if mean < expected - rules.tolerance:
        return "over"
    if mean > expected + rules.tolerance:
        return "under"
    return "ok"


def _session_details(conn: duckdb.DuckDBPyConnection, q: _Query) -> dict[str, Any]:
    from masque.scoring import session_scores

    session_id = q.params["session"]
    row = _fetch(
        conn,
        "SELECT id, masque, version, actor, actor_ring, masque_ring, originator, parent_id, scope, intent,"
        " role, status, started_at, expires_at, ended_at, end_reason, exit_code,"
        " epoch(ended_at - started_at) AS duration_seconds FROM sessions WHERE id = $session",
        {"session": session_id},
    )[0]
    scores = session_scores(conn, session_id)
    events = _fetch(
        conn,
        "SELECT id, ts, type, actor FROM events WHERE session_id = $session ORDER BY ts, id",
        {"session": session_id},
    )
    current = scores[-1] if scores else None
    row["duration_seconds"] = _round(row["duration_seconds"])
    row["score"] = current.symbol.value if current else None
    row["score_value"] = current.value if current else None
    return {
        "session": row,
        "scores": [
            {
                "id": s.id,
                "symbol": s.symbol.value,
                "value": s.value,
                "notes": s.notes,
                "scored_by": s.scored_by,
                "created_at": s.created_at,
            }
            for s in scores
        ],
        "events": events,
    }

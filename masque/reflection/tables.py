"""The level-specific tables of a reflection: versions, claims, ring members, top and bottom masques."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from masque.enums import Ring, Score
from masque.reflection.scope import STATUSES, Level, Scope, fetch, round3

if TYPE_CHECKING:
    import duckdb

    from masque.reflection.scoring import ScoringConfig


def table_row(row: Mapping[str, Any], *keys: str, durations: bool = False) -> dict[str, Any]:
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


def empty_row() -> dict[str, Any]:
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


def details(
    conn: duckdb.DuckDBPyConnection,
    q: Scope,
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
                **table_row(r, "version", durations=True),
                "first_started": r["first_started"],
                "last_started": r["last_started"],
            }
            for r in groups[("version",)]
        ]
        versions.sort(key=lambda r: _version_key(r["version"]))
        skills = fetch(
            conn,
            "SELECT version, skill, level FROM masque_skills WHERE masque = $masque ORDER BY version, skill",
            {"masque": q.params["masque"]},
        )
        return {"versions": versions, "skills": skills}
    if level is Level.SKILL:
        return _skill_details(conn, q, rules, groups[("masque", "version")])
    if level is Level.RING:
        masques = sorted(
            (table_row(r, "masque") for r in groups[("in_ring", "masque")]),
            key=lambda r: (-r["sessions"], r["masque"]),
        )
        actors = sorted(
            (table_row(r, "actor") for r in groups[("by_ring", "actor")]),
            key=lambda r: (-r["sessions"], r["actor"]),
        )
        return {"masques": masques, "actors": actors}
    masques = [table_row(r, "masque") for r in groups[("masque",)]]
    judged = [m for m in masques if m["scored"] >= rules.min_scored and m["mean_score"] is not None]
    judged.sort(key=lambda m: (-m["mean_score"], -m["scored"], m["masque"]))
    bottom = sorted(judged, key=lambda m: (m["mean_score"], -m["scored"], m["masque"]))[:top]
    rings = [table_row(r, "masque_ring") for r in groups[("masque_ring",)]]
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
    conn: duckdb.DuckDBPyConnection, q: Scope, rules: ScoringConfig, per_version: list[dict[str, Any]]
) -> dict[str, Any]:
    observed = {(r["masque"], r["version"]): r for r in per_version}
    claims = []
    by_level: dict[str, dict[str, Any]] = {}
    for masque, version, level in conn.execute(
        "SELECT masque, version, level FROM masque_skills WHERE skill = ? ORDER BY masque, version",
        [q.params["skill"]],
    ).fetchall():
        row = table_row(
            observed.get((masque, version)) or {**empty_row(), "masque": masque, "version": version},
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
        mean = round3(acc["total"] / acc["scored"]) if acc["scored"] else None
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


def _session_details(conn: duckdb.DuckDBPyConnection, q: Scope) -> dict[str, Any]:
    from masque.reflection.scoring import session_scores

    session_id = q.params["session"]
    row = fetch(
        conn,
        "SELECT id, masque, version, actor, actor_ring, masque_ring, originator, parent_id, scope, intent,"
        " role, status, started_at, expires_at, ended_at, end_reason, exit_code,"
        " epoch(ended_at - started_at) AS duration_seconds FROM sessions WHERE id = $session",
        {"session": session_id},
    )[0]
    scores = session_scores(conn, session_id)
    events = fetch(
        conn,
        "SELECT id, ts, type, actor FROM events WHERE session_id = $session ORDER BY ts, id",
        {"session": session_id},
    )
    current = scores[-1] if scores else None
    row["duration_seconds"] = round3(row["duration_seconds"])
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

"""Benchmark: `masque stats` at five levels on 1,000,000 sessions, against the same report in SQLite.

    python bench/stats.py [--sessions 1000000] [--runs 3] [--workdir DIR]

1. Generates a Parquet file in the `masque sessions export` shape (bench/stats_data.py): 200 masques,
   30 skills, 4 rings, 500 actors, ~770k scores, ~2M events.
2. Times `masque sessions import` of it as a whole process (target <= 30 s).
3. Times each level as a whole cold `masque stats ... --json` process (target <= 1 s each).
4. Copies the very same rows from the DuckDB store into SQLite with sqlite-utils, adds the indexes a
   careful user would (and the same derived score_facts table masque keeps), and times the same five
   reports, also as whole processes running the equivalent SQL (`--sqlite-level`). Target >= 5x.

Reports medians of --runs, and the ratio SQLite / masque per level.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

LEVELS = {
    "session": ["--session", "ses_0000012345"],
    "masque": ["masque-007"],
    "skill": ["--skill", "skill05"],
    "ring": ["--ring", "player"],
    "system": [],
}
SYMBOL_VALUES = {"-": -1.0, "/": 0.0, "+": 1.0, "*": 2.0, "e": 3.0}
TABLES = {
    "sessions": "id, masque, version, masque_ring, actor, actor_ring, originator, intent, status,"
    " {ts:started_at}, {ts:ended_at}",
    "events": "id, {ts:ts}, type, session_id, masque, version, actor, originator, payload::VARCHAR AS payload",
    "scores": "id, session_id, symbol, notes, scored_by, {ts:created_at}",
    "masque_skills": "masque, version, skill, level",
    "score_facts": "score_id, session_id, symbol, {ts:created_at}, is_current::INTEGER AS is_current, masque,"
    " version, masque_ring, actor, actor_ring, {ts:started_at}",
}
SQLITE_INDEXES = [
    ("sessions", ["id"], True),
    ("sessions", ["masque", "version"], False),
    ("sessions", ["masque_ring"], False),
    ("sessions", ["actor_ring"], False),
    ("sessions", ["actor"], False),
    ("sessions", ["started_at"], False),
    ("events", ["type", "masque", "version"], False),
    ("events", ["session_id"], False),
    ("scores", ["session_id", "created_at"], False),
    ("masque_skills", ["skill"], False),
    ("score_facts", ["is_current", "masque", "version"], False),
    ("score_facts", ["session_id"], False),
]


def run(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return elapsed


def median_of(cmd: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    times = [run(cmd, env) for _ in range(runs)]
    return statistics.median(times), times[0]


def copy_to_sqlite(duck_path: Path, sqlite_path: Path) -> float:
    """The store's rows, unchanged, into SQLite through sqlite-utils (timestamps as ISO 8601 text)."""
    import duckdb
    import sqlite_utils

    start = time.perf_counter()
    db = sqlite_utils.Database(sqlite_path, recreate=True)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    conn = duckdb.connect(str(duck_path), read_only=True)
    conn.execute("SET TimeZone = 'UTC'")
    for table, columns in TABLES.items():
        select = columns
        while "{ts:" in select:
            head, rest = select.split("{ts:", 1)
            name, tail = rest.split("}", 1)
            select = f"{head}strftime({name}, '%Y-%m-%dT%H:%M:%S.%fZ') AS {name}{tail}"
        cur = conn.execute(f"SELECT {select} FROM {table}")
        names = [d[0] for d in cur.description or []]

        def rows(cur: Any = cur, names: list[str] = names) -> Any:
            yield names  # sqlite-utils takes lists of values after a first list of column names
            while batch := cur.fetchmany(100_000):
                yield from batch

        db[table].insert_all(rows(), batch_size=20_000)
    conn.close()
    for table, columns, unique in SQLITE_INDEXES:
        db[table].create_index(columns, unique=unique, if_not_exists=True)
    db.execute("ANALYZE")
    db.conn.close()
    return time.perf_counter() - start


# ---- the five reports in SQLite: the same sections as masque.reflection.levels, in plain SQL ----


def _scope(level: str, subject: str | None, alias: str = "s") -> tuple[str, list[Any]]:
    if level == "session":
        return f"{alias}.id = ?", [subject]
    if level == "masque":
        return f"{alias}.masque = ?", [subject]
    if level == "skill":
        return f"({alias}.masque, {alias}.version) IN (SELECT masque, version FROM masque_skills WHERE skill = ?)", [
            subject
        ]
    if level == "ring":
        return f"({alias}.masque_ring = ? OR {alias}.actor_ring = ?)", [subject, subject]
    return "1", []


def _quantiles(db: Any, where: str, params: list[Any]) -> tuple[float | None, float | None]:
    dur = "(julianday(ended_at) - julianday(started_at)) * 86400.0"
    n = db.execute(f"SELECT count(*) FROM sessions s WHERE {where} AND ended_at IS NOT NULL", params).fetchone()[0]
    if not n:
        return None, None
    out = []
    for q in (0.5, 0.95):
        pos = (n - 1) * q
        lo = int(pos)
        vals = db.execute(
            f"SELECT {dur} FROM sessions s WHERE {where} AND ended_at IS NOT NULL ORDER BY 1 LIMIT 2 OFFSET ?",
            [*params, lo],
        ).fetchall()
        a = vals[0][0]
        b = vals[1][0] if len(vals) > 1 else a
        out.append(a + (b - a) * (pos - lo))
    return out[0], out[1]


def sqlite_report(path: Path, level: str, subject: str | None) -> dict[str, Any]:
    import sqlite3

    db = sqlite3.connect(path)
    value = "CASE symbol " + " ".join(f"WHEN '{k}' THEN {v}" for k, v in SYMBOL_VALUES.items()) + " END"
    week = "(CAST(strftime('%s', started_at) AS INTEGER) - 345600) / 604800"
    if level == "skill":
        subject = db.execute(
            "SELECT DISTINCT skill FROM masque_skills WHERE skill LIKE '%/' || ?", [subject]
        ).fetchone()[0]
    where, params = _scope(level, subject)
    own = where if level != "ring" else "s.masque_ring = ?"
    own_params = params if level != "ring" else [subject]
    out: dict[str, Any] = {}
    statuses = ", ".join(f"sum(status = '{x}')" for x in ("active", "revoking", "ended", "revoked", "abandoned"))
    out["sessions"] = db.execute(f"SELECT count(*), {statuses} FROM sessions s WHERE {own}", own_params).fetchone()
    out["durations"] = _quantiles(db, own, own_params)
    symbols = ", ".join(f"sum(symbol = '{k}')" for k in SYMBOL_VALUES)
    facts = "score_facts s WHERE s.is_current = 1 AND s.masque IS NOT NULL AND "
    out["scores"] = db.execute(
        f"SELECT count(*), avg({value}), {symbols} FROM {facts}{own.replace('s.id', 's.session_id')}", own_params
    ).fetchone()
    out["trend"] = db.execute(f"SELECT {week}, count(*) FROM sessions s WHERE {own} GROUP BY 1", own_params).fetchall()
    out["trend_scores"] = db.execute(
        f"SELECT {week}, count(*), avg({value}) FROM {facts}{own.replace('s.id', 's.session_id')} GROUP BY 1",
        own_params,
    ).fetchall()
    ev_where = {
        "session": ("e.session_id = ?", [subject]),
        "masque": ("e.masque = ?", [subject]),
        "skill": ("(e.masque, e.version) IN (SELECT masque, version FROM masque_skills WHERE skill = ?)", [subject]),
        "ring": (
            "(SELECT masque_ring FROM sessions x WHERE x.masque = e.masque AND x.version = e.version LIMIT 1) = ?",
            [subject],
        ),
        "system": ("1", []),
    }[level]
    out["refusals"] = db.execute(
        f"SELECT type, count(*) FROM events e WHERE type IN ('intent_denied', 'ring_refused') AND {ev_where[0]}"
        " GROUP BY type",
        ev_where[1],
    ).fetchall()
    out["intents"] = db.execute(
        f"SELECT lower(trim(intent)), count(*) AS n FROM sessions s WHERE {own} GROUP BY 1 ORDER BY n DESC LIMIT 5",
        own_params,
    ).fetchall()
    out["population"] = db.execute(
        f"SELECT count(DISTINCT masque), count(DISTINCT actor) FROM sessions s WHERE {own}", own_params
    ).fetchone()
    groups = {
        "masque": ["version"],
        "skill": ["masque, version"],
        "ring": ["masque"],
        "system": ["masque", "masque_ring"],
    }
    for keyed in groups.get(level, []):
        key = keyed.replace(", ", "_")
        out[f"by_{key}"] = db.execute(
            f"SELECT {keyed}, count(*), sum(status = 'abandoned') FROM sessions s WHERE {own} GROUP BY {keyed}",
            own_params,
        ).fetchall()
        out[f"scores_by_{key}"] = db.execute(
            f"SELECT {keyed}, count(*), avg({value}), {symbols} FROM {facts}{own} GROUP BY {keyed}", own_params
        ).fetchall()
    if level == "masque":
        for (version,) in db.execute("SELECT DISTINCT version FROM sessions WHERE masque = ?", [subject]).fetchall():
            out[f"p_{version}"] = _quantiles(db, "s.masque = ? AND s.version = ?", [subject, version])
    if level == "ring":
        out["actors"] = db.execute(
            "SELECT actor, count(*) FROM sessions s WHERE s.actor_ring = ? GROUP BY actor", [subject]
        ).fetchall()
        out["actor_scores"] = db.execute(
            f"SELECT actor, count(*), avg({value}), {symbols} FROM {facts} s.actor_ring = ? GROUP BY actor", [subject]
        ).fetchall()
    if level == "session":
        out["session"] = db.execute("SELECT * FROM sessions WHERE id = ?", [subject]).fetchone()
        out["events"] = db.execute("SELECT * FROM events WHERE session_id = ? ORDER BY ts", [subject]).fetchall()
        out["score_rows"] = db.execute(
            "SELECT * FROM scores WHERE session_id = ? ORDER BY created_at", [subject]
        ).fetchall()
    db.close()
    return out


def _subject(level: str) -> str | None:
    args = LEVELS[level]
    return args[-1] if args else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true", help="reuse --workdir's data, store and SQLite copy")
    parser.add_argument("--sqlite-level", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sqlite_level:  # the SQLite side of one level, as its own process
        json.dumps(sqlite_report(args.db, args.sqlite_level, _subject(args.sqlite_level)), default=str)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        bench(work, args.sessions, args.runs, args.reuse)


def bench(work: Path, sessions: int, runs: int, reuse: bool = False) -> None:
    data = work / "sessions.parquet"
    home = work / "home"
    env = {**os.environ, "MASQUE_HOME": str(home), "NO_COLOR": "1"}
    env.pop("MASQUE_CONFIG", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an editable checkout would recompile on every run
    sqlite_path = work / "stats.sqlite"
    if reuse and sqlite_path.exists() and (home / "masque.duckdb").exists():
        print(f"reusing {work}")
    else:
        prepare(work, data, home, env, sessions, sqlite_path)
    times(env, sqlite_path, home, runs)


def prepare(work: Path, data: Path, home: Path, env: dict[str, str], sessions: int, sqlite_path: Path) -> None:
    from stats_data import generate

    start = time.perf_counter()
    counts = generate(data, sessions)
    print(f"generated {counts} in {time.perf_counter() - start:.1f}s ({data.stat().st_size / 1e6:.0f} MB)")
    if (home / "masque.duckdb").exists():
        (home / "masque.duckdb").unlink()
    imported = run([sys.executable, "-m", "masque", "sessions", "import", str(data)], env)
    print(f"masque sessions import: {imported:.1f}s for {sessions:,} sessions (target <= 30 s)")
    built = copy_to_sqlite(home / "masque.duckdb", sqlite_path)
    print(f"sqlite-utils copy of the same rows + indexes: {built:.1f}s")


def times(env: dict[str, str], sqlite_path: Path, home: Path, runs: int) -> None:
    # The floor any cold `masque stats` stands on: an interpreter, plus the DuckDB module the store needs.
    start_up = median_of([sys.executable, "-c", "pass"], env, runs)[0]
    with_duckdb = median_of([sys.executable, "-c", "import duckdb"], env, runs)[0]
    print(f"\nfloor: python -c pass {start_up:.3f} s; python -c 'import duckdb' {with_duckdb:.3f} s")
    print(f"{'level':8} {'masque (s)':>11} {'first':>7} {'sqlite (s)':>11} {'first':>7} {'ratio':>7}  target")
    for level, extra in LEVELS.items():
        duck, duck_first = median_of([sys.executable, "-m", "masque", "stats", *extra, "--json"], env, runs)
        lite_cmd = [sys.executable, str(Path(__file__).resolve()), "--sqlite-level", level, "--db", str(sqlite_path)]
        lite, lite_first = median_of(lite_cmd, env, runs)
        ok = "ok" if duck <= 1.0 and lite / duck >= 5 else "MISSED"
        if ok == "MISSED" and lite / 5 < with_duckdb:
            ok += f" (5x needs {lite / 5:.3f} s, below the floor)"
        print(f"{level:8} {duck:11.3f} {duck_first:7.3f} {lite:11.3f} {lite_first:7.3f} {lite / duck:6.1f}x  {ok}")
    in_process(home, sqlite_path, runs)


def in_process(home: Path, sqlite_path: Path, runs: int) -> None:
    """The engines alone: the same reports inside this process, without interpreter and CLI start-up."""
    os.environ["MASQUE_HOME"] = str(home)
    from masque.reflection.levels import Selection, report

    selections = {
        "session": Selection.choose(session=_subject("session")),
        "masque": Selection.choose(masque=_subject("masque")),
        "skill": Selection.choose(skill=_subject("skill")),
        "ring": Selection.choose(ring=_subject("ring")),
        "system": Selection.choose(),
    }
    print(f"\nin-process (engine only, median of {runs}):")
    print(f"{'level':8} {'duckdb (s)':>11} {'sqlite (s)':>11} {'ratio':>7}")
    for level, selection in selections.items():
        duck = statistics.median(_timed(lambda s=selection: report(s)) for _ in range(runs))
        lite = statistics.median(
            _timed(lambda lv=level: sqlite_report(sqlite_path, lv, _subject(lv))) for _ in range(runs)
        )
        print(f"{level:8} {duck:11.3f} {lite:11.3f} {lite / duck:6.1f}x")


def _timed(call: Any) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()

"""Benchmark: `masque stats` at five levels, against the same reports in a tuned SQLite, paired run by run.

    python bench/stats.py [--sessions 10000 100000 1000000] [--runs 5] [--workdir DIR] [--reuse]

For each size:
1. Generates a Parquet file in the `masque sessions export` shape (bench/stats_data.py): 200 masques,
   30 skills, 4 rings, 500 actors; per session ~0.77 scores and ~1.9 events, plus 2% refusals.
2. Times `masque sessions import` of it as a whole process (target at 1M sessions: <= 15 s).
3. Copies the very same rows from the DuckDB store into SQLite (plain sqlite3 executemany) and picks the
   subjects from the data, so any size works: the middle session id, the busiest masque, the most
   claimed skill, the most common masque ring.
4. Times each level both ways, as whole cold processes and in-process (engine only), in pairs: each round
   runs masque and SQLite back to back (alternating which goes first), so load from other processes on
   a shared machine hits both sides of a pair alike. The ratio is the median of the per-pair ratios
   SQLite / masque (above 1: masque is faster). Before timing, the headline numbers of both sides
   (sessions, duration p50/p95, scored sessions, mean score, refusals) are checked to agree.

What each side does:
- masque (DuckDB, columnar): `masque stats [SUBJECT] --json`, i.e. masque.reflection: per level one
  GROUPING SETS scan of `sessions` (counts by status, weeks, per-version/masque/actor tables), one
  quantile_cont scan for p50/p95, one GROUPING SETS scan of `score_facts` (the derived current-score
  table), plus top intents, population and refusals; timestamps are TIMESTAMPTZ read as epoch_us
  integers. The session level reads one row by primary key.
- SQLite (row store, tuned): the same tables and rows, timestamps stored as integer epoch microseconds
  (no per-row date parsing; weeks and durations are integer arithmetic, as in DuckDB). Only selective
  indexes: sessions(id) unique, sessions(masque, version), events(session_id), events(type, masque,
  version), scores(session_id, created_at), masque_skills(skill), score_facts(masque, version),
  score_facts(session_id); no index on the 4-valued rings or the boolean is_current (a full scan beats
  walking 25-90% of a table through an index), then ANALYZE. Per report: one scan for counts +
  population, one window-function query per quantile set (a single sort yields p50 and p95, per version
  at the masque level), one scan each for the score summary, weekly trends, top intents and each
  per-key table, and the refusals through the events(type, ...) index. Not hand-fused: SQLite has no
  GROUPING SETS, so each per-key table is a query of its own, as a user of SQL would write it.
- Both open their database per report (masque: one read-only DuckDB connection, plus its acting-actor
  and score_facts checks; SQLite: sqlite3.connect). The cold SQLite process imports only sqlite3 and
  the standard library; the cold masque process imports the CLI and DuckDB (floors printed).
- The subjects' slices differ in size (printed): a ratio is only meaningful beside its slice.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

LEVEL_NAMES = ("session", "masque", "skill", "ring", "system")
SYMBOL_VALUES = {"-": -1.0, "/": 0.0, "+": 1.0, "*": 2.0, "e": 3.0}
STATUSES = ("active", "revoking", "ended", "revoked", "abandoned")
MONDAY_US, WEEK_US = 4 * 86_400_000_000, 7 * 86_400_000_000  # as masque.reflection: weeks start Monday 1970-01-05
US = "epoch_us({0}) AS {0}"
# table -> (SQLite columns with types, the DuckDB select list that fills them)
TABLES: dict[str, tuple[str, str]] = {
    "sessions": (
        "id TEXT NOT NULL, masque TEXT NOT NULL, version TEXT NOT NULL, masque_ring TEXT NOT NULL, actor TEXT NOT NULL,"
        " actor_ring TEXT NOT NULL, originator TEXT, intent TEXT NOT NULL, status TEXT NOT NULL,"
        " started_at INTEGER NOT NULL, ended_at INTEGER",
        "id, masque, version, masque_ring, actor, actor_ring, originator, intent, status, "
        + ", ".join(US.format(c) for c in ("started_at", "ended_at")),
    ),
    "events": (
        "id TEXT NOT NULL, ts INTEGER NOT NULL, type TEXT NOT NULL, session_id TEXT, masque TEXT, version TEXT,"
        " actor TEXT, originator TEXT, payload TEXT",
        f"id, {US.format('ts')}, type, session_id, masque, version, actor, originator, payload::VARCHAR AS payload",
    ),
    "scores": (
        "id TEXT NOT NULL, session_id TEXT NOT NULL, symbol TEXT NOT NULL, notes TEXT, scored_by TEXT,"
        " created_at INTEGER NOT NULL",
        f"id, session_id, symbol, notes, scored_by, {US.format('created_at')}",
    ),
    "masque_skills": (
        "masque TEXT NOT NULL, version TEXT NOT NULL, skill TEXT NOT NULL, level TEXT NOT NULL",
        "masque, version, skill, level",
    ),
    "score_facts": (
        "score_id TEXT NOT NULL, session_id TEXT NOT NULL, symbol TEXT NOT NULL, created_at INTEGER NOT NULL,"
        " is_current INTEGER NOT NULL, masque TEXT, version TEXT, masque_ring TEXT, actor TEXT, actor_ring TEXT,"
        " started_at INTEGER",
        f"score_id, session_id, symbol, {US.format('created_at')}, is_current::INTEGER AS is_current, masque,"
        f" version, masque_ring, actor, actor_ring, {US.format('started_at')}",
    ),
}
# Only indexes that narrow a query to a small part of its table (see the module docstring).
SQLITE_INDEXES = [
    ("sessions", ["id"], True),  # the session level: one row
    ("sessions", ["masque", "version"], False),  # masque and skill levels; a refusal's ring at ring level
    ("events", ["session_id"], False),  # the session level's events
    ("events", ["type", "masque", "version"], False),  # refusals: 2% of events
    ("scores", ["session_id", "created_at"], False),  # the session level's scores, newest last
    ("masque_skills", ["skill"], False),  # the skill level's claims
    ("score_facts", ["masque", "version"], False),  # masque and skill levels
    ("score_facts", ["session_id"], False),  # the session level
]


def run(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return elapsed


def copy_to_sqlite(duck_path: Path, sqlite_path: Path) -> float:
    """The store's rows, unchanged but for timestamps (integer epoch microseconds), into a tuned SQLite."""
    import duckdb

    start = time.perf_counter()
    sqlite_path.unlink(missing_ok=True)
    db = sqlite3.connect(sqlite_path)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    conn = duckdb.connect(str(duck_path), read_only=True)
    try:
        for table, (columns, select) in TABLES.items():
            db.execute(f"CREATE TABLE {table} ({columns})")
            cur = conn.execute(f"SELECT {select} FROM {table}")
            marks = ", ".join("?" * len(cur.description or []))
            while batch := cur.fetchmany(50_000):
                db.executemany(f"INSERT INTO {table} VALUES ({marks})", batch)
            db.commit()
    finally:
        conn.close()
    for table, columns, unique in SQLITE_INDEXES:
        kind = "UNIQUE INDEX" if unique else "INDEX"
        db.execute(f"CREATE {kind} {table}_{'_'.join(columns)} ON {table} ({', '.join(columns)})")
    db.execute("ANALYZE")
    db.commit()
    db.close()
    return time.perf_counter() - start


def pick_subjects(sqlite_path: Path) -> dict[str, str | None]:
    """A subject per level, taken from the data so that any number of sessions works."""
    db = sqlite3.connect(sqlite_path)
    one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
    subjects = {
        "session": one("SELECT id FROM sessions ORDER BY id LIMIT 1 OFFSET (SELECT count(*) / 2 FROM sessions)"),
        "masque": one("SELECT masque FROM sessions GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"),
        "skill": one("SELECT skill FROM masque_skills GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"),
        "ring": one("SELECT masque_ring FROM sessions GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"),
        "system": None,
    }
    db.close()
    return subjects


def slice_sizes(sqlite_path: Path, subjects: dict[str, str | None]) -> dict[str, int]:
    """Sessions in each level's own slice."""
    db = sqlite3.connect(sqlite_path)
    out = {}
    for level, subject in subjects.items():
        where, params = _scope(level, subject)
        out[level] = db.execute(f"SELECT count(*) FROM sessions s WHERE {where}", params).fetchone()[0]
    db.close()
    return out


def cli_args(level: str, subject: str | None) -> list[str]:
    return {
        "session": ["--session", str(subject)],
        "masque": [str(subject)],
        "skill": ["--skill", str(subject)],
        "ring": ["--ring", str(subject)],
        "system": [],
    }[level]


# ---- the five reports in SQLite: the same sections as masque.reflection, in plain SQL ----


def _scope(level: str, subject: str | None, alias: str = "s") -> tuple[str, list[Any]]:
    """The level's own slice of `sessions` (or `score_facts`, whose session key is session_id)."""
    if level == "session":
        return f"{alias}.id = ?", [subject]
    if level == "masque":
        return f"{alias}.masque = ?", [subject]
    if level == "skill":
        claims = "(SELECT masque, version FROM masque_skills WHERE skill = ?)"
        return f"({alias}.masque, {alias}.version) IN {claims}", [subject]
    if level == "ring":
        return f"{alias}.masque_ring = ?", [subject]
    return "1", []


def _quantiles(db: sqlite3.Connection, where: str, params: list[Any], by: str | None = None) -> dict[Any, tuple]:
    """p50 and p95 of durations (seconds, linear interpolation as DuckDB's quantile_cont) per `by` value.

    One window query, one sort: rows are numbered within their group in duration order, and only the
    (at most four) rows either side of the two quantile positions come back.
    """
    key = f"{by}" if by else "NULL"
    part = f"PARTITION BY {by} " if by else ""
    pos = "CAST((n - 1) * {q} AS INTEGER)"
    wanted = ", ".join(f"{pos.format(q=q)}{plus}" for q in (0.5, 0.95) for plus in ("", " + 1"))
    rows = db.execute(
        f"SELECT k, d, rn, n FROM (SELECT {key} AS k, (ended_at - started_at) / 1e6 AS d, row_number() OVER w AS rn,"
        " count(*) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS n"
        f" FROM sessions s WHERE {where} AND ended_at IS NOT NULL WINDOW w AS ({part}ORDER BY ended_at - started_at))"
        f" WHERE rn - 1 IN ({wanted})",
        params,
    ).fetchall()
    picked: dict[Any, dict[int, float]] = {}
    sizes: dict[Any, int] = {}
    for k, d, rn, n in rows:
        picked.setdefault(k, {})[rn - 1] = d
        sizes[k] = n
    out = {}
    for k, values in picked.items():
        pair = []
        for q in (0.5, 0.95):
            at = (sizes[k] - 1) * q
            lo = int(at)
            a = values[lo]
            b = values.get(lo + 1, a)
            pair.append(a + (b - a) * (at - lo))
        out[k] = tuple(pair)
    return out


def sqlite_report(path: Path, level: str, subject: str | None) -> dict[str, Any]:
    db = sqlite3.connect(path)
    value = "CASE symbol " + " ".join(f"WHEN '{k}' THEN {v}" for k, v in SYMBOL_VALUES.items()) + " END"
    week = f"(started_at - {MONDAY_US}) / {WEEK_US}"
    own, params = _scope(level, subject)
    facts_own = "s.session_id = ?" if level == "session" else own  # score_facts keys its session by session_id
    facts = f"score_facts s WHERE s.is_current = 1 AND s.masque IS NOT NULL AND {facts_own}"
    out: dict[str, Any] = {}
    statuses = ", ".join(f"sum(status = '{x}')" for x in STATUSES)
    out["sessions"] = db.execute(
        f"SELECT count(*), {statuses}, count(ended_at), count(DISTINCT masque), count(DISTINCT actor)"
        f" FROM sessions s WHERE {own}",
        params,
    ).fetchone()
    out["durations"] = _quantiles(db, own, params).get(None, (None, None))
    symbols = ", ".join(f"sum(symbol = '{k}')" for k in SYMBOL_VALUES)
    out["scores"] = db.execute(f"SELECT count(*), avg({value}), {symbols} FROM {facts}", params).fetchone()
    out["trend"] = db.execute(f"SELECT {week}, count(*) FROM sessions s WHERE {own} GROUP BY 1", params).fetchall()
    out["trend_scores"] = db.execute(
        f"SELECT {week}, count(*), avg({value}) FROM {facts} GROUP BY 1", params
    ).fetchall()
    ev_where, ev_params = {
        "session": ("e.session_id = ?", [subject]),
        "masque": ("e.masque = ?", [subject]),
        "skill": ("(e.masque, e.version) IN (SELECT masque, version FROM masque_skills WHERE skill = ?)", [subject]),
        "ring": (
            "coalesce(json_extract(e.payload, '$.masque_ring'), (SELECT x.masque_ring FROM sessions x"
            " WHERE x.masque = e.masque AND x.version = e.version LIMIT 1)) = ?",
            [subject],
        ),
        "system": ("1", []),
    }[level]
    out["refusals"] = dict(
        db.execute(
            f"SELECT type, count(*) FROM events e WHERE type IN ('intent_denied', 'ring_refused') AND {ev_where}"
            " GROUP BY type",
            ev_params,
        ).fetchall()
    )
    out["intents"] = db.execute(
        f"SELECT lower(trim(intent)) AS i, count(*) AS n FROM sessions s WHERE {own} GROUP BY 1 ORDER BY n DESC, i"
        " LIMIT 5",
        params,
    ).fetchall()
    groups = {
        "masque": ["version"],
        "skill": ["masque, version"],
        "ring": ["masque"],
        "system": ["masque", "masque_ring"],
    }
    for keyed in groups.get(level, []):
        key = keyed.replace(", ", "_")
        out[f"by_{key}"] = db.execute(
            f"SELECT {keyed}, count(*), sum(status = 'abandoned') FROM sessions s WHERE {own} GROUP BY {keyed}", params
        ).fetchall()
        out[f"scores_by_{key}"] = db.execute(
            f"SELECT {keyed}, count(*), avg({value}), {symbols} FROM {facts} GROUP BY {keyed}", params
        ).fetchall()
    if level == "masque":
        out["p_by_version"] = _quantiles(db, own, params, by="version")
    if level == "skill":
        out["p_by_claim"] = _quantiles(db, own, params, by="masque || '@' || version")
    if level == "ring":
        out["actors"] = db.execute(
            "SELECT actor, count(*), sum(status = 'abandoned') FROM sessions s WHERE s.actor_ring = ? GROUP BY actor",
            [subject],
        ).fetchall()
        out["actor_scores"] = db.execute(
            f"SELECT actor, count(*), avg({value}), {symbols} FROM score_facts s"
            " WHERE s.is_current = 1 AND s.masque IS NOT NULL AND s.actor_ring = ? GROUP BY actor",
            [subject],
        ).fetchall()
    if level == "session":
        out["session"] = db.execute("SELECT * FROM sessions WHERE id = ?", [subject]).fetchone()
        out["events"] = db.execute("SELECT * FROM events WHERE session_id = ? ORDER BY ts, id", [subject]).fetchall()
        out["score_rows"] = db.execute(
            "SELECT * FROM scores WHERE session_id = ? ORDER BY created_at, id", [subject]
        ).fetchall()
    db.close()
    return out


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The numbers both sides must agree on, from a `masque stats --json` report."""
    return {
        "sessions": report["sessions"]["total"],
        "p50": report["duration_seconds"]["p50"],
        "p95": report["duration_seconds"]["p95"],
        "scored": report["scored_sessions"],
        "mean": report["mean_score"],
        "refusals": sum(report["refusals"].values()),
    }


def sqlite_headline(out: dict[str, Any]) -> dict[str, Any]:
    p50, p95 = out["durations"]
    return {
        "sessions": out["sessions"][0],
        "p50": p50,
        "p95": p95,
        "scored": out["scores"][0],
        "mean": out["scores"][1],
        "refusals": sum(out["refusals"].values()),
    }


def _agree(a: dict[str, Any], b: dict[str, Any]) -> bool:
    for key in a:
        x, y = a[key], b[key]
        if (x is None) != (y is None):
            return False
        if x is not None and not math.isclose(float(x), float(y), rel_tol=1e-6, abs_tol=1e-3):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=5, help="paired runs per level and side")
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true", help="reuse --workdir's data, store and SQLite copy")
    parser.add_argument("--sqlite-level", help=argparse.SUPPRESS)
    parser.add_argument("--subject", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sqlite_level:  # the SQLite side of one level, as its own process (it renders JSON, as masque does)
        json.dumps(sqlite_report(args.db, args.sqlite_level, args.subject), default=str)
        return
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        for sessions in args.sessions:
            work = (args.workdir or Path(tmp)) / f"n{sessions}"
            work.mkdir(parents=True, exist_ok=True)
            summary.append((sessions, bench(work, sessions, args.runs, args.reuse)))
    print("\nsummary: median of per-pair ratios SQLite / masque (above 1: masque is faster)")
    print(f"{'sessions':>10} {'level':8} {'cold':>7} {'in-process':>11}")
    for sessions, ratios in summary:
        for level, (cold, warm) in ratios.items():
            print(f"{sessions:>10,} {level:8} {cold:6.2f}x {warm:10.2f}x")


def bench(work: Path, sessions: int, runs: int, reuse: bool = False) -> dict[str, tuple[float, float]]:
    print(f"\n== {sessions:,} sessions ==")
    data = work / "sessions.parquet"
    home = work / "home"
    env = {**os.environ, "MASQUE_HOME": str(home), "NO_COLOR": "1"}
    env.pop("MASQUE_CONFIG", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an editable checkout would recompile on every run
    sqlite_path = work / "stats.sqlite"
    if reuse and sqlite_path.exists() and (home / "masque.duckdb").exists():
        print(f"reusing {work}")
    else:
        prepare(data, home, env, sessions, sqlite_path)
    subjects = pick_subjects(sqlite_path)
    sizes = slice_sizes(sqlite_path, subjects)
    print("subjects (sessions in slice): " + ", ".join(f"{k}={v or 'all'} ({sizes[k]:,})" for k, v in subjects.items()))
    cold = times(env, sqlite_path, subjects, runs)
    warm = in_process(home, sqlite_path, subjects, runs)
    return {level: (cold[level], warm[level]) for level in LEVEL_NAMES}


def prepare(data: Path, home: Path, env: dict[str, str], sessions: int, sqlite_path: Path) -> None:
    from stats_data import generate

    start = time.perf_counter()
    counts = generate(data, sessions)
    print(f"generated {counts} in {time.perf_counter() - start:.1f}s ({data.stat().st_size / 1e6:.1f} MB)")
    if (home / "masque.duckdb").exists():
        (home / "masque.duckdb").unlink()
    imported = run([sys.executable, "-m", "masque", "sessions", "import", str(data)], env)
    verdict = ("ok" if imported <= 15 else "MISSED") if sessions == 1_000_000 else "applies at 1M"
    print(f"masque sessions import: {imported:.1f}s for {sessions:,} sessions (target at 1M: <= 15 s: {verdict})")
    built = copy_to_sqlite(home / "masque.duckdb", sqlite_path)
    print(f"copy of the same rows into SQLite + indexes + ANALYZE: {built:.1f}s")


def _pairs(first: Any, second: Any, runs: int) -> tuple[list[float], list[float]]:
    """`runs` timings of each, run back to back in pairs; which one goes first alternates."""
    a, b = [], []
    for i in range(runs):
        if i % 2:
            b.append(second())
            a.append(first())
        else:
            a.append(first())
            b.append(second())
    return a, b


def _ratio(masque: list[float], lite: list[float]) -> float:
    return statistics.median(y / x for x, y in zip(masque, lite, strict=True))


def times(env: dict[str, str], sqlite_path: Path, subjects: dict[str, str | None], runs: int) -> dict[str, float]:
    """Cold processes, paired: `masque stats ... --json` vs this script's `--sqlite-level` process."""
    # The floor any cold `masque stats` stands on: an interpreter, plus the DuckDB module the store needs.
    start_up = statistics.median(run([sys.executable, "-c", "pass"], env) for _ in range(runs))
    with_duckdb = statistics.median(run([sys.executable, "-c", "import duckdb"], env) for _ in range(runs))
    with_sqlite = statistics.median(run([sys.executable, "-c", "import sqlite3, json"], env) for _ in range(runs))
    print(
        f"cold floors: python -c pass {start_up:.3f} s; import duckdb {with_duckdb:.3f} s; "
        f"import sqlite3 {with_sqlite:.3f} s"
    )
    print(f"cold processes, {runs} pairs (s = median seconds, first = first run):")
    print(f"{'level':8} {'masque (s)':>11} {'first':>7} {'sqlite (s)':>11} {'first':>7} {'ratio':>7}  masque <= 1 s")
    ratios = {}
    for level in LEVEL_NAMES:
        subject = subjects[level]
        ours = [sys.executable, "-m", "masque", "stats", *cli_args(level, subject), "--json"]
        lite = [sys.executable, str(Path(__file__).resolve()), "--sqlite-level", level, "--db", str(sqlite_path)]
        if subject is not None:
            lite += ["--subject", subject]
        duck_t, lite_t = _pairs(lambda c=ours: run(c, env), lambda c=lite: run(c, env), runs)
        duck, slow = statistics.median(duck_t), statistics.median(lite_t)
        ratios[level] = _ratio(duck_t, lite_t)
        ok = "ok" if duck <= 1.0 else "MISSED"
        print(f"{level:8} {duck:11.3f} {duck_t[0]:7.3f} {slow:11.3f} {lite_t[0]:7.3f} {ratios[level]:6.2f}x  {ok}")
    return ratios


def in_process(home: Path, sqlite_path: Path, subjects: dict[str, str | None], runs: int) -> dict[str, float]:
    """The engines alone: the same reports inside this process, without interpreter and CLI start-up."""
    os.environ["MASQUE_HOME"] = str(home)
    from masque.reflection.levels import Selection, report

    selections = {
        "session": Selection.choose(session=subjects["session"]),
        "masque": Selection.choose(masque=subjects["masque"]),
        "skill": Selection.choose(skill=subjects["skill"]),
        "ring": Selection.choose(ring=subjects["ring"]),
        "system": Selection.choose(),
    }
    for level, selection in selections.items():  # a fast wrong answer is worth nothing
        ours = headline(report(selection).to_json())
        theirs = sqlite_headline(sqlite_report(sqlite_path, level, subjects[level]))
        if not _agree(ours, theirs):
            sys.exit(f"the two sides disagree at the {level} level:\n  masque {ours}\n  sqlite {theirs}")
    print(f"in-process (engine only, {runs} pairs; headline numbers of both sides checked equal first):")
    print(f"{'level':8} {'duckdb (s)':>11} {'sqlite (s)':>11} {'ratio':>7}")
    ratios = {}
    for level, selection in selections.items():
        duck_t, lite_t = _pairs(
            lambda s=selection: _timed(lambda: report(s)),
            lambda lv=level: _timed(lambda: sqlite_report(sqlite_path, lv, subjects[lv])),
            runs,
        )
        ratios[level] = _ratio(duck_t, lite_t)
        print(f"{level:8} {statistics.median(duck_t):11.3f} {statistics.median(lite_t):11.3f} {ratios[level]:6.2f}x")
    return ratios


def _timed(call: Any) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()

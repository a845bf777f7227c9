"""Benchmark: `masque stats --from 'DIR/**/*.parquet'` over Hive-partitioned exports, against pandas (and Dask).

    python bench/partitioned.py [--sessions 5000000] [--files 20] [--runs 3] [--workdir DIR]

1. Generates sessions in the `masque sessions export` shape (bench/stats_data.py) and lays them out as
   `sessions export --partition` does from several machines: machine=M/date=D/*.parquet, `--files`
   files in all (4 machines x files/4 date buckets).
2. Times the system-level report both ways, paired run by run (alternating which goes first):
   - masque: `masque.reflection.partitioned.report_from_files` in-process (DuckDB reads the files in
     parallel; sessions exported twice count once), and once as a cold `masque stats --from` process;
   - pandas (pyarrow engine): read the same files' needed columns, drop duplicate session ids, then
     sessions by status, duration p50/p95, the current score per session (its last score) and the
     mean, and refusals — what a user would write with pandas;
   - Dask (`dask.dataframe.read_parquet`, the same computation), when dask is installed.
   Before timing, the headline numbers of every side are checked to agree.
Prints seconds per side and the ratio peer / masque (above 1: masque is faster).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
SCORE_VALUES = {"-": -1.0, "/": 0.0, "+": 1.0, "*": 2.0, "e": 3.0}


def layout(workdir: Path, sessions: int, files: int) -> Path:
    """The partitioned tree, generated once per (sessions, files)."""
    import duckdb
    from stats_data import generate

    root = workdir / f"exports-{sessions}-{files}"
    if root.exists():
        return root
    flat = workdir / f"flat-{sessions}.parquet"
    if not flat.exists():
        generate(flat, sessions)
    machines = 4
    dates = max(1, files // machines)
    tmp = workdir / f".exports-{os.getpid()}"
    conn = duckdb.connect()
    conn.execute("SET enable_progress_bar = false")
    # Spread sessions over machines by id and over `dates` date buckets by start time (refusals by their event).
    conn.execute(
        f"COPY (SELECT *, 'm' || (hash(coalesce(id, events[1].id)) % {machines}) AS machine,"
        f" strftime(DATE '2025-01-06' + INTERVAL 1 DAY * (365 // {dates}) * least({dates - 1}, greatest(0,"
        " floor((epoch(coalesce(started_at, events[1].ts)) - epoch(TIMESTAMPTZ '2025-01-06'))"
        f" / (86400 * 365) * {dates})))::INT, '%Y-%m-%d') AS date"
        f" FROM read_parquet('{flat}')) TO '{tmp}'"
        " (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (machine, date), FILENAME_PATTERN 'sessions_{i}')"
    )
    conn.close()
    tmp.rename(root)
    return root


def masque_report(root: Path) -> dict[str, Any]:
    from masque.reflection.levels import Selection
    from masque.reflection.partitioned import report_from_files

    return report_from_files([f"{root}/**/*.parquet"], Selection.choose()).to_json()


def masque_headline(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "sessions": data["sessions"],
        "p50": data["duration_seconds"]["p50"],
        "p95": data["duration_seconds"]["p95"],
        "scored": data["scored_sessions"],
        "mean": data["mean_score"],
        "refusals": sum(data["refusals"].values()),
    }


def _headline_from_frame(df: Any, scores_last: Any, refusals: int) -> dict[str, Any]:
    import numpy as np

    statuses = df["status"].value_counts().to_dict()
    duration = (df["ended_at"] - df["started_at"]).dt.total_seconds().dropna().to_numpy()
    p50, p95 = np.quantile(duration, [0.5, 0.95]) if len(duration) else (None, None)
    mean = scores_last.map(SCORE_VALUES).mean() if len(scores_last) else None
    names = ("active", "revoking", "ended", "revoked", "abandoned")
    return {
        "sessions": {"total": len(df), **{s: int(statuses.get(s, 0)) for s in names}},
        "p50": round(float(p50), 3) if p50 is not None else None,
        "p95": round(float(p95), 3) if p95 is not None else None,
        "scored": len(scores_last),
        "mean": round(float(mean), 3) if mean is not None else None,
        "refusals": refusals,
    }


def pandas_headline(root: Path) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    table = ds.dataset(root, format="parquet", partitioning="hive").to_table(
        columns=["kind", "id", "status", "started_at", "ended_at", "scores", "events"]
    )
    kinds = table.column("kind")
    events = table.filter(pc.equal(kinds, "event")).column("events")
    types = pc.list_flatten(events).combine_chunks().field("type") if len(events) else []
    wanted = pa.array(["intent_denied", "ring_refused"])
    refusals = int(pc.sum(pc.is_in(types, value_set=wanted).cast("int64")).as_py() or 0) if len(types) else 0
    sessions = table.filter(pc.equal(kinds, "session"))
    df = sessions.select(["id", "status", "started_at", "ended_at"]).to_pandas()
    keep = ~df["id"].duplicated()
    df = df[keep.to_numpy()]
    scores = sessions.column("scores").combine_chunks().filter(pa.array(keep.to_numpy()))
    last_index = pc.subtract(pc.list_value_length(scores), 1)
    has = pc.greater_equal(last_index, 0)
    flat = pc.list_flatten(scores).field("symbol").to_pandas()
    parents = pc.list_parent_indices(scores).to_pandas()
    last = flat.groupby(parents).last()
    assert int(pc.sum(has.cast("int64")).as_py() or 0) == len(last)
    return _headline_from_frame(df, last, refusals)


def dask_headline(root: Path) -> dict[str, Any] | None:
    try:
        import dask.dataframe as dd
    except ImportError:
        return None
    frame = dd.read_parquet(str(root), columns=["kind", "id", "status", "started_at", "ended_at", "scores", "events"])
    df = frame.compute()
    import pyarrow as pa
    import pyarrow.compute as pc

    events = pa.array(df.loc[df["kind"] == "event", "events"].tolist())
    types = pc.list_flatten(events).field("type").to_pylist() if len(events) else []
    refusals = sum(t in ("intent_denied", "ring_refused") for t in types)
    sessions = df[df["kind"] == "session"].drop_duplicates("id")
    last = sessions["scores"].map(lambda s: s[-1]["symbol"] if s is not None and len(s) else None).dropna()
    return _headline_from_frame(sessions, last, refusals)


def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=5_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="masque-bench-partitioned-"))
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    root = layout(workdir, args.sessions, args.files)
    files = sorted(root.rglob("*.parquet"))
    took = time.perf_counter() - start
    print(f"{args.sessions:,} sessions in {len(files)} files under {root} ({took:.1f} s to lay out)")

    ours = masque_headline(masque_report(root))
    theirs = pandas_headline(root)
    assert ours == theirs, f"masque and pandas disagree:\n{ours}\n{theirs}"
    dask = dask_headline(root)
    if dask is not None:
        assert ours == dask, f"masque and dask disagree:\n{ours}\n{dask}"
    print("headline numbers agree:", json.dumps(ours))

    sides: dict[str, list[float]] = {"masque": [], "pandas": []}
    if dask is not None:
        sides["dask"] = []
    for run in range(args.runs):
        order = list(sides) if run % 2 == 0 else list(reversed(sides))
        for side in order:
            fn = {"masque": masque_report, "pandas": pandas_headline, "dask": dask_headline}[side]
            sides[side].append(_timed(fn, root)[0])
    env = {**os.environ, "MASQUE_HOME": str(workdir / "home")}
    cold_start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "masque", "stats", "--from", f"{root}/**/*.parquet", "--json"],
        check=True,
        capture_output=True,
        env=env,
    )
    cold = time.perf_counter() - cold_start
    ours_s = statistics.median(sides["masque"])
    print(f"masque (in-process, DuckDB)   {ours_s:8.3f} s   median of {args.runs}")
    print(f"masque stats --from (cold)    {cold:8.3f} s   one process")
    for side in ("pandas", "dask"):
        if side in sides:
            theirs_s = statistics.median(sides[side])
            print(f"{side:<29} {theirs_s:8.3f} s   ratio {side}/masque = {theirs_s / ours_s:.1f}x")
    if dask is None:
        print("dask: not installed (pip install 'dask[dataframe]' to add it)")


if __name__ == "__main__":
    main()

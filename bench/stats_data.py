"""Synthetic sessions for bench/stats.py: a Parquet file in the `masque sessions export` shape.

Vectorised with numpy/pyarrow so a million sessions take seconds to generate, not minutes. The mix:
200 masques (1-3 versions each) claiming 1-3 of 30 skills, 4 rings, 500 actors, a year of sessions,
~70% scored (a tenth of those re-scored), started+ended events, and 2% refusals without a session.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

RINGS = ["admin", "player", "guest", "outsider"]
LEVELS = ["novice", "competent", "proficient", "expert", "master"]
STATUSES = ["ended", "active", "abandoned", "revoked"]
SYMBOLS = ["-", "/", "+", "*", "e"]
YEAR_START = np.datetime64("2025-01-06T00:00:00", "us")  # a Monday
VERBS = ["implement", "test", "review", "refactor", "document", "debug", "design", "deploy", "plan", "fix"]
OBJECTS = ["the parser", "the api", "auth", "billing", "the cli", "docs"]


def _flat(value: pa.Array | pa.ChunkedArray) -> pa.Array:
    return value.combine_chunks() if isinstance(value, pa.ChunkedArray) else value


def _list(offsets: np.ndarray, fields: dict[str, pa.Array]) -> pa.ListArray:
    return pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()),
        pa.StructArray.from_arrays([_flat(f) for f in fields.values()], names=list(fields)),
    )


def _ids(prefix: str, count: int, width: int = 10) -> np.ndarray:
    """prefix + zero-padded 0..count-1 (numpy's zfill cannot take an empty array)."""
    if not count:
        return np.array([], dtype=str)
    return np.char.add(prefix, np.char.zfill(np.arange(count).astype(str), width))


def _ts(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype("datetime64[us]"), pa.timestamp("us", tz="UTC"))


def generate(
    path: Path, sessions: int = 1_000_000, masques: int = 200, skills: int = 30, seed: int = 7
) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    n = sessions
    names = np.array([f"masque-{i:03d}" for i in range(masques)])
    versions_per = rng.integers(1, 4, masques)
    masque_ring = np.array(RINGS)[rng.choice(4, masques, p=[0.1, 0.4, 0.3, 0.2])]
    skill_uris = np.array([f"skill://domain{i % 6}/skill{i:02d}" for i in range(skills)])
    claims = {m: rng.choice(skills, rng.integers(1, 4), replace=False) for m in range(masques)}
    claim_levels = {m: rng.integers(0, 5, len(claims[m])) for m in range(masques)}
    quality = rng.normal(1.0, 0.8, masques)  # each masque has its own typical score

    m = rng.integers(0, masques, n)
    v = (rng.random(n) * versions_per[m]).astype(int)
    actor_idx = rng.integers(0, 500, n)
    actor_ring = np.array(RINGS)[np.minimum(actor_idx % 7, 3)]
    start = YEAR_START + (rng.random(n) * 365 * 86400e6).astype("timedelta64[us]")
    dur = (rng.lognormal(7.0, 1.2, n) * 1e6).astype("timedelta64[us]")
    status = np.array(STATUSES)[rng.choice(4, n, p=[0.9, 0.03, 0.04, 0.03])]
    ended = status != "active"
    end = start + dur
    intent = np.char.add(
        np.char.add(np.array(VERBS)[rng.integers(0, 10, n)], " "), np.array(OBJECTS)[rng.integers(0, 6, n)]
    )
    ids = _ids("ses_", n)
    version = np.char.add("1.", v.astype(str))
    version = np.char.add(version, ".0")

    # Scores: 70% scored once, a tenth of those twice (the later one is current).
    scored = rng.random(n) < 0.7
    rescored = scored & (rng.random(n) < 0.1)
    per = scored.astype(int) + rescored.astype(int)
    s_off = np.concatenate([[0], np.cumsum(per)])
    owner = np.repeat(np.arange(n), per)
    value = np.clip(np.round(quality[m[owner]] + rng.normal(0, 1, len(owner))), -1, 3).astype(int) + 1
    s_created = (
        end[owner] + np.timedelta64(60, "s") + (np.arange(len(owner)) - s_off[owner]) * np.timedelta64(3600, "s")
    )
    scores = _list(
        s_off,
        {
            "id": pa.array(_ids("scr_", len(owner))),
            "symbol": pa.array(np.array(SYMBOLS)[value]),
            "notes": pa.nulls(len(owner), pa.string()),
            "scored_by": pa.array(np.char.add("actor-", actor_idx[owner].astype(str))),
            "created_at": _ts(s_created),
        },
    )

    # Events: started for every session, ended for the finished ones.
    e_per = 1 + ended.astype(int)
    e_off = np.concatenate([[0], np.cumsum(e_per)])
    e_owner = np.repeat(np.arange(n), e_per)
    second = (np.arange(len(e_owner)) - e_off[e_owner]) == 1
    e_ts = np.where(second, end[e_owner], start[e_owner])
    e_type = np.where(second, "mask_session_ended", "mask_session_started")
    events = _list(
        e_off,
        {
            "id": pa.array(_ids("evt_", len(e_owner))),
            "ts": _ts(e_ts),
            "type": pa.array(e_type),
            "session_id": pa.array(ids[e_owner]),
            "masque": pa.array(names[m[e_owner]]),
            "version": pa.array(version[e_owner]),
            "actor": pa.array(np.char.add("actor-", actor_idx[e_owner].astype(str))),
            "originator": pa.array(np.char.add("actor-", actor_idx[e_owner].astype(str))),
            "payload": pa.array(np.full(len(e_owner), "{}")),
        },
    )

    # Each session lists its masque's claims: flat row i of the column is claim (i - its session's
    # offset) of that masque, i.e. k_start[masque] + position.
    per_masque = np.array([len(claims[i]) for i in range(masques)])
    k_counts = per_masque[m]
    k_off = np.concatenate([[0], np.cumsum(k_counts)])
    k_uri = np.concatenate([skill_uris[claims[int(i)]] for i in range(masques)])
    k_lvl = np.concatenate([np.array(LEVELS)[claim_levels[int(i)]] for i in range(masques)])
    k_start = np.concatenate([[0], np.cumsum(per_masque)])
    k_index = np.repeat(k_start[m], k_counts) + np.arange(k_off[-1]) - np.repeat(k_off[:-1], k_counts)
    skills_col = _list(k_off, {"uri": pa.array(k_uri[k_index]), "level": pa.array(k_lvl[k_index])})

    null = pa.nulls(n, pa.string())
    table = pa.table(
        {
            "kind": pa.array(np.full(n, "session")),
            "id": pa.array(ids),
            "masque": pa.array(names[m]),
            "version": pa.array(version),
            "content_hash": null,
            "source_path": null,
            "masque_ring": pa.array(masque_ring[m]),
            "actor": pa.array(np.char.add("actor-", actor_idx.astype(str))),
            "actor_ring": pa.array(actor_ring),
            "originator": pa.array(np.char.add("actor-", actor_idx.astype(str))),
            "parent_id": null,
            "scope": pa.array(np.full(n, "global")),
            "intent": pa.array(intent),
            "role": null,
            "status": pa.array(status),
            "started_at": _ts(start),
            "expires_at": pa.nulls(n, pa.timestamp("us", tz="UTC")),
            "ended_at": pa.array(
                np.where(ended, end, np.datetime64("NaT")).astype("datetime64[us]"), pa.timestamp("us", tz="UTC")
            ),
            "end_reason": pa.array(np.where(ended, "released", None)),
            "exit_code": pa.nulls(n, pa.int32()),
            "metadata": null,
            "skills": skills_col,
            "scores": scores,
            "events": events,
        }
    )
    refusals = _refusals(rng, n // 50, names, version_pool=versions_per, table_schema=table.schema)
    pq.write_table(pa.concat_tables([table, refusals]), path, compression="zstd", row_group_size=122_880)
    return {"sessions": n, "scores": len(owner), "events": len(e_owner) + len(refusals), "refusals": len(refusals)}


def _refusals(
    rng: np.random.Generator, count: int, names: np.ndarray, version_pool: np.ndarray, table_schema: pa.Schema
) -> pa.Table:
    m = rng.integers(0, len(names), count)
    v = (rng.random(count) * version_pool[m]).astype(int)
    ts = YEAR_START + (rng.random(count) * 365 * 86400e6).astype("timedelta64[us]")
    actor = np.char.add("actor-", rng.integers(0, 500, count).astype(str))
    events = _list(
        np.arange(count + 1),
        {
            "id": pa.array(_ids("evt_r", count, 9)),
            "ts": _ts(ts),
            "type": pa.array(np.where(rng.random(count) < 0.6, "intent_denied", "ring_refused")),
            "session_id": pa.nulls(count, pa.string()),
            "masque": pa.array(names[m]),
            "version": pa.array(np.char.add(np.char.add("1.", v.astype(str)), ".0")),
            "actor": pa.array(actor),
            "originator": pa.array(actor),
            "payload": pa.array(np.full(count, "{}")),
        },
    )
    columns = {}
    for field in table_schema:
        if field.name == "kind":
            columns["kind"] = pa.array(np.full(count, "event"))
        elif field.name == "events":
            columns["events"] = events
        elif field.name in ("skills", "scores"):
            columns[field.name] = pa.ListArray.from_arrays(
                pa.array(np.zeros(count + 1), pa.int32()), pa.nulls(0, field.type.value_type)
            )
        else:
            columns[field.name] = pa.nulls(count, field.type)
    return pa.table(columns, schema=table_schema)


if __name__ == "__main__":
    import sys
    import time

    t0 = time.perf_counter()
    print(generate(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000))
    print(f"{time.perf_counter() - t0:.1f}s")

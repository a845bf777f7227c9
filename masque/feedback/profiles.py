"""The derived persona profile: a materialized view over a masque's observations (seed 001 §4).

A profile is built from the masque file and its observations: locally by default (traits, counts and a
plain summary; free and instant), or with `llm=True` by the model configured in `[llm]` (masque.llm),
which writes the summary. It is not rebuilt on every observation: recording one sets `stale` on the
profile (masque.feedback.observations), and reading a stale profile returns it marked stale, leaving the
choice to pay for a rebuild (`refresh=True`) to the caller.

A rebuild reads the observations in one short turn, builds (maybe for seconds, with a model) holding
no turn, and writes in a second turn naming the profile version it read: if another writer rebuilt in
between, that is a `Conflict` and the rebuild is re-read and re-applied (bounded). Observations that
arrive while it builds leave the written profile stale, since `built_upto` names the last one included.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from masque.durations import as_utc, utcnow
from masque.errors import Conflict
from masque.feedback import access, observations
from masque.feedback.traits import traits
from masque.store import turns
from masque.store.events import record_event

if TYPE_CHECKING:
    import duckdb

    from masque.trust.rings import Selection

ATTEMPTS = 3
LLM_OBSERVATIONS = 50  # the newest observations shown to the model
SYSTEM_PROMPT = (
    "You summarise what is known about a persona (a masque an AI agent wears) from its traits and observed"
    " facts. Write three to five plain sentences. State only what the data supports."
)


@dataclass(frozen=True)
class Profile:
    masque: str
    version: int
    body: Mapping[str, Any]
    built_upto: int
    latest: int  # newest observation seq now
    source: str
    stale: bool
    built_by: str
    built_at: dt.datetime
    refreshed: bool = False  # built by this call

    def to_json(self) -> dict[str, Any]:
        return {
            "masque": self.masque,
            "version": self.version,
            "stale": self.stale,
            "source": self.source,
            "built_upto": self.built_upto,
            "latest_observation": self.latest,
            "built_by": self.built_by,
            "built_at": self.built_at.isoformat(),
            "refreshed": self.refreshed,
            **dict(self.body),
        }


def local_summary(key: str, found: Mapping[str, Any], counts: Mapping[str, int]) -> str:
    if not counts:
        return f"No observations of {key} yet."
    kinds = ", ".join(f"{k} ({n})" for k, n in sorted(counts.items()))
    total = sum(counts.values())
    return f"{key}: {total} observation{'s' if total != 1 else ''}: {kinds}."


def build_body(info: access.MasqueInfo, found: Sequence[observations.Observation], *, llm: bool) -> dict[str, Any]:
    derived = traits(info.masque, info.key, found)
    counts: dict[str, int] = {}
    for o in found:
        counts[o.kind] = counts.get(o.kind, 0) + 1
    body: dict[str, Any] = {
        "traits": derived,
        "kinds": counts,
        "observations": len(found),
        "last_observed": found[-1].ts.isoformat() if found else None,
        "summary": local_summary(info.key, derived, counts),
    }
    if llm:
        from masque import llm as provider

        recent = [{"kind": o.kind, "data": dict(o.data), "ts": o.ts.isoformat()} for o in found[-LLM_OBSERVATIONS:]]
        prompt = (
            f"Persona: {info.key}\nTraits (JSON): {json.dumps(derived, sort_keys=True, default=str)}\n"
            f"Newest observations (JSON): {json.dumps(recent, default=str)}\nSummarise this persona."
        )
        body["summary"] = provider.chat(prompt, system=SYSTEM_PROMPT).strip()
    return body


_COLUMNS = "masque, version, body, built_upto, source, stale, built_by, built_at"


def _row(conn: duckdb.DuckDBPyConnection, key: str) -> tuple[Any, ...] | None:
    return conn.execute(f"SELECT {_COLUMNS} FROM profiles WHERE masque = ?", [key]).fetchone()


def _latest(conn: duckdb.DuckDBPyConnection, key: str) -> int:
    row = conn.execute("SELECT max(seq) FROM observations WHERE masque = ?", [key]).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _profile(row: Sequence[Any], latest: int, refreshed: bool = False) -> Profile:
    built = as_utc(row[7])
    assert built is not None
    stale = bool(row[5]) or latest > int(row[3])
    return Profile(
        str(row[0]),
        int(row[1]),
        json.loads(row[2]),
        int(row[3]),
        latest,
        str(row[4]),
        stale,
        str(row[6]),
        built,
        refreshed,
    )


def profile(masque: str, *, refresh: bool = False, llm: bool = False, selection: Selection | None = None) -> Profile:
    """The masque's profile: cached (maybe stale) unless `refresh`; built on first read."""
    info = access.find_masque(masque)
    turns.prepare()
    with turns.connect() as conn:
        who = access.caller(conn, selection)
        access.require_known(conn, info)
        access.check_masque(who, info, "reading the profile")
        row = _row(conn, info.key)
        if row is not None and not refresh:
            return _profile(row, _latest(conn, info.key))
    conflicts = 0
    while True:
        try:
            return _rebuild(info, who, llm=llm)
        except Conflict:
            conflicts += 1
            if conflicts >= ATTEMPTS:
                raise


def _rebuild(info: access.MasqueInfo, who: access.Caller, *, llm: bool) -> Profile:
    with turns.connect() as conn:
        row = _row(conn, info.key)
        read_version = int(row[1]) if row else 0
        found = observations.rows(conn, info.key)
    body = build_body(info, found, llm=llm)  # no turn held: a model may take seconds
    upto = found[-1].seq if found else 0
    with turns.transaction() as conn:
        write_profile(conn, info.key, read_version, body, upto, "llm" if llm else "local", who.actor.name)
        row = _row(conn, info.key)
        assert row is not None
        return _profile(row, _latest(conn, info.key), refreshed=True)


def write_profile(
    conn: duckdb.DuckDBPyConnection,
    key: str,
    expected: int,
    body: Mapping[str, Any],
    upto: int,
    source: str,
    actor: str,
) -> int:
    """Write version expected+1 of the profile if `expected` is still current; else Conflict (exit 6)."""
    row = conn.execute("SELECT version FROM profiles WHERE masque = ?", [key]).fetchone()
    now_current = int(row[0]) if row else 0
    if now_current != expected:
        raise Conflict(
            f"the profile of {key!r} is at version {now_current}, not {expected}: another writer rebuilt it first",
            expected=expected,
            current=now_current,
            hint=f"read it again with `masque profile {key}`",
        )
    stale = _latest(conn, key) > upto
    params = [json.dumps(body, default=str), upto, source, stale, actor, utcnow()]
    if row is None:
        conn.execute(f"INSERT INTO profiles ({_COLUMNS}) VALUES (?, 1, ?, ?, ?, ?, ?, ?)", [key, *params])
    else:
        conn.execute(
            "UPDATE profiles SET version = version + 1, body = ?, built_upto = ?, source = ?, stale = ?,"
            " built_by = ?, built_at = ? WHERE masque = ? AND version = ?",
            [*params, key, expected],
        )
    record_event(
        conn,
        "profile_rebuilt",
        masque=key,
        actor=actor,
        payload={"version": expected + 1, "built_upto": upto, "source": source, "stale": stale},
    )
    return expected + 1

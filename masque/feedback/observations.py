"""Observations: immutable facts about a masque (or an actor wearing it). The one writer of the table.

DuckDB has no triggers, so immutability is enforced here and made checkable:

- this module only ever INSERTs into `observations`, and tests/test_feedback.py fails if any module
  under masque/ issues UPDATE or DELETE on the table (or inserts into it from anywhere else);
- each observation carries `hash = sha256(prev_hash + its content)`, chained per masque (`seq` 1..n), and
  each is announced by an `observation_recorded` event carrying its hash in the append-only event log.
  `verify` recomputes the chain: an edited row breaks its hash, a removed one breaks the chain, and a
  removed tail is caught against the events.

Recording an observation marks the masque's derived profile stale in the same transaction (seed 001
§4: the profile is a materialized view over observations).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from masque.durations import as_utc, utcnow
from masque.errors import NotFound, Refused, UsageError
from masque.feedback import access
from masque.ids import new_id
from masque.store import turns
from masque.store.events import record_event

if TYPE_CHECKING:
    import duckdb

    from masque.trust.rings import Selection

GENESIS = "0" * 64
KIND = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
RESERVED_KINDS = ("feedback",)  # written only by `masque feedback`, so feedback traits can be trusted
MAX_DATA_BYTES = 64 * 1024
EVENT = "observation_recorded"
_COLUMNS = "id, masque, seq, kind, actor_subject, data, recorded_by, session_id, ts, prev_hash, hash"


@dataclass(frozen=True)
class Observation:
    id: str
    masque: str
    seq: int
    kind: str
    actor_subject: str | None
    data: Mapping[str, Any]
    recorded_by: str
    session_id: str | None
    ts: dt.datetime
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "masque": self.masque,
            "seq": self.seq,
            "kind": self.kind,
            "actor_subject": self.actor_subject,
            "data": dict(self.data),
            "recorded_by": self.recorded_by,
            "session_id": self.session_id,
            "ts": self.ts.isoformat(),
            "hash": self.hash,
        }


@dataclass(frozen=True)
class Problem:
    masque: str
    seq: int | None
    observation: str | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"masque": self.masque, "seq": self.seq, "observation": self.observation, "message": self.message}


@dataclass(frozen=True)
class Verification:
    checked: int
    masques: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "masques": list(self.masques),
            "problems": [p.to_json() for p in self.problems],
        }


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def digest(
    prev_hash: str,
    *,
    id: str,
    masque: str,
    seq: int,
    kind: str,
    actor_subject: str | None,
    data: Mapping[str, Any],
    recorded_by: str,
    session_id: str | None,
    ts: dt.datetime,
) -> str:
    """The chained content hash of one observation."""
    when = as_utc(ts)
    assert when is not None
    body = canonical(
        {
            "id": id,
            "masque": masque,
            "seq": seq,
            "kind": kind,
            "actor_subject": actor_subject,
            "data": data,
            "recorded_by": recorded_by,
            "session_id": session_id,
            "ts": when.isoformat(timespec="microseconds"),
        }
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def parse_data(text: str) -> dict[str, Any]:
    """`--data JSON`: must be a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--data is not valid JSON: {exc.msg} at column {exc.colno}",
            hint="quote it for the shell: --data '{\"level\": 4}'",
        ) from None
    if not isinstance(value, dict):
        raise UsageError("--data must be a JSON object", hint="e.g. --data '{\"level\": 4}'")
    return value


def append(
    conn: duckdb.DuckDBPyConnection,
    who: access.Caller,
    masque: str,
    kind: str,
    data: Mapping[str, Any],
    actor_subject: str | None = None,
) -> Observation:
    """Insert one observation at the end of the masque's chain (inside the caller's transaction)."""
    try:
        size = len(canonical(data).encode())
    except ValueError:
        raise UsageError("--data holds NaN or Infinity, which JSON does not allow") from None
    if size > MAX_DATA_BYTES:
        raise UsageError(f"--data is {size} bytes; an observation holds at most {MAX_DATA_BYTES}")
    last = conn.execute(
        "SELECT seq, hash FROM observations WHERE masque = ? ORDER BY seq DESC LIMIT 1", [masque]
    ).fetchone()
    seq, prev = (int(last[0]) + 1, str(last[1])) if last else (1, GENESIS)
    ts = utcnow()
    obs_id = new_id("obs_")
    fields = dict(
        id=obs_id,
        masque=masque,
        seq=seq,
        kind=kind,
        actor_subject=actor_subject,
        data=dict(data),
        recorded_by=who.actor.name,
        session_id=who.session_id,
        ts=ts,
    )
    hashed = digest(prev, **fields)  # type: ignore[arg-type]
    conn.execute(
        f"INSERT INTO observations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [obs_id, masque, seq, kind, actor_subject, canonical(data), who.actor.name, who.session_id, ts, prev, hashed],
    )
    # The materialized view is stale from now on (seed 001 §4); its row carries the flag.
    conn.execute("UPDATE profiles SET stale = true WHERE masque = ?", [masque])
    record_event(
        conn,
        EVENT,
        session_id=who.session_id,
        masque=masque,
        actor=who.actor.name,
        payload={"observation": obs_id, "seq": seq, "kind": kind, "hash": hashed},
        ts=ts,
    )
    return Observation(
        obs_id, masque, seq, kind, actor_subject, dict(data), who.actor.name, who.session_id, ts, prev, hashed
    )


def observe(
    masque: str,
    kind: str,
    data: Mapping[str, Any],
    *,
    actor_subject: str | None = None,
    selection: Selection | None = None,
) -> Observation:
    """Record a fact about `masque` (the caller must qualify for its ring)."""
    if not KIND.match(kind):
        raise UsageError(
            f"--kind {kind!r} is not a valid kind",
            hint="lowercase letters, digits, - and _, starting with a letter: e.g. focus",
        )
    if kind in RESERVED_KINDS:
        raise UsageError(f"kind {kind!r} is recorded by `masque feedback` only", hint="choose another kind")
    info = access.find_masque(masque)
    turns.prepare()
    with turns.transaction() as conn:
        who = access.caller(conn, selection)
        access.require_known(conn, info)
        if info.masque is None:
            raise NotFound(
                f"no masque named {info.key!r} on the search path",
                hint="observations are recorded about masques on the search path",
            )
        access.check_masque(who, info, "observe")
        if actor_subject is not None:
            _check_subject(conn, who, actor_subject)
        return append(conn, who, info.key, kind, data, actor_subject)


def _check_subject(conn: duckdb.DuckDBPyConnection, who: access.Caller, name: str) -> None:
    from masque.trust import rings

    subject = rings.find_actor(conn, name)
    if subject is None or not rings.sees(who.actor, subject.ring):
        raise NotFound(f"no actor named {name!r}", hint="`masque actor list` shows the actors you can see")


def rows(conn: duckdb.DuckDBPyConnection, masque: str, *, kind: str | None = None) -> list[Observation]:
    where, params = ("AND kind = ?", [masque, kind]) if kind else ("", [masque])
    found = conn.execute(
        f"SELECT {_COLUMNS} FROM observations WHERE masque = ? {where} ORDER BY seq", params
    ).fetchall()
    return [_from_row(r) for r in found]


def _from_row(r: Sequence[Any]) -> Observation:
    ts = as_utc(r[8])
    assert ts is not None
    return Observation(
        str(r[0]), str(r[1]), int(r[2]), str(r[3]), r[4], json.loads(r[5]), str(r[6]), r[7], ts, str(r[9]), str(r[10])
    )


def list_observations(masque: str, *, kind: str | None = None, selection: Selection | None = None) -> list[Observation]:
    """A masque's observations, oldest first."""
    info = access.find_masque(masque)
    turns.prepare()
    with turns.connect() as conn:
        who = access.caller(conn, selection)
        access.require_known(conn, info)
        access.check_masque(who, info, "reading observations")
        return rows(conn, info.key, kind=kind)


def verify(masque: str | None = None, *, selection: Selection | None = None) -> Verification:
    """Recompute every chain the caller may see (or one masque's): edits, gaps and removals are problems."""
    info = access.find_masque(masque) if masque else None
    turns.prepare()
    with turns.connect() as conn:
        who = access.caller(conn, selection)
        if info is not None:
            access.require_known(conn, info)
            access.check_masque(who, info, "verifying observations")
            keys = [info.key]
        else:
            keys = _visible_keys(conn, who)
        problems: list[Problem] = []
        checked = 0
        for key in keys:
            found = rows(conn, key)
            checked += len(found)
            problems += _check_chain(key, found)
            problems += _check_events(conn, key, found)
    return Verification(checked, tuple(keys), tuple(problems))


def _visible_keys(conn: duckdb.DuckDBPyConnection, who: access.Caller) -> list[str]:
    recorded = {str(r[0]) for r in conn.execute("SELECT DISTINCT masque FROM observations").fetchall()}
    recorded |= {
        str(r[0]) for r in conn.execute("SELECT DISTINCT masque FROM events WHERE type = ?", [EVENT]).fetchall()
    }
    keys = []
    for key in sorted(recorded):
        try:
            access.check_masque(who, access.find_masque(key), "verify")
        except Refused:
            continue
        keys.append(key)
    return keys


def _check_chain(key: str, found: Sequence[Observation]) -> list[Problem]:
    problems = []
    prev = GENESIS
    for expected, o in enumerate(found, start=1):
        if o.seq != expected:
            problems.append(
                Problem(key, o.seq, o.id, f"seq {o.seq} follows seq {expected - 1}: observation(s) removed")
            )
        if o.prev_hash != prev:
            problems.append(
                Problem(key, o.seq, o.id, "prev_hash does not match the previous observation: the chain is broken")
            )
        fields = dict(
            id=o.id,
            masque=o.masque,
            seq=o.seq,
            kind=o.kind,
            actor_subject=o.actor_subject,
            data=o.data,
            recorded_by=o.recorded_by,
            session_id=o.session_id,
            ts=o.ts,
        )
        if digest(o.prev_hash, **fields) != o.hash:  # type: ignore[arg-type]
            problems.append(Problem(key, o.seq, o.id, "content does not match its hash: the observation was changed"))
        prev = o.hash
    return problems


def _check_events(conn: duckdb.DuckDBPyConnection, key: str, found: Sequence[Observation]) -> list[Problem]:
    by_id = {o.id: o for o in found}
    problems = []
    for (payload,) in conn.execute(
        "SELECT payload FROM events WHERE type = ? AND masque = ? ORDER BY id", [EVENT, key]
    ).fetchall():
        announced = json.loads(payload)
        obs = by_id.get(announced.get("observation"))
        if obs is None:
            problems.append(
                Problem(
                    key,
                    announced.get("seq"),
                    announced.get("observation"),
                    "recorded in the event log but missing from the store: it was removed",
                )
            )
        elif obs.hash != announced.get("hash"):
            problems.append(Problem(key, obs.seq, obs.id, "its hash differs from the one in the event log"))
    return problems

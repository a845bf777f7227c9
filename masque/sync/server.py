"""The server's side of sync: apply a pushed batch once, and say what changed since a watermark.

The trust boundary (docs/sessions.md#threat-model): the pusher is whoever its bearer key or token
proves, and everything pushed is attributed to that actor, never to a name the client sends (those are
kept in `sync_received.origin` / the session's metadata as the client's claim, nothing more). Any
proven actor may push, but only as itself; each record passes the same ring rule as the verb that
would have written it here (observing or judging a masque needs its ring), and a pushed session
arrives like a `masque sessions import` row: never live, no credential, the pusher's ring, its ring
claim clamped to the pusher's. A record the rules refuse is answered as rejected (with its reason)
while the rest of the batch applies, so one bad record never blocks an outbox for ever.

Idempotence: a batch's id is the hash of its records (checked here); the whole batch is applied in
ONE transaction that also records the batch id and each record's origin id, so a batch re-sent after
a lost reply is answered from `sync_batches` and a record re-sent in another batch is skipped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from masque.durations import as_utc, utcnow
from masque.enums import Ring
from masque.errors import MasqueError, NotFound, Refused, UsageError
from masque.feedback import access, observations
from masque.ids import new_id
from masque.store import turns
from masque.store.events import record_event
from masque.sync import outbox
from masque.trust import rings

if TYPE_CHECKING:
    import duckdb

    from masque.trust.rings import Selection

MAX_BATCH_RECORDS = 1000
OVERLAP = dt.timedelta(seconds=5)  # a pull re-reads this much before its watermark: commits land late
TERMINAL = ("ended", "revoked", "abandoned", "expired")


class Rejected(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _check_shape(batch: Any) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    if not isinstance(batch, dict) or not isinstance(batch.get("records"), list):
        raise UsageError("a sync batch is {id, records: [...], origin: {...}}")
    records = batch["records"]
    if not records:
        raise UsageError("a sync batch holds at least one record")
    if len(records) > MAX_BATCH_RECORDS:
        raise UsageError(f"a batch holds at most {MAX_BATCH_RECORDS} records, got {len(records)}")
    for i, r in enumerate(records):
        if not isinstance(r, dict) or r.get("kind") not in outbox.KINDS or not isinstance(r.get("id"), str):
            raise UsageError(f"record {i} needs a kind ({', '.join(outbox.KINDS)}) and an id")
    wanted = outbox.batch_id(records)
    if batch.get("id") != wanted:
        raise UsageError(f"batch id {batch.get('id')!r} does not match its records ({wanted})")
    given = batch.get("origin")
    origin = given if isinstance(given, dict) else {}
    return wanted, records, {str(k): str(v)[:200] for k, v in list(origin.items())[:20]}


def apply_batch(batch: Any, *, selection: Selection | None = None) -> dict[str, Any]:
    """Apply one pushed batch as the proven caller, once; returns counts and what was rejected."""
    bid, records, origin = _check_shape(batch)
    # Masque rings come off the search path: read before the store turn (as every feedback verb does).
    names = {_masque_name(r) for r in records if r["kind"] in ("observation", "feedback")}
    infos = {n: access.find_masque(n) for n in names if n}
    turns.prepare()
    with turns.transaction() as conn:
        who = access.caller(conn, selection)
        rings.check_qualified(who.actor, who.actor.ring, "sync push")  # a suspended actor pushes nothing
        done = conn.execute(
            "SELECT result FROM sync_batches WHERE actor = ? AND id = ?", [who.actor.name, bid]
        ).fetchone()
        if done is not None:
            return {**json.loads(done[0]), "replayed": True}
        applied = {k: 0 for k in outbox.KINDS}
        duplicates = 0
        rejected: list[dict[str, str]] = []
        mappers_touched: set[str] = set()
        ids = sorted({str(r["id"]) for r in records})
        marks = ", ".join("?" for _ in ids)
        seen = {
            (str(k), str(o))
            for k, o in conn.execute(
                f"SELECT kind, origin_id FROM sync_received WHERE actor = ? AND origin_id IN ({marks})",
                [who.actor.name, *ids],
            ).fetchall()
        }
        received: dict[tuple[str, str], str | None] = {}  # this batch's records: origin -> id here
        rows: list[Any] = []
        now = utcnow()
        for r in records:
            kind, origin_id = str(r["kind"]), str(r["id"])
            if (kind, origin_id) in seen or (kind, origin_id) in received:
                duplicates += 1
                continue
            try:
                local_id = _apply(conn, who, r, infos, bid, origin, mappers_touched, received)
                applied[kind] += 1
            except (Rejected, MasqueError) as exc:
                rejected.append({"kind": kind, "id": origin_id, "reason": _reason(exc), "message": _message(exc)})
                local_id = None
            received[(kind, origin_id)] = local_id
            rows += [who.actor.name, kind, origin_id, local_id, bid, json.dumps({**origin, **_claims(r)}), now]
        if received:  # one statement for the whole batch: each statement costs milliseconds under the lock
            conn.execute(
                "INSERT INTO sync_received (actor, kind, origin_id, local_id, batch_id, origin, received_at) VALUES "
                + ", ".join("(?, ?, ?, ?, ?, ?, ?)" for _ in received),
                rows,
            )
        result = {
            "batch": bid,
            "actor": who.actor.name,
            "records": len(records),
            "applied": applied,
            "duplicates": duplicates,
            "rejected": rejected,
            "replayed": False,
        }
        conn.execute(
            "INSERT INTO sync_batches (actor, id, received_at, records, result) VALUES (?, ?, ?, ?, ?)",
            [who.actor.name, bid, utcnow(), len(records), json.dumps(result)],
        )
        record_event(conn, "sync_batch_applied", actor=who.actor.name, payload={**result, "origin": origin})
    _learn(mappers_touched, who.actor.name)
    return result


def _masque_name(r: dict[str, Any]) -> str:
    sug = r.get("suggestion")
    name = r.get("masque") if r["kind"] == "observation" else (sug.get("masque") if isinstance(sug, dict) else None)
    return name if isinstance(name, str) and len(name) < 300 else ""


def _reason(exc: Exception) -> str:
    if isinstance(exc, (Rejected, Refused)):
        return exc.reason
    return "not_found" if isinstance(exc, NotFound) else "invalid"


def _message(exc: Exception) -> str:
    return exc.message if isinstance(exc, (Rejected, MasqueError)) else str(exc)


def _claims(r: dict[str, Any]) -> dict[str, Any]:
    """What the client said about who and when: kept as its claim, never used as the attribution."""
    keys = ("actor", "recorded_by", "scored_by", "actor_ring", "masque_ring", "actor_subject", "ts", "started_at")
    return {f"claimed_{k}": r[k] for k in keys if r.get(k) is not None}


def _learn(mapper_ids: set[str], actor: str) -> None:
    """Pushed feedback trains the server's mapper, after the batch committed; a failure leaves it pending."""
    from masque.feedback import learning

    for mapper_id in sorted(mapper_ids):
        # A failure leaves the feedback rows pending; the next feedback on that rule applies them.
        with contextlib.suppress(MasqueError):
            learning.learn(mapper_id, actor=actor)


def _apply(
    conn: duckdb.DuckDBPyConnection,
    who: access.Caller,
    r: dict[str, Any],
    infos: dict[str, access.MasqueInfo],
    bid: str,
    origin: dict[str, str],
    mappers_touched: set[str],
    received: dict[tuple[str, str], str | None],
) -> str | None:
    kind = r["kind"]
    if kind == "observation":
        info = _masque(conn, who, infos, r.get("masque"), "observe")
        obs_kind, data = r.get("obs_kind"), r.get("data")
        if not isinstance(obs_kind, str) or not observations.KIND.match(obs_kind) or obs_kind == "feedback":
            raise Rejected("invalid", f"observation kind {obs_kind!r} is not accepted")
        if not isinstance(data, dict):
            raise Rejected("invalid", "observation data must be a JSON object")
        return observations.append(conn, who, info.key, obs_kind, data).id
    if kind == "feedback":
        return _feedback(conn, who, r, infos, mappers_touched)
    if kind == "session":
        return _session(conn, who, r, bid, origin)
    return _score(conn, who, r, received)


def _masque(
    conn: duckdb.DuckDBPyConnection, who: access.Caller, infos: dict[str, access.MasqueInfo], name: Any, action: str
) -> access.MasqueInfo:
    info = infos.get(str(name or ""))
    if info is None:
        raise Rejected("invalid", "the record names no masque")
    access.require_known(conn, info)
    if info.masque is None:
        raise Rejected("unknown_masque", f"no masque named {info.key!r} on this server's search path")
    access.check_masque(who, info, action)
    return info


def _feedback(
    conn: duckdb.DuckDBPyConnection,
    who: access.Caller,
    r: dict[str, Any],
    infos: dict[str, access.MasqueInfo],
    mappers_touched: set[str],
) -> str:
    from masque.feedback import mappers

    sug = r.get("suggestion") or {}
    info = _masque(conn, who, infos, sug.get("masque"), "feedback")
    score = r.get("score")
    if not isinstance(score, (int, float)) or not -1.0 <= float(score) <= 1.0:
        raise Rejected("invalid", f"score {score!r} is not a number from -1 to 1")
    mapper_id, rule_id = str(sug.get("mapper_id", "")), str(sug.get("rule_id", ""))
    try:
        mapper = mappers.current(conn, mapper_id)
    except MasqueError:
        raise Rejected("unknown_mapper", f"this server has no mapper {mapper_id!r}") from None
    if rule_id not in mapper.weights():
        raise Rejected("unknown_rule", f"mapper {mapper_id!r} here has no rule {rule_id!r}")
    now = utcnow()
    sug_id, fid = new_id("sug_"), new_id("fbk_")
    # The suggestion was made on the client; it is recorded here for the pusher, as if asked here.
    conn.execute(
        "INSERT INTO suggestions (id, mapper_id, mapper_version, rule_id, type, masque, actor, session_id, text,"
        " weight, ts) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
        [
            sug_id,
            mapper_id,
            mapper.version,
            rule_id,
            str(sug.get("type", "")),
            info.key,
            who.actor.name,
            str(sug.get("text", ""))[:4000],
            float(sug.get("weight") or 0.0),
            now,
        ],
    )
    notes = r.get("notes")
    conn.execute(
        "INSERT INTO feedback (id, suggestion_id, target, mapper_id, rule_id, score, notes, actor, ts)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            fid,
            sug_id,
            sug_id,
            mapper_id,
            rule_id,
            float(score),
            notes if isinstance(notes, str) else None,
            who.actor.name,
            now,
        ],
    )
    traits = (mapper.doc.get("trait_mappings") or {}).get(str(sug.get("type", "")), [])
    data = {
        "suggestion": sug_id,
        "mapper": mapper_id,
        "rule": rule_id,
        "type": sug.get("type"),
        "score": float(score),
        "traits": list(traits),
        "synced": True,
    }
    observations.append(conn, who, info.key, "feedback", data)
    mappers_touched.add(mapper_id)
    return fid


def _when(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return as_utc(when) if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _session(
    conn: duckdb.DuckDBPyConnection, who: access.Caller, r: dict[str, Any], bid: str, origin: dict[str, str]
) -> str | None:
    sid = str(r["id"])
    if not sid.startswith("ses_") or len(sid) > 64:
        raise Rejected("invalid", f"{sid!r} is not a session id")
    if conn.execute("SELECT 1 FROM sessions WHERE id = ?", [sid]).fetchone():
        raise Rejected("session_exists", f"session {sid} is already in this store; it is never overwritten")
    started = _when(r.get("started_at"))
    if started is None or not r.get("masque") or not r.get("version") or not isinstance(r.get("intent"), str):
        raise Rejected("invalid", "a session needs masque, version, intent and started_at")
    try:
        claimed = Ring(str(r.get("masque_ring")))
    except ValueError:
        claimed = Ring.OUTSIDER
    # Nothing pushed widens anything: the ring claim is never more trusted than the pusher.
    masque_ring = claimed if not claimed.outranks(who.actor.ring) else who.actor.ring
    status = str(r.get("status"))
    live = status not in TERMINAL
    now = utcnow()
    metadata = {
        "imported": {"by": who.actor.name, "at": now.isoformat(), "file": f"sync:{bid}"},
        "synced": {"by": who.actor.name, "batch": bid, "origin": {**origin, **_claims(r)}},
    }
    exit_code = r.get("exit_code") if isinstance(r.get("exit_code"), int) else None
    conn.execute(
        "INSERT INTO sessions (id, masque, version, content_hash, source_path, masque_ring, actor, actor_ring,"
        " originator, parent_id, scope, intent, role, status, started_at, expires_at, ended_at, end_reason,"
        " exit_code, holder_pid, holder_host, metadata)"
        " VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, NULL, 'global', ?, ?, ?, ?, NULL, ?, ?, ?, NULL, NULL, ?)",
        [
            sid,
            str(r["masque"])[:200],
            str(r["version"])[:100],
            r.get("content_hash") if isinstance(r.get("content_hash"), str) else None,
            masque_ring.value,
            who.actor.name,
            who.actor.ring.value,
            who.actor.name,
            str(r["intent"])[:4000],
            r.get("role") if isinstance(r.get("role"), str) else None,
            "ended" if live else status,
            started,
            None if live else _when(r.get("ended_at")),
            "imported_live" if live else (str(r.get("end_reason"))[:200] if r.get("end_reason") else None),
            exit_code,
            json.dumps(metadata),
        ],
    )
    return sid


def _score(
    conn: duckdb.DuckDBPyConnection,
    who: access.Caller,
    r: dict[str, Any],
    received: dict[tuple[str, str], str | None],
) -> str:
    from masque.reflection import scoring

    key = ("session", str(r.get("session_id")))
    row = (
        (received[key],)
        if key in received
        else conn.execute(
            "SELECT local_id FROM sync_received WHERE actor = ? AND kind = 'session' AND origin_id = ?",
            [who.actor.name, key[1]],
        ).fetchone()
    )
    if row is None or row[0] is None:
        raise Rejected("unknown_session", f"session {r.get('session_id')!r} was not pushed here by {who.actor.name}")
    notes = r.get("notes") if isinstance(r.get("notes"), str) else None
    return scoring.add_score(conn, str(row[0]), str(r.get("symbol")), notes, who.actor.name).id


def changes(since: str | None, *, selection: Selection | None = None) -> dict[str, Any]:
    """Mapper versions, persona profiles and masque definitions changed since the watermark `since`.

    The watermark is the server's clock when the read began (ISO 8601); rows are read from OVERLAP
    before it, so one committed late is not missed, and the client applies them idempotently.
    """
    start = utcnow()
    after = _watermark(since)
    from_ts = after - OVERLAP if after else dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    turns.prepare()
    with turns.connect(read_only=True) as conn:
        who = access.caller(conn, selection)
        mappers = conn.execute(
            "SELECT id, version, doc, declared, reason, actor, created_at FROM mappers WHERE created_at >= ?"
            " ORDER BY id, version",
            [from_ts],
        ).fetchall()
        profiles = conn.execute(
            "SELECT masque, version, body, stale, built_at FROM profiles WHERE built_at >= ? ORDER BY masque", [from_ts]
        ).fetchall()
        definitions = conn.execute(
            "SELECT masque, version, content_hash, pinned_at FROM trusted_definitions WHERE pinned_at >= ?"
            " ORDER BY masque, version",
            [from_ts],
        ).fetchall()
    visible = []
    for masque, version, body, stale, built_at in profiles:
        try:
            access.check_masque(who, access.find_masque(str(masque)), "reading the profile")
        except MasqueError:
            continue  # a more trusted masque's profile is not the caller's to read
        visible.append(
            {
                "masque": masque,
                "version": int(version),
                "body": json.loads(body),
                "stale": bool(stale),
                "built_at": _iso(built_at),
            }
        )
    return {
        "since": since,
        "watermark": start.isoformat(),
        "mappers": [
            {
                "id": m[0],
                "version": int(m[1]),
                "doc": json.loads(m[2]),
                "declared_version": m[3],
                "reason": m[4],
                "actor": m[5],
                "created_at": _iso(m[6]),
            }
            for m in mappers
        ],
        "profiles": visible,
        "definitions": [
            {"masque": d[0], "version": d[1], "content_hash": d[2], "pinned_at": _iso(d[3])} for d in definitions
        ],
    }


def _iso(value: Any) -> str | None:
    when = as_utc(value)
    return when.isoformat() if when else None


def _watermark(since: str | None) -> dt.datetime | None:
    if not since:
        return None
    when = _when(since)
    if when is None:
        raise UsageError(f"since={since!r} is not a watermark", hint="pass the watermark a previous /sync returned")
    return when

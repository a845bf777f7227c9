"""The client's side of sync: remotes, push (the outbox, in batches), pull (the server's diff) and status.

A remote is a name, a URL and the PATH of a key file (an actor key on that server); the key is read
at each push or pull, never stored. Locally, adding or removing a remote, pushing and pulling are
admin verbs (the founder by default): they move every record of this home, and the server decides
as whom (the key's actor). `sync status` and `remote list` need only a proven caller.

Push: the outbox (masque.sync.outbox) is cut into batches; each batch's id is its content hash. A
batch leaves the outbox only when the server confirms it; the confirmation is recorded in one local
transaction, so a kill at any point loses nothing and the next push re-sends (the server then answers
from its record instead of applying twice).

Pull: `GET /sync?since=W` is applied in one local transaction together with the new watermark: a
mapper version already here is skipped, one that diverged (same version, other content, or a gap) is
kept as it is and reported as a conflict; profiles and definitions go to per-remote cache tables.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from masque.durations import as_utc, utcnow
from masque.enums import Ring
from masque.errors import (
    Conflict,
    ExitCode,
    MasqueError,
    NotFound,
    Refused,
    StoreBusy,
    StoreError,
    UsageError,
    ValidationFailed,
)
from masque.store import turns
from masque.sync import outbox

if TYPE_CHECKING:
    import duckdb
    import httpx2 as httpx

    from masque.trust.actors import Actor
    from masque.trust.rings import Selection

DEFAULT_BATCH = 100
TIMEOUT = 30.0
STATUS_TIMEOUT = 2.0


@dataclass(frozen=True)
class Remote:
    name: str
    url: str
    key_file: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "key_file": self.key_file}


@dataclass
class PushResult:
    remote: str
    url: str
    batches: int = 0
    sent: int = 0
    applied: dict[str, int] = field(default_factory=lambda: {k: 0 for k in outbox.KINDS})
    duplicates: int = 0
    replayed: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "remote": self.remote,
            "url": self.url,
            "batches": self.batches,
            "records": self.sent,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "replayed_batches": self.replayed,
            "rejected": self.rejected,
        }


@dataclass
class PullResult:
    remote: str
    watermark: str
    mappers_added: list[str] = field(default_factory=list)
    mappers_skipped: int = 0
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    profiles: int = 0
    definitions: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "remote": self.remote,
            "watermark": self.watermark,
            "mappers_added": self.mappers_added,
            "mappers_skipped": self.mappers_skipped,
            "conflicts": self.conflicts,
            "profiles": self.profiles,
            "definitions": self.definitions,
        }


# --- who is calling, locally -------------------------------------------------------------------


def _acting(conn: duckdb.DuckDBPyConnection, selection: Selection | None) -> Actor:
    from masque.trust import rings

    return rings.resolve_acting(conn, selection or rings.selection_from_env()).actor


def _admin(conn: duckdb.DuckDBPyConnection, selection: Selection | None, what: str) -> Actor:
    from masque.trust import rings

    actor = _acting(conn, selection)
    rings.check_qualified(actor, Ring.ADMIN, what)
    return actor


# --- remotes -----------------------------------------------------------------------------------


def check_key_file(path: Path) -> Path:
    """The key file must exist and be readable by its owner only (a key is a password)."""
    resolved = path.expanduser().resolve()
    try:
        info = resolved.stat()
    except OSError as exc:
        raise UsageError(f"cannot read the key file {resolved}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"the key file {resolved} is not a regular file")
    if info.st_mode & 0o077:
        raise UsageError(
            f"the key file {resolved} is readable by group or others (mode {stat.S_IMODE(info.st_mode):04o})",
            hint=f"chmod 600 {resolved}",
        )
    return resolved


def _read_key(remote: Remote) -> str:
    from masque.trust import rings

    key = rings.read_key_file(check_key_file(Path(remote.key_file)))
    if not key:
        raise UsageError(f"the key file {remote.key_file} is empty", hint="it holds one msqk_ actor key of the server")
    return key


def add_remote(name: str, url: str, key_file: Path, *, selection: Selection | None = None) -> Remote:
    import re

    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,39}", name):
        raise UsageError(f"remote name {name!r} is not valid", hint="lowercase letters, digits, - and _: e.g. origin")
    clean = url.rstrip("/")
    if not re.match(r"^https?://[^/\s]+", clean):
        raise UsageError(f"{url!r} is not an http(s) URL", hint="e.g. http://127.0.0.1:8765")
    path = check_key_file(key_file)
    turns.prepare()
    with turns.transaction() as conn:
        actor = _admin(conn, selection, f"remote add {name}")
        if conn.execute("SELECT 1 FROM remotes WHERE name = ?", [name]).fetchone():
            raise UsageError(f"remote {name!r} exists", hint=f"`masque remote remove {name}` first")
        conn.execute(
            "INSERT INTO remotes (name, url, key_file, added_by, added_at) VALUES (?, ?, ?, ?, ?)",
            [name, clean, str(path), actor.name, utcnow()],
        )
    return Remote(name, clean, str(path))


def list_remotes(*, selection: Selection | None = None) -> list[Remote]:
    turns.prepare()
    with turns.connect() as conn:
        _acting(conn, selection)
        rows = conn.execute("SELECT name, url, key_file FROM remotes ORDER BY name").fetchall()
    return [Remote(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def remove_remote(name: str, *, selection: Selection | None = None) -> None:
    """Forget a remote and what it confirmed (re-adding it re-sends; the server skips what it has)."""
    turns.prepare()
    with turns.transaction() as conn:
        _admin(conn, selection, f"remote remove {name}")
        _remote(conn, name)
        for table in ("remotes", "sync_confirmed", "sync_state", "sync_remote_profiles", "sync_remote_definitions"):
            column = "name" if table == "remotes" else "remote"
            conn.execute(f"DELETE FROM {table} WHERE {column} = ?", [name])


def _remote(conn: duckdb.DuckDBPyConnection, name: str | None) -> Remote:
    rows = conn.execute("SELECT name, url, key_file FROM remotes ORDER BY name").fetchall()
    if not rows:
        raise NotFound("no remote is configured", hint="`masque remote add NAME URL --key-file F`")
    if name is None:
        if len(rows) > 1:
            raise UsageError(
                f"{len(rows)} remotes are configured; say which", hint="--remote " + " | ".join(str(r[0]) for r in rows)
            )
        row = rows[0]
    else:
        found = [r for r in rows if r[0] == name]
        if not found:
            raise NotFound(f"no remote named {name!r}", hint="`masque remote list` shows them")
        row = found[0]
    return Remote(str(row[0]), str(row[1]), str(row[2]))


# --- HTTP --------------------------------------------------------------------------------------


@contextmanager
def _http(remote: Remote, key: str | None, timeout: float = TIMEOUT) -> Iterator[httpx.Client]:
    import httpx2 as httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=remote.url, headers=headers, timeout=timeout, trust_env=False) as client:
        yield client


def _call(remote: Remote, send: Callable[[], httpx.Response], doing: str) -> dict[str, Any]:
    """One request; transport failures are exit 5 naming the URL, problems keep the server's exit code."""
    import httpx2 as httpx

    try:
        response = send()
    except httpx.TimeoutException:
        raise StoreError(
            f"{remote.url} did not answer in time while {doing}",
            hint="nothing unconfirmed left the outbox; run the same command again",
        ) from None
    except httpx.TransportError as exc:
        raise StoreError(
            f"cannot reach {remote.url} while {doing}: {exc or type(exc).__name__}",
            hint="nothing unconfirmed left the outbox; is `masque serve` running there? run the command again later",
        ) from None
    if response.status_code < 400:
        return dict(response.json())
    raise _problem(remote, response)


def _problem(remote: Remote, response: httpx.Response) -> MasqueError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = str(body.get("detail") or response.text[:200] or response.reason_phrase)
    reason = body.get("reason")
    message = f"{remote.url} answered {response.status_code}" + (f" ({reason})" if reason else "") + f": {detail}"
    hint = body.get("hint")
    code = body.get("exit_code")
    if response.status_code in (401, 403) or code == ExitCode.REFUSED:
        return Refused(message, reason=str(body.get("reason") or "refused"), hint=hint or "check the remote's key file")
    if response.status_code == 409 or code == ExitCode.CONFLICT:
        return Conflict(
            message, expected=int(body.get("expected") or 0), current=int(body.get("current") or 0), hint=hint
        )
    if response.status_code == 404:
        return NotFound(message, hint=hint or "is that URL a `masque serve` with sync (GET /sync)?")
    if response.status_code == 503:
        return StoreBusy(message, hint=hint or "the server's store is busy; run the command again")
    if code == ExitCode.USAGE or response.status_code in (400, 422):
        return UsageError(message, hint=hint)
    if code == ExitCode.FAILED:
        return ValidationFailed(message, hint=hint)
    return StoreError(message, hint=hint or "the server's log says more")


# --- push --------------------------------------------------------------------------------------


def _origin(actor: Actor) -> dict[str, str]:
    return {"machine": socket.gethostname(), "local_actor": actor.name, "local_ring": actor.ring.value}


def push(
    remote_name: str | None = None,
    *,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[str], None] | None = None,
    selection: Selection | None = None,
) -> PushResult:
    """Send the outbox in batches; each leaves it only when the server confirms.

    Batches are read from the store one at a time (the outbox can be large), oldest first, so a push
    repeated after a lost reply starts with the very same batch. Records written during the push wait
    for the next one: at most the batches counted at the start are sent.
    """
    if batch_size < 1 or batch_size > 1000:
        raise UsageError(f"--batch-size must be 1..1000, got {batch_size}")
    turns.prepare()
    with turns.connect() as conn:
        actor = _admin(conn, selection, "sync push")
        remote = _remote(conn, remote_name)
        total = sum(outbox.counts(conn, remote.name).values())
    key = _read_key(remote)
    result = PushResult(remote.name, remote.url)
    origin = _origin(actor)
    planned = -(-total // batch_size)
    with _http(remote, key) as http:
        for n in range(1, planned + 1):
            with turns.connect() as conn:
                batch = outbox.pending(conn, remote.name, limit=batch_size)
            if not batch:
                break
            bid = outbox.batch_id(batch)
            body = {"id": bid, "records": batch, "origin": origin}
            send = functools.partial(http.post, "/sync/batches", json=body)
            answer = _call(remote, send, f"pushing batch {n}/{planned}")
            if answer.get("batch") != bid:
                raise StoreError(f"{remote.url} confirmed {answer.get('batch')!r}, not batch {bid}")
            _confirm(remote.name, bid, batch)
            result.batches += 1
            result.sent += len(batch)
            if answer.get("replayed"):  # applied by an earlier push whose reply was lost: nothing new now
                result.replayed += 1
                result.duplicates += len(batch)
            else:
                result.duplicates += int(answer.get("duplicates") or 0)
                for kind, count in (answer.get("applied") or {}).items():
                    result.applied[kind] = result.applied.get(kind, 0) + int(count)
                result.rejected += list(answer.get("rejected") or [])
            if progress:
                progress(f"confirmed batch {n}/{planned} {bid} ({len(batch)} record(s))")
    with turns.transaction() as conn:
        _touch_state(conn, remote.name, "last_push_at")
    return result


def _confirm(remote: str, bid: str, batch: list[dict[str, Any]]) -> None:
    now = utcnow()
    with turns.transaction() as conn:
        params: list[Any] = []
        for r in batch:
            params += [remote, r["kind"], r["id"], bid, now]
        rows = ", ".join("(?, ?, ?, ?, ?)" for _ in batch)
        conn.execute(
            f"INSERT OR IGNORE INTO sync_confirmed (remote, kind, record_id, batch_id, confirmed_at) VALUES {rows}",
            params,
        )


def _touch_state(conn: duckdb.DuckDBPyConnection, remote: str, column: str, watermark: str | None = None) -> None:
    now = utcnow()
    conn.execute("INSERT OR IGNORE INTO sync_state (remote) VALUES (?)", [remote])
    conn.execute(f"UPDATE sync_state SET {column} = ? WHERE remote = ?", [now, remote])
    if watermark is not None:
        conn.execute("UPDATE sync_state SET pull_watermark = ? WHERE remote = ?", [watermark, remote])


# --- pull --------------------------------------------------------------------------------------


def pull(remote_name: str | None = None, *, selection: Selection | None = None) -> PullResult:
    """Apply what changed on the server since the stored watermark; store the new one with it."""
    turns.prepare()
    with turns.connect() as conn:
        _admin(conn, selection, "sync pull")
        remote = _remote(conn, remote_name)
        row = conn.execute("SELECT pull_watermark FROM sync_state WHERE remote = ?", [remote.name]).fetchone()
    since = row[0] if row else None
    key = _read_key(remote)
    with _http(remote, key) as http:
        params = {"since": since} if since else {}
        diff = _call(remote, lambda: http.get("/sync", params=params), "pulling")
    result = PullResult(remote.name, str(diff.get("watermark")))
    with turns.transaction() as conn:
        _apply_mappers(conn, remote, diff.get("mappers") or [], result)
        for p in diff.get("profiles") or []:
            conn.execute(
                "INSERT OR REPLACE INTO sync_remote_profiles (remote, masque, version, body, stale, built_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [remote.name, p["masque"], int(p["version"]), json.dumps(p["body"]), bool(p["stale"]), p["built_at"]],
            )
            result.profiles += 1
        for d in diff.get("definitions") or []:
            conn.execute(
                "INSERT OR REPLACE INTO sync_remote_definitions (remote, masque, version, content_hash, pinned_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [remote.name, d["masque"], d["version"], d["content_hash"], d["pinned_at"]],
            )
            result.definitions += 1
        _touch_state(conn, remote.name, "last_pull_at", watermark=result.watermark)
    return result


def _apply_mappers(
    conn: duckdb.DuckDBPyConnection, remote: Remote, versions: list[dict[str, Any]], result: PullResult
) -> None:
    from masque.feedback import mappers

    blocked: set[str] = set()
    for v in sorted(versions, key=lambda m: (str(m["id"]), int(m["version"]))):
        mapper_id, version, doc = str(v["id"]), int(v["version"]), v["doc"]
        if mapper_id in blocked:
            continue
        here = conn.execute("SELECT doc FROM mappers WHERE id = ? AND version = ?", [mapper_id, version]).fetchone()
        if here is not None:
            if json.loads(here[0]) == doc:
                result.mappers_skipped += 1
                continue
            blocked.add(mapper_id)
            result.conflicts.append(
                {
                    "mapper": mapper_id,
                    "version": version,
                    "problem": f"diverged: this home has another version {version}; kept as it is",
                }
            )
            continue
        top = conn.execute("SELECT coalesce(max(version), 0) FROM mappers WHERE id = ?", [mapper_id]).fetchone()
        have = int(top[0]) if top else 0
        if have != version - 1:
            blocked.add(mapper_id)
            result.conflicts.append(
                {
                    "mapper": mapper_id,
                    "version": version,
                    "problem": f"this home is at version {have}; versions in between are missing here",
                }
            )
            continue
        mappers.write_version(
            conn,
            mapper_id,
            have,
            doc,
            str(v.get("reason") or "put"),
            f"{v.get('actor')}@{remote.name}",
            {"synced_from": remote.url},
        )
        result.mappers_added.append(f"{mapper_id} v{version}")


# --- status ------------------------------------------------------------------------------------


def status(remote_name: str | None = None, *, selection: Selection | None = None) -> dict[str, Any]:
    """Pending counts per kind, last push/pull, the watermark, and whether the remote answers now."""
    import httpx2 as httpx

    turns.prepare()
    with turns.connect() as conn:
        _acting(conn, selection)
        remote = _remote(conn, remote_name)
        pending = outbox.counts(conn, remote.name)
        row = conn.execute(
            "SELECT pull_watermark, last_push_at, last_pull_at FROM sync_state WHERE remote = ?", [remote.name]
        ).fetchone()
        confirmed = conn.execute("SELECT count(*) FROM sync_confirmed WHERE remote = ?", [remote.name]).fetchone()
    reachable, detail = False, ""
    try:
        with _http(remote, None, timeout=STATUS_TIMEOUT) as http:
            answer = http.get("/health")
        reachable = answer.status_code == 200
        detail = "" if reachable else f"answered {answer.status_code}"
    except httpx.HTTPError as exc:
        detail = str(exc) or type(exc).__name__
    last_push, last_pull = (as_utc(row[1]), as_utc(row[2])) if row else (None, None)
    return {
        "remote": remote.name,
        "url": remote.url,
        "reachable": reachable,
        "unreachable_reason": detail or None,
        "pending": pending,
        "pending_total": sum(pending.values()),
        "confirmed": int(confirmed[0]) if confirmed else 0,
        "last_push_at": last_push.isoformat() if last_push else None,
        "last_pull_at": last_pull.isoformat() if last_pull else None,
        "pull_watermark": row[0] if row else None,
        "key_file": remote.key_file,
        "key_file_ok": _key_file_ok(remote.key_file),
    }


def _key_file_ok(path: str) -> bool:
    try:
        return not (os.stat(path).st_mode & 0o077)
    except OSError:
        return False

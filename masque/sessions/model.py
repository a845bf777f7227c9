"""Session values: the `Session` record, and reading one. What a masque gives a session (`Wearable`)
is in `masque.sessions.wearable`, which a release never needs.

Split from `masque.sessions.lifecycle` (which re-exports these names and remains the only writer of
session rows) to keep each module small.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from masque.durations import as_utc, utcnow
from masque.errors import NotFound

if TYPE_CHECKING:
    import duckdb

    from masque.sessions.wearable import Wearable
ENDED = ("ended", "revoked", "abandoned")
LIVE = ("active", "revoking")


@dataclass(frozen=True)
class Knowledge:
    """A knowledge pointer of a session and the endpoint it resolved to (None: unresolved)."""

    uri: str
    endpoint: str | None


@dataclass(frozen=True)
class Session:
    """One donning of a masque. `token` is set only on the object `assume` returns (shown once).

    Usable as a context manager: leaving the block releases the session.
    """

    session_id: str
    masque: str
    version: str
    actor: str
    intent: str
    started_at: dt.datetime
    expires_at: dt.datetime | None
    status: str = "active"
    role: str | None = None
    accessor: str | None = None
    credential_expires_at: dt.datetime | None = None
    actor_ring: str | None = None
    masque_ring: str | None = None
    originator: str | None = None
    parent_id: str | None = None
    scope: str = "global"
    ended_at: dt.datetime | None = None
    end_reason: str | None = None
    exit_code: int | None = None
    holder_pid: int | None = None
    holder_host: str | None = None
    content_hash: str | None = None
    source_path: str | None = None
    knowledge: tuple[Knowledge, ...] = ()
    memory: dict[str, Any] | None = None  # the memory shard diff archived at release
    system_prompt: str | None = None
    token: str | None = field(default=None, repr=False)

    @property
    def ref(self) -> str:
        return f"{self.masque}@{self.version}"

    def to_dict(self, *, with_token: bool = False) -> dict[str, Any]:
        """The JSON shape (docs/sessions.md). The token is included only when asked, for `assume`."""
        out: dict[str, Any] = {
            "session_id": self.session_id,
            "masque": self.masque,
            "version": self.version,
            "actor": self.actor,
            "actor_ring": self.actor_ring,
            "masque_ring": self.masque_ring,
            "originator": self.originator,
            "intent": self.intent,
            "status": self.status,
            "scope": self.scope,
            "parent_id": self.parent_id,
            "started_at": self.started_at,
            "expires_at": self.expires_at,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason,
            "exit_code": self.exit_code,
            "role": self.role,
            "accessor": self.accessor,
            "credential_expires_at": self.credential_expires_at,
            "content_hash": self.content_hash,
            "knowledge": [{"uri": k.uri, "endpoint": k.endpoint} for k in self.knowledge],
            "memory": self.memory,
        }
        if with_token:
            out["token"] = self.token
            out["system_prompt"] = self.system_prompt
        return out

    def __enter__(self) -> Session:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        from masque.sessions.end import release
        from masque.trust.rings import Selection

        # Release with our own token: the holder may always end what it holds, whoever the
        # environment names as actor.
        own = Selection(token=self.token) if self.token else None
        release(self.session_id, reason="released" if exc_type is None else "error", selection=own)


@dataclass(frozen=True)
class Ended:
    """The outcome of release/revoke: the session as it is now, and what this call changed."""

    session: Session
    already_ended: bool
    ended: tuple[str, ...] = ()  # session ids ended by this call (the session and its chain)
    revoked: tuple[str, ...] = ()  # accessors revoked by this call
    graceful: bool = False  # a revoke that let the holder finish first


# --- building sessions -------------------------------------------------------------------------

_SESSION_COLS = (
    "id, masque, version, actor, intent, started_at, expires_at, status, role, actor_ring, masque_ring,"
    " originator, parent_id, scope, ended_at, end_reason, exit_code, holder_pid, holder_host,"
    " content_hash, source_path, metadata"
)


def _from_row(row: tuple[Any, ...], accessor: str | None = None, cred_exp: Any = None) -> Session:
    meta = json.loads(row[21]) if row[21] else {}
    return Session(
        session_id=row[0],
        masque=row[1],
        version=row[2],
        actor=row[3],
        intent=row[4],
        started_at=as_utc(row[5]) or utcnow(),
        expires_at=as_utc(row[6]),
        status=row[7],
        role=row[8],
        actor_ring=row[9],
        masque_ring=row[10],
        originator=row[11],
        parent_id=row[12],
        scope=row[13],
        ended_at=as_utc(row[14]),
        end_reason=row[15],
        exit_code=row[16],
        holder_pid=row[17],
        holder_host=row[18],
        content_hash=row[19],
        source_path=row[20],
        knowledge=tuple(Knowledge(k["uri"], k.get("endpoint")) for k in meta.get("knowledge", [])),
        memory=meta.get("memory"),
        accessor=accessor,
        credential_expires_at=as_utc(cred_exp),
    )


def load(conn: duckdb.DuckDBPyConnection, session_id: str) -> Session:
    """The session with this id (and its newest credential's accessor); NotFound when unknown."""
    row = conn.execute(f"SELECT {_SESSION_COLS} FROM sessions WHERE id = ?", [session_id]).fetchone()
    if row is None:
        raise NotFound(
            f"no session {session_id!r}",
            hint="`masque sessions` lists sessions; ids look like ses_01J...",
        )
    # A session has a credential or two: the newest is picked here, not with DuckDB's top-N (~1 ms to
    # set up on a process's first use, paid by every cold `release`).
    creds = conn.execute("SELECT accessor, expires_at, issued_at FROM credentials WHERE session_id = ?", [session_id])
    newest = max(creds.fetchall(), key=lambda cred: cred[2], default=(None, None, None))
    return _from_row(row, newest[0], newest[1])


def render_prompt(w: Wearable, intent: str, knowledge: tuple[Knowledge, ...]) -> str:
    """Lens + context + intent (+ knowledge pointers) as one system-prompt fragment."""
    from masque.masques.intent_text import one_line

    # one_line: an intent can never add a line (a forged "Lens:" section) to the prompt.
    parts = [f"You are wearing the masque {w.name} {w.version}.", f"Your stated intent: {one_line(intent.strip())}"]
    if w.context:
        parts.append("Context:\n" + w.context.strip())
    parts.append("Lens:\n" + w.lens.strip())
    if knowledge:
        lines = [f"- {k.uri}" + (f" ({k.endpoint})" if k.endpoint else " (unresolved)") for k in knowledge]
        parts.append("Knowledge (look things up here rather than guessing):\n" + "\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _holder_start(pid: int) -> str | None:
    """The kernel's start time of a process (Linux), to tell a dead holder from a reused PID."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def holder_alive(pid: int, start: str | None) -> bool:
    """True when `pid` runs and (where known) is the same process that started the session."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return start is None or _holder_start(pid) in (None, start)

"""Actors, trust rings, qualification, continual approval and promotion.

Rings are current qualification, not membership: every assume and every token verification asks
`check_qualified` again. Founders start at the centre (admin); everyone else climbs one ring at a
time, moved only by an actor in a more trusted ring. An open disapproval from a more trusted ring
(or from an admin) suspends qualification until lifted. An actor sees its own ring and below.

Who is acting (see docs/sessions.md, "Threat model"): an explicit actor with its key
(`--as NAME --key-file F`, or `MASQUE_ACTOR` + `MASQUE_ACTOR_KEY`); else, inside a masque context,
the actor of that session (`MASQUE_TOKEN` proves it; an `exec` child's `MASQUE_PARENT_SESSION_ID`
counts only with that session's token in `MASQUE_CREDENTIAL`, and only ever narrows); else the
founder, the owner of the store.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from masque import config
from masque.durations import utcnow
from masque.enums import Ring
from masque.errors import NotFound, Refused, UsageError
from masque.ids import new_id
from masque.store import turns
from masque.store.events import record_event
from masque.trust import credentials
from masque.trust.actors import ACTOR_SQL as _ACTOR_SQL
from masque.trust.actors import RING_LIST_SQL as _RING_LIST_SQL
from masque.trust.actors import Actor as Actor
from masque.trust.actors import actor_from_row as _actor
from masque.trust.actors import check_qualified as check_qualified
from masque.trust.actors import find_actor as find_actor
from masque.trust.actors import get_actor as get_actor
from masque.trust.actors import may_act_on as may_act_on
from masque.trust.actors import qualifies as qualifies
from masque.trust.actors import sees as sees
from masque.trust.actors import visible_rings as visible_rings

if TYPE_CHECKING:
    import duckdb

KEY_PREFIX = "msqk_"


class ActingVia(str, Enum):
    """How the acting actor was established."""

    KEY = "key"  # an actor key was presented
    SESSION = "session"  # the actor of the session this process runs in
    FOUNDER = "founder"  # nothing presented: the store's owner


@dataclass(frozen=True)
class Acting:
    """The actor on whose behalf this process acts, and how that was established."""

    actor: Actor
    via: ActingVia
    session_id: str | None = None  # the session that selected the actor (via=session)
    key: str | None = field(default=None, repr=False)  # the presented key, to hand to an exec child


@dataclass(frozen=True)
class NewActor:
    """An actor just created, with its key: shown once, stored only hashed."""

    actor: Actor
    key: str = field(repr=False)


@dataclass(frozen=True)
class InitResult:
    """What `masque init` did: the store, its founder and the founder's key (shown once)."""

    store: Path
    founder: Actor
    key: str | None = field(default=None, repr=False)  # None when the store was already initialised
    created: bool = True


@dataclass(frozen=True)
class Selection:
    """What the caller presented to choose an actor (CLI options and environment)."""

    name: str | None = None
    key: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    parent_session_id: str | None = None
    # `masque exec` hands its child the session's token as MASQUE_CREDENTIAL: it proves the parent id.
    credential: str | None = field(default=None, repr=False)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def founder(conn: duckdb.DuckDBPyConnection) -> Actor | None:
    # Founders cannot be disapproved (see may_act_on), so no disapproval lookup is needed. There is
    # one founder; the earliest is picked here, as DuckDB's first ORDER BY in a process costs ~1 ms.
    sql = "SELECT name, ring, is_founder, created_by, created_at, NULL FROM actors WHERE is_founder"
    rows = conn.execute(sql).fetchall()
    return _actor(min(rows, key=lambda row: row[4])) if rows else None


def init(founder_name: str | None = None) -> InitResult:
    """Create the store and its founder (admin). Idempotent: a second run reports the founder, no key."""
    name = (founder_name or _default_founder_name()).strip()
    _check_name(name)
    with turns.transaction() as conn:
        existing = founder(conn)
        if existing is not None and existing_key_hash(conn, existing.name):
            return InitResult(config.store_path(), existing, None, created=False)
        key = new_key()
        if existing is not None:  # created implicitly by a first assume: issue its key now, once
            conn.execute("UPDATE actors SET key_hash = ? WHERE name = ?", [hash_key(key), existing.name])
            _event(conn, "actor_key_issued", existing.name, {"name": existing.name})
            return InitResult(config.store_path(), existing, key, created=False)
        conn.execute(
            "INSERT INTO actors (name, ring, key_hash, is_founder, created_by, created_at)"
            " VALUES (?, 'admin', ?, true, NULL, ?)",
            [name, hash_key(key), utcnow()],
        )
        _event(conn, "actor_added", name, {"name": name, "ring": "admin", "founder": True})
        created = find_actor(conn, name)
    assert created is not None
    return InitResult(config.store_path(), created, key, created=True)


def _default_founder_name() -> str:
    try:
        import getpass  # here: its import (termios, pwd) is a cost every cold verb paid for a rare fallback

        return getpass.getuser() or "founder"
    except (KeyError, OSError):
        return "founder"


def _check_name(name: str) -> None:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "._-@" for c in name):
        raise UsageError(
            f"invalid actor name {name!r}",
            hint="use 1-64 letters, digits, '.', '_', '-' or '@'",
        )


def _event(conn: duckdb.DuckDBPyConnection, type_: str, actor: str, payload: dict[str, Any]) -> None:
    record_event(conn, type_, actor=actor, originator=actor, payload=payload)


def existing_key_hash(conn: duckdb.DuckDBPyConnection, name: str) -> str | None:
    row = conn.execute("SELECT key_hash FROM actors WHERE name = ?", [name]).fetchone()
    return str(row[0]) if row and row[0] else None


def _founder_or_create(conn: duckdb.DuckDBPyConnection) -> Actor:
    """The founder; on a brand-new store, the local user becomes it (like `masque init`, minus the key).

    Whoever can write the 0700 home already owns everything in it, so asking them to run `init`
    first protects nothing. The key, needed only to act as the founder from elsewhere via
    MASQUE_ACTOR, is issued by a later `masque init`.
    """
    found = founder(conn)
    if found is not None:
        return found
    name = _default_founder_name()
    _check_name(name)
    import duckdb

    try:
        conn.execute(
            "INSERT INTO actors (name, ring, key_hash, is_founder, created_by, created_at)"
            " VALUES (?, 'admin', NULL, true, NULL, ?)",
            [name, utcnow()],
        )
    except duckdb.InvalidInputException as exc:
        if "read-only" not in str(exc):
            raise
        # A reading command on a store no command has written an actor to yet (e.g. made by `stats`
        # or `sessions import`): the local user is the founder-to-be; the first write records it.
        return Actor(name, Ring.ADMIN, is_founder=True)
    _event(conn, "actor_added", name, {"name": name, "ring": "admin", "founder": True, "implicit": True})
    created = find_actor(conn, name)
    assert created is not None
    return created


MAX_KEY_FILE_BYTES = 4096  # a key is ~50 characters; anything near this is not a key file


def read_key_file(path: Path) -> str:
    """The key in `path`: a small regular UTF-8 file (a FIFO or /dev/zero is refused, never read)."""
    from masque.files import read_regular

    try:
        raw = read_regular(path, MAX_KEY_FILE_BYTES)
    except OSError as exc:
        raise UsageError(
            f"cannot read the key file {path}: {exc.strerror or exc}",
            hint="pass the file `masque init` or `masque actor add` wrote the key to",
        ) from None
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise UsageError(
            f"the key file {path} is over {MAX_KEY_FILE_BYTES:,} bytes; it cannot be a key file",
            hint="pass the file `masque init` or `masque actor add` wrote the key to",
        )
    try:
        return raw.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise UsageError(f"the key file {path} is not UTF-8 text", hint="a key file holds one msqk_ key") from None


def selection_from_env(as_name: str | None = None, key_file: Path | None = None) -> Selection:
    """Build a Selection from `--as/--key-file` (which win) and the environment."""
    name, key = config.actor_from_env()
    if as_name is not None or key_file is not None:
        if as_name is None or key_file is None:
            raise UsageError("--as and --key-file go together", hint="pass both: --as NAME --key-file FILE")
        key = read_key_file(key_file)
        name = as_name
    # The session context travels even when an actor is named: it decides chaining, not identity.
    return Selection(
        name=name,
        key=key,
        token=config.env_value("MASQUE_TOKEN"),
        parent_session_id=config.env_value("MASQUE_PARENT_SESSION_ID"),
        credential=config.env_value("MASQUE_CREDENTIAL"),
    )


def _check_parent(conn: duckdb.DuckDBPyConnection, selection: Selection) -> None:
    """A parent session id counts only with that session's own credential (what `exec` hands its child).

    Refused (exit 3, reason `parent_unproven`) otherwise: never ignored, never a fall-back to the founder.
    """
    parent = selection.parent_session_id
    if not parent:
        return
    status = None
    if selection.credential:
        status = credentials.broker().verify(selection.credential, conn=conn)
    if status is None or not status.valid or status.session_id != parent:
        why = "MASQUE_CREDENTIAL is not set" if status is None else f"MASQUE_CREDENTIAL {status.message}"
        if status is not None and status.valid:
            why = "MASQUE_CREDENTIAL belongs to another session"
        raise Refused(
            f"MASQUE_PARENT_SESSION_ID {parent} is not proven: {why}",
            reason="parent_unproven",
            hint="a parent session counts only inside `masque exec`, which sets MASQUE_CREDENTIAL to its token;"
            " unset MASQUE_PARENT_SESSION_ID otherwise",
        )


def resolve_acting(conn: duckdb.DuckDBPyConnection, selection: Selection) -> Acting:
    """Who is acting. Never falls back to the founder when something was presented and failed."""
    founder_actor = _founder_or_create(conn)
    _check_parent(conn, selection)
    if selection.name is not None or selection.key is not None:
        if not selection.name or not selection.key:
            raise Refused(
                "MASQUE_ACTOR and MASQUE_ACTOR_KEY must be set together",
                reason="actor_key_missing",
                hint="set both, or neither to act as the founder",
            )
        row = conn.execute("SELECT key_hash FROM actors WHERE name = ?", [selection.name]).fetchone()
        if row is None or not row[0] or not hmac.compare_digest(str(row[0]), hash_key(selection.key)):
            raise Refused(
                f"the key presented for actor {selection.name!r} is not valid",
                reason="actor_key_invalid",
                hint="use the key `masque actor add` printed, or ask a higher ring for a new actor",
            )
        return Acting(get_actor(conn, selection.name), ActingVia.KEY, key=selection.key)
    if selection.token:
        status = credentials.broker().verify(selection.token, conn=conn)
        if not status.valid:
            raise Refused(
                f"MASQUE_TOKEN is not valid: {status.message}",
                reason="token_invalid",
                hint='clear the session from your shell with `eval "$(masque release --format env)"`, or assume again',
            )
        assert status.actor is not None
        return Acting(get_actor(conn, status.actor), ActingVia.SESSION, session_id=status.session_id)
    if selection.parent_session_id:  # proven by _check_parent above
        row = conn.execute("SELECT actor FROM sessions WHERE id = ?", [selection.parent_session_id]).fetchone()
        assert row is not None
        return Acting(get_actor(conn, row[0]), ActingVia.SESSION, session_id=selection.parent_session_id)
    return Acting(founder_actor, ActingVia.FOUNDER)


def bearer_selection(bearer: str | None) -> Selection:
    """What an HTTP caller presented (`Authorization: Bearer ...`), as a Selection for `resolve_acting`.

    A served surface (`masque mcp --http`, `masque serve`) has no founder fallback: nothing presented is
    refused. A bearer is an actor key (`msqk_...`, its actor found by the key's hash) or a session token
    (`msq_...`); nothing from the server's own environment is added. The Selection is then checked by
    `resolve_acting` like any other, so every verb proves identity the same way.
    """
    value = (bearer or "").strip()
    if value.lower().startswith("bearer "):
        value = value[7:].strip()
    if not value:
        raise Refused(
            "no credential was presented",
            reason="unauthenticated",
            hint="send `Authorization: Bearer <actor key or session token>`",
        )
    if value.startswith(KEY_PREFIX):
        with turns.connect() as conn:
            row = conn.execute("SELECT name FROM actors WHERE key_hash = ?", [hash_key(value)]).fetchone()
        if row is None:
            raise Refused(
                "the actor key presented is not valid",
                reason="actor_key_invalid",
                hint="use the key `masque actor add` printed, or ask a higher ring for a new actor",
            )
        return Selection(name=str(row[0]), key=value)
    return Selection(token=value)


def acting(selection: Selection | None = None) -> Acting:
    """Resolve the acting actor in its own short read."""
    with turns.connect() as conn:
        return resolve_acting(conn, selection or selection_from_env())


def list_actors(selection: Selection | None = None) -> tuple[Acting, list[Actor]]:
    """The actors the acting actor may see: its own ring and below."""
    with turns.connect() as conn:
        who = resolve_acting(conn, selection or selection_from_env())
        rows = conn.execute(
            _ACTOR_SQL + f" WHERE list_position({_RING_LIST_SQL}, a.ring) >= ?"
            f" ORDER BY list_position({_RING_LIST_SQL}, a.ring), a.name",
            [who.actor.ring.rank + 1],
        ).fetchall()
    return who, [_actor(r) for r in rows]


def add_actor(name: str, ring: Ring = Ring.OUTSIDER, selection: Selection | None = None) -> NewActor:
    """Add an actor; only a more trusted ring may add (admins may add admins: the centre admits elders)."""
    _check_name(name)
    with turns.transaction() as conn:
        who = resolve_acting(conn, selection or selection_from_env()).actor
        if not (who.ring is Ring.ADMIN or who.ring.outranks(ring)):
            raise Refused(
                f"actor {who.name!r} (ring {who.ring.value}) cannot add an actor in ring {ring.value}",
                reason="ring_refused",
                hint="only a more trusted ring adds actors; add in a lower ring and promote later",
            )
        if find_actor(conn, name) is not None:
            raise UsageError(f"an actor named {name!r} already exists", hint="choose another name")
        key = new_key()
        conn.execute(
            "INSERT INTO actors (name, ring, key_hash, is_founder, created_by, created_at)"
            " VALUES (?, ?, ?, false, ?, ?)",
            [name, ring.value, hash_key(key), who.name, utcnow()],
        )
        _event(conn, "actor_added", who.name, {"name": name, "ring": ring.value})
        created = get_actor(conn, name)
    return NewActor(created, key)


def _visible_target(conn: duckdb.DuckDBPyConnection, who: Actor, name: str) -> Actor:
    target = find_actor(conn, name)
    # An actor sees its own ring and below: a more trusted actor is reported as unknown.
    if target is None or not sees(who, target.ring):
        raise NotFound(f"no actor named {name!r}", hint="`masque actor list` shows the actors you can see")
    return target


def _require_may_act(who: Actor, target: Actor, action: str, hint: str, new_ring: Ring | None = None) -> None:
    """Refuse (exit 3, ring_refused) unless `who` may do `action` to `target` (see `may_act_on`)."""
    if not may_act_on(who, target, new_ring):
        raise Refused(f"actor {who.name!r} (ring {who.ring.value}) cannot {action}", reason="ring_refused", hint=hint)


def move_ring(conn: duckdb.DuckDBPyConnection, who: Actor, name: str, step: int) -> tuple[Actor, Actor, bool]:
    """Promote (step=-1) or demote (step=+1) `name` by exactly one ring, as `who`, inside the caller's transaction.

    Returns (before, after, sessions_must_end): a demotion leaves the actor's live sessions to be ended
    by the caller in the same transaction (`masque.sessions.actors.change_ring` does).
    """
    verb = "promote" if step < 0 else "demote"
    target = _visible_target(conn, who, name)
    new_rank = target.ring.rank + step
    if not 0 <= new_rank < len(Ring):
        edge = "the centre (admin)" if step < 0 else "the outermost ring (outsider)"
        raise UsageError(f"actor {name!r} is already at {edge}; cannot {verb}")
    new_ring = list(Ring)[new_rank]
    _require_may_act(
        who,
        target,
        f"{verb} {name!r} from {target.ring.value} to {new_ring.value}",
        "only an actor in a more trusted ring than both rings may move an actor; "
        "founders cannot be moved, and no one moves themselves",
        new_ring,
    )
    conn.execute("UPDATE actors SET ring = ? WHERE name = ?", [new_ring.value, name])
    _event(conn, f"actor_{verb}d", who.name, {"name": name, "from": target.ring.value, "to": new_ring.value})
    return target, get_actor(conn, name), step > 0


def record_disapproval(conn: duckdb.DuckDBPyConnection, who: Actor, name: str, reason: str) -> None:
    """Record an open disapproval of `name` by `who` inside the caller's transaction.

    The caller ends the actor's live sessions in the same transaction (`masque.sessions.actors.disapprove`).
    """
    if not reason or not reason.strip():
        raise UsageError("a disapproval needs a reason", hint='pass --reason "..."')
    target = _visible_target(conn, who, name)
    _require_may_act(
        who,
        target,
        f"disapprove {name!r} (ring {target.ring.value})",
        "only a more trusted ring (or an admin) disapproves; founders cannot be disapproved",
    )
    conn.execute(
        "INSERT INTO disapprovals (id, actor, by_actor, reason, created_at) VALUES (?, ?, ?, ?, ?)",
        [new_id("dis_"), name, who.name, reason.strip(), utcnow()],
    )
    _event(conn, "actor_disapproved", who.name, {"name": name, "reason": reason.strip()})


def approve(name: str, selection: Selection | None = None) -> tuple[Actor, int]:
    """Lift open disapprovals made by rings no more trusted than the approver. Returns (actor, lifted)."""
    with turns.transaction() as conn:
        who = resolve_acting(conn, selection or selection_from_env()).actor
        target = _visible_target(conn, who, name)
        _require_may_act(
            who,
            target,
            f"approve {name!r} (ring {target.ring.value})",
            "only a more trusted ring (or an admin) lifts a disapproval",
        )
        # A disapproval from a more trusted ring than the approver's stays: no overruling upward.
        lifted = conn.execute(
            f"""UPDATE disapprovals SET lifted_at = ?, lifted_by = ?
                WHERE actor = ? AND lifted_at IS NULL AND by_actor IN (
                  SELECT name FROM actors WHERE list_position({_RING_LIST_SQL}, ring) >= ?)
                RETURNING id""",
            [utcnow(), who.name, name, who.ring.rank + 1],
        ).fetchall()
        _event(conn, "actor_approved", who.name, {"name": name, "lifted": len(lifted)})
        return get_actor(conn, name), len(lifted)

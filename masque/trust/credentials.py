"""Credentials: the `CredentialBroker` seam and the local broker (mint, verify, renew, revoke).

A token is `msq_` + 256 random bits (base64url). Only an HMAC-SHA256 of it under a per-store secret
is stored (settings `credential_hmac_key`, created at first use), so a copied store or backup yields
no usable token. Each credential has an *accessor*: a non-secret id that can look it up and revoke
it, shown in `masque sessions` and events. The token itself is returned once, by `mint`, and never
written anywhere by Masque.

A real Vault can replace `LocalBroker` behind the same protocol; `broker()` picks the one configured
in `[credentials] broker` (only "local" ships).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from masque import config
from masque.durations import as_utc, format_duration, utcnow
from masque.enums import Ring
from masque.errors import Refused, UsageError
from masque.ids import new_id
from masque.store import turns
from masque.store.events import record_for_session
from masque.trust.actors import check_qualified, find_actor

if TYPE_CHECKING:
    import duckdb

TOKEN_PREFIX = "msq_"
SESSION_ROLE = "session"  # role of the plain session token minted when a masque names no vault_role
_SECRET_KEY = "credential_hmac_key"
_secrets: dict[tuple[str, int], bytes] = {}


@dataclass(frozen=True)
class Minted:
    """A freshly minted credential. `token` is the secret: show it once, never store or log it."""

    token: str = field(repr=False)
    accessor: str
    session_id: str
    role: str
    actor: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    max_expires_at: dt.datetime


@dataclass(frozen=True)
class TokenStatus:
    """What a token (or accessor) looks up to. `reason`: valid, malformed, unknown, expired, revoked,
    not_qualified."""

    valid: bool
    reason: str
    message: str
    accessor: str | None = None
    session_id: str | None = None
    role: str | None = None
    actor: str | None = None
    masque: str | None = None
    version: str | None = None
    session_status: str | None = None
    issued_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    max_expires_at: dt.datetime | None = None
    # The definition the session was granted from, so a service can check what it trusts.
    masque_ring: str | None = None
    content_hash: str | None = None
    source_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "reason": self.reason,
            "message": self.message,
            "accessor": self.accessor,
            "session_id": self.session_id,
            "role": self.role,
            "actor": self.actor,
            "masque": self.masque,
            "version": self.version,
            "session_status": self.session_status,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "max_expires_at": self.max_expires_at,
            "masque_ring": self.masque_ring,
            "content_hash": self.content_hash,
            "source_path": self.source_path,
        }


class CredentialBroker(Protocol):
    """Where credentials come from. `mint` and `revoke_sessions` run inside the caller's transaction so
    that a session, its events and its credential commit together or not at all."""

    def mint(
        self,
        conn: duckdb.DuckDBPyConnection,
        *,
        session_id: str,
        role: str,
        actor: str,
        issued_at: dt.datetime,
        expires_at: dt.datetime,
        max_expires_at: dt.datetime,
    ) -> Minted: ...

    def verify(self, token: str, *, conn: duckdb.DuckDBPyConnection | None = None) -> TokenStatus: ...

    def renew(self, token: str, increment: dt.timedelta | None = None) -> TokenStatus: ...

    def revoke_sessions(
        self, conn: duckdb.DuckDBPyConnection, session_ids: Sequence[str], reason: str
    ) -> list[tuple[str, str]]: ...


def hash_token(secret: bytes, token: str) -> str:
    return hmac.new(secret, token.encode("utf-8"), hashlib.sha256).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def looks_like_token(text: str) -> bool:
    return text.startswith(TOKEN_PREFIX) and 40 <= len(text) <= 64


def _secret(conn: duckdb.DuckDBPyConnection, *, create: bool) -> bytes | None:
    path = config.store_path()
    shared = config.store_url()  # a PostgreSQL store: one secret per database, whatever the home
    cache_key = (shared, 0) if shared else (str(path), path.stat().st_ino if path.exists() else 0)
    cached = _secrets.get(cache_key)
    if cached is not None:
        return cached
    row = conn.execute("SELECT value FROM settings WHERE key = ?", [_SECRET_KEY]).fetchone()
    if row is None:
        if not create:
            return None
        value = secrets.token_hex(32)
        conn.execute("INSERT INTO settings (key, value) VALUES (?, ?)", [_SECRET_KEY, value])
        row = (value,)
    secret = bytes.fromhex(str(row[0]))
    _secrets[cache_key] = secret
    return secret


@contextmanager
def _maybe(conn: duckdb.DuckDBPyConnection | None) -> Iterator[duckdb.DuckDBPyConnection]:
    if conn is not None:
        yield conn
    else:
        with turns.connect() as own:
            yield own


LOOKUP_SQL = """
SELECT c.accessor, c.session_id, c.role, c.actor, c.issued_at, c.expires_at, c.max_expires_at,
       c.revoked_at, c.revoke_reason, s.status, s.masque, s.version, s.masque_ring,
       json_extract_string(s.metadata, '$.revoke_deadline') AS deadline, s.content_hash, s.source_path
FROM credentials c JOIN sessions s ON s.id = c.session_id
"""


class LocalBroker:
    """Credentials kept in the local store: real semantics, no external system."""

    def mint(
        self,
        conn: duckdb.DuckDBPyConnection,
        *,
        session_id: str,
        role: str,
        actor: str,
        issued_at: dt.datetime,
        expires_at: dt.datetime,
        max_expires_at: dt.datetime,
    ) -> Minted:
        secret = _secret(conn, create=True)
        assert secret is not None
        token = new_token()
        accessor = new_id("acc_")
        conn.execute(
            "INSERT INTO credentials (accessor, session_id, token_hash, role, actor, issued_at, expires_at,"
            " max_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                accessor,
                session_id,
                hash_token(secret, token),
                role,
                actor,
                issued_at,
                expires_at,
                max_expires_at,
            ],
        )
        return Minted(token, accessor, session_id, role, actor, issued_at, expires_at, max_expires_at)

    def verify(self, token: str, *, conn: duckdb.DuckDBPyConnection | None = None) -> TokenStatus:
        """Look the token up and judge it now, including whether its actor still qualifies."""
        if not isinstance(token, str) or not looks_like_token(token.strip()):
            return TokenStatus(False, "malformed", f"not a Masque token (they start with {TOKEN_PREFIX!r})")
        with _maybe(conn) as c:
            secret = _secret(c, create=False)
            row = None
            if secret is not None:
                row = c.execute(LOOKUP_SQL + " WHERE c.token_hash = ?", [hash_token(secret, token.strip())]).fetchone()
            if row is None:
                return TokenStatus(False, "unknown", "unknown token (never minted by this store)")
            return judge(c, row)

    def renew(self, token: str, increment: dt.timedelta | None = None) -> TokenStatus:
        """Extend a valid credential by `increment` (default: its original lifetime), within its maximum.

        An explicit increment reaching past the maximum is refused, not silently shortened.
        """
        with turns.transaction() as conn:
            status = self.verify(token, conn=conn)
            if not status.valid:
                raise Refused(f"cannot renew: {status.message}", reason=f"token_{status.reason}")
            assert status.issued_at and status.expires_at and status.max_expires_at
            now = utcnow()
            if increment is not None:
                wanted = now + increment
                if wanted > status.max_expires_at + dt.timedelta(seconds=1):
                    left = format_duration(status.max_expires_at - now)
                    raise Refused(
                        f"cannot renew {status.accessor} for {format_duration(increment)}: "
                        f"its maximum lifetime ends in {left} ({status.max_expires_at.isoformat()})",
                        reason="ttl_too_long",
                        hint=f"ask for {left} or less, or assume again",
                    )
            else:
                wanted = now + (status.expires_at - status.issued_at)
            new_expiry = min(wanted, status.max_expires_at)
            if new_expiry > status.expires_at:
                conn.execute("UPDATE credentials SET expires_at = ? WHERE accessor = ?", [new_expiry, status.accessor])
                record_for_session(
                    conn,
                    "credential_renewed",
                    status.session_id,
                    {"accessor": status.accessor, "expires_at": new_expiry.isoformat()},
                    ts=now,
                )
            return _replace_expiry(status, max(new_expiry, status.expires_at))

    def revoke_sessions(
        self, conn: duckdb.DuckDBPyConnection, session_ids: Sequence[str], reason: str
    ) -> list[tuple[str, str]]:
        """Revoke every live credential of these sessions. Returns (accessor, session_id) pairs revoked."""
        if not session_ids:
            return []
        marks = ", ".join("?" for _ in session_ids)
        found = conn.execute(
            f"UPDATE credentials SET revoked_at = ?, revoke_reason = ?"
            f" WHERE session_id IN ({marks}) AND revoked_at IS NULL RETURNING accessor, session_id",
            [utcnow(), reason, *session_ids],
        ).fetchall()
        return [(str(a), str(s)) for a, s in found]


def _replace_expiry(status: TokenStatus, expires_at: dt.datetime) -> TokenStatus:
    from dataclasses import replace

    return replace(status, expires_at=expires_at, message=f"valid until {expires_at.isoformat()}")


def judge(conn: duckdb.DuckDBPyConnection, row: tuple[Any, ...]) -> TokenStatus:
    """The status of one credential row (a `LOOKUP_SQL` row): valid, expired, revoked, or its actor unqualified."""
    (
        accessor,
        session_id,
        role,
        actor,
        issued,
        expires,
        max_expires,
        revoked_at,
        revoke_reason,
        s_status,
        masque,
        version,
        masque_ring,
        deadline,
        content_hash,
        source_path,
    ) = row
    issued, expires, max_expires = as_utc(issued), as_utc(expires), as_utc(max_expires)
    base = {
        "accessor": accessor,
        "session_id": session_id,
        "role": role,
        "actor": actor,
        "masque": masque,
        "version": version,
        "session_status": s_status,
        "issued_at": issued,
        "expires_at": expires,
        "max_expires_at": max_expires,
        "masque_ring": masque_ring,
        "content_hash": content_hash,
        "source_path": source_path,
    }
    now = utcnow()
    if revoked_at is not None:
        when = as_utc(revoked_at) or now
        return TokenStatus(False, "revoked", f"revoked ({revoke_reason}) at {when.isoformat()}", **base)
    if s_status not in ("active", "revoking"):
        return TokenStatus(False, "revoked", f"its session {session_id} has ended ({s_status})", **base)
    if deadline and now >= dt.datetime.fromisoformat(deadline):
        return TokenStatus(False, "revoked", f"its session {session_id} was revoked (grace period over)", **base)
    if expires is not None and now >= expires:
        return TokenStatus(False, "expired", f"expired at {expires.isoformat()}", **base)
    holder = find_actor(conn, actor)
    if holder is None:
        return TokenStatus(False, "not_qualified", f"its actor {actor!r} no longer exists", **base)
    try:
        check_qualified(holder, Ring(masque_ring), f"wearing {masque}@{version}")
    except Refused as exc:
        return TokenStatus(False, "not_qualified", str(exc), **base)
    guest_cap = dt.timedelta(seconds=config.limits().guest_ttl_seconds)
    if holder.ring is Ring.GUEST and issued is not None and now >= issued + guest_cap:
        return TokenStatus(False, "not_qualified", f"guest sessions are capped at {format_duration(guest_cap)}", **base)
    suffix = " (session is being revoked)" if s_status == "revoking" else ""
    until = expires.isoformat() if expires else "session end"
    return TokenStatus(True, "valid", f"valid until {until}{suffix}", **base)


def broker() -> CredentialBroker:
    """The configured broker (`[credentials] broker`, default and only shipped one: "local")."""
    name = str(config.section("credentials").get("broker", "local"))
    if name != "local":
        raise UsageError(
            f"config [credentials] broker = {name!r} is not available",
            hint='only "local" ships with Masque; remove the setting',
        )
    return LocalBroker()

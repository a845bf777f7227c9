"""One worn session per MCP connection: who opened the connection, what it wears, and the end of it.

A connection starts bare, whatever the server's environment holds: it wears only what its own `don`
put on. Its token stays here (server-side) unless the caller asked for it. When the connection goes
away without `doff`, its session ends as `abandoned` and its credential is revoked; the session's
holder PID is this server's, so a server killed with -9 leaves sessions `masque sessions --stale`
sweeps as today.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from masque.errors import Refused, UsageError

if TYPE_CHECKING:
    from masque.sessions.lifecycle import Session
    from masque.trust.rings import Selection


@dataclass
class Connection:
    """What one MCP connection (stdio process, or one HTTP MCP session) has done so far."""

    transport: str  # "stdio", "http" or "memory"
    kept: bool = True  # False: a stateless request's throwaway, which nothing else will see
    opened_by: str | None = None  # the actor who opened it; a later request by another is refused
    worn: Session | None = None
    last_session_id: str | None = None  # the session `score` scores once doffed
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # don and doff one at a time: two racing `don`s would otherwise both see nothing worn.
    wearing_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bind(self, actor: str) -> None:
        """Tie the connection to the first actor who used it; another actor gets none of its state."""
        with self.lock:
            if self.opened_by is None:
                self.opened_by = actor
                return
        if actor != self.opened_by:
            raise Refused(
                f"this MCP connection was opened by actor {self.opened_by!r}; actor {actor!r} cannot use it",
                reason="connection_bound",
                hint="open your own MCP connection (session) with your own bearer credential",
            )

    def wearing(self) -> Session:
        if self.worn is None:
            raise UsageError(
                "this connection wears no masque",
                hint="call the `don` tool first (masque and intent), then this one",
            )
        return self.worn

    def worn_selection(self) -> Selection:
        """The worn session's own token: it proves the session (and so its actor) to memory and doff."""
        from masque.trust.rings import Selection

        s = self.wearing()
        return Selection(token=s.token)

    def abandon(self) -> None:
        """The connection went away: end what it still wears as `abandoned` (credential revoked)."""
        with self.lock:
            worn, self.worn = self.worn, None
        if worn is None:
            return
        from masque.sessions.lifecycle import abandon
        from masque.trust.rings import Selection

        abandon(worn.session_id, reason="connection_closed", selection=Selection(token=worn.token))


@dataclass(frozen=True)
class Caller:
    """Who calls a tool (proven) and the connection it calls on: every tool body's first parameter."""

    selection: Selection
    connection: Connection

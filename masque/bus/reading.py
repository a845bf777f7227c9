"""Reading a team's bus: `read` (one look) and `watch` (a tail that holds no connection between polls)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from masque import config
from masque.bus import contract
from masque.bus.access import check_access, selection_or_env
from masque.bus.model import ID_PREFIX, BusEvent, Kind, subscription_patterns, team_events
from masque.bus.wiring import ensure_wired
from masque.errors import UsageError
from masque.store import turns

if TYPE_CHECKING:
    from masque.trust.rings import Selection


def _check_since(since: str | None) -> None:
    if since is not None and not since.startswith(ID_PREFIX):
        raise UsageError(f"--since takes a bus event id, got {since!r}", hint="ids look like bus_01J...")


def read(
    team: str,
    *,
    member: str | None = None,
    since: str | None = None,
    kinds: Sequence[Kind | str] = (),
    selection: Selection | None = None,
) -> list[BusEvent]:
    """A team's events in posting order; with `member`, only the topics that member subscribes to."""
    wanted = [k.value if isinstance(k, Kind) else Kind.parse(k).value for k in kinds]
    _check_since(since)
    selection = selection_or_env(selection)
    with turns.connect(read_only=True) as conn:
        access = check_access(conn, team, selection)
        listener = access.team.member(member) if member is not None else None
        patterns = subscription_patterns(conn, access.team.id, listener.member) if listener else []
        if listener is None or patterns:
            events = team_events(conn, access.team.id, since=since, kinds=wanted)
            return [e for e in events if listener is None or contract.topic_matches(e.topic, patterns)]
    # The member has no subscriptions recorded yet: wire its masque's, then read (one write, once).
    turns.prepare("masque.masques.registry")
    with turns.transaction() as conn:
        access = check_access(conn, team, selection)
        listener = access.team.member(str(member))
        ensure_wired(conn, access.team, listener)
        patterns = subscription_patterns(conn, access.team.id, listener.member)
        events = team_events(conn, access.team.id, since=since, kinds=wanted)
    return [e for e in events if contract.topic_matches(e.topic, patterns)]


def newest_id(team: str, *, selection: Selection | None = None) -> str | None:
    """The id of a team's newest event (where `watch` starts by default)."""
    with turns.connect(read_only=True) as conn:
        access = check_access(conn, team, selection_or_env(selection))
        row = conn.execute("SELECT max(id) FROM mask_events WHERE team_id = ?", [access.team.id]).fetchone()
    return str(row[0]) if row and row[0] else None


Stamp = tuple[tuple[int, int, int] | None, ...]


def store_stamp() -> Stamp:
    """What the store's files look like on disk: any commit changes it (its WAL grows, or a checkpoint rewrites it)."""
    if config.store_url() is not None:  # a PostgreSQL store has no files here: every poll reads (a few ms)
        return ((time.monotonic_ns(), 0, 0),)
    path = config.store_path()
    stamp: list[tuple[int, int, int] | None] = []
    for file in (path, path.with_name(path.name + ".wal")):
        try:
            st = file.stat()
        except OSError:
            stamp.append(None)
            continue
        stamp.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(stamp)


FULL_POLL_EVERY = 5.0  # seconds: read (and re-check the caller's right to) even when the files look unchanged


def watch(
    team: str,
    *,
    member: str | None = None,
    since: str | None = None,
    from_start: bool = False,
    kinds: Sequence[Kind | str] = (),
    interval: float = 0.25,
    selection: Selection | None = None,
) -> Iterator[BusEvent]:
    """Yield a team's events as they are posted, forever (the caller stops).

    Each poll is one short read: no connection is held between polls, so writers are never locked
    out. Opening the store costs tens of milliseconds, so a poll first compares the store's files
    with the last look (a stat) and reads only when something was committed, or every
    FULL_POLL_EVERY seconds; every read checks the caller's right again (a revoked token stops it).
    """
    import duckdb

    _check_since(since)
    selection = selection_or_env(selection)
    last = since if since or from_start else newest_id(team, selection=selection)
    seen: Stamp | None = None
    read_at = 0.0
    try:
        while True:
            stamp = store_stamp()  # before reading: a commit during the read shows at the next poll
            if stamp != seen or time.monotonic() - read_at >= FULL_POLL_EVERY:
                seen, read_at = stamp, time.monotonic()
                for event in read(team, member=member, since=last, kinds=kinds, selection=selection):
                    last = event.id
                    yield event
            time.sleep(interval)
    except duckdb.InterruptException:  # Ctrl-C while DuckDB ran a query: the same as anywhere else
        raise KeyboardInterrupt from None

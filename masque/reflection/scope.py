"""What a reflection looks at: the level, its subject, the filters, and the SQL fragments they become."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any

from masque.errors import NotFound, Refused, UsageError
from masque.model import Ref, Ring

if TYPE_CHECKING:
    import duckdb

STATUSES = ("active", "revoking", "ended", "revoked", "abandoned")


class Level(str, Enum):
    """The five reflection levels, narrowest first."""

    SESSION = "session"
    MASQUE = "masque"
    SKILL = "skill"
    RING = "ring"
    SYSTEM = "system"


@dataclass(frozen=True)
class Filters:
    """Which sessions count: started in [since, until), worn by `actor`, by actors of `rings` (all when None).

    `rings` is not a user option: `report` sets it to the rings the acting actor may see (its own
    and the less trusted ones), so a guest's stats never show admin or player sessions.
    """

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    rings: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, since: str | None = None, until: str | None = None, actor: str | None = None) -> Filters:
        from masque.durations import parse_since

        now = datetime.now(timezone.utc)
        start = parse_since(since, now=now) if since else None
        end = parse_since(until, now=now) if until else None
        if start and end and start >= end:
            raise UsageError(f"--since ({start.isoformat()}) must be before --until ({end.isoformat()})")
        return cls(start, end, actor)

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "actor": self.actor,
            "actor_rings": list(self.rings) if self.rings is not None else None,
        }


@dataclass(frozen=True)
class Selection:
    """What to reflect on: one level and its subject."""

    level: Level
    subject: str | None = None  # session id, masque ref, skill, ring; None for the system

    @classmethod
    def choose(
        cls,
        masque: str | None = None,
        skill: str | None = None,
        ring: str | None = None,
        session: str | None = None,
    ) -> Selection:
        given = [
            (lvl, v)
            for lvl, v in ((Level.MASQUE, masque), (Level.SKILL, skill), (Level.RING, ring), (Level.SESSION, session))
            if v
        ]
        if len(given) > 1:
            raise UsageError(
                "choose one level: a masque NAME, --skill, --ring or --session",
                hint="run `masque stats` without any of them for the whole system",
            )
        return cls(*given[0]) if given else cls(Level.SYSTEM)


def round3(value: Any, places: int = 3) -> float | None:
    return None if value is None else round(float(value), places)


class Scope:
    """Builds the WHERE fragments and parameters for one selection + filters."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, selection: Selection, filters: Filters) -> None:
        self.conn = conn
        self.selection = selection
        self.filters = filters if selection.level is not Level.SESSION else Filters(rings=filters.rings)
        self.params: dict[str, Any] = {}
        self.session_where = ["true"]
        self.event_where = ["true"]
        self.subject = selection.subject
        self._scope()
        self._filters()

    def _scope(self) -> None:
        level, subject = self.selection.level, self.selection.subject or ""
        if level is Level.SESSION:
            self._require_session(subject)
            self.params["session"] = subject
            self.session_where.append("s.id = $session")
            self.event_where.append("e.session_id = $session")
        elif level is Level.MASQUE:
            ref = Ref.parse(subject)
            key = ref.name.casefold()
            self._require_masque(key, ref.version)
            self.params["masque"] = key
            self.session_where.append("s.masque = $masque")
            self.event_where.append("e.masque = $masque")
            if ref.version:
                self.params["version"] = ref.version
                self.session_where.append("s.version = $version")
                self.event_where.append("e.version = $version")
            self.subject = f"{key}@{ref.version}" if ref.version else key
        elif level is Level.SKILL:
            self.subject = self._resolve_skill(subject)
            self.params["skill"] = self.subject
            claim = "(SELECT masque, version FROM masque_skills WHERE skill = $skill)"
            self.session_where.append(f"(s.masque, s.version) IN {claim}")
            self.event_where.append(f"(e.masque, e.version) IN {claim}")
        elif level is Level.RING:
            try:
                self.subject = Ring(subject.strip().casefold()).value
            except ValueError:
                raise UsageError(
                    f"not a trust ring: {subject!r}", hint=f"rings are {', '.join(r.value for r in Ring)}"
                ) from None
            if self.filters.rings is not None and self.subject not in self.filters.rings:
                raise Refused(
                    f"ring {self.subject} is more trusted than yours: an actor sees its own ring and below",
                    reason="ring_refused",
                    hint=f"rings you can see: {', '.join(self.filters.rings)}",
                )
            self.params["ring"] = self.subject
            self.session_where.append("s.masque_ring = $ring")
            # Refusals may come before any session exists: the ring is taken from the event payload
            # when recorded there, else from sessions of the same masque version.
            self.event_where.append(
                "coalesce(json_extract_string(e.payload, '$.masque_ring'), (SELECT any_value(x.masque_ring)"
                " FROM sessions x WHERE x.masque = e.masque AND x.version = e.version)) = $ring"
            )

    def _filters(self) -> None:
        f = self.filters
        if f.since:
            self.params["since"] = f.since
            self.session_where.append("s.started_at >= $since")
            self.event_where.append("e.ts >= $since")
        if f.until:
            self.params["until"] = f.until
            self.session_where.append("s.started_at < $until")
            self.event_where.append("e.ts < $until")
        if f.actor:
            self.params["actor"] = f.actor
            self.session_where.append("s.actor = $actor")
            self.event_where.append("e.actor = $actor")
        if f.rings is not None:
            self.params["rings"] = list(f.rings)
            self.session_where.append("list_contains($rings, s.actor_ring)")
            # An event counts by its actor's ring: the local actor's, else the one its sessions recorded
            # (imported actors are not local).
            self.event_where.append(
                "(e.actor IS NULL OR list_contains($rings, coalesce((SELECT a.ring FROM actors a"
                " WHERE a.name = e.actor), (SELECT any_value(x.actor_ring) FROM sessions x WHERE x.actor = e.actor))))"
            )

    def _require_session(self, session_id: str) -> None:
        found = self.conn.execute("SELECT actor_ring FROM sessions WHERE id = ?", [session_id]).fetchone()
        rings = self.filters.rings
        # A session of a more trusted actor is reported as unknown, as `masque sessions show` does.
        if not found or (rings is not None and found[0] not in rings):
            raise NotFound(f"no session {session_id!r}", hint="list sessions with `masque sessions`")

    def _require_masque(self, key: str, version: str | None) -> None:
        found = self.conn.execute(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM sessions WHERE masque = ? LIMIT 1))"
            " + (SELECT count(*) FROM (SELECT 1 FROM events WHERE masque = ? LIMIT 1))",
            [key, key],
        ).fetchone()
        if not found or not found[0]:
            names = [r[0] for r in self.conn.execute("SELECT DISTINCT masque FROM sessions").fetchall()]
            close = difflib.get_close_matches(key, names, n=3)
            raise NotFound(
                f"no sessions or events recorded for masque {key!r}",
                hint=f"did you mean {', '.join(close)}?" if close else "`masque stats` lists the masques with sessions",
            )
        if version:
            versions = sorted(
                r[0]
                for r in self.conn.execute(
                    "SELECT DISTINCT version FROM sessions WHERE masque = ?"
                    " UNION SELECT DISTINCT version FROM events WHERE masque = ? AND version IS NOT NULL",
                    [key, key],
                ).fetchall()
            )
            if version not in versions:
                raise NotFound(
                    f"no sessions recorded for {key}@{version}",
                    hint=f"versions with sessions: {', '.join(versions)}",
                )

    def _resolve_skill(self, text: str) -> str:
        skills = [r[0] for r in self.conn.execute("SELECT DISTINCT skill FROM masque_skills ORDER BY 1").fetchall()]
        wanted = text.strip()
        if wanted.startswith("skill://"):
            if wanted in skills:
                return wanted
            matches: list[str] = []
        else:
            matches = [s for s in skills if s.rstrip("/").rsplit("/", 1)[-1] == wanted.casefold()]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UsageError(f"skill {text!r} is ambiguous: {', '.join(matches)}", hint="pass the full skill:// URI")
        raise NotFound(
            f"no masque with recorded sessions claims skill {text!r}",
            hint=f"claimed skills: {', '.join(skills[:10])}" if skills else "no skills recorded yet",
        )

    def where(self) -> str:
        return " AND ".join(self.session_where)

    def base_where(self) -> str:
        """The slice the grouped scan reads; at ring level it adds the ring's actors' sessions."""
        if self.selection.level is Level.RING:
            return self.where().replace("s.masque_ring = $ring", "(s.masque_ring = $ring OR s.actor_ring = $ring)")
        return self.where()

    def event_filter(self) -> str:
        return " AND ".join(self.event_where)


def fetch(conn: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    cur = conn.execute(sql, dict(params or {}))
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

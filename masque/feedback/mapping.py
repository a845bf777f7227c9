"""`masque map`: run a mapper over a masque's traits, the time and a context; record each suggestion.

Every suggestion is stored with its own id, the rule that produced it and the mapper version, so
feedback on it can be mapped back to that rule (seed 001 §6.2 step 4).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from masque.durations import utcnow
from masque.errors import UsageError
from masque.feedback import access, mappers, observations, rules
from masque.feedback.traits import traits
from masque.ids import new_id
from masque.store import turns

if TYPE_CHECKING:
    from masque.trust.rings import Selection


class DetailLevel(str, Enum):
    """How much each suggestion shows: basic (text), standard (+ rule, type, weight), full (+ why)."""

    BASIC = "basic"
    STANDARD = "standard"
    FULL = "full"


@dataclass(frozen=True)
class Suggestion:
    id: str
    match: rules.Match

    def to_json(self, level: DetailLevel) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "text": self.match.text}
        if level is DetailLevel.BASIC:
            return out
        out.update({"rule": self.match.rule_id, "type": self.match.type, "weight": self.match.weight})
        if level is DetailLevel.FULL:
            out["detail"] = self.match.detail
            out["matched"] = self.match.to_json()["matched"]
        return out


@dataclass(frozen=True)
class MapResult:
    mapper_id: str
    mapper_version: int
    declared_version: str
    masque: str
    detail_level: DetailLevel
    suggestions: tuple[Suggestion, ...]
    traits: Mapping[str, Any]
    at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mapper": self.mapper_id,
            "mapper_version": self.mapper_version,
            "declared_version": self.declared_version,
            "masque": self.masque,
            "detail_level": self.detail_level.value,
            "at": self.at.isoformat(),
            "suggestions": [s.to_json(self.detail_level) for s in self.suggestions],
        }
        if self.detail_level is DetailLevel.FULL:
            out["traits"] = dict(self.traits)
        return out


def parse_context(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--context is not valid JSON: {exc.msg} at column {exc.colno}",
            hint='e.g. --context \'{"task": "review the parser"}\'',
        ) from None
    if not isinstance(value, dict):
        raise UsageError("--context must be a JSON object", hint='e.g. --context \'{"task": "review"}\'')
    return value


def map_masque(
    mapper_id: str,
    masque: str,
    *,
    detail_level: DetailLevel | str = DetailLevel.STANDARD,
    context: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
    limit: int | None = None,
    selection: Selection | None = None,
) -> MapResult:
    """Suggestions for `masque` from mapper `mapper_id` (current version), best weight first."""
    level = DetailLevel(detail_level)
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    info = access.find_masque(masque)
    at = now or utcnow()
    turns.prepare()
    with turns.transaction() as conn:
        who = access.caller(conn, selection)
        access.require_known(conn, info)
        access.check_masque(who, info, "map")
        mapper = mappers.current(conn, mapper_id)
        facts = rules.Facts(traits(info.masque, info.key, observations.rows(conn, info.key)), at, dict(context or {}))
        matches = rules.evaluate(mapper.doc, facts)[:limit]
        made = tuple(Suggestion(new_id("sug_"), m) for m in matches)
        if made:
            params: list[Any] = []
            for s in made:
                params += [
                    s.id,
                    mapper.id,
                    mapper.version,
                    s.match.rule_id,
                    s.match.type,
                    info.key,
                    who.actor.name,
                    who.session_id,
                    s.match.text,
                    s.match.weight,
                    at,
                ]
            rows = ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" for _ in made)
            conn.execute(
                "INSERT INTO suggestions (id, mapper_id, mapper_version, rule_id, type, masque, actor, session_id,"
                f" text, weight, ts) VALUES {rows}",
                params,
            )
    return MapResult(mapper.id, mapper.version, mapper.declared, info.key, level, made, facts.traits, at)

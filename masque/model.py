"""Frozen value types that cross module lines. Built only from validated data (see `masque.build`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from masque.enums import Level, Ring, Score, Stage  # also `masque.model` names, as before the split
from masque.errors import UsageError


@dataclass(frozen=True)
class Skill:
    """A claimed skill: its `skill://domain/name` URI and level."""

    uri: str  # skill://domain/name
    level: Level

    @property
    def domain(self) -> str:
        return self.uri.removeprefix("skill://").split("/", 1)[0]

    @property
    def short_name(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Intent:
    """The intent policy: allowed and denied globs."""

    allowed: tuple[str, ...]
    denied: tuple[str, ...] = ()


@dataclass(frozen=True)
class Access:
    """What a session may reach: its vault role and credential lifetime."""

    vault_role: str | None = None
    ttl: str = "session"  # "session" or an ISO 8601 duration

    @property
    def ttl_is_session(self) -> bool:
        return self.ttl == "session"


@dataclass(frozen=True)
class HistoryEntry:
    """One dated score in a masque's performance history."""

    date: str
    score: Score
    notes: str | None = None


@dataclass(frozen=True)
class Performance:
    """A masque's overall score and its history."""

    score: Score | None = None
    history: tuple[HistoryEntry, ...] = ()


@dataclass(frozen=True)
class Collaboration:
    """How a masque works in a team and on the collaboration bus (the `collaboration` block)."""

    role: str | None = None  # formation role in a team, unless `team spawn --role` overrides it
    capabilities: frozenset[str] = frozenset()  # the flags set true, e.g. can_provide_feedback
    subscribes: tuple[str, ...] = ()  # bus topic patterns, `member.kind` globs

    def can(self, capability: str) -> bool:
        return capability in self.capabilities


def collaboration_from_data(data: Mapping[str, Any] | None) -> Collaboration | None:
    """The schema-valid `collaboration` block (or a mask's `capabilities` flags) as the model."""
    if not data:
        return None
    flags = data.get("capabilities") or {}
    return Collaboration(
        role=data.get("role"),
        capabilities=frozenset(name for name, on in flags.items() if on),
        subscribes=tuple(data.get("subscribes") or ()),
    )


@dataclass(frozen=True)
class Masque:
    """A validated masque definition (either file dialect)."""

    name: str
    index: int
    version: str
    ring: Ring
    intent: Intent
    lens: str
    context: str | None = None
    knowledge: tuple[str, ...] = ()
    access: Access | None = None
    skills: tuple[Skill, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)
    performance: Performance | None = None
    extends: str | None = None
    stage: Stage = Stage.LIVE
    rubric: str | None = None
    tests: tuple[Mapping[str, Any], ...] = ()
    collaboration: Collaboration | None = None

    @property
    def ref(self) -> str:
        return f"{self.key}@{self.version}"

    @property
    def key(self) -> str:
        """Registry key: the case-folded name."""
        return self.name.casefold()


_REF_RE = re.compile(r"^(?:masque:)?(?P<name>[A-Za-z0-9][A-Za-z0-9._/-]*?)(?:@v?(?P<version>[0-9][0-9A-Za-z.+-]*))?$")


@dataclass(frozen=True)
class Ref:
    """A reference to a masque: `name`, `name@1.2.3`, `masque:name@v1.2.3`, `base/professor@1.0.0`."""

    name: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> Ref:
        match = _REF_RE.match(text.strip())
        if not match:
            raise UsageError(
                f"not a masque reference: {text!r}",
                hint="use NAME, NAME@1.2.3 or masque:NAME@v1.2.3",
            )
        return cls(match["name"], match["version"])

    def __str__(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.name


class FrozenMap(dict[Any, Any]):
    """A read-only dict: still JSON-serialisable and picklable, unlike MappingProxyType."""

    def _readonly(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("masque model mappings are read-only")

    __setitem__ = __delitem__ = _readonly
    clear = pop = popitem = setdefault = update = __ior__ = _readonly

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenMap, (dict(self),))

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=repr)))


def freeze(value: Any) -> Any:
    """Deep-copy plain YAML data into immutable containers (tuples and read-only mappings)."""
    if isinstance(value, dict):
        return FrozenMap({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


def masque_from_data(data: Mapping[str, Any]) -> Masque:
    """Build the model from schema-valid data (the schema guarantees types and required keys)."""
    intent = data["intent"]
    access = data.get("access")
    perf = data.get("performance")
    return Masque(
        name=data["name"],
        index=data["index"],
        version=data["version"],
        ring=Ring(data["ring"]),
        intent=Intent(tuple(intent["allowed"]), tuple(intent.get("denied") or ())),
        lens=data["lens"],
        context=data.get("context"),
        knowledge=tuple(data.get("knowledge") or ()),
        access=Access(access.get("vault_role"), access.get("ttl", "session")) if access is not None else None,
        skills=tuple(Skill(s["uri"], Level(s["level"])) for s in data.get("skills") or ()),
        attributes=freeze(dict(data.get("attributes") or {})),
        performance=(
            Performance(
                Score(perf["score"]) if perf.get("score") else None,
                tuple(
                    HistoryEntry(str(h["date"]), Score(h["score"]), h.get("notes")) for h in perf.get("history") or ()
                ),
            )
            if perf is not None
            else None
        ),
        extends=data.get("extends"),
        stage=Stage(data.get("stage", "live")),
        rubric=data.get("rubric"),
        tests=freeze(list(data.get("tests") or ())),
        collaboration=collaboration_from_data(data.get("collaboration")),
    )

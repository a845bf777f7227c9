"""What a masque gives a session (`Wearable`), whichever way it was defined (YAML or code).

Apart from `masque.sessions.model` so that a release, which reads sessions, never creates this class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from masque.enums import Ring
    from masque.masques.intent import Decision
    from masque.model import Collaboration, Skill


@dataclass(frozen=True)
class Wearable:
    """Everything an assumption needs from a masque, whichever way it was defined (YAML or code)."""

    key: str
    name: str
    version: str
    ring: Ring
    decide: Callable[[str], Decision]
    lens: str
    context: str | None = None
    knowledge: tuple[str, ...] = ()
    vault_role: str | None = None
    ttl: str = "session"
    skills: tuple[Skill, ...] = ()
    content_hash: str | None = None
    source_path: str | None = None
    source: str = "registry"
    collaboration: Collaboration | None = None  # role in a team (`masque team spawn`), bus capabilities

    @property
    def ref(self) -> str:
        return f"{self.key}@{self.version}"


def wearable_from_model(resolved: Any) -> Wearable:
    """A Wearable from `masque.masques.registry.Resolved` (a validated YAML/JSON masque)."""
    from masque.masques.intent import Policy

    m = resolved.masque
    policy = Policy.compile(m.intent)
    return Wearable(
        key=m.key,
        name=m.name,
        version=m.version,
        ring=m.ring,
        decide=policy.decide,
        lens=m.lens,
        context=m.context,
        knowledge=tuple(m.knowledge),
        vault_role=m.access.vault_role if m.access else None,
        ttl=m.access.ttl if m.access else "session",
        skills=tuple(m.skills),
        content_hash=resolved.sha256,
        source_path=str(resolved.path),
        source=str(resolved.source),
        collaboration=m.collaboration,
    )

"""Code-defined masques: the `Masque` protocol, `ModelMasque` (a YAML/JSON masque behind it) and the opt-in
loader (`MASQUE_CODE_MASQUES`). Below the session lifecycle, which wears them; `masque.api` re-exports them.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from masque import config
from masque.errors import UsageError
from masque.model import Access, Intent, Ring, Skill
from masque.sessions.wearable import Wearable, wearable_from_model

if TYPE_CHECKING:
    from masque.masques.intent import Decision
    from masque.masques.registry import Resolved

__all__ = ["Masque", "ModelMasque", "code_masque_for", "find_code", "load_code_masque", "resolve_wearable"]


class Masque(ABC):
    """A masque as a program. Subclass it; set `name`, `version`, `ring_required`; implement `lens`.

    `validate_intent` may return a bool or a `masque.masques.intent.Decision`; by default it applies the glob
    policy in `intent_allowed` / `intent_denied` (denied wins, default deny), exactly as YAML does.
    `access` returns the `Access` spec (vault role and ttl); the broker mints the credential.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "0.0.0"
    ring_required: ClassVar[Ring] = Ring.OUTSIDER
    intent_allowed: ClassVar[tuple[str, ...]] = ()
    intent_denied: ClassVar[tuple[str, ...]] = ()

    def validate_intent(self, intent: str) -> bool | Decision:
        from masque.masques.intent import Policy

        return Policy.compile(Intent(tuple(self.intent_allowed), tuple(self.intent_denied))).decide(intent)

    def knowledge(self) -> list[str]:
        return []

    def access(self) -> Access | None:
        return None

    @abstractmethod
    def lens(self) -> str:
        """The system-prompt fragment: how to approach problems while wearing this masque."""

    def context(self) -> str | None:
        return None

    def skills(self) -> list[Skill]:
        return []

    # -- what the runtime needs --------------------------------------------------------------------

    def decide(self, intent: str) -> Decision:
        """`validate_intent` as an explained Decision (a bare bool explains itself generically)."""
        from masque.masques.intent import Decision, Policy
        from masque.masques.intent_text import boundary_problem

        # The boundary holds for code masques too: user code never sees (nor lets through) a line
        # break, control character or undecodable byte.
        problem = boundary_problem(intent) if isinstance(intent, str) else None
        if problem is not None:
            return Decision(False, problem[0], None, "", f"refused: {problem[1]}")
        try:
            verdict = self.validate_intent(intent)
        except Exception as exc:  # any error refuses, like the YAML policy
            return Decision(False, "error", None, "", f"refused: validate_intent raised {type(exc).__name__}: {exc}")
        if isinstance(verdict, Decision):
            return verdict
        empty = Policy.compile(Intent(("*",))).decide(intent)
        if not empty.allowed:  # empty or too long: every assumption states its goal, code or not
            return empty
        if verdict:
            return Decision(
                True, "allowed", None, empty.normalized, f"allowed by {type(self).__name__}.validate_intent"
            )
        return Decision(False, "denied", None, empty.normalized, f"denied by {type(self).__name__}.validate_intent")

    def to_wearable(self) -> Wearable:
        access = self.access()
        source = inspect.getsourcefile(type(self))
        digest = hashlib.sha256(Path(source).read_bytes()).hexdigest() if source else None
        name = self.name or type(self).__name__
        return Wearable(
            key=name.casefold(),
            name=name,
            version=str(self.version),
            ring=Ring(self.ring_required),
            decide=self.decide,
            lens=self.lens(),
            context=self.context(),
            knowledge=tuple(self.knowledge()),
            vault_role=access.vault_role if access else None,
            ttl=access.ttl if access else "session",
            skills=tuple(self.skills()),
            content_hash=digest,
            source_path=source,
            source="code",
        )


class ModelMasque(Masque):
    """A validated YAML/JSON masque (from the registry) seen through the `Masque` protocol."""

    def __init__(self, resolved: Resolved) -> None:
        self.resolved = resolved
        self.model = resolved.masque

    def validate_intent(self, intent: str) -> Decision:
        from masque.masques.intent import Policy

        return Policy.compile(self.model.intent).decide(intent)

    def knowledge(self) -> list[str]:
        return list(self.model.knowledge)

    def access(self) -> Access | None:
        return self.model.access

    def lens(self) -> str:
        return self.model.lens

    def context(self) -> str | None:
        return self.model.context

    def skills(self) -> list[Skill]:
        return list(self.model.skills)

    def to_wearable(self) -> Wearable:
        return wearable_from_model(self.resolved)


def load_code_masque(spec: str) -> Masque:
    """Import `module:Class` or `path/to/file.py:Class` and instantiate it. Runs that code."""
    module_name, sep, class_name = spec.strip().rpartition(":")
    if not sep or not module_name or not class_name:
        raise UsageError(
            f"not a code masque spec: {spec!r} (expected module:Class or path/to/file.py:Class)",
            hint="fix the spec in MASQUE_CODE_MASQUES or the load_code_masque call",
        )
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).expanduser().resolve()
            mod_spec = importlib.util.spec_from_file_location(f"masque_code_{path.stem}", path)
            if mod_spec is None or mod_spec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[mod_spec.name] = module
            mod_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except (ImportError, OSError) as exc:
        raise UsageError(f"cannot import code masque {spec!r}: {exc}", hint="check MASQUE_CODE_MASQUES") from None
    cls = getattr(module, class_name, None)
    if not (inspect.isclass(cls) and issubclass(cls, Masque)):
        raise UsageError(f"{spec!r} is not a masque.api.Masque subclass", hint="subclass masque.api.Masque")
    return cls()


def find_code(ref: str) -> Masque | None:
    """The opted-in code masque (MASQUE_CODE_MASQUES) that `ref` names, if any."""
    listed = config.env_value("MASQUE_CODE_MASQUES")
    if not listed:
        return None
    from masque.masques.registry import name_key
    from masque.model import Ref

    want = Ref.parse(ref)
    for spec in (s.strip() for s in listed.split(",") if s.strip()):
        found = load_code_masque(spec)
        name = found.name or type(found).__name__
        if name_key(name) == name_key(want.name) and want.version in (None, str(found.version)):
            return found
    return None


def code_masque_for(ref: str) -> Wearable | None:
    """The opted-in code masque `ref` names, ready to wear; None when none is listed for it."""
    found = find_code(ref)
    return found.to_wearable() if found is not None else None


def resolve_wearable(ref: str) -> Wearable:
    """Opted-in code masques (MASQUE_CODE_MASQUES) first, then the registry."""
    from masque.masques import registry

    coded = code_masque_for(ref)
    if coded is not None:
        return coded
    return wearable_from_model(registry.resolve(ref))

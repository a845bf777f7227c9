"""The Python API: `with masque.assume("codesmith@0.1.0", intent="...") as s:` and code-defined masques.

`Masque` is the protocol every masque satisfies — `validate_intent`, `knowledge`, `access`, `lens`
(plus `context` and `skills`). YAML/JSON masques are wrapped by `ModelMasque`; code-defined ones
subclass `Masque` (seed 004's `class Homelab(Masque)`). Code masques run code when loaded, so they are
used only when the user opts in: by passing an instance to `assume`, by `load_code_masque("mod:Class")`,
or, for the CLI, by listing them in `MASQUE_CODE_MASQUES` ("pkg.mod:Class,path/to/file.py:Other").
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from masque import config
from masque.errors import UsageError
from masque.model import Access, Intent, Ring, Skill

if TYPE_CHECKING:
    import datetime as dt

    from masque.masques.intent import Decision
    from masque.masques.registry import Resolved
    from masque.sessions.lifecycle import Ended, Session, Wearable
    from masque.trust.credentials import TokenStatus

__all__ = [
    "Masque",
    "ModelMasque",
    "assume",
    "check",
    "load",
    "load_code_masque",
    "release",
    "revoke",
    "verify",
]


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
        from masque.sessions.lifecycle import Wearable

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
        from masque.sessions.lifecycle import wearable_from_model

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


def _find_code(ref: str) -> Masque | None:
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
    found = _find_code(ref)
    return found.to_wearable() if found is not None else None


def load(ref: str) -> Masque:
    """The masque a ref names (opted-in code masques first, then the registry) as a `Masque`."""
    from masque.masques import registry

    return _find_code(ref) or ModelMasque(registry.resolve(ref))


def _selection(actor: str | None, key: str | None) -> Any:
    from masque.trust import rings

    env = rings.selection_from_env()
    if actor is None and key is None:
        return env
    return rings.Selection(
        name=actor, key=key, token=env.token, parent_session_id=env.parent_session_id, credential=env.credential
    )


def assume(
    masque: str | Masque,
    intent: str,
    *,
    actor: str | None = None,
    key: str | None = None,
    ttl: str | None = None,
    local: bool = False,
    strict_knowledge: bool = False,
) -> Session:
    """Don a masque; returns the Session (with its token). Use it in `with`: leaving releases it."""
    import os

    from masque.sessions import lifecycle as sessions

    target: str | Wearable = masque.to_wearable() if isinstance(masque, Masque) else masque
    if isinstance(masque, ModelMasque):
        # A registry masque is resolved again under the store's turn, so what the session grants is
        # checked against (or pins) its trusted definition, as `masque assume REF` does.
        target = masque.resolved.ref
    return sessions.assume(
        target,
        intent,
        selection=_selection(actor, key),
        ttl=ttl,
        local=local,
        strict_knowledge=strict_knowledge,
        holder_pid=os.getpid(),
    )


def release(session: Session | str | None = None, *, score: str | None = None, notes: str | None = None) -> Ended:
    """Doff a session (default: MASQUE_SESSION_ID); optionally score it (`+ - / * e`)."""
    from masque.sessions import lifecycle as sessions
    from masque.trust import rings

    if isinstance(session, str) or session is None:
        return sessions.release(session, score=score, notes=notes)
    # Release with the session's own token: the holder may always end what it holds.
    sel = rings.Selection(token=session.token) if session.token else None
    return sessions.release(session.session_id, score=score, notes=notes, selection=sel)


def revoke(session_id: str, *, now: bool = False, grace: dt.timedelta | None = None) -> Ended:
    """Revoke a session and its chain (graceful unless `now`)."""
    from masque.sessions import lifecycle as sessions

    return sessions.revoke(session_id, now=now, grace=grace if grace is not None else sessions.DEFAULT_GRACE)


def check(masque: str | Masque, intent: str) -> Decision:
    """Would this intent be allowed? Decides without assuming or recording anything."""
    target = masque if isinstance(masque, Masque) else load(masque)
    return target.decide(intent)


def verify(token: str) -> TokenStatus:
    """Judge a token now: valid, or why not (unknown, expired, revoked, not_qualified)."""
    from masque.trust.credentials import broker

    return broker().verify(token)

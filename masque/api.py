"""The Python API: `with masque.assume("codesmith@0.1.0", intent="...") as s:` and code-defined masques.

`Masque` is the protocol every masque satisfies — `validate_intent`, `knowledge`, `access`, `lens`
(plus `context` and `skills`). YAML/JSON masques are wrapped by `ModelMasque`; code-defined ones
subclass `Masque` (seed 004's `class Homelab(Masque)`). Code masques run code when loaded, so they are
used only when the user opts in: by passing an instance to `assume`, by `load_code_masque("mod:Class")`,
or, for the CLI, by listing them in `MASQUE_CODE_MASQUES` ("pkg.mod:Class,path/to/file.py:Other").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from masque.sessions.code import Masque, ModelMasque, find_code, load_code_masque

if TYPE_CHECKING:
    import datetime as dt

    from masque.masques.intent import Decision
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


def load(ref: str) -> Masque:
    """The masque a ref names (opted-in code masques first, then the registry) as a `Masque`."""
    from masque.masques import registry

    return find_code(ref) or ModelMasque(registry.resolve(ref))


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

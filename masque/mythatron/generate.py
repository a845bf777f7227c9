"""`mythatron generate` / `masque generate`: one LLM call framed by a mask, logged in the store.

The mask comes from a ref (`professor`, `mask.professor@1.3.0`) or from a session (`--session ID`, or
MASQUE_SESSION_ID): then the exact version the session wore is used, the session must still be
active, and the generation row carries its id. Every call - answered or failed - is one row in the
`generations` table (prompt, response, model, tokens, latency; migration 0004).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from masque.errors import MasqueError, NotFound, Refused, UsageError
from masque.model import Masque
from masque.mythatron.providers import Completion, Provider, TokenSink, build_request, select

if TYPE_CHECKING:
    from masque.trust.rings import Selection


@dataclass(frozen=True)
class Generation:
    id: str
    session_id: str | None
    masque: str
    version: str
    completion: Completion
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The documented shape of `masque generate --json` and the served `done` event."""
        c = self.completion
        return {
            "id": self.id,
            "session_id": self.session_id,
            "masque": self.masque,
            "version": self.version,
            "provider": c.provider,
            "offline": c.offline,
            "model": c.model,
            "response": c.text,
            "prompt_tokens": c.prompt_tokens,
            "completion_tokens": c.completion_tokens,
            "latency_ms": round(c.latency_ms, 3),
            "note": c.note,
        }


@dataclass(frozen=True)
class Target:
    masque: Masque
    path: Path
    session_id: str | None
    warnings: tuple[str, ...] = ()


def target_for_session(session_id: str, selection: Selection | None = None) -> Target:
    """The masque an active session wears, loaded from the file the session recorded.

    `selection` is who asks (default: the CLI's `--as`/environment); a served surface passes its bearer's.
    """
    from masque import store
    from masque.masques.validate import resolve_file

    if not store.present():
        raise NotFound(f"session {session_id} not found: there is no store yet", hint="assume a masque first")
    with store.connect(read_only=True) as conn:
        found = store.rows(
            conn,
            "SELECT masque, version, source_path, content_hash, status FROM sessions WHERE id = ?",
            [session_id],
        )
        if found:
            _check_may_use(conn, session_id, selection)
    if not found:
        raise NotFound(f"session {session_id} not found", hint="`masque sessions` lists sessions")
    row = found[0]
    if row["status"] != "active":
        raise Refused(
            f"session {session_id} is {row['status']}; generate needs an active session",
            reason="session_not_active",
            hint="assume the masque again, or name the mask instead of --session",
        )
    warnings: list[str] = []
    path = Path(str(row["source_path"] or ""))
    if not path.is_file():
        from masque.masques.catalog import lookup

        mask = lookup(f"{row['masque']}@{row['version']}")
        path = mask.path
        warnings.append(f"session file {row['source_path']} is gone; using {path}")
    masque, _ = resolve_file(path)
    if row["content_hash"]:
        import hashlib

        if hashlib.sha256(path.read_bytes()).hexdigest() != row["content_hash"]:
            warnings.append(f"{path} changed since session {session_id} began; using the file as it is now")
    return Target(masque, path, session_id, tuple(warnings))


def _check_may_use(conn: Any, session_id: str, selection: Selection | None = None) -> None:
    """A session id alone proves nothing: generate under it as its token's holder, its own actor (by key or
    as the founder), or a more trusted ring. A session the caller may not even see is "not found"."""
    from masque.sessions.end import may_end
    from masque.sessions.model import load
    from masque.trust import rings

    who = rings.resolve_acting(conn, selection or rings.selection_from_env())
    session = load(conn, session_id)
    if who.session_id == session_id or may_end(who, session):
        return
    if not rings.sees(who.actor, session.actor_ring):
        raise NotFound(f"session {session_id} not found", hint="`masque sessions` lists sessions")
    raise Refused(
        f"actor {who.actor.name!r} (ring {who.actor.ring.value}) cannot generate under session {session_id}"
        f" of actor {session.actor!r}",
        reason="ring_refused",
        hint="generate under your own session (its MASQUE_TOKEN proves it), or name the mask instead",
    )


def target_for_ref(ref: str) -> Target:
    from masque.masques.catalog import lookup
    from masque.masques.validate import resolve_file

    mask = lookup(ref)
    masque, _ = resolve_file(mask.path)
    return Target(masque, mask.path, None)


def choose_target(ref: str | None, session_id: str | None, selection: Selection | None = None) -> Target:
    """MASK, else --session, else MASQUE_SESSION_ID; naming both is a usage error."""
    from masque import config

    if ref and session_id:
        raise UsageError("name a MASK or --session, not both")
    if ref:
        return target_for_ref(ref)
    session_id = session_id or config.session_id_from_env()
    if not session_id:
        raise UsageError(
            "no mask to generate with",
            hint="name one (`mythatron generate professor PROMPT`), pass --session ID, or assume a masque first",
        )
    return target_for_session(session_id, selection)


def _log(
    target: Target,
    provider: str,
    model: str,
    system: str,
    prompt: str,
    completion: Completion | None,
    error: str | None,
) -> str:
    from masque import store
    from masque.ids import new_id

    gen_id = new_id("gen_")
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO generations (id, session_id, masque, version, provider, model, system_prompt,"
            " prompt,"
            " response, prompt_tokens, completion_tokens, latency_ms, status, error, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                gen_id,
                target.session_id,
                target.masque.key,
                target.masque.version,
                provider,
                completion.model if completion else model,
                system,
                prompt,
                completion.text if completion else None,
                completion.prompt_tokens if completion else None,
                completion.completion_tokens if completion else None,
                completion.latency_ms if completion else None,
                "ok" if completion else "error",
                error,
                datetime.now(timezone.utc),
            ],
        )
    return gen_id


def generate(
    prompt: str,
    *,
    ref: str | None = None,
    session_id: str | None = None,
    provider: str | Provider | None = None,
    model: str | None = None,
    on_token: TokenSink | None = None,
    selection: Selection | None = None,
) -> Generation:
    """Run one completion with the mask's context, streaming pieces to `on_token`, and log it.

    `selection` proves who generates under a session (default: the CLI's environment).
    """
    if not prompt.strip():
        raise UsageError("the prompt is empty; say what you want generated")
    target = choose_target(ref, session_id, selection)
    chosen = provider if provider is not None and not isinstance(provider, str) else select(provider)
    request = build_request(target.masque, prompt, model)
    try:
        completion = chosen.complete(request, on_token)
    except MasqueError as exc:
        _log(target, chosen.name, request.model, request.system, prompt, None, str(exc))
        raise
    gen_id = _log(target, chosen.name, request.model, request.system, prompt, completion, None)
    return Generation(gen_id, target.session_id, target.masque.key, target.masque.version, completion, target.warnings)


def generations(session_id: str | None = None, limit: int = 20) -> list[dict[str, object]]:
    """Logged generations, newest first (optionally of one session)."""
    from masque import store

    if not store.present():
        return []
    sql = (
        "SELECT id, session_id, masque, version, provider, model, prompt, response, prompt_tokens,"
        " completion_tokens, latency_ms, status, error, created_at FROM generations"
    )
    params: list[object] = []
    if session_id:
        sql += " WHERE session_id = ?"
        params.append(session_id)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    with store.connect(read_only=True) as conn:
        return store.rows(conn, sql, params)

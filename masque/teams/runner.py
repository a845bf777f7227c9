"""`masque exec --team T [--member M] -- CMD`: run team members' processes, each as its own member.

A member's token exists only as a hash, so each child gets a FRESH credential of its member session
(`manage.member_credentials`), expiring no later than the member's own and revoked as soon as that
child exits; the member session itself stays open until `masque team release`.

Unlike a plain `masque exec` (whose command is a sub-agent that must assume its own masque), the
child here IS the member: it gets MASQUE_SESSION_ID and MASQUE_TOKEN of its member session (so `masque`
calls inside it, and the collaboration bus, act as that member), plus MASQUE_CREDENTIAL (the same
token), MASQUE_TEAM, MASQUE_TEAM_NAME, MASQUE_MEMBER, MASQUE_TEAM_ROLE and the usual masque variables.

Without --member every member runs the command concurrently; all are waited for and the exit status is
the first non-zero one in member order (as `masque team show` lists them), else 0. SIGINT, SIGTERM and
SIGHUP are forwarded to every child; a child whose member session is revoked or ended meanwhile
(`masque revoke`, `masque team release`) gets SIGTERM within about a second.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from masque import config
from masque.errors import NotFound, UsageError

if TYPE_CHECKING:
    from masque.teams.manage import MemberCredential
    from masque.trust.rings import Selection

# Variables of the caller's own session context that must not leak into a member's process.
_STRIPPED = ("MASQUE_SESSION_ID", "MASQUE_TOKEN", "MASQUE_CREDENTIAL", "MASQUE_PARENT_SESSION_ID")


def member_env(base: Mapping[str, str], c: MemberCredential, prompt_file: Path | None) -> dict[str, str]:
    """One member's environment: its session and fresh token, its team and position."""
    s, m = c.session, c.member
    env = {k: v for k, v in base.items() if k not in _STRIPPED}
    env.update(
        {
            "MASQUE_SESSION_ID": s.session_id,
            "MASQUE_TOKEN": c.minted.token,
            "MASQUE_CREDENTIAL": c.minted.token,
            "MASQUE_CREDENTIAL_ACCESSOR": c.minted.accessor,
            "MASQUE_ACCESSOR": c.minted.accessor,
            "MASQUE_EXPIRES_AT": c.minted.expires_at.isoformat(),
            "MASQUE_MASQUE": s.masque,
            "MASQUE_VERSION": s.version,
            "MASQUE_INTENT": s.intent,
            "MASQUE_ACTOR_NAME": s.actor,
            "MASQUE_TEAM": c.team.id,
            "MASQUE_TEAM_NAME": c.team.name,
            "MASQUE_MEMBER": m.member,
            "MASQUE_TEAM_ROLE": m.role,
        }
    )
    if s.role:
        env["MASQUE_ROLE"] = s.role
    if prompt_file is not None:
        env["MASQUE_SYSTEM_PROMPT_FILE"] = str(prompt_file)
    return env


def _prompt(c: MemberCredential) -> str | None:
    """The member's system prompt, rendered again from its (trusted) definition; None if it is gone."""
    from masque.errors import MasqueError
    from masque.sessions.code import resolve_wearable
    from masque.sessions.model import render_prompt

    try:
        w = resolve_wearable(c.session.ref)
    except MasqueError:
        return None
    return render_prompt(w, c.session.intent, c.session.knowledge)


def run_members(
    team: str, argv: Sequence[str], *, member: str | None = None, selection: Selection | None = None
) -> int:
    """Run `argv` as one member (or every member, concurrently); returns the exit status (see module doc)."""
    from masque.sessions.runner import FORWARDED, run_dir, write_prompt
    from masque.teams import manage

    if not argv:
        raise UsageError("no command to run", hint="put the command after --: masque exec --team T -- CMD")
    creds = manage.member_credentials(team, [member] if member else None, selection=selection)
    children: list[subprocess.Popen[bytes]] = []
    pending: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        if not children:
            pending.append(signum)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    prompts: list[Path] = []
    codes: list[int] = []
    try:
        for c in creds:
            text = _prompt(c)
            path = None
            if text is not None:
                path = run_dir() / f"{c.session.session_id}.{c.minted.accessor}.prompt"
                write_prompt(replace(c.session, system_prompt=text), path)
                prompts.append(path)
            try:
                children.append(subprocess.Popen(list(argv), env=member_env(config.environment(), c, path)))
            except (FileNotFoundError, PermissionError) as exc:
                raise NotFound(
                    f"cannot run {argv[0]!r}: {exc.strerror}",
                    hint="check the command; the member sessions stay open (`masque team release`)",
                ) from None
        for signum in pending:
            for child in children:
                child.send_signal(signum)
        codes = _wait(children, [c.session.session_id for c in creds])
    finally:
        for child in children:  # a failed start of a later member: do not leave the earlier ones running
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.terminate()
                child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for path in prompts:
            path.unlink(missing_ok=True)
        manage.revoke_credentials([c.minted.accessor for c in creds])
    return next((code for code in codes if code != 0), 0)


def _wait(children: list[subprocess.Popen[bytes]], session_ids: list[str], check_every: float = 1.0) -> list[int]:
    """Wait for every child. A member whose session is being revoked or has ended (`masque revoke`,
    `masque team release`) gets SIGTERM, once, as `masque exec` gives its command on a graceful revoke."""
    from masque.errors import MasqueError
    from masque.sessions.runner import exit_status
    from masque.teams import manage

    signalled: set[int] = set()
    last = time.monotonic()
    while any(child.poll() is None for child in children):
        if time.monotonic() - last >= check_every:
            last = time.monotonic()
            with contextlib.suppress(MasqueError):  # a busy store: look again next time
                live = manage.live_sessions(session_ids)
                for i, child in enumerate(children):
                    if session_ids[i] not in live and i not in signalled and child.poll() is None:
                        signalled.add(i)
                        with contextlib.suppress(ProcessLookupError):
                            child.send_signal(signal.SIGTERM)
        time.sleep(0.05)
    return [exit_status(child.wait()) for child in children]


__all__ = ["member_env", "run_members"]

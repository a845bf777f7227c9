"""`masque exec`: run one command wearing a masque, like `aws-vault exec`.

The wrapper assumes (holder = this process), writes the system prompt to a 0600 file under
`$MASQUE_HOME/run/`, starts the command with the session's environment, forwards SIGINT, SIGTERM and
SIGHUP to it, and on exit releases the session recording the command's exit code, which it returns.

Sub-agents do not inherit: the command's environment carries the credential as `MASQUE_CREDENTIAL`
but not `MASQUE_SESSION_ID`/`MASQUE_TOKEN`, so a `masque` call inside it sees no masque; it gets
`MASQUE_PARENT_SESSION_ID`, so if it assumes one itself the parent link is recorded (and it acts as
the same actor, chained and capped). The parent id counts only together with that session's token in
`MASQUE_CREDENTIAL` (`rings.resolve_acting` refuses it otherwise, reason `parent_unproven`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from masque import config
from masque.errors import NotFound, UsageError

if TYPE_CHECKING:
    from masque.sessions.lifecycle import Session
    from masque.trust.rings import Selection

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STRIPPED = ("MASQUE_SESSION_ID", "MASQUE_TOKEN")


def run_dir() -> Path:
    path = config.ensure_home() / "run"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def prompt_path(session_id: str) -> Path:
    return run_dir() / f"{session_id}.prompt"


def write_prompt(session: Session, path: Path) -> Path:
    """The system prompt in a file only this user can read, removed when the session ends."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(session.system_prompt or "")
    return path


def child_env(base: Mapping[str, str], session: Session, prompt_file: Path) -> dict[str, str]:
    """The command's environment: the masque without a way for nested masque calls to wear it."""
    env = {k: v for k, v in base.items() if k not in STRIPPED}
    env.update(
        {
            "MASQUE_PARENT_SESSION_ID": session.session_id,
            "MASQUE_MASQUE": session.masque,
            "MASQUE_VERSION": session.version,
            "MASQUE_INTENT": session.intent,
            "MASQUE_ACTOR_NAME": session.actor,
            "MASQUE_SYSTEM_PROMPT_FILE": str(prompt_file),
        }
    )
    if session.token:
        env["MASQUE_CREDENTIAL"] = session.token
    if session.accessor:
        env["MASQUE_CREDENTIAL_ACCESSOR"] = session.accessor
    if session.role:
        env["MASQUE_ROLE"] = session.role
    if session.credential_expires_at:
        env["MASQUE_EXPIRES_AT"] = session.credential_expires_at.isoformat()
    return env


def exit_status(returncode: int) -> int:
    """A shell-style exit status: a child killed by signal N is 128+N."""
    return returncode if returncode >= 0 else 128 - returncode


def run(
    ref: str,
    intent: str,
    argv: Sequence[str],
    *,
    selection: Selection | None = None,
    ttl: str | None = None,
    strict_knowledge: bool = False,
) -> tuple[Session, int]:
    """Assume, run `argv`, release. Returns (session, exit status of the command)."""
    from masque.sessions import lifecycle as sessions
    from masque.trust import rings

    if not argv:
        raise UsageError("no command to run", hint="put the command after --: masque exec REF --intent T -- CMD")
    sel = selection or rings.selection_from_env()
    session = sessions.assume(
        ref,
        intent,
        selection=sel,
        ttl=ttl,
        strict_knowledge=strict_knowledge,
        holder_pid=os.getpid(),
        metadata={"exec": True, "command": list(argv)[:1]},
    )
    own = rings.Selection(token=session.token)  # release with the session's own token
    pending: list[int] = []
    child: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        if child:
            with contextlib.suppress(ProcessLookupError):
                child[0].send_signal(signum)
        else:
            pending.append(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    prompt = prompt_path(session.session_id)
    code = 127
    try:
        write_prompt(session, prompt)
        try:
            child.append(subprocess.Popen(list(argv), env=child_env(config.environment(), session, prompt)))
        except (FileNotFoundError, PermissionError) as exc:
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            raise NotFound(
                f"cannot run {argv[0]!r}: {exc.strerror}",
                hint=f"check the command; session {session.session_id} was released",
            ) from None
        for signum in pending:
            child[0].send_signal(signum)
        code = exit_status(child[0].wait())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        prompt.unlink(missing_ok=True)
        ended = sessions.release(session.session_id, reason="exited", exit_code=code, selection=own)
    return ended.session, code

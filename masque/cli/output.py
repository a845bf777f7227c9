"""Rendering helpers shared by command modules: stderr messages, JSON, rich consoles (lazily)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

_consoles: dict[bool, Console] = {}
PROGRAM = {"name": "masque"}  # the `mythatron` entry point renames it so errors carry the right prefix


def console(stderr: bool = False) -> Console:
    """A rich Console on stdout or stderr; rich honours NO_COLOR and non-terminals itself."""
    if stderr not in _consoles:
        from rich.console import Console

        _consoles[stderr] = Console(stderr=stderr, highlight=False, soft_wrap=True)
    return _consoles[stderr]


def reset_consoles() -> None:
    """Forget cached consoles (CliRunner swaps sys.stdout between invocations)."""
    _consoles.clear()


def quiet_broken_pipe() -> None:
    """The reader went away (`masque ... | head`): exit quietly, as command-line tools do on SIGPIPE."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush cannot fail again
    raise SystemExit(1)  # what Typer (click) itself does on EPIPE, so every path agrees


def print_error(message: str, hint: str | None = None) -> None:
    """One line `masque: error: ...` on stderr, plus a hint line when there is one."""
    sys.stderr.write(f"{PROGRAM['name']}: error: {message}\n")
    if hint:
        sys.stderr.write(f"  hint: {hint}\n")
    sys.stderr.flush()


def print_warning(message: str) -> None:
    sys.stderr.write(f"{PROGRAM['name']}: warning: {message}\n")


def print_json(value: Any) -> None:
    """Stable JSON on stdout: indented, UTF-8, datetimes as ISO 8601."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=_default) + "\n")


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value"):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")

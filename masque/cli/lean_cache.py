"""The lean path without Typer: `masque assume` and `masque release` run from a cached command-line spec.

Importing Typer (and building the app from every command module) cost a cold `assume` or `release`
~45 ms of the ~300 ms an agent pays per call. The options of a command marked with `lean.runs_lean` are
plain values, so `masque.cli.lean` can read them from a spec instead of from the Typer declarations:
the spec is those declarations, read once by the Typer app and written to the cache directory under a
name keyed by the content of the CLI modules, the Typer package and Masque's version. Any edit to a
command's options changes the key, so a stale spec is never read; a missing one means this run takes
the Typer path, which writes it for the next.

Only the lines `lean.dispatch` would take go this way (no help, no root options, nothing it is unsure
about); everything else, and every error in reading the options, goes to the Typer app as before. The
one exception is `masque --help` itself: building every command's Click object for it cost ~40 ms, so
the spec also keeps the root help text the app prints at Click's usual width, and prints that.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from masque import config
from masque.cli import lean

if TYPE_CHECKING:
    import typer

SPEC_FORMAT = 2  # 2: with the root help text
HELP_WIDTH = 78  # Click's help width on any terminal of 80 columns or more, and off a terminal
_KINDS: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool, "path": Path}
_REQUIRED = {"required": True}  # JSON for "no default"


def spec_path() -> Path:
    """Where the spec for this exact CLI lives (the name changes with any edit to it)."""
    import hashlib
    import importlib.util

    from masque import __version__

    digest = hashlib.sha256(f"{SPEC_FORMAT} {__version__}".encode())
    here = Path(__file__).resolve().parent
    for source in sorted(here.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    found = importlib.util.find_spec("typer")
    if found is not None and found.origin:
        info = os.stat(found.origin)
        digest.update(f"{found.origin} {info.st_size} {info.st_mtime_ns}".encode())
    return config.cache_dir() / f"cli-spec-{digest.hexdigest()[:24]}.json"


def _param_json(param: Any) -> dict[str, Any] | None:
    kind = next((name for name, k in _KINDS.items() if k is param.kind), None)
    default = param.default
    if kind is None or not (default is lean._REQUIRED or default is None or type(default) in (str, int, float, bool)):
        return None  # an enum or an unusual default: the command stays Typer's
    return {
        "name": param.name,
        "kind": kind,
        "many": param.many,
        "option": param.option,
        "decls": list(param.decls),
        "default": _REQUIRED if default is lean._REQUIRED else default,
        "min": param.min,
        "max": param.max,
        "plain_flag": param.plain_flag,
    }


def build_spec(app: typer.Typer) -> dict[str, Any]:
    """The spec of every `runs_lean` command of `app` the lean dispatcher would take."""
    commands: dict[str, Any] = {}
    found = [([c.name], c) for c in app.registered_commands]
    for group in app.registered_groups:
        sub = group.typer_instance
        name = lean._name(group.name) or (sub and lean._name(sub.info.name))
        if sub is not None and name:
            found += [([name, c.name], c) for c in sub.registered_commands]
    for path, command in found:
        callback = command.callback
        target = getattr(callback, "lean_target", None)
        if callback is None or not target or None in path or not lean.plain_command(command):
            continue
        located = lean.find_command(app, [str(p) for p in path])
        if located is None or located[0] is not command:
            continue
        try:
            params = [_param_json(p) for p in lean._params(callback)]
        except lean._NotPlain:
            continue
        if any(p is None for p in params):
            continue
        key = " ".join(str(p) for p in path)
        commands[key] = {"target": target, "no_args_is_help": bool(command.no_args_is_help), "params": params}
    return {"format": SPEC_FORMAT, "commands": commands, "root_help": _root_help(app)}


def _root_help(app: typer.Typer) -> str:
    """`masque --help` as the Typer app prints it at Click's usual width."""
    import typer.main

    command = typer.main.get_command(app)
    settings = {**command.context_settings, "terminal_width": HELP_WIDTH}
    ctx = command.context_class(command, info_name="masque", **settings)
    return command.get_help(ctx) + "\n"  # Click echoes it with a newline


def root_help() -> str | None:
    """The root `--help` text from the spec, when this terminal gets the width it was made at."""
    import shutil

    # Click's HelpFormatter: the terminal's columns, at most 80, less 2 (a pipe or file reads as 80).
    if max(min(shutil.get_terminal_size().columns, 80) - 2, 50) != HELP_WIDTH:
        return None
    spec = _load()
    text = spec.get("root_help") if spec is not None else None
    return text if isinstance(text, str) else None


def ensure_spec(app: typer.Typer) -> None:
    """Write the spec for the next run, if this CLI has none yet (best effort: a cache)."""
    try:
        path = spec_path()
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(build_spec(app)), encoding="utf-8")
        os.replace(tmp, path)
        for old in path.parent.glob("cli-spec-*.json"):  # specs of earlier versions of the CLI
            if old != path:
                old.unlink(missing_ok=True)
    except Exception:  # a cache must never break the command being run: the next run tries again
        pass


def _load() -> dict[str, Any] | None:
    try:
        spec = json.loads(spec_path().read_text(encoding="utf-8"))
    except Exception:  # unreadable, damaged, or no cache directory at all: the Typer app takes the line
        return None
    return spec if isinstance(spec, dict) and spec.get("format") == SPEC_FORMAT else None


def _params(entries: list[dict[str, Any]]) -> list[Any]:
    return [
        lean._Param(
            name=e["name"],
            kind=_KINDS[e["kind"]],
            many=bool(e["many"]),
            option=bool(e["option"]),
            decls=tuple(e["decls"]),
            default=lean._REQUIRED if e["default"] == _REQUIRED else e["default"],
            min=e["min"],
            max=e["max"],
            plain_flag=bool(e["plain_flag"]),
        )
        for e in entries
    ]


def plan(args: list[str]) -> tuple[str, dict[str, Any]] | None:
    """(target, keyword arguments) for a command line the cached spec covers; None: not this way."""
    if not args or args[0].startswith("-") or "--help" in args or "-h" in args:
        return None
    spec = _load()
    if spec is None:
        return None
    commands = spec.get("commands", {})
    for depth in (1, 2):
        entry = commands.get(" ".join(args[:depth])) if len(args) >= depth else None
        if entry is None:
            continue
        rest = args[depth:]
        target = str(entry["target"])
        if (entry["no_args_is_help"] and not rest) or not target.startswith("masque.cli."):
            return None
        try:
            return target, lean.parse_params(_params(entry["params"]), rest)
        except (lean._NotPlain, KeyError, TypeError):
            return None
    return None


def run(args: list[str]) -> int | None:
    """Run `args` from the cached spec and return the exit code; None: the Typer app must take it."""
    planned = plan(args)
    if planned is None:
        return None
    target, kwargs = planned
    import importlib

    module, _, function = target.partition(":")
    call = getattr(importlib.import_module(module), function)
    try:
        call(**kwargs)
    except (Exception, KeyboardInterrupt) as exc:
        from masque.cli.failures import exit_code_for

        code = exit_code_for(exc)
        if code is None:
            raise
        return code
    return 0

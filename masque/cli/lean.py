"""A lean dispatcher: plain command lines run the Typer command's function without Typer's parser.

Typer 0.29 coerces every parameter through a pydantic `TypeAdapter`, so each command line paid for
importing pydantic and building adapters (~70 ms) before doing anything. The hot commands (`assume`,
`release`, `check`, `whoami`, `memory search`, ...) take only plain values, so this module reads the
options straight from the command functions' signatures — the same `typer.Option`/`typer.Argument`
declarations Typer builds its parser and help from, so there is one source of truth — and calls the
function itself.

It only takes the happy path, and only where the outcome is certainly Typer's own: anything it does not
fully understand (help, root options, unknown or combined options, a missing or malformed value, a number
out of range, an enum value that is not exact, path checks, env vars, callbacks, `ctx`) returns None and
the Typer app parses the command line instead, with its own messages and exit codes.
tests/test_cli_lean.py checks that both paths hand the command function the same values.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer
    from typer.models import CommandInfo

_INTEGER = re.compile(r"[+-]?[0-9]+")  # a strict subset of what Typer (pydantic) reads as an int
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_REQUIRED = ...
# What ParameterInfo holds when a command does not ask for anything special; any other value: Typer's job.
_PLAIN_INFO = {
    "callback": None, "is_eager": False, "envvar": None, "default_factory": None, "parser": None,
    "prompt": False, "exists": False, "file_okay": True, "dir_okay": True, "writable": False,
    "readable": True, "resolve_path": False, "allow_dash": False, "path_type": None, "clamp": False,
    "count": False, "expose_value": True, "case_sensitive": True, "formats": None,
}  # fmt: skip


def runs_lean(target: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a Typer command whose whole work is `target` ("module:function", Typer-free), called with the
    command's own keyword arguments: masque.cli.lean_cache may then run it without building the app."""

    def mark(callback: Callable[..., Any]) -> Callable[..., Any]:
        callback.lean_target = target  # type: ignore[attr-defined]
        return callback

    return mark


class _NotPlain(Exception):
    """This command line is not one the lean path is sure about: Typer takes it."""


@dataclass(frozen=True)
class _Param:
    """One parameter as the parser needs it: read from a Typer declaration, or from the cached spec."""

    name: str
    kind: type  # str, int, float, bool, Path or an Enum subclass
    many: bool  # list[...]: a repeatable option, or a variadic argument
    option: bool  # an option (else an argument)
    decls: tuple[str, ...]  # an option's spellings as declared ("--json", "--color/--no-color")
    default: Any  # _REQUIRED when there is none
    min: float | None = None
    max: float | None = None
    plain_flag: bool = True  # a bool option with no flag_value / is_flag=False of its own

    def convert(self, text: str) -> Any:
        kind = self.kind
        if kind is str:
            return text
        if kind is Path:
            if not text:
                raise _NotPlain
            if os.path.exists(text) and not os.access(text, os.R_OK):  # Typer says "is not readable"
                raise _NotPlain
            return Path(text)
        if isinstance(kind, type) and issubclass(kind, Enum):
            for member in kind:
                if member.value == text:
                    return member
            raise _NotPlain
        if kind is int and _INTEGER.fullmatch(text):
            number: float = int(text)
        elif kind is float and _FLOAT.fullmatch(text):
            number = float(text)
        else:
            raise _NotPlain
        if (self.min is not None and number < self.min) or (self.max is not None and number > self.max):
            raise _NotPlain
        return number


def _leaf(annotation: Any) -> tuple[type, bool]:
    """(leaf type, is a list) of a plain annotation; _NotPlain for anything else."""
    import types
    import typing
    from typing import Union

    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
        annotation = args[0] if args[1] is type(None) else args[1]
    many = typing.get_origin(annotation) is list
    if many:
        (annotation,) = typing.get_args(annotation) or (None,)
    if annotation in (str, int, float, Path) or (annotation is bool and not many):
        return annotation, many
    if isinstance(annotation, type) and issubclass(annotation, Enum) and not many:
        return annotation, many
    raise _NotPlain


def _params(callback: Callable[..., Any]) -> list[_Param]:
    import inspect
    import typing

    from typer.models import ArgumentInfo, OptionInfo

    hints = typing.get_type_hints(callback)
    params = []
    for p in inspect.signature(callback).parameters.values():
        info = p.default
        if not isinstance(info, OptionInfo | ArgumentInfo) or p.kind is not p.POSITIONAL_OR_KEYWORD:
            raise _NotPlain
        for attr, plain in _PLAIN_INFO.items():
            if getattr(info, attr, plain) != plain:
                raise _NotPlain
        kind, many = _leaf(hints.get(p.name))
        option = isinstance(info, OptionInfo)
        plain_flag = not option or (
            getattr(info, "flag_value", None) is None and getattr(info, "is_flag", None) is not False
        )
        decls = tuple(info.param_decls or ()) if option else ()
        low, high = getattr(info, "min", None), getattr(info, "max", None)
        params.append(_Param(p.name, kind, many, option, decls, info.default, low, high, plain_flag))
    return params


def _option_names(param: _Param) -> dict[str, Any]:
    """Each spelling of an option -> the value a flag spelling stands for (or _REQUIRED: takes a value)."""
    assert param.option
    raw = param.decls
    spellings = [d.strip() for decl in raw for d in decl.split("/")]
    if not raw or any(not d.startswith("-") for d in spellings):
        raise _NotPlain  # a name Typer derives from the parameter, or an odd one: Typer's
    if param.kind is not bool:
        if any("/" in decl for decl in raw):
            raise _NotPlain
        return dict.fromkeys(spellings, _REQUIRED)
    if not param.plain_flag:
        raise _NotPlain
    names: dict[str, Any] = {}
    for decl in raw:  # "--json", or "--color/--no-color"
        on, _, off = decl.partition("/")
        names[on.strip()] = True
        if off:
            names[off.strip()] = False
    return names


def parse(callback: Callable[..., Any], args: list[str]) -> dict[str, Any]:
    """The keyword arguments Typer would call `callback` with for `args`; _NotPlain when unsure."""
    return parse_params(_params(callback), args)


def parse_params(params: list[_Param], args: list[str]) -> dict[str, Any]:
    """`parse` on parameters already read (from a Typer command, or from the cached spec)."""
    by_name: dict[str, tuple[_Param, Any]] = {}
    for param in params:
        if param.option:
            for spelling, value in _option_names(param).items():
                by_name[spelling] = (param, value)
    positional_params = [p for p in params if not p.option]
    if any(p.many for p in positional_params[:-1]):
        raise _NotPlain
    values: dict[str, Any] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional.extend(args[i:])
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        name, eq, attached = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name not in by_name:
            if arg.startswith("--") or arg[:2] not in by_name or by_name[arg[:2]][1] is not _REQUIRED:
                raise _NotPlain  # unknown, or short flags run together (-vq): Typer decides
            name, eq, attached = arg[:2], "=", arg[2:]  # -k5
        param, flag = by_name[name]
        if flag is not _REQUIRED:
            if eq:
                raise _NotPlain
            values[param.name] = flag
            continue
        if not eq:
            if i >= len(args):
                raise _NotPlain  # "requires an argument": Typer's message
            attached = args[i]
            i += 1
        value = param.convert(attached)
        if param.many:
            values.setdefault(param.name, []).append(value)
        else:
            values[param.name] = value
    for param in positional_params:
        if param.many:
            taken, positional = positional, []
            if taken:
                values[param.name] = [param.convert(x) for x in taken]
        elif positional:
            values[param.name] = param.convert(positional.pop(0))
    if positional:
        raise _NotPlain  # an extra argument: Typer's usage error
    for param in params:
        if param.name not in values:
            if param.default is _REQUIRED:
                raise _NotPlain  # missing: Typer's usage error
            values[param.name] = param.default
    return {param.name: values[param.name] for param in params}


def _name(value: Any) -> Any:
    from typer.models import DefaultPlaceholder

    return value.value if isinstance(value, DefaultPlaceholder) else value


def find_command(app: typer.Typer, args: list[str]) -> tuple[CommandInfo, list[str]] | None:
    """The command `args` names (at most one group deep) and the rest of the line; None when unsure."""
    if not args or args[0].startswith("-"):
        return None  # root options (--debug, --version, --help) are Typer's
    for command in app.registered_commands:
        if command.name == args[0]:
            return command, args[1:]
    for group in app.registered_groups:
        sub = group.typer_instance
        if sub is None or (_name(group.name) or _name(sub.info.name)) != args[0]:
            continue
        if sub.registered_callback is not None or sub.registered_groups:
            return None  # a group that runs code of its own, or nests deeper: Typer's
        if _name(group.context_settings) or _name(sub.info.context_settings) or _name(sub.info.cls):
            return None
        return find_command(sub, args[1:])
    return None


def plain_command(command: CommandInfo) -> bool:
    """A command with nothing of Typer's own to run: no context settings, custom class or deprecation."""
    from typer.core import TyperCommand

    if command.callback is None or command.context_settings is not None or command.cls not in (None, TyperCommand):
        return False
    return not command.deprecated


def dispatch(app: typer.Typer, args: list[str], run: Callable[[Callable[[], Any]], int]) -> int | None:
    """Run a plain command line with `run(call)` and return its exit code; None: let Typer have it."""
    if "--help" in args or "-h" in args:
        return None  # help is Typer's
    found = find_command(app, args)
    if found is None:
        return None
    command, rest = found
    callback = command.callback
    if callback is None or not plain_command(command) or (command.no_args_is_help and not rest):
        return None  # Typer's warning, or Typer's help
    try:
        kwargs = parse(callback, rest)
    except _NotPlain:
        return None
    return run(lambda: callback(**kwargs))

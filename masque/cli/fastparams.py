"""Plain-typed CLI parameters coerced without pydantic: about 70 ms off every command's start-up.

Typer 0.29 coerces each parameter through a pydantic `TypeAdapter`, so every command line paid for
importing pydantic (~55 ms) and building a dozen adapters (~17 ms) before doing anything. The types
masque's commands use (str, bool, int, float, Path, lists of str, and their optionals) are coerced here with
Typer's rules and error messages; anything else (enums, files, custom parsers) still goes
through Typer. Typer's coercion is internal API, so this is installed only on the Typer minor version
it was checked against; on any other, Typer is left alone, which is slower but never wrong.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import typer

CHECKED_TYPER = "0.29."
_BOOLS = {
    **dict.fromkeys(("0", "off", "f", "false", "n", "no"), False),
    **dict.fromkeys(("1", "on", "t", "true", "y", "yes"), True),
}
_INTEGER = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*(?:\.0+)?")
_installed = False


def plain_type(annotation: Any) -> tuple[type, bool] | None:
    """(leaf type, is a list) for the annotations coerced here; None for everything else."""
    args = get_args(annotation)
    if get_origin(annotation) in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
        annotation = args[0] if args[1] is type(None) else args[1]
    if get_origin(annotation) is list and get_args(annotation) == (str,):
        return str, True
    if annotation in (str, bool, int, float, Path):
        return annotation, False
    return None


def coerce_plain(value: Any, kind: type, low: float | None, high: float | None, clamp: bool) -> Any:
    """One CLI value as `kind`; ValueError carries the message Typer (pydantic) would print."""
    if kind is str:
        return value if isinstance(value, str) else str(value)
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in _BOOLS and text:
            raise ValueError("Input should be a valid boolean, unable to interpret input")
        return _BOOLS.get(text, False)
    number = _number(value, kind)
    if clamp:
        if low is not None and number < low:
            return kind(low)
        if high is not None and number > high:
            return kind(high)
        return number
    if low is not None and number < low:
        raise ValueError(f"Input should be greater than or equal to {low}")
    if high is not None and number > high:
        raise ValueError(f"Input should be less than or equal to {high}")
    return number


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if kind is int:
        # pydantic's lax integers: ASCII digits, single underscores between them, and "5.0" (zeros only)
        if _INTEGER.fullmatch(text):
            return int(text.partition(".")[0])
        raise ValueError("Input should be a valid integer, unable to parse string as an integer")
    try:
        if text.isascii():  # float() would also read other scripts' digits; pydantic does not
            return float(text)
    except ValueError:
        pass
    raise ValueError("Input should be a valid number, unable to parse string as a number")


def install() -> bool:
    """Route plain-typed parameters around pydantic. True when installed (idempotent)."""
    global _installed
    if _installed:
        return True
    if not typer.__version__.startswith(CHECKED_TYPER):
        return False
    try:
        import typer.core as typer_core
        from typer import _coercion
        from typer._click.exceptions import BadParameter
        from typer._param_types import coerce_cli_path
    except ImportError:  # pragma: no cover - internals moved; Typer's own coercion stays
        return False
    typer_build: Callable[[Any], Any] | None = getattr(typer_core, "build_runtime_param", None)
    base = getattr(_coercion, "RuntimeParam", None)
    if typer_build is None or base is None:  # pragma: no cover - same
        return False

    @dataclass(frozen=True)
    class PlainParam(base):  # type: ignore[misc, valid-type]
        kind: type = str
        many: bool = False

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            info = self.parameter_info
            if self.kind is Path:  # given a Path, Typer's own checks (exists=, dir_okay=...) skip pydantic
                path = value if isinstance(value, Path) else Path(value)
                return coerce_cli_path(path, info, path_type=info.path_type or Path, param=param, ctx=ctx)
            try:
                if self.many:
                    items = value if isinstance(value, list | tuple) else [value]
                    return [coerce_plain(v, self.kind, None, None, False) for v in items]
                return coerce_plain(value, self.kind, info.min, info.max, bool(info.clamp))
            except ValueError as exc:
                raise BadParameter(str(exc), ctx=ctx, param=param) from None

    def build_runtime_param(descriptor: Any) -> Any:
        info = descriptor.parameter_info
        plain = plain_type(descriptor.annotation)
        if plain is None or descriptor.file_annotation is not None or info.parser is not None:
            return typer_build(descriptor)
        return PlainParam(parameter_info=info, annotation=descriptor.annotation, kind=plain[0], many=plain[1])

    typer_core.build_runtime_param = build_runtime_param
    _installed = True
    return True

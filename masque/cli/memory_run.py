"""What `masque memory search` does once its options are read, without importing Typer (and the helpers
every `masque memory` command shares). The Typer command in masque.cli.memory declares the options and
calls `search`; the cached lean path (masque.cli.lean_cache) calls it directly. Keep this module free of
`typer` imports: tests/test_cli_lean.py checks it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from masque.errors import UsageError


def selection(as_name: str | None, key_file: Path | None) -> Any:
    """Who is calling: --as/--key-file, else MASQUE_ACTOR(+_KEY) or MASQUE_TOKEN, else the founder."""
    from masque.trust import rings

    return rings.selection_from_env(as_name, key_file)


def positive(value: int, option: str, example: str) -> int:
    if value < 1:
        raise UsageError(f"{option} must be at least 1, got {value}", hint=f"e.g. {option} {example}")
    return value


def split_tags(values: list[str] | None) -> tuple[str, ...]:
    return tuple(t.strip() for v in values or () for t in v.split(",") if t.strip())


def filters(ids: list[str] | None = None, session: str | None = None, branch: str | None = None,
            tags_: list[str] | None = None, actor: str | None = None) -> Any:  # fmt: skip
    from masque.memory.ops import Filters

    return Filters(ids=tuple(ids or ()), session_id=session, branch=branch, tags=split_tags(tags_), actor=actor)


def print_json(value: Any) -> None:
    from masque.cli.output import print_json as out

    out(value)


def short(text: str, width: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _echo(message: str, *, err: bool = False) -> None:
    """What typer.echo(message, err=err) prints."""
    stream = sys.stderr if err else sys.stdout
    stream.write(message + "\n")
    stream.flush()


def search(
    *,
    args: list[str],
    k: int,
    session: str | None,
    branch: str | None,
    tags: list[str] | None,
    as_name: str | None,
    key_file: Path | None,
    json_out: bool,
) -> None:
    from masque.memory.search import find

    if len(args) > 2:
        raise UsageError(f"expected [MASQUE] QUERY, got {len(args)} arguments", hint="quote the query")
    masque, query = (args[0], args[1]) if len(args) == 2 else (None, args[0])
    result = find(query, masque, k=positive(k, "-k", "10"), filters=filters(None, session, branch, tags),
                  selection=selection(as_name, key_file))  # fmt: skip
    if json_out:
        print_json(result.to_json())
        return
    if not result.hits:
        _echo(f"no memories found in {result.masque}", err=True)
    for hit in result.hits:
        _echo(f"{hit.score:.4f}  {hit.memory.id}  {short(hit.memory.text)}")

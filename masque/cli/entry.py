"""Console-script entry point, with a fast path for `masque validate`.

pre-commit and CI run `masque validate FILE...` constantly, and importing Typer alone costs ~100 ms
(it pulls in pydantic). So a plain `validate` invocation — only the options below, no --help — is
parsed here with no third-party import. Anything else, including every malformed command line, goes
to the Typer app, which owns help and usage errors. tests/test_entry.py checks that both paths print
the same thing and exit with the same code.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

_FLAGS = {"--strict": "strict", "-v": "verbose", "--verbose": "verbose"}
_VALUED = {"--format": "fmt", "-f": "fmt"}


def parse_fast_validate(args: list[str]) -> dict[str, object] | None:
    """Options of a plain `validate` command line, or None when Typer must handle it."""
    options: dict[str, object] = {"strict": False, "verbose": False, "fmt": "text", "paths": []}
    paths: list[str] = []
    i = 0
    only_paths = False
    while i < len(args):
        arg = args[i]
        if only_paths or not arg.startswith("-") or arg == "-":
            paths.append(arg)
        elif arg == "--":
            only_paths = True
        elif arg in _FLAGS:
            options[_FLAGS[arg]] = True
        elif arg in _VALUED and i + 1 < len(args):
            options[_VALUED[arg]] = args[i + 1]
            i += 1
        elif arg.startswith("--format="):
            options["fmt"] = arg.split("=", 1)[1]
        else:
            return None
        i += 1
    if options["fmt"] not in ("text", "json", "github"):
        return None
    options["paths"] = paths
    return options


def _fast_validate(args: list[str]) -> int | None:
    options = parse_fast_validate(args)
    if options is None:
        return None
    try:
        from masque.cli.validate_run import run_validate

        return run_validate(
            options["paths"],  # type: ignore[arg-type]
            strict=bool(options["strict"]),
            fmt=str(options["fmt"]),
            verbose=bool(options["verbose"]),
        )
    except (Exception, KeyboardInterrupt) as exc:
        from masque.cli.failures import exit_code_for

        code = exit_code_for(exc)
        if code is None:
            raise
        return code


def _exit_now(code: int) -> NoReturn:
    """End the process without interpreter teardown (the trick of Instagram's `atexit.register(os._exit, 0)`).

    Only after a hot command returned: its store connection is closed (committed and checkpointed)
    and its output is flushed here, and no atexit handler is registered on these paths (only a
    leasing server registers one). What is skipped is freeing memory the OS reclaims anyway, mostly
    DuckDB's module teardown: ~16 ms of each cold `assume` and `release` (bench/assume.py).
    """
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        if args == ["--version"]:  # scripts ask this often; the Typer app costs ~60 ms to build
            from masque import __version__

            sys.stdout.write(f"masque {__version__}\n")
            sys.exit(0)
        if args in (["--help"], ["-h"]):  # answered from the cached CLI spec when there is one
            from masque.cli.lean_cache import root_help

            text = root_help()
            if text is not None:
                sys.stdout.write(text)
                sys.stdout.flush()
                sys.exit(0)
        if args[:1] == ["validate"]:
            code = _fast_validate(args[1:])
            if code is not None:
                sys.stdout.flush()
                sys.exit(code)
        if args[:1] in (["assume"], ["release"]) or args[:2] == ["memory", "search"]:  # no Typer once cached
            from masque.cli.lean_cache import run as run_cached

            code = run_cached(args)
            if code is not None:
                sys.stdout.flush()
                if argv is None:  # this process is the command: skip the teardown
                    _exit_now(code)
                sys.exit(code)
        from masque.cli.app import main as typer_main

        typer_main(args)
        sys.stdout.flush()
    except BrokenPipeError:
        from masque.cli.output import quiet_broken_pipe

        quiet_broken_pipe()

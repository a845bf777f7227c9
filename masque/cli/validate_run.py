"""The body of `masque validate`, free of Typer so the start-up fast path (cli/entry.py) can use it."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from masque import config

FORMATS = ("text", "json", "github")
_COLOURS = {"error": "\x1b[1;31m", "warning": "\x1b[1;33m"}


def _show_progress(n_files: int) -> bool:
    """Only for people: a terminal on stderr, not CI, and enough files to wait for."""
    return n_files >= 50 and sys.stderr.isatty() and not config.env_value("CI")


def _colour(line: str) -> str:
    if not sys.stdout.isatty() or config.env_value("NO_COLOR"):
        return line
    for word, code in _COLOURS.items():
        marker = f": {word}["
        if marker in line:
            head, _, tail = line.partition(marker)
            return f"{head}: {code}{word}\x1b[0m[{tail}"
    return line


def run_validate(paths: Sequence[str], *, strict: bool, fmt: str, verbose: bool) -> int:
    """Validate, print the report on stdout, return the exit code (0 valid, 1 errors)."""
    from masque.errors import UsageError
    from masque.masques.diagnostics import REPORTER_BY_NAME
    from masque.masques.validate import discover, validate_files

    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    files = discover(list(paths))
    if not files:
        raise UsageError(
            f"no masque files found under {', '.join(paths or ['personas'])}",
            hint="masque files end in .masque.yaml (or .mask.json); mapper files in .mapper.yaml",
        )
    if _show_progress(len(files)):
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task("validating", total=len(files))
            report = validate_files(files, strict=strict, progress=lambda n: bar.advance(task, n))
    else:
        report = validate_files(files, strict=strict)
    rendered = REPORTER_BY_NAME[fmt](report, verbose=verbose)
    if fmt == "text":
        rendered = "\n".join(_colour(line) for line in rendered.splitlines())
    sys.stdout.write(rendered + "\n")
    sys.stdout.flush()
    return 0 if report.ok else 1

"""`masque validate`: check masque files for CI, pre-commit and editors."""

from __future__ import annotations

import os
import sys
from enum import Enum

import typer

from masque.cli.app import app


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    github = "github"


def _show_progress(n_files: int) -> bool:
    """Only for people: a terminal on stderr, not CI, and enough files to wait for."""
    return n_files >= 50 and sys.stderr.isatty() and not os.environ.get("CI")


def _colour(line: str) -> str:
    if not sys.stdout.isatty() or os.environ.get("NO_COLOR"):
        return line
    for word, colour in (("error[", "red"), ("warning[", "yellow")):
        if f": {word}" in line:
            head, _, tail = line.partition(f": {word}")
            return f"{head}: {typer.style(word[:-1], fg=colour, bold=True)}[{tail}"
    return line


@app.command("validate")
def validate_cmd(
    paths: list[str] = typer.Argument(
        None, help="Files, directories (searched recursively, .gitignore honoured) or globs. Default: personas/."
    ),
    strict: bool = typer.Option(False, "--strict", help="Treat warnings as errors."),
    fmt: OutputFormat = typer.Option(OutputFormat.text, "--format", "-f", help="Output: text, json or github."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List valid files and every anyOf/oneOf error."),
) -> None:
    """Check *.masque.yaml files against the schema and the semantic rules.

    Exit 0 when every file is valid, 1 when any has errors, 2 on usage errors.
    """
    from masque.diagnostics import REPORTER_BY_NAME
    from masque.validate import discover, validate_paths

    files = discover(paths or [])
    if not files:
        from masque.errors import UsageError

        raise UsageError(
            f"no masque files found under {', '.join(paths or ['personas'])}",
            hint="masque files end in .masque.yaml",
        )
    names = [str(f) for f in files]
    if _show_progress(len(files)):
        from rich.progress import Progress

        with Progress(transient=True, console=None) as bar:
            task = bar.add_task("validating", total=len(files))
            report = validate_paths(names, strict=strict, progress=lambda n: bar.advance(task, n))
    else:
        report = validate_paths(names, strict=strict)
    rendered = REPORTER_BY_NAME[fmt.value](report, verbose=verbose)
    if fmt is OutputFormat.text:
        rendered = "\n".join(_colour(line) for line in rendered.splitlines())
    typer.echo(rendered)
    raise typer.Exit(0 if report.ok else 1)

"""`masque validate`: check masque files for CI, pre-commit and editors."""

from __future__ import annotations

from enum import Enum

import typer

from masque.cli.app import app


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    github = "github"


@app.command("validate")
def validate_cmd(
    paths: list[str] = typer.Argument(
        None,
        help="Files, directories (searched recursively, .gitignore honoured) or globs. Default: personas/.",
    ),
    strict: bool = typer.Option(False, "--strict", help="Treat warnings as errors."),
    fmt: OutputFormat = typer.Option(OutputFormat.text, "--format", "-f", help="Output: text, json or github."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List valid files and every anyOf/oneOf error."),
) -> None:
    """Check *.masque.yaml (and *.mask.json, *.mapper.yaml) files against their schema and semantic rules.

    Exit 0 when every file is valid, 1 when any has errors, 2 on usage errors.
    """
    from masque.cli.validate_run import run_validate

    code = run_validate(paths or [], strict=strict, fmt=fmt.value, verbose=verbose)
    raise typer.Exit(code)

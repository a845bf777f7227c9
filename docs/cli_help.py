"""Print the CLI reference (docs/cli.md's generated part) as Markdown: every command's `--help`.

Run by the cog block in docs/cli.md (`cog -r docs/cli.md` regenerates, `cog --check docs/cli.md` checks).
The output must be the same on every machine, so it is rendered by Click's plain formatter (TYPER_USE_RICH=0) at a fixed
width (Typer's rich panels draw boxes whose characters depend on the terminal's encoding), from the
checkout this file lives in, never from whatever `masque` happens to be installed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Before typer is imported: plain help, no rich panels, no colour, no width taken from the terminal.
os.environ["TYPER_USE_RICH"] = "0"
os.environ["NO_COLOR"] = "1"
os.environ["TERM"] = "dumb"
os.environ["COLUMNS"] = "100"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import typer.main  # Typer vendors its own Click: use its classes, never `click`'s

WIDTH = 100


def _context(cmd: Any, name: str, parent: Any) -> Any:
    return cmd.context_class(cmd, info_name=name, parent=parent, terminal_width=WIDTH, max_content_width=WIDTH)


def _walk(cmd: Any, ctx: Any) -> Iterator[tuple[Any, Any]]:
    yield ctx, cmd
    if hasattr(cmd, "list_commands"):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            assert sub is not None
            yield from _walk(sub, _context(sub, name, ctx))


def commands() -> list[tuple[str, str, str]]:
    """(command path, one-line summary, full --help text) for `masque` and `mythatron`, groups included."""
    from masque.cli.app import app
    from masque.cli.mythatron import app as mythatron_app

    out = []
    for name, typer_app in (("masque", app), ("mythatron", mythatron_app)):
        root = typer.main.get_command(typer_app)
        for ctx, cmd in _walk(root, _context(root, name, None)):
            out.append((ctx.command_path, cmd.get_short_help_str(limit=300), cmd.get_help(ctx)))
    return out


def _anchor(path: str) -> str:
    return path.replace(" ", "-")  # what mkdocs' toc makes of the heading


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*").replace("<", "&lt;")


def markdown() -> str:
    cmds = commands()
    lines = ["| command | what it does |", "|---|---|"]
    lines += [f"| [`{path}`](#{_anchor(path)}) | {_cell(summary)} |" for path, summary, _ in cmds]
    for path, _, text in cmds:
        lines += ["", f"## {path}", "", "```text", text.rstrip(), "```"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())

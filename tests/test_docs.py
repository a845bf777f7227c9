"""Docs stay true: every command has help and a README entry, and the README's tour runs as written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def _commands(cmd: Any, prefix: list[str]) -> Iterator[tuple[str, Any]]:
    subs = getattr(cmd, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from _commands(sub, [*prefix, name])
    else:
        yield " ".join(prefix), cmd


def all_commands() -> list[tuple[str, Any]]:
    import typer.main

    from masque.cli.app import app
    from masque.cli.mythatron import app as mythatron_app

    return [
        *_commands(typer.main.get_command(app), ["masque"]),
        *_commands(typer.main.get_command(mythatron_app), ["mythatron"]),
    ]


@pytest.mark.parametrize(("path", "command"), all_commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_has_help_and_a_readme_entry(path: str, command: Any) -> None:
    assert (command.help or "").strip(), f"{path} has no help text"
    assert f"`{path}" in README, f"README.md does not document `{path}`"


@pytest.mark.slow
def test_the_tour_runs_as_written(tmp_path: Path) -> None:
    block = re.search(r"<!-- tour:start -->\n```bash\n(.*?)```\n<!-- tour:end -->", README, re.S)
    assert block is not None
    shutil.copytree(REPO / "personas", tmp_path / "personas")
    # The console scripts may not be on PATH in every test environment: run the same entry points.
    prelude = (
        f'masque() {{ "{sys.executable}" -m masque "$@"; }}\n'
        f'mythatron() {{ "{sys.executable}" -m masque.mythatron "$@"; }}\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASQUE_")}
    env["MASQUE_HOME"] = str(tmp_path / "home")
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", prelude + block[1]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "refused with exit 3" in proc.stdout
    assert "The parser is a Pratt loop" in proc.stdout
    assert "wearing reviewer" in proc.stdout
    assert "2/2 runs passed" in proc.stdout


def test_every_test_the_threat_model_names_exists() -> None:
    """The threat model says which test holds each promise; a renamed or deleted test must show up here."""
    section = README[
        README.index("### Threat model") : README.index("### Exit codes", README.index("### Threat model"))
    ]
    defined = {
        m.group(1)
        for path in (REPO / "tests").glob("test_*.py")
        for m in re.finditer(r"^def (test_\w+)", path.read_text(encoding="utf-8"), re.MULTILINE)
    }
    files = {p.name for p in (REPO / "tests").glob("test_*.py")}
    named = re.findall(r"`(?:(test_\w+\.py)(?:::)?)?(test_\w+\*?)?`", section)
    assert len(named) > 20  # the table is there
    for file, test in named:
        assert not file or file in files, file
        if test.endswith("*"):
            assert any(d.startswith(test[:-1]) for d in defined), test
        elif test:
            assert test in defined, test
    numbered = re.findall(r"^\| (\d+) \|", section, re.MULTILINE)
    assert numbered == [str(n) for n in range(1, 13)]  # issue 10's twelve promises, in order

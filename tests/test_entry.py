"""The start-up fast path for `masque validate` behaves exactly like the Typer command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from masque.cli.entry import parse_fast_validate

CASES = Path(__file__).parent / "cases"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], {"strict": False, "verbose": False, "fmt": "text", "paths": []}),
        (["a", "--strict", "b"], {"strict": True, "verbose": False, "fmt": "text", "paths": ["a", "b"]}),
        (["-f", "json", "-v", "x"], {"strict": False, "verbose": True, "fmt": "json", "paths": ["x"]}),
        (
            ["--format=github", "--", "-odd"],
            {"strict": False, "verbose": False, "fmt": "github", "paths": ["-odd"]},
        ),
    ],
)
def test_fast_parser_accepts_plain_command_lines(args: list[str], expected: dict[str, object]) -> None:
    assert parse_fast_validate(args) == expected


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["--format"], ["-f", "xml"], ["--bogus"], ["-sv"]])
def test_anything_else_is_left_to_typer(args: list[str]) -> None:
    assert parse_fast_validate(args) is None


def run(*args: str, fast: bool) -> subprocess.CompletedProcess[str]:
    """Run through the console entry point (fast path) or straight into the Typer app."""
    target = "masque.cli.entry" if fast else "masque.cli.app"
    code = f"import sys; from {target} import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "args",
    [
        ["validate", str(CASES / "valid")],
        ["validate", "--format", "json", str(CASES / "invalid" / "bad-ring.masque.yaml")],
        ["validate", "-f", "github", "--strict", str(CASES / "valid")],
        ["validate", "no-such-dir"],
        ["validate", "-f", "xml", "x"],
    ],
)
def test_fast_path_and_typer_agree(args: list[str]) -> None:
    fast, slow = run(*args, fast=True), run(*args, fast=False)
    assert (fast.returncode, fast.stdout) == (slow.returncode, slow.stdout)
    assert fast.stderr.splitlines()[:1] == slow.stderr.splitlines()[:1]

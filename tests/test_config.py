"""Configuration and the home: a wrong value is a usage error that names it, never a crash."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

PERSONAS = Path(__file__).resolve().parent.parent / "personas"
Invoke = Callable[..., Any]


@pytest.mark.parametrize(
    ("line", "wanted"),
    [
        ('max_file_bytes = "1MB"', "[limits] max_file_bytes must be an integer > 0, got '1MB' (str)"),
        ("max_depth = 6.5", "[limits] max_depth must be an integer > 0, got 6.5 (float)"),
        ("max_nodes = true", "[limits] max_nodes must be an integer > 0, got True (bool)"),
        ("lock_timeout = [1]", "[limits] lock_timeout must be a number > 0, got [1] (list)"),
        ("max_ttl_seconds = -5", "[limits] max_ttl_seconds must be > 0, got -5"),
        ("lock_timeout = nan", "[limits] lock_timeout must be > 0, got nan"),
        ("max_bytes = 10", "[limits] has an unknown key 'max_bytes'"),
    ],
)
def test_a_wrong_limit_names_the_file_the_key_and_the_valid_keys(
    line: str, wanted: str, invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "masque.toml"
    config.write_text(f"[limits]\n{line}\n")
    monkeypatch.setenv("MASQUE_CONFIG", str(config))
    result = invoke(["validate", str(PERSONAS)])
    assert result.exit_code == 2
    assert f"masque: error: {config}: {wanted}" in result.stderr
    assert "max_file_bytes (int), max_depth (int)" in result.stderr and "lock_timeout (float)" in result.stderr
    assert "Traceback" not in result.stderr


def test_good_limits_are_used(invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from masque import config

    (tmp_path / "masque.toml").write_text("[limits]\nmax_depth = 8\nlock_timeout = 2\n")
    monkeypatch.setenv("MASQUE_CONFIG", str(tmp_path / "masque.toml"))
    assert (config.limits().max_depth, config.limits().lock_timeout) == (8, 2.0)


def test_a_fifo_as_the_config_file_is_refused(invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    os.mkfifo(tmp_path / "masque.toml")
    monkeypatch.setenv("MASQUE_CONFIG", str(tmp_path / "masque.toml"))
    result = invoke(["validate", str(PERSONAS)])
    assert result.exit_code == 2
    assert f"cannot read the config file {tmp_path / 'masque.toml'}: not a regular file" in result.stderr


@pytest.mark.parametrize("args", [["init"], ["assume", "reviewer", "-i", "review the parser"], ["sessions"]])
@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_a_home_that_cannot_be_one_is_a_usage_error(
    where: str, args: list[str], invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory\n")
    home = afile if where == "file" else afile / "sub"  # under a file: not creatable, even for root
    monkeypatch.setenv("MASQUE_HOME", str(home))
    monkeypatch.setenv("MASQUE_PATH", str(PERSONAS))
    result = invoke(args)
    assert result.exit_code == 2, result.stderr
    problem = "is a file, not a directory" if where == "file" else "Not a directory"
    assert f"home {home} (from MASQUE_HOME)" in result.stderr and problem in result.stderr
    assert "hint: set MASQUE_HOME to a directory you can write" in result.stderr
    assert "unexpected error" not in result.stderr

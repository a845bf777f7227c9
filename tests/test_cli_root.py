"""The CLI shell: version, help, the one error handler, crash logs, and what start-up imports."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from masque import __version__

HEAVY = ("duckdb", "lancedb", "lance", "pyarrow", "openai")

PROBE = """
import sys
from masque.cli.app import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


def imported_heavy(*args: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=heavy), *args], capture_output=True, text=True, timeout=120
    )
    line = next(x for x in proc.stderr.splitlines() if x.startswith("HEAVY="))
    return [m for m in line.removeprefix("HEAVY=").split(",") if m]


def test_help_imports_nothing_heavy() -> None:
    assert imported_heavy("--help") == []


def test_help_is_plain_click_formatting() -> None:
    """Rich's help formatter (typer.rich_utils: rich.markdown, pygments...) cost ~70 ms of every `--help`."""
    for args in (["--help"], ["memory", "search", "--help"], ["assume", "--help"]):
        assert imported_heavy(*args, heavy=("typer.rich_utils", "rich.markdown")) == [], args


def test_validate_imports_nothing_heavy(personas: Path) -> None:
    assert imported_heavy("validate", str(personas)) == []
    assert imported_heavy("validate", "--format", "json", str(personas)) == []


def test_commands_never_import_pydantic(personas: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Typer 0.29 would coerce every option through pydantic (~70 ms of each start-up); see cli/lean.py."""
    monkeypatch.setenv("MASQUE_PATH", str(personas))
    assume = ["assume", "codesmith", "--intent", "implement the parser", "--format", "json"]
    for args in (["stats", "--json", "--top", "3"], ["check", "codesmith", "--intent", "test it"], assume):
        assert imported_heavy(*args, heavy=("pydantic",)) == [], args


def test_version(invoke: Callable[..., Any]) -> None:
    result = invoke(["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"masque {__version__}"


def test_help_lists_commands_and_exit_codes(invoke: Callable[..., Any]) -> None:
    result = invoke(["--help"])
    assert result.exit_code == 0
    assert "validate" in result.stdout
    assert "Exit codes" in result.stdout


def test_python_dash_m_entry_point(run_masque: Callable[..., Any]) -> None:
    proc = run_masque("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"masque {__version__}"


def test_version_is_answered_without_building_the_cli() -> None:
    code = (
        "import sys\nfrom masque.cli.entry import main\ntry:\n    main(['--version'])\n"
        "except SystemExit as e:\n    print(e.code, 'typer' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.splitlines() == [f"masque {__version__}", "0 False"]


def test_masque_error_becomes_message_and_exit_code(invoke: Callable[..., Any]) -> None:
    result = invoke(["schema", "--which", "nope"])
    assert result.exit_code == 2
    assert result.stderr.startswith("masque: error: unknown schema 'nope'")
    assert "Traceback" not in result.stderr


def test_unexpected_error_writes_crash_log_without_traceback(
    invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    import masque.masques.validate

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("kaboom msq_SECRETTOKEN")

    monkeypatch.setattr(masque.masques.validate, "validate_files", boom)
    (Path.cwd() / "personas").mkdir()
    (Path.cwd() / "personas" / "x.masque.yaml").write_text("name: x\n")
    result = invoke(["validate"])
    assert result.exit_code == 1
    assert "unexpected error: RuntimeError: kaboom msq_[REDACTED]" in result.stderr
    assert "Traceback" not in result.stderr
    log = (isolated_env / "crash.log").read_text()
    assert "Traceback" in log and "RuntimeError" in log
    assert "SECRETTOKEN" not in log.split("Traceback")[0]


def test_the_crash_log_never_holds_a_token_or_an_actor_key(
    invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    import masque.masques.validate

    token, key = "msq_" + "T0k3n-_" * 5, "msqk_" + "K3y_-" * 8

    def boom(*args: Any, **kwargs: Any) -> Any:
        try:
            raise KeyError(f"actor key {key} did not verify")
        except KeyError as cause:
            raise RuntimeError(f"kaboom {token}") from cause

    monkeypatch.setattr(masque.masques.validate, "validate_files", boom)
    (Path.cwd() / "personas").mkdir()
    (Path.cwd() / "personas" / "x.masque.yaml").write_text("name: x\n")
    result = invoke(["validate"])
    assert result.exit_code == 1
    log = (isolated_env / "crash.log").read_text()
    assert "RuntimeError: kaboom msq_[REDACTED]" in log
    assert "KeyError: 'actor key msqk_[REDACTED] did not verify'" in log
    for secret in (token, key, token[4:], key[5:]):
        assert secret not in log and secret not in result.stderr
    assert (isolated_env / "crash.log").stat().st_mode & 0o777 == 0o600


def test_debug_shows_the_traceback(invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import masque.masques.validate

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(masque.masques.validate, "validate_files", boom)
    (Path.cwd() / "personas").mkdir()
    (Path.cwd() / "personas" / "x.masque.yaml").write_text("name: x\n")
    with pytest.raises(RuntimeError, match="kaboom"):
        invoke(["--debug", "validate"])


def test_path_command_follows_masque_home(invoke: Callable[..., Any], isolated_env: Path) -> None:
    result = invoke(["path", "--json"])
    places = json.loads(result.stdout)
    assert places["home"] == str(isolated_env)
    assert places["store"] == str(isolated_env / "masque.duckdb")


def test_no_color_output_has_no_escape_codes(run_masque: Callable[..., Any], personas: Path) -> None:
    proc = run_masque("validate", str(personas), env={"NO_COLOR": "1"})
    assert proc.returncode == 0
    assert "\x1b[" not in proc.stdout


@pytest.mark.slow
def test_a_closed_pipe_is_quiet(personas: Path, isolated_env: Path, tmp_path: Path) -> None:
    """`masque validate ... | head -1` on output larger than a pipe buffer: no traceback, no crash log."""
    text = (personas / "generalist.masque.yaml").read_text()
    many = tmp_path / "many"
    many.mkdir()
    for i in range(1200):  # ~150 kB of JSON: far more than the 64 kB a pipe holds
        (many / f"g{i}.masque.yaml").write_text(text.replace("index: 4", f"index: {i + 10}"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "masque", "validate", "--format", "json", str(many)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # the reader goes away, like `head -1`
    stderr = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 1
    assert stderr == ""
    assert not (isolated_env / "crash.log").exists()

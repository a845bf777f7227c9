"""The one error handler every entry point uses (masque.cli.failures), tested directly."""

from __future__ import annotations

import pytest

from masque.cli import failures
from masque.config import crash_log_path
from masque.errors import NotFound, Refused


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MASQUE_DEBUG", raising=False)
    failures.set_debug(False)


def test_a_masque_error_is_its_message_its_hint_and_its_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert failures.exit_code_for(NotFound("no masque 'nope'", hint="`masque list` shows them")) == 4
    assert failures.exit_code_for(Refused("ring too low", reason="ring_refused")) == 3
    err = capsys.readouterr().err
    assert "no masque 'nope'" in err and "masque list" in err and "Traceback" not in err


def test_ctrl_c_exits_130(capsys: pytest.CaptureFixture[str]) -> None:
    assert failures.exit_code_for(KeyboardInterrupt()) == 130
    assert "interrupted" in capsys.readouterr().err


def test_an_unexpected_error_is_one_line_and_a_crash_log(capsys: pytest.CaptureFixture[str]) -> None:
    code = failures.exit_code_for(ZeroDivisionError("boom"))
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert "ZeroDivisionError" in crash_log_path().read_text(encoding="utf-8")


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debugging_lets_every_error_through(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if how == "flag":
        failures.set_debug(True)
    else:
        monkeypatch.setenv("MASQUE_DEBUG", "1")
    assert failures.exit_code_for(NotFound("x")) is None
    assert failures.exit_code_for(ZeroDivisionError("boom")) is None


def test_every_entry_point_goes_through_it() -> None:
    """masque (Typer and the lean path), the validate fast path and mythatron share the handler."""
    from pathlib import Path

    cli = Path(failures.__file__).parent
    for module in ("app.py", "entry.py"):
        assert "exit_code_for" in (cli / module).read_text(encoding="utf-8"), module
    assert "cls=MasqueGroup" in (cli / "mythatron.py").read_text(encoding="utf-8")

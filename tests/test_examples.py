"""The shipped examples run as documented."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_agent_session_example_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASQUE_")}
    env.update(MASQUE_HOME=str(tmp_path / "home"), MASQUE_PATH=str(REPO / "personas"))
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "agent_session.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("check: allowed=False")
    assert "memory: The parser is a Pratt loop over the token stream." in lines
    assert "token valid after release: False" in lines
    assert lines[-1].startswith("refused (intent_denied)")


def test_pre_commit_hooks_point_at_the_console_script() -> None:
    import yaml

    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in hooks} == {"masque-validate", "masque-validate-strict"}
    assert all(h["entry"].startswith("masque validate") and h["language"] == "python" for h in hooks)

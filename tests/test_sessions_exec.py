"""`masque exec` as a real process: environment, prompt file, exit codes, signals, sub-agents, revoke."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_sessions_support import init_store, store_rows, write_masques

Invoke = Callable[..., Any]
Run = Callable[..., subprocess.CompletedProcess[str]]

CHILD = textwrap.dedent(
    """
    import json, os, stat, subprocess, sys
    prompt = os.environ["MASQUE_SYSTEM_PROMPT_FILE"]
    info = {
        "env": {k: v for k, v in os.environ.items() if k.startswith("MASQUE_")},
        "prompt_mode": oct(stat.S_IMODE(os.stat(prompt).st_mode)),
        "prompt": open(prompt).read(),
    }
    run = lambda *a: subprocess.run([sys.executable, "-m", "masque", *a], capture_output=True, text=True)
    info["verify"] = run("token", "verify", os.environ["MASQUE_CREDENTIAL"]).returncode
    info["whoami"] = json.loads(run("whoami", "--json").stdout)
    info["nested"] = json.loads(run("assume", "open", "--intent", "work on it", "--format", "json").stdout)
    json.dump(info, open("child.json", "w"))
    sys.exit(7)
    """
)

# Prints "ready", then exits 40 + the signal number on SIGINT/SIGTERM/SIGHUP (0 if never signalled).
TRAPPER = textwrap.dedent(
    """
    import signal, sys, time
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _: sys.exit(40 + signum))
    print("ready", flush=True)
    for _ in range(600):
        time.sleep(0.1)
    """
)


# On SIGTERM, checks its credential (the session is `revoking` then) and records what it saw.
WINDER = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys, time
    def wind_down(*_):
        out = subprocess.run([sys.executable, "-m", "masque", "token", "verify", "--json"],
                             capture_output=True, text=True)
        open("seen.json", "w").write(out.stdout)
        sys.exit(0)
    signal.signal(signal.SIGTERM, wind_down)
    print("ready", flush=True)
    for _ in range(600):
        time.sleep(0.1)
    """
)


@pytest.fixture(autouse=True)
def _setup(invoke: Invoke) -> None:
    write_masques()
    init_store(invoke)


def _exec_popen(script: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "masque",
            "exec",
            "tool",
            "--intent",
            "test the parser",
            *extra,
            "--",
            sys.executable,
            "-c",
            script,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_exec_runs_the_command_wearing_the_masque_and_returns_its_code(run_masque: Run) -> None:
    result = run_masque("exec", "tool", "--intent", "test the parser", "--", sys.executable, "-c", CHILD)
    assert result.returncode == 7, result.stderr
    info = json.loads(Path("child.json").read_text())
    env = info["env"]
    assert "MASQUE_SESSION_ID" not in env and "MASQUE_TOKEN" not in env  # sub-agents do not inherit
    sid = env["MASQUE_PARENT_SESSION_ID"]
    assert env["MASQUE_MASQUE"] == "tool" and env["MASQUE_ROLE"] == "tool-ci"
    assert info["prompt_mode"] == "0o600" and "Be methodical" in info["prompt"]
    assert info["verify"] == 0  # the credential works while the command runs
    assert info["whoami"]["session"] is None and info["whoami"]["parent_session_id"] == sid
    assert info["nested"]["parent_id"] == sid and info["nested"]["actor"] == "root"
    assert not Path(env["MASQUE_SYSTEM_PROMPT_FILE"]).exists()  # removed at release
    row = store_rows("SELECT status, end_reason, exit_code FROM sessions WHERE id = ?", [sid])
    assert row == [("ended", "exited", 7)]
    (nested_status,) = store_rows("SELECT status FROM sessions WHERE id = ?", [info["nested"]["session_id"]])[0]
    assert nested_status == "ended"  # the child's own session ended with its parent
    verify = run_masque("token", "verify", env["MASQUE_CREDENTIAL"])
    assert verify.returncode == 3


def test_exec_refusal_runs_nothing(run_masque: Run) -> None:
    result = run_masque("exec", "tool", "--intent", "rush it", "--", sys.executable, "-c", "open('ran', 'w')")
    assert result.returncode == 3 and not Path("ran").exists()


def test_exec_of_a_missing_command_releases_and_says_so(run_masque: Run) -> None:
    result = run_masque("exec", "tool", "--intent", "test it", "--", "no-such-command-xyz")
    assert result.returncode == 4 and "no-such-command-xyz" in result.stderr
    assert store_rows("SELECT status, exit_code FROM sessions") == [("ended", 127)]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_exec_forwards_signals_to_the_command(sig: signal.Signals) -> None:
    with _exec_popen(TRAPPER) as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == 40 + sig
    assert store_rows("SELECT status, exit_code FROM sessions") == [("ended", 40 + sig)]


@pytest.mark.slow
def test_graceful_revoke_signals_the_exec_command_and_waits_for_it(invoke: Invoke) -> None:
    with _exec_popen(WINDER) as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        (sid,) = store_rows("SELECT id FROM sessions")[0]
        result = invoke(["revoke", sid, "--grace", "60s", "--json"])
        data = json.loads(result.stdout)
        assert data["graceful"] and data["status"] == "revoked"
        assert proc.wait(timeout=60) == 0
    seen = json.loads(Path("seen.json").read_text())
    assert seen["valid"] and seen["session_status"] == "revoking"  # the holder sees it, and may finish
    assert store_rows("SELECT status, end_reason, exit_code FROM sessions") == [("revoked", "revoked", 0)]

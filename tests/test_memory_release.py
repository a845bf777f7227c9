"""Releasing a session archives the memory shard diff it produced (seed 000: "archives memory shard diff")."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def test_release_records_what_the_session_added_and_forgot(
    invoke: Callable[..., Any], personas: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MASQUE_PATH", str(personas))
    worn = invoke(["assume", "codesmith", "--intent", "implement the parser", "--format", "json"])
    assert worn.exit_code == 0, worn.stderr
    session = json.loads(worn.stdout)
    env = {"MASQUE_SESSION_ID": session["session_id"], "MASQUE_TOKEN": session["token"]}
    kept = invoke(["memory", "add", "codesmith", "the parser is a Pratt loop", "--json"], env=env)
    dropped = invoke(["memory", "add", "codesmith", "a note to drop", "--json"], env=env)
    assert kept.exit_code == 0 and dropped.exit_code == 0, kept.stderr + dropped.stderr
    (dropped_id,) = json.loads(dropped.stdout)["ids"]
    assert invoke(["memory", "forget", "codesmith", dropped_id], env=env).exit_code == 0

    assert invoke(["release", session["session_id"]]).exit_code == 0
    shown = json.loads(invoke(["sessions", "show", session["session_id"], "--json"]).stdout)
    memory = shown["memory"]
    assert (memory["added"], memory["forgotten"]) == (2, 1)
    assert memory["shards"] == {"codesmith": {"added": 2, "forgotten": 1}}
    assert dropped_id in memory["forgotten_ids"]
    text = invoke(["sessions", "show", session["session_id"]]).stdout
    assert "memory       +2 -1 (codesmith +2 -1)" in text

"""`masque list`, `masque show`, `masque check`: what a user sees and the exit codes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_registry import write_masque

Invoke = Callable[..., Any]


@pytest.fixture
def local() -> Path:
    return Path.cwd() / "personas"


@pytest.fixture
def private(tmp_path: Path) -> Path:
    return tmp_path / "xdg-config" / "masque" / "personas"


def test_list_shows_every_masque_and_which_copy_won(invoke: Invoke, local: Path, private: Path) -> None:
    shared_file = write_masque(local)
    private_file = write_masque(private)  # identical: copies of one name@version must agree
    write_masque(local, name="homelab", version="2.3.0", ring="admin", index=2)
    result = invoke(["list"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "STAGE", "RING", "SOURCE", "PATH"]
    winner = ["codesmith", "0.1.0", "live", "player", "user", str(private_file)]
    assert any(line.split()[:6] == winner for line in lines)
    assert any(f"{shared_file} (overridden by {private_file})" in line for line in lines)
    assert any(line.split()[:4] == ["homelab", "2.3.0", "live", "admin"] for line in lines)


def test_list_json_shape(invoke: Invoke, local: Path, private: Path) -> None:
    shared_file = write_masque(local)
    private_file = write_masque(private)
    (local / "broken.masque.yaml").write_text("name: broken\n")
    result = invoke(["list", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [d["source"] for d in data["search_path"]] == ["personas", "user"]
    by_path = {m["path"]: m for m in data["masques"]}
    assert by_path[str(private_file)] == {
        "name": "codesmith",
        "version": "0.1.0",
        "stage": "live",
        "ring": "player",
        "path": str(private_file),
        "source": "user",
        "sha256": hashlib.sha256(private_file.read_bytes()).hexdigest(),
        "active": True,
        "shadowed_by": None,
        "status": "active",
        "note": None,
        "error": None,
    }
    assert by_path[str(shared_file)]["shadowed_by"] == str(private_file)
    assert by_path[str(shared_file)]["active"] is False
    broken = by_path[str(local / "broken.masque.yaml")]
    assert broken["name"] is None and broken["active"] is False
    assert str(local / "broken.masque.yaml") in broken["error"]


def test_list_warns_about_invalid_files_on_stderr(invoke: Invoke, local: Path) -> None:
    write_masque(local)
    (local / "broken.masque.yaml").write_text("name: broken\n")
    result = invoke(["list"])
    assert result.exit_code == 0
    assert "masque: warning: skipped invalid file:" in result.stderr
    assert "broken" not in result.stdout


def test_list_with_nothing_on_the_search_path(invoke: Invoke) -> None:
    result = invoke(["list"])
    assert result.exit_code == 0
    assert result.stdout.startswith("no masques found on the search path:")


def test_show_text_names_file_source_and_hash(invoke: Invoke, local: Path) -> None:
    path = write_masque(local)
    result = invoke(["show", "masque:codesmith@v0.1.0"])
    assert result.exit_code == 0
    assert f"path:     {path}" in result.stdout
    assert "source:   personas" in result.stdout
    assert f"sha256:   {hashlib.sha256(path.read_bytes()).hexdigest()}" in result.stdout
    assert "  allowed: implement *" in result.stdout
    assert "  denied:  delete production *" in result.stdout


def test_show_json_shape_with_knowledge_endpoints(invoke: Invoke, local: Path) -> None:
    local.mkdir()
    (Path.cwd() / "masque.toml").write_text('[knowledge]\nhomelab = "http://localhost:8080"\n')
    path = local / "homelab.masque.yaml"
    path.write_text(
        'name: homelab\nindex: 2\nversion: "2.3.0"\nring: admin\n'
        'intent:\n  allowed: ["deploy *"]\n'
        "knowledge:\n  - mcp://homelab/inventory\n  - mcp://wiki/runbooks\n"
        "access:\n  vault_role: homelab-operator\n  ttl: PT1H\n"
        "lens: Careful.\n"
    )
    result = invoke(["show", "homelab", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert set(data) == {"ref", "path", "source", "sha256", "overrides", "warnings", "masque", "knowledge"}
    assert (data["ref"], data["path"], data["source"]) == ("homelab@2.3.0", str(path), "personas")
    assert data["masque"]["ring"] == "admin"
    assert data["masque"]["intent"] == {"allowed": ["deploy *"], "denied": []}
    assert data["masque"]["access"] == {"vault_role": "homelab-operator", "ttl": "PT1H"}
    assert data["knowledge"] == [
        {
            "uri": "mcp://homelab/inventory",
            "server": "homelab",
            "resource": "inventory",
            "endpoint": "http://localhost:8080/inventory",
        },
        {"uri": "mcp://wiki/runbooks", "server": "wiki", "resource": "runbooks", "endpoint": None},
    ]


def test_show_unknown_name_exits_4_with_a_suggestion(invoke: Invoke, local: Path) -> None:
    write_masque(local)
    result = invoke(["show", "codesmit"])
    assert result.exit_code == 4
    assert result.stderr.startswith("masque: error: no masque named 'codesmit'")
    assert "did you mean `codesmith`?" in result.stderr


def test_show_missing_version_exits_4_listing_versions(invoke: Invoke, local: Path) -> None:
    write_masque(local)
    result = invoke(["show", "codesmith@3.0.0"])
    assert result.exit_code == 4
    assert "available: 0.1.0 (live)" in result.stderr


def test_check_allowed_exits_0_and_names_the_pattern(invoke: Invoke, local: Path) -> None:
    write_masque(local)
    result = invoke(["check", "codesmith", "--intent", "Implement the parser"])
    assert result.exit_code == 0
    assert result.stdout.strip() == (
        'codesmith@0.1.0: allowed: intent "implement the parser" matches allowed pattern "implement *"'
    )


def test_check_denied_exits_3_and_names_the_pattern(invoke: Invoke, local: Path) -> None:
    write_masque(local)
    result = invoke(["check", "codesmith", "-i", "DELETE production\u200b data"])
    assert result.exit_code == 3
    assert 'matches denied pattern "delete production *"' in result.stdout


def test_check_json_for_a_default_deny(invoke: Invoke, local: Path) -> None:
    path = write_masque(local)
    result = invoke(["check", "codesmith@0.1.0", "--intent", "refactor it", "--json"])
    assert result.exit_code == 3
    assert json.loads(result.stdout) == {
        "ref": "codesmith@0.1.0",
        "path": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "intent": "refactor it",
        "allowed": False,
        "reason": "no_match",
        "pattern": None,
        "normalized": "refactor it",
        "message": 'refused: intent "refactor it" matches none of the allowed patterns "implement *"',
        "refusal_reason": "intent_not_allowed",
    }


def test_check_empty_intent_is_refused(invoke: Invoke, local: Path) -> None:
    write_masque(local)
    result = invoke(["check", "codesmith", "--intent", "   "])
    assert result.exit_code == 3
    assert "the intent is empty" in result.stdout


def test_check_as_a_real_process_on_the_shipped_personas(run_masque: Callable[..., Any], personas: Path) -> None:
    env = {"MASQUE_PATH": str(personas)}
    denied = run_masque("check", "masque:homelab@v2.3", "--intent", "delete the old backups", env=env)
    assert denied.returncode == 3, denied.stderr
    assert 'denied pattern "delete *"' in denied.stdout
    allowed = run_masque("check", "homelab", "--intent", "deploy monitoring stack", "--json", env=env)
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["pattern"] == "deploy *"
    missing = run_masque("check", "nosuch", "--intent", "x", env=env)
    assert missing.returncode == 4
    assert missing.stderr.startswith("masque: error:")

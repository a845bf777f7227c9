"""The registry honours recorded rollout stages and flattens `extends` when a masque is worn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from masque.errors import NotFound
from masque.masques import registry


def masque_text(name: str, index: int, version: str, extra: str = "") -> str:
    return (
        f'name: {name}\nindex: {index}\nversion: "{version}"\nring: player\n'
        f'intent:\n  allowed: ["implement *"]\nlens: |\n  {name} {version} lens.\n{extra}'
    )


@pytest.fixture
def lib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    lib = tmp_path / "lib"
    lib.mkdir()
    monkeypatch.setenv("MASQUE_PATH", str(lib))
    registry.clear_cache()
    return lib


def test_retired_version_is_skipped_by_bare_name_but_loadable_by_exact_version(lib: Path) -> None:
    from masque.masques.stages import retire

    (lib / "critic.masque.yaml").write_text(masque_text("Critic", 1, "1.0.0"))
    (lib / "critic-2.masque.yaml").write_text(masque_text("Critic", 2, "2.0.0"))
    assert registry.resolve("critic").masque.version == "2.0.0"
    retire("critic@2.0.0")
    assert registry.resolve("critic").masque.version == "1.0.0"
    assert registry.resolve("critic@2.0.0").masque.version == "2.0.0"
    retire("critic@1.0.0")
    with pytest.raises(NotFound):
        registry.resolve("critic")


def test_extends_is_flattened_when_resolved(lib: Path) -> None:
    (lib / "base").mkdir()
    parent_extra = "knowledge:\n  - mcp://repo/source\ncontext: |\n  Parent context.\n"
    (lib / "base" / "parent.masque.yaml").write_text(masque_text("Parent", 1, "1.0.0", parent_extra))
    child_extra = "extends: base/parent@1.0.0\nknowledge:\n  - mcp://repo/issues\n"
    (lib / "child.masque.yaml").write_text(masque_text("Child", 2, "1.0.0", child_extra))
    worn = registry.resolve("child").masque
    assert worn.name == "Child"
    assert worn.context == "Parent context.\n"
    assert worn.knowledge == ("mcp://repo/source", "mcp://repo/issues")
    assert worn.lens == "Child 1.0.0 lens.\n"


def test_check_reads_recorded_stages_without_importing_duckdb(masks: Path, invoke: Any, mt: Any) -> None:
    """A bare ref needs the recorded stages; the store keeps a copy so `masque check` stays DuckDB-free."""
    from tests.test_cli_root import imported_heavy

    assert invoke(["init"]).exit_code == 0  # a store exists, no stage recorded yet
    intent = ["--intent", "critique my opening"]
    assert imported_heavy("check", "mask.critic", *intent, heavy=("duckdb",)) == []
    assert mt(["mask", "retire", "critic@1.0.0"]).exit_code == 0
    assert imported_heavy("check", "mask.critic", *intent, heavy=("duckdb",)) == []
    retired = invoke(["check", "mask.critic", *intent])
    assert retired.exit_code == 4 and "no live version" in retired.stderr  # the copy carries the retirement

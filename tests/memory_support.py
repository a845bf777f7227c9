"""Masques the memory tests write to: memory belongs to masques on the search path (unknown ones exit 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PERSONAS

EXTRA = {  # name: ring; besides the shipped personas (codesmith, reviewer, homelab, generalist)
    "scratch": "player",
    "keeper": "player",
    "critic": "guest",
    "professor": "guest",
    "vault": "admin",
    "lobby": "outsider",
}


def write_masque(directory: Path, name: str, ring: str, index: int = 90) -> Path:
    path = directory / f"{name}.masque.yaml"
    path.write_text(
        f'name: {name}\nindex: {index}\nversion: "1.0.0"\nring: {ring}\n'
        f'intent:\n  allowed: ["implement *", "write *"]\nlens: The {name} masque.\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def memory_masques(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped personas plus a few more masques of every ring on MASQUE_PATH."""
    extra = tmp_path / "memory-masques"
    extra.mkdir()
    for i, (name, ring) in enumerate(EXTRA.items()):
        write_masque(extra, name, ring, 90 + i)
    monkeypatch.setenv("MASQUE_PATH", f"{PERSONAS}:{extra}")
    return extra

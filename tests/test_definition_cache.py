"""Clean definitions are cached by content (masque.masques.loaded), so a cold `assume` skips PyYAML and the
validator; anything that could change the outcome (the bytes, the limits, a parent) is validated again."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from masque import config
from masque.masques import loaded, registry
from tests.test_registry import write_masque


def _fresh(ref: str) -> registry.Resolved:
    """Resolve as a new process would: nothing parsed in this one yet."""
    registry.clear_cache()
    return registry.resolve(ref)


def _entries() -> list[Path]:
    return sorted((config.cache_dir() / "definitions").glob("*.json"))


@pytest.fixture
def local() -> Path:
    return Path.cwd() / "personas"


def test_a_clean_definition_is_reused_and_equals_the_validated_one(local: Path) -> None:
    path = write_masque(local)
    validated = _fresh("codesmith")
    assert len(_entries()) == 1
    hit = loaded.cached(path)
    assert hit is not None and hit.masque == validated.masque
    again = _fresh("codesmith")
    assert again.masque == validated.masque
    assert again.sha256 == validated.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_edited_bytes_are_validated_again(local: Path) -> None:
    path = write_masque(local)
    _fresh("codesmith")
    path.write_text(path.read_text(encoding="utf-8").replace("ring: player", "ring: emperor"), encoding="utf-8")
    assert loaded.cached(path) is None
    registry.clear_cache()
    (entry,) = [e for e in registry.available() if e.path == path]
    assert entry.masque is None and "emperor" in str(entry.error)


def test_limits_are_part_of_the_key(local: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_masque(local)
    _fresh("codesmith")
    strict = tmp_path / "masque.toml"
    strict.write_text("[limits]\nmax_file_bytes = 64\n", encoding="utf-8")  # the file is now too large
    monkeypatch.setenv("MASQUE_CONFIG", str(strict))
    assert loaded.cached(path) is None
    registry.clear_cache()
    (entry,) = [e for e in registry.available() if e.path == path]
    assert entry.masque is None


def test_a_definition_that_extends_another_is_never_cached(local: Path) -> None:
    parent = write_masque(local, name="parent", version="1.0.0", index=2)
    parent.write_text(parent.read_text(encoding="utf-8") + "access:\n  vault_role: reader\n  ttl: session\n")
    child = write_masque(local, name="child", version="1.0.0", index=3)
    child.write_text(child.read_text(encoding="utf-8") + "extends: parent@1.0.0\n", encoding="utf-8")
    first = _fresh("child@1.0.0")
    assert loaded.cached(child) is None
    assert first.masque.access is not None and first.masque.access.vault_role == "reader"
    parent.write_text(parent.read_text(encoding="utf-8").replace("reader", "writer"), encoding="utf-8")
    again = _fresh("child@1.0.0").masque
    assert again.access is not None and again.access.vault_role == "writer"  # the child follows its parent


def test_a_definition_with_warnings_is_not_cached(local: Path) -> None:
    import dataclasses

    from masque.masques.diagnostics import Diagnostic, Severity

    path = write_masque(local)
    clean = _fresh("codesmith")
    for entry in _entries():
        entry.unlink()
    warned = Diagnostic(str(path), "some-warning", "a warning", severity=Severity.WARNING)
    as_loaded = loaded.LoadedMasque(clean.masque, path, clean.sha256)
    loaded.remember(dataclasses.replace(as_loaded, warnings=(warned,)))
    assert _entries() == []
    loaded.remember(as_loaded)
    assert len(_entries()) == 1


@pytest.mark.slow
def test_a_cold_assume_with_a_cached_definition_never_imports_yaml_or_isodate(personas: Path) -> None:
    import datetime as dt
    import json

    env = {**os.environ, "MASQUE_PATH": str(personas)}
    report = 'f\'yaml imported: {"yaml" in sys.modules}, isodate imported: {"isodate" in sys.modules}\\n\''
    tracer = (
        "import os, sys; _exit = os._exit;"  # a hot command ends with os._exit: report there
        f"os._exit = lambda code: (sys.stderr.write({report}), _exit(code));"
        "from masque.cli.entry import main; sys.argv[0] = 'masque'; main()"
    )
    line = [sys.executable, "-c", tracer, "assume", "codesmith", "--intent", "implement the parser", "-f", "json"]
    first = subprocess.run(line, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    second = subprocess.run(line, capture_output=True, text=True, env=env, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "yaml imported: False, isodate imported: False" in second.stderr
    # The access.ttl (PT8H) read from the cache still bounds the credential, as when it was parsed.
    for out in (first.stdout, second.stdout):
        worn = json.loads(out)
        started, ends = (dt.datetime.fromisoformat(worn[k]) for k in ("started_at", "credential_expires_at"))
        assert ends - started == dt.timedelta(hours=8)

"""Reflection across machines: `sessions export --partition` and `masque stats --from 'DIR/**/*.parquet'`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURE = Path(__file__).parent / "cases" / "reflection" / "sessions.jsonl"
Invoke = Callable[..., Any]
LEVELS = [[], ["codesmith"], ["--ring", "player"], ["--skill", "skill://programming/zig"]]


def _stats(invoke: Invoke, *args: str) -> dict[str, Any]:
    result = invoke(["stats", *args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture
def imported(invoke: Invoke) -> None:
    result = invoke(["sessions", "import", str(FIXTURE), "--json"])
    assert result.exit_code == 0, result.output


@pytest.mark.usefixtures("imported")
@pytest.mark.parametrize("level", LEVELS, ids=["system", "masque", "ring", "skill"])
def test_stats_over_every_machines_files_equals_the_store(invoke: Invoke, tmp_path: Path, level: list[str]) -> None:
    exports = tmp_path / "exports"
    for machine in ("laptop", "ci-runner"):  # two machines exported the same sessions: each counts once
        done = invoke(["sessions", "export", str(exports), "--partition", "--machine", machine, "--json"])
        assert done.exit_code == 0, done.output
    assert sorted(p.name for p in exports.iterdir()) == ["machine=ci-runner", "machine=laptop"]
    assert all(p.parent.name.startswith("date=") for p in exports.rglob("*.parquet"))
    assert _stats(invoke, *level, "--from", f"{exports}/**/*.parquet") == _stats(invoke, *level)


@pytest.mark.usefixtures("imported")
def test_a_re_export_replaces_only_its_own_machine(invoke: Invoke, tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    first = json.loads(invoke(["sessions", "export", str(exports), "--partition", "--machine", "a", "--json"]).stdout)
    other = exports / "machine=b" / "date=2020-01-01"
    other.mkdir(parents=True)
    (other / "keep.parquet").write_bytes(b"")  # another machine's files are never touched
    again = json.loads(invoke(["sessions", "export", str(exports), "--partition", "--machine", "a", "--json"]).stdout)
    assert again["sessions"] == first["sessions"] > 0
    assert (other / "keep.parquet").exists()
    assert sum(1 for _ in (exports / "machine=a").rglob("*.parquet")) == again["files"]
    # An interrupted export leaves its staging tree beside the others: `--from` never reads it.
    (exports / ".machine=a.999.tmp" / "date=2020-01-01").mkdir(parents=True)
    (exports / ".machine=a.999.tmp" / "date=2020-01-01" / "half.parquet").write_bytes(b"PAR1 torn")
    (other / "keep.parquet").unlink()
    assert _stats(invoke, "--from", f"{exports}/**/*.parquet")["sessions"]["total"] == first["sessions"]


def test_bad_inputs_name_the_fault(invoke: Invoke, tmp_path: Path) -> None:
    invoke(["init"])
    to_file = invoke(["sessions", "export", str(tmp_path / "x.parquet"), "--partition"])
    assert to_file.exit_code == 2 and "directory tree" in to_file.stderr
    bad_machine = invoke(["sessions", "export", str(tmp_path / "d"), "--partition", "--machine", "../up"])
    assert bad_machine.exit_code == 2 and "--machine '../up'" in bad_machine.stderr
    alone = invoke(["sessions", "export", str(tmp_path / "s.parquet"), "--machine", "m"])
    assert alone.exit_code == 2 and "--partition" in alone.stderr
    nothing = invoke(["stats", "--from", f"{tmp_path}/none/**/*.parquet"])
    assert nothing.exit_code == 4 and "no file matches" in nothing.stderr
    junk = tmp_path / "junk" / "a.parquet"
    junk.parent.mkdir()
    junk.write_bytes(b"not parquet")
    unreadable = invoke(["stats", "--from", str(junk)])
    assert unreadable.exit_code == 1 and "not readable as exported sessions" in unreadable.stderr
    with_key = invoke(["stats", "--from", str(junk), "--as", "x", "--key-file", str(junk)])
    assert with_key.exit_code == 2


@pytest.mark.usefixtures("imported")
def test_a_player_exports_only_what_it_sees(invoke: Invoke, tmp_path: Path) -> None:
    key = invoke(["actor", "add", "gus", "--ring", "player", "--json"])
    assert key.exit_code == 0, key.output
    key_file = tmp_path / "gus.key"
    key_file.write_text(json.loads(key.stdout)["key"])
    exports = tmp_path / "exports"
    result = invoke(
        ["sessions", "export", str(exports), "--partition", "--as", "gus", "--key-file", str(key_file), "--json"]
    )
    assert result.exit_code == 0, result.output
    everything = _stats(invoke)["sessions"]["total"]
    seen = _stats(invoke, "--from", f"{exports}/**/*.parquet")["sessions"]["total"]
    assert json.loads(result.stdout)["sessions"] == seen < everything

"""Hostile or odd input files: what `validate` accepts never breaks another command, nothing hangs."""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from masque.masques import schema
from masque.masques.loader import Document

CASES = Path(__file__).parent / "cases"
PERSONAS = Path(__file__).resolve().parent.parent / "personas"
Run = Callable[..., Any]

# A document per schema that sets every pattern-checked field, each to a valid value.
FULL: dict[str, dict[str, Any]] = {
    "masque": {
        "name": "Full",
        "index": 7,
        "version": "1.0.0",
        "ring": "player",
        "extends": "base/professor@1.0.0",
        "knowledge": ["mcp://docs/guide"],
        "skills": [{"uri": "skill://programming/python", "level": "competent"}],
        "intent": {"allowed": ["implement *"]},
        "access": {"vault_role": "dev-role", "ttl": "PT1H"},
        "lens": "Be careful.",
        "collaboration": {"role": "engineer", "capabilities": {"can_approve": True}, "subscribes": ["critic.output"]},
    },
    "mask": {
        "id": "mask.poet",
        "version": "1.0.0",
        "name": "Poet",
        "extends": "base/professor@1.0.0",
        "capabilities": {"can_rhyme": True},
        "knowledge": ["mcp://docs/guide"],
        "access": {"vault_role": "dev-role", "ttl": "PT1H"},
        "changelog": [{"version": "1.0.0", "date": "2024-01-01", "changes": "first"}],
    },
}
# (schema, JSON path of a pattern-checked value); ("capabilities", KEY) checks a property name.
KEY = object()
FIELDS = [
    ("masque", ("name",)),
    ("masque", ("version",)),
    ("masque", ("extends",)),
    ("masque", ("knowledge", 0)),
    ("masque", ("skills", 0, "uri")),
    ("masque", ("access", "vault_role")),
    ("masque", ("access", "ttl")),
    ("masque", ("collaboration", "role")),
    ("masque", ("collaboration", "capabilities", KEY)),
    ("masque", ("collaboration", "subscribes", 0)),
    ("mask", ("id",)),
    ("mask", ("version",)),
    ("mask", ("name",)),
    ("mask", ("extends",)),
    ("mask", ("capabilities", KEY)),
    ("mask", ("knowledge", 0)),
    ("mask", ("access", "vault_role")),
    ("mask", ("access", "ttl")),
    ("mask", ("changelog", 0, "version")),
    ("mask", ("changelog", 0, "date")),
]


def _with_suffix(which: str, path: tuple[Any, ...], suffix: str) -> dict[str, Any]:
    data = copy.deepcopy(FULL[which])
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    if path[-1] is KEY:
        (key,) = node
        node[key + suffix] = node.pop(key)
    else:
        node[path[-1]] += suffix
    return data


def _full_errors(which: str, data: Any) -> list[Any]:
    return list(schema.full_validator(which).iter_errors(data))


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from _patterns(item)


@pytest.mark.parametrize("which", ["masque", "mask"])
def test_the_full_documents_are_valid_on_both_paths(which: str) -> None:
    assert schema.is_valid(FULL[which], which)
    assert _full_errors(which, FULL[which]) == []


@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\n\n"])
@pytest.mark.parametrize(("which", "path"), FIELDS, ids=[f"{w}:{'.'.join(map(str, p))}" for w, p in FIELDS])
def test_a_trailing_newline_fails_both_validators(which: str, path: tuple[Any, ...], suffix: str) -> None:
    data = _with_suffix(which, path, suffix)
    assert not schema.is_valid(data, which), "fast validator accepted a trailing newline"
    errors = _full_errors(which, data)
    assert [e.validator for e in errors] == ["pattern"], "full validator disagrees with the fast one"
    doc = Document("x", "", data)
    found = schema.check(doc, which)
    assert found and found[0].code == "schema-pattern"


@pytest.mark.parametrize("which", ["masque", "mask"])
def test_every_pattern_in_the_schema_is_covered(which: str) -> None:
    covered = set()
    for w, path in FIELDS:
        if w == which:
            covered |= {e.validator_value for e in _full_errors(which, _with_suffix(which, path, "\n"))}
    assert set(_patterns(schema.load_schema(which))) == covered


def test_unicode_digits_are_not_versions() -> None:
    """`\\d` is ASCII in ECMA patterns but Unicode in Python; the schema spells digits [0-9]."""
    data = dict(FULL["masque"], version="1.0.\u0663")
    assert not schema.is_valid(data)
    assert _full_errors("masque", data)


# --- one bad file on the path never stops the others -----------------------------------------------


def _path_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    shutil.copy(PERSONAS / "reviewer.masque.yaml", shelf / "reviewer.masque.yaml")
    monkeypatch.setenv("MASQUE_PATH", str(shelf))
    return shelf


def test_a_name_with_a_trailing_newline_is_invalid_and_breaks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_masque: Run
) -> None:
    shelf = _path_with(tmp_path, monkeypatch)
    text = (CASES / "valid" / "minimal.masque.yaml").read_text()
    (shelf / "trap.masque.yaml").write_text(text.replace("name: Minimal", 'name: "trap\\n"'))

    validated = run_masque("validate", str(shelf / "trap.masque.yaml"))
    assert validated.returncode == 1
    assert "trap.masque.yaml:1:1: error[schema-pattern] $.name" in validated.stdout

    listed = run_masque("list")
    assert listed.returncode == 0, listed.stderr
    assert "reviewer" in listed.stdout
    assert "trap.masque.yaml" in listed.stderr and "unexpected error" not in listed.stderr

    checked = run_masque("check", "reviewer", "--intent", "review the parser")
    assert checked.returncode == 0, checked.stderr
    assumed = run_masque("assume", "reviewer", "--intent", "review the parser", "--format", "json")
    assert assumed.returncode == 0, assumed.stderr
    trapped = run_masque("check", "trap", "--intent", "implement x")
    assert trapped.returncode in (1, 4) and "unexpected error" not in trapped.stderr


@pytest.mark.parametrize("kind", ["fifo", "syntax", "pattern", "unreadable", "loop", "huge-int"])
def test_a_bad_file_on_the_path_never_stops_the_good_one(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_masque: Run
) -> None:
    shelf = _path_with(tmp_path, monkeypatch)
    bad = shelf / "bad.masque.yaml"
    if kind == "fifo":
        os.mkfifo(bad)
    elif kind == "syntax":
        bad.write_text("name: [unclosed\n")
    elif kind == "pattern":
        bad.write_text((CASES / "valid" / "minimal.masque.yaml").read_text().replace("Minimal", '"bad\\n"'))
    elif kind == "unreadable":  # unreadable even for root
        bad.symlink_to(tmp_path / "gone")
    elif kind == "loop":
        bad.symlink_to(bad)
    else:
        bad.write_text((CASES / "valid" / "minimal.masque.yaml").read_text().replace("12", "9" * 5000))
    for args in (
        ["list"],
        ["check", "reviewer", "-i", "review the parser"],
        ["show", "reviewer"],
        ["assume", "reviewer", "-i", "review the parser", "-f", "json"],
    ):
        done = run_masque(*args, timeout=60)
        assert done.returncode == 0, (args, done.stderr)
        assert "unexpected error" not in done.stderr
        if args == ["list"]:
            assert "bad.masque.yaml" in done.stderr
    listed = run_masque("list", "--json", timeout=60)
    errors = [m for m in __import__("json").loads(listed.stdout)["masques"] if m.get("error")]
    assert [Path(e["path"]).name for e in errors] == ["bad.masque.yaml"]


# --- never hang --------------------------------------------------------------------------------------


def test_a_fifo_named_like_a_masque_is_an_error_not_a_hang(tmp_path: Path, run_masque: Run) -> None:
    os.mkfifo(tmp_path / "pipe.masque.yaml")
    shutil.copy(PERSONAS / "reviewer.masque.yaml", tmp_path / "reviewer.masque.yaml")
    for target in (tmp_path, tmp_path / "pipe.masque.yaml", f"{tmp_path}/*.masque.yaml"):
        done = run_masque("validate", str(target), timeout=60)
        assert done.returncode == 1
        assert f"{tmp_path / 'pipe.masque.yaml'}: error[unreadable]" in done.stdout
        assert "not a regular file: it is a FIFO" in done.stdout


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "big"])
def test_a_key_file_is_read_only_if_it_is_a_small_regular_file(kind: str, tmp_path: Path, run_masque: Run) -> None:
    if kind == "fifo":
        key_file = tmp_path / "key"
        os.mkfifo(key_file)
    elif kind == "big":
        key_file = tmp_path / "key"
        key_file.write_text("msqk_" + "x" * 10_000)
    else:
        key_file = Path(kind)
    done = run_masque("actor", "list", "--as", "someone", "--key-file", str(key_file), timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"key file {key_file}" in done.stderr
    assert "not a regular file" in done.stderr or "over 4,096 bytes" in done.stderr


def test_an_integer_past_pythons_digit_limit_is_a_diagnostic_in_validate_and_assume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_masque: Run
) -> None:
    shelf = _path_with(tmp_path, monkeypatch)
    case = CASES / "invalid" / "number-too-long.masque.yaml"
    shutil.copy(case, shelf / "case.masque.yaml")
    validated = run_masque("validate", str(case))
    assert validated.returncode == 1
    assert f"{case}:6:11: error[number-too-long]" in validated.stdout
    assumed = run_masque("assume", "case", "--intent", "implement x")
    assert assumed.returncode == 1, assumed.stderr
    assert "case.masque.yaml:6:11: $: a number of 4,301 digits is over Python's limit" in assumed.stderr


def test_a_backtracking_mask_test_regex_fails_the_suite_instead_of_hanging(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    mask = {
        "id": "mask.echo",
        "version": "1.0.0",
        "name": "Echo",
        "prompt": {"persona": "You echo.", "examples": [{"input": "say a", "output": "a" * 40 + "!"}]},
        "tests": [{"name": "backtracks", "input": "say a", "assertions": [{"regex": "^(a|aa)+$"}]}],
    }
    (tmp_path / "echo.mask.json").write_text(json.dumps(mask))
    done = subprocess.run(
        [sys.executable, "-m", "masque.mythatron", "mask", "validate", str(tmp_path / "echo.mask.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "FAIL mask.echo@1.0.0 :: backtracks" in done.stdout
    assert "/^(a|aa)+$/ gave up after" in done.stdout


def test_the_loader_refuses_a_fifo_as_a_parent_or_route_file(tmp_path: Path) -> None:
    from masque.masques.loader import LoadProblem, load_file

    os.mkfifo(tmp_path / "parent.mask.json")
    with pytest.raises(LoadProblem) as caught:
        load_file(tmp_path / "parent.mask.json")  # how `extends` parents and routes.yaml are read
    assert caught.value.diagnostic.code == "unreadable"
    assert "not a regular file: it is a FIFO" in caught.value.diagnostic.message


def test_should_the_validators_ever_disagree_the_file_is_still_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "schema_diagnostics", lambda *args, **kwargs: [])  # the full one says "fine"
    found = schema.check(Document("x.masque.yaml", "", dict(FULL["masque"], index=0)))
    assert found is not None and [d.code for d in found] == ["schema-rejected"]

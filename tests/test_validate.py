"""`masque validate`: every diagnostic code at its exact line, the report formats and exit codes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from masque.config import Limits
from masque.masques.validate import check_file, validate_paths

CASES = Path(__file__).parent / "cases"
EXPECTED: dict[str, dict[str, Any]] = json.loads((CASES / "invalid" / "expected.json").read_text())

Invoke = Callable[..., Any]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_invalid_case_reports_its_code_at_its_line(name: str) -> None:
    result = check_file(CASES / "invalid" / name)
    errors = [d for d in result.diagnostics if d.severity.value == "error"]
    assert errors, f"{name} should be invalid"
    first = errors[0]
    want = EXPECTED[name]
    assert (first.code, first.line, first.col, first.json_path) == (
        want["code"],
        want["line"],
        want["col"],
        want["json_path"],
    )
    assert result.masque is None


def test_valid_cases_build_a_model() -> None:
    report = validate_paths([str(CASES / "valid")])
    assert report.ok
    names = sorted(f.masque.name for f in report.files if f.masque is not None)  # type: ignore[attr-defined]
    assert names == ["Minimal", "Warnings", "Yes-Man"]


def test_shipped_personas_are_valid_without_warnings(personas: Path) -> None:
    report = validate_paths([str(personas)], strict=True)
    assert report.ok, [d for f in report.files for d in f.diagnostics]
    assert {f.masque.name for f in report.files} >= {"Codesmith", "Homelab", "Reviewer", "Generalist"}  # type: ignore[attr-defined]


def copy_case(tmp_path: Path, name: str, new_name: str | None = None) -> Path:
    dest = tmp_path / (new_name or name)
    shutil.copy(CASES / "valid" / name, dest)
    return dest


def test_duplicate_index_and_ref_across_files(tmp_path: Path) -> None:
    copy_case(tmp_path, "minimal.masque.yaml")
    sub = tmp_path / "sub"
    sub.mkdir()
    copy_case(sub, "minimal.masque.yaml")
    report = validate_paths([str(tmp_path)])
    codes = {(d.code, d.line) for f in report.files for d in f.diagnostics}
    assert ("duplicate-index", 2) in codes
    assert ("duplicate-ref", 3) in codes
    assert report.summary()["invalid"] == 1


def test_file_name_warning_and_strict(tmp_path: Path, invoke: Invoke) -> None:
    copy_case(tmp_path, "minimal.masque.yaml", "other.masque.yaml")
    result = invoke(["validate", tmp_path])
    assert result.exit_code == 0
    assert "warning[file-name]" in result.stdout
    assert "'minimal.masque.yaml'" in result.stdout
    strict = invoke(["validate", "--strict", tmp_path])
    assert strict.exit_code == 1
    assert "error[file-name]" in strict.stdout


def test_shadowing_denied_pattern_warns(tmp_path: Path) -> None:
    text = (CASES / "valid" / "minimal.masque.yaml").read_text().replace('denied: ["rush *"]', 'denied: ["*"]')
    (tmp_path / "minimal.masque.yaml").write_text(text)
    codes = [d.code for d in check_file(tmp_path / "minimal.masque.yaml").diagnostics]
    assert codes == ["intent-shadowed"]


def test_text_output_is_one_line_per_problem(invoke: Invoke) -> None:
    result = invoke(["validate", CASES / "invalid" / "bad-ring.masque.yaml"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].endswith(
        "bad-ring.masque.yaml:4:1: error[schema-enum] $.ring: "
        "'god' is not one of 'admin', 'player', 'guest', 'outsider'"
    )
    assert lines[-1] == "1 file checked: 0 valid, 1 invalid (1 error, 0 warnings)"


def test_json_output_shape(invoke: Invoke, personas: Path) -> None:
    result = invoke(["validate", "--format", "json", personas, CASES / "invalid" / "bad-index.masque.yaml"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert set(payload) == {"files", "summary"}
    assert payload["summary"] == {"files": 5, "valid": 4, "invalid": 1, "errors": 1, "warnings": 0}
    bad = next(f for f in payload["files"] if not f["valid"])
    assert bad["diagnostics"] == [
        {
            "line": 2,
            "col": 1,
            "code": "schema-minimum",
            "severity": "error",
            "message": "0 is less than the minimum of 1",
            "json_path": "$.index",
        }
    ]


def test_github_annotations(invoke: Invoke) -> None:
    result = invoke(["validate", "-f", "github", CASES / "invalid" / "bad-ring.masque.yaml"])
    first = result.stdout.splitlines()[0]
    assert first.startswith("::error file=")
    assert ",line=4,col=1,title=masque schema-enum::$.ring%3A" not in first  # data part is not property-escaped
    assert ",line=4,col=1,title=masque schema-enum::$.ring: 'god'" in first


def test_directories_are_recursive_and_honour_gitignore(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "ignored").mkdir()
    copy_case(tmp_path / "a" / "b", "minimal.masque.yaml")
    shutil.copy(CASES / "invalid" / "bad-ring.masque.yaml", tmp_path / "ignored" / "x.masque.yaml")
    shutil.copy(CASES / "invalid" / "bad-ring.masque.yaml", tmp_path / "a" / "scratch.masque.yaml")
    (tmp_path / "a" / "notes.yaml").write_text("not: a masque\n")
    (tmp_path / ".gitignore").write_text("ignored/\n")
    (tmp_path / "a" / ".gitignore").write_text("scratch.*\n")
    report = validate_paths([str(tmp_path)])
    assert [Path(f.path).name for f in report.files] == ["minimal.masque.yaml"]


def test_globs(tmp_path: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    copy_case(tmp_path, "minimal.masque.yaml")
    monkeypatch.chdir(tmp_path)
    result = invoke(["validate", "*.masque.yaml"])
    assert result.exit_code == 0
    assert "1 file checked" in result.stdout
    nomatch = invoke(["validate", "nothing-*.masque.yaml"])
    assert nomatch.exit_code == 2
    assert "no files match" in nomatch.stderr


def test_default_path_is_personas(tmp_path: Path, invoke: Invoke) -> None:
    missing = invoke(["validate"])
    assert missing.exit_code == 2
    assert "personas: no such file or directory" in missing.stderr
    (tmp_path / "work" / "personas").mkdir()
    copy_case(tmp_path / "work" / "personas", "minimal.masque.yaml")
    assert invoke(["validate"]).exit_code == 0


def test_usage_errors_exit_2(invoke: Invoke) -> None:
    assert invoke(["validate", "--format", "xml", "x"]).exit_code == 2
    assert invoke(["validate", "--no-such-option"]).exit_code == 2


def test_max_file_size_from_config(tmp_path: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    copy_case(tmp_path, "minimal.masque.yaml")
    config = tmp_path / "masque.toml"
    config.write_text("[limits]\nmax_file_bytes = 50\n")
    monkeypatch.setenv("MASQUE_CONFIG", str(config))
    result = invoke(["validate", tmp_path / "minimal.masque.yaml"])
    assert result.exit_code == 1
    assert "error[file-too-large]" in result.stdout


def test_hostile_files_in_one_directory(tmp_path: Path) -> None:
    (tmp_path / "bomb.masque.yaml").write_text(
        "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
        + "".join(
            f"{c}: &{c} [" + ",".join([f"*{p}"] * 10) + "]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        )
    )
    (tmp_path / "deep.masque.yaml").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "bin.masque.yaml").write_bytes(b"\x00\x01\x02")
    (tmp_path / "latin1.masque.yaml").write_bytes(b"name: Jos\xe9\n")
    report = validate_paths([str(tmp_path)], lim=Limits())
    codes = {Path(f.path).name: [d.code for d in f.diagnostics] for f in report.files}
    assert codes == {
        "bin.masque.yaml": ["binary-file"],
        "bomb.masque.yaml": ["alias-bomb"],
        "deep.masque.yaml": ["too-deep"],
        "latin1.masque.yaml": ["not-utf8"],
    }


def test_every_schema_property_has_a_description() -> None:
    from masque.masques.schema import load_schema

    missing: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                if "description" not in sub and "$ref" not in sub:
                    missing.append(f"{where}.{name}")
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")

    walk(load_schema("masque"), "$")
    assert missing == []


def test_schema_command_prints_the_shipped_schema(invoke: Invoke) -> None:
    result = invoke(["schema"])
    assert result.exit_code == 0
    assert "$schema: https://json-schema.org/draft/2020-12/schema" in result.stdout
    as_json = json.loads(invoke(["schema", "--format", "json"]).stdout)
    assert as_json["required"] == ["name", "index", "version", "ring", "intent", "lens"]


def test_warning_codes_point_at_the_repeat() -> None:
    result = check_file(CASES / "valid" / "warnings.masque.yaml")
    assert result.valid
    assert [(d.code, d.line, d.col) for d in result.diagnostics] == [
        ("intent-duplicate", 6, 28),
        ("knowledge-duplicate", 12, 5),
        ("skill-duplicate", 16, 5),
    ]


def test_a_directory_named_like_a_masque_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "odd.masque.yaml").mkdir()
    assert [d.code for d in check_file(tmp_path / "odd.masque.yaml").diagnostics] == ["unreadable"]


def test_every_documented_code_is_produced_by_a_test_case() -> None:
    from masque.masques.diagnostics import DIAGNOSTIC_CODES

    produced = {case["code"] for case in EXPECTED.values()}
    produced |= {"intent-duplicate", "knowledge-duplicate", "skill-duplicate", "unreadable", "file-name"}
    produced |= {"file-too-large", "binary-file", "not-utf8", "alias-bomb", "too-deep"}
    produced |= {"duplicate-index", "duplicate-ref", "intent-shadowed", "extends-missing", "extends-cycle"}
    produced = {"schema-<keyword>" if c.startswith("schema-") else c for c in produced}
    unreachable_by_files = {"ttl-invalid"}  # the schema pattern rejects every malformed duration first
    assert set(DIAGNOSTIC_CODES) - unreachable_by_files == produced


def _child(name: str, index: int, extends: str) -> str:
    return (
        f'name: {name}\nindex: {index}\nversion: "1.0.0"\nring: player\nextends: {extends}\n'
        'intent:\n  allowed: ["implement *"]\nlens: |\n  Be careful.\n'
    )


def test_extends_missing_parent_names_the_chain(tmp_path: Path) -> None:
    (tmp_path / "child.masque.yaml").write_text(_child("Child", 1, "base/parent@1.0.0"))
    report = validate_paths([str(tmp_path)])
    (diag,) = report.files[0].diagnostics
    assert (diag.code, diag.line, diag.col) == ("extends-missing", 5, 1)
    assert "base/parent@1.0.0 not found" in diag.message and "child@1.0.0" in diag.message


def test_extends_cycle_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "alpha.masque.yaml").write_text(_child("Alpha", 1, "beta@1.0.0"))
    (tmp_path / "beta.masque.yaml").write_text(_child("Beta", 2, "alpha@1.0.0"))
    report = validate_paths([str(tmp_path)])
    codes = [d.code for f in report.files for d in f.diagnostics]
    assert codes == ["extends-cycle", "extends-cycle"]


def test_extends_resolved_parent_is_valid(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    parent = _child("Parent", 1, "x@1.0.0").replace("extends: x@1.0.0\n", "")
    (tmp_path / "base" / "parent.masque.yaml").write_text(parent)
    (tmp_path / "child.masque.yaml").write_text(_child("Child", 2, "base/parent@1.0.0"))
    assert validate_paths([str(tmp_path)]).ok

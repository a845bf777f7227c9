"""The mask JSON dialect: schema, semantic checks, defaults as a masque, inheritance for both dialects."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from masque.masques.diagnostics import Severity
from masque.masques.dialect import check_mask_file
from masque.masques.inheritance import InheritanceError, resolve
from masque.masques.validate import resolve_file
from masque.model import Ring

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "masks"
Invoke = Callable[..., Any]


def minimal(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "mask.tester",
        "version": "1.0.0",
        "name": "Tester",
        "prompt": {"persona": "You test things.", "examples": [{"input": "hi", "output": "hello"}]},
    }
    doc.update(extra)
    return doc


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def check(path: Path) -> tuple[list[Any], Any]:
    return check_mask_file(str(path), path.read_text(encoding="utf-8"))


def codes(diags: list[Any]) -> list[str]:
    return [d.code for d in diags]


def test_shipped_example_masks_validate_with_masque_validate(invoke: Invoke) -> None:
    result = invoke(["validate", EXAMPLES, "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["summary"]["files"] == 10 and report["summary"]["errors"] == 0


def test_a_mask_without_ring_intent_access_defaults_and_warns(tmp_path: Path) -> None:
    diags, masque = check(write(tmp_path / "tester.mask.json", minimal()))
    (warning,) = [d for d in diags if d.code == "mask-masque-defaults"]
    assert warning.severity is Severity.WARNING
    assert "ring player" in warning.message and "any intent (*)" in warning.message
    assert "credential" in warning.message
    assert masque.ring is Ring.PLAYER and masque.intent.allowed == ("*",) and masque.access is None
    assert masque.name == "mask.tester" and masque.ref == "mask.tester@1.0.0"
    assert masque.lens.startswith("You test things.")


def test_prompt_sections_become_the_lens(tmp_path: Path) -> None:
    doc = minimal(ring="guest", intent={"allowed": ["review *"]}, access={"vault_role": "reader"})
    doc["prompt"].update({"constraints": ["Be brief"], "style_guidelines": ["Warm"], "format": "markdown"})
    diags, masque = check(write(tmp_path / "tester.mask.json", doc))
    assert "mask-masque-defaults" not in codes(diags)
    expected = "You test things.\n\nConstraints:\n- Be brief\n\nStyle guidelines:\n- Warm\n\nFormat: markdown"
    assert masque.lens == expected
    assert masque.ring is Ring.GUEST and masque.access.vault_role == "reader"
    assert masque.attributes["prompt"]["examples"][0]["output"] == "hello"


def test_version_bump_without_changelog_entry_is_a_warning_at_the_version_line(tmp_path: Path) -> None:
    diags, masque = check(write(tmp_path / "tester.mask.json", minimal(version="1.4.0")))
    (error,) = [d for d in diags if d.code == "changelog-missing"]
    assert masque is not None and error.severity is Severity.WARNING
    assert error.line == 3 and error.json_path == "$.version" and "1.4.0" in error.message
    fixed = minimal(version="1.4.0", changelog=[{"version": "1.4.0", "changes": "Warmer."}])
    assert "changelog-missing" not in codes(check(write(tmp_path / "tester.mask.json", fixed))[0])


def test_first_versions_need_no_changelog_but_entries_may_not_run_ahead(tmp_path: Path) -> None:
    assert check(write(tmp_path / "tester.mask.json", minimal(version="0.1.0")))[1] is not None
    ahead = minimal(changelog=[{"version": "2.0.0", "changes": "future"}])
    diags, masque = check(write(tmp_path / "tester.mask.json", ahead))
    assert masque is None and "changelog-ahead" in codes(diags)


def test_schema_errors_point_at_the_line(tmp_path: Path) -> None:
    path = tmp_path / "tester.mask.json"
    path.write_text('{\n  "id": "professor",\n  "version": "1.0",\n  "name": "X"\n}\n', encoding="utf-8")
    diags, masque = check(path)
    assert masque is None
    by_path = {d.json_path: d for d in diags}
    assert by_path["$.id"].line == 2 and by_path["$.version"].line == 3


def test_bad_assertions_and_regexes_are_found_before_any_run(tmp_path: Path) -> None:
    tests = [{"name": "t", "input": "x", "assertions": [{"regex": "(open"}, {"contains": "a", "icontains": "b"}]}]
    diags, masque = check(write(tmp_path / "tester.mask.json", minimal(tests=tests)))
    assert masque is None
    assert {"assertion-regex", "assertion-operators"} <= set(codes(diags))


def test_broken_json_is_one_diagnostic_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "tester.mask.json"
    path.write_text('{\n  "id": "mask.x",\n  "version": "1.0.0"\n  "name": "X"\n}\n', encoding="utf-8")
    (diag,), masque = check(path)
    assert masque is None and diag.code == "yaml-syntax" and diag.line in (3, 4)


# --- inheritance ------------------------------------------------------------------------------------


def test_professor_inherits_from_the_pinned_base(masks: Path, mt: Invoke) -> None:
    masque, flat = resolve_file(masks / "professor.mask.json")
    constraints = flat.data["prompt"]["constraints"]
    assert constraints[:2] == ["Cite textual evidence", "Never rewrite the author's text for them"]  # parent first
    assert "Name one strength before any weakness" in constraints
    assert flat.data["prompt"]["format"] == "markdown"  # inherited scalar
    assert flat.data["id"] == "mask.professor" and flat.data["version"] == "1.3.0"  # own identity
    assert [c.split(" ")[0] for c in flat.chain] == ["mask.professor@1.3.0", "mask.base/professor@1.0.0"]
    assert "Cite textual evidence" in masque.lens
    result = mt(["mask", "show", "professor", "--resolved"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["mask"]["prompt"]["constraints"] == constraints and len(shown["chain"]) == 2


def test_lists_merge_by_identity_and_scalars_override(tmp_path: Path) -> None:
    parent = minimal(id="mask.base/p", name="P", tone=["calm"], default_llm="a")
    parent["tests"] = [{"name": "same", "input": "old", "assertions": [{"contains": "x"}]}]
    write(tmp_path / "base" / "p.mask.json", parent)
    child = minimal(extends="base/p@1.0.0", tone=["calm", "bold"], default_llm="b")
    child["tests"] = [{"name": "same", "input": "new", "assertions": [{"contains": "y"}]}]
    flat = resolve(child, tmp_path / "tester.mask.json").data
    assert flat["tone"] == ["calm", "bold"] and flat["default_llm"] == "b"
    assert [t["input"] for t in flat["tests"]] == ["new"]  # the child's test of the same name wins


def test_an_extends_cycle_is_an_error_naming_the_chain(tmp_path: Path) -> None:
    write(tmp_path / "a.mask.json", minimal(id="mask.a", name="A", extends="b@1.0.0"))
    write(tmp_path / "b.mask.json", minimal(id="mask.b", name="B", extends="a@1.0.0"))
    diags, masque = check(tmp_path / "a.mask.json")
    (error,) = [d for d in diags if d.code == "extends-cycle"]
    assert masque is None
    assert "mask.a@1.0.0" in error.message and "mask.b@1.0.0" in error.message and " -> " in error.message


def test_a_missing_parent_lists_the_versions_that_exist(tmp_path: Path) -> None:
    write(tmp_path / "base" / "p.mask.json", minimal(id="mask.base/p", name="P", version="0.9.0"))
    child = write(tmp_path / "tester.mask.json", minimal(extends="base/p@1.0.0"))
    with pytest.raises(InheritanceError) as caught:
        resolve(json.loads(child.read_text()), child)
    assert caught.value.code == "extends-missing"
    assert "base/p@1.0.0 not found" in str(caught.value) and "0.9.0" in str(caught.value)


def test_a_masque_yaml_can_extend_a_masque_yaml(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "scholar.masque.yaml").write_text(
        'name: scholar\nindex: 90\nversion: "1.0.0"\nring: player\nintent:\n  allowed: ["read *"]\n'
        "knowledge: [mcp://library/catalog]\nlens: Read closely.\n",
        encoding="utf-8",
    )
    child = tmp_path / "teacher.masque.yaml"
    child.write_text(
        'name: teacher\nindex: 91\nversion: "1.0.0"\nring: guest\nextends: base/scholar@1.0.0\n'
        'intent:\n  allowed: ["teach *"]\nlens: Teach patiently.\n',
        encoding="utf-8",
    )
    masque, _ = resolve_file(child)
    assert masque.intent.allowed == ("read *", "teach *")  # lists merge
    assert masque.lens == "Teach patiently." and masque.ring is Ring.GUEST  # scalars override
    assert masque.knowledge == ("mcp://library/catalog",) and masque.name == "teacher"


def test_a_mask_can_extend_a_masque_yaml_parent(tmp_path: Path) -> None:
    (tmp_path / "scholar.masque.yaml").write_text(
        'name: scholar\nindex: 90\nversion: "1.0.0"\nring: admin\nintent:\n  allowed: ["read *"]\nlens: Read.\n',
        encoding="utf-8",
    )
    doc = minimal(extends="scholar@1.0.0")
    del doc["prompt"]["persona"]
    diags, masque = check(write(tmp_path / "tester.mask.json", doc))
    assert masque is not None, diags
    assert masque.lens == "Read." and masque.ring is Ring.ADMIN and "mask-masque-defaults" in codes(diags)


def test_masque_assume_works_on_a_mask_json(masks: Path, invoke: Invoke) -> None:
    assert invoke(["init", "--founder", "root", "--json"]).exit_code == 0
    result = invoke(["assume", "mask.professor@1.3.0", "--intent", "critique my chapter", "--format", "json"])
    assert result.exit_code == 0, result.output
    session = json.loads(result.stdout)
    assert session["masque"] == "mask.professor" and session["version"] == "1.3.0"
    assert "Cite textual evidence" in session["system_prompt"]  # the inherited lens is what is worn
    denied = invoke(["assume", "mask.professor@1.3.0", "--intent", "rewrite chapter one for the author"])
    assert denied.exit_code == 3


def test_every_schema_property_is_described(invoke: Invoke) -> None:
    from masque.masques.schema import load_schema

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for name, sub in (node.get("properties") or {}).items():
                assert isinstance(sub, dict) and sub.get("description"), f"{where}.{name} has no description"
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    schema = load_schema("mask")
    assert schema["$schema"].endswith("2020-12/schema")
    walk(schema, "$")
    printed = invoke(["schema", "--which", "mask", "--format", "json"])
    assert printed.exit_code == 0 and json.loads(printed.stdout)["title"] == "MythaTron mask"


def test_mask_validate_follows_masque_yaml_chains(tmp_path: Path, mt: Invoke) -> None:
    child = tmp_path / "teacher.masque.yaml"
    child.write_text(
        'name: teacher\nindex: 91\nversion: "1.0.0"\nring: guest\nextends: base/scholar@1.0.0\n'
        'intent:\n  allowed: ["teach *"]\nlens: Teach patiently.\n',
        encoding="utf-8",
    )
    result = mt(["mask", "validate", child, "--no-tests"])
    assert result.exit_code == 1
    assert f"{child}:5:1: error[extends-missing] $.extends: parent base/scholar@1.0.0 not found" in result.stdout

"""`mythatron mask new / validate / test`: scaffold safety, the test runner, threshold, JSON and JUnit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masque.errors import UsageError

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "masks"
Invoke = Callable[..., Any]


def with_tests(path: Path, tests: list[dict[str, Any]]) -> Path:
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["tests"] = tests
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


# --- mask new ---------------------------------------------------------------------------------------


def test_new_then_validate_passes_from_a_clean_dir_as_real_processes(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    cwd = Path.cwd()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "masque.mythatron", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=120,
        )

    made = run("mask", "new", "poet")
    assert made.returncode == 0, made.stderr
    checked = run("mask", "validate", "poet.mask.json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 valid" in checked.stdout and "2/2 runs passed" in checked.stdout
    assert "offline provider" in checked.stderr  # it says clearly that answers were offline


def test_new_writes_a_complete_persona(mt: Invoke) -> None:
    result = mt(["mask", "new", "story-critic", "--domain", "story", "--tone", "candid", "--tone", "warm"])
    assert result.exit_code == 0, result.output
    doc = json.loads(Path("story-critic.mask.json").read_text(encoding="utf-8"))
    assert doc["id"] == "mask.story-critic" and doc["tone"] == ["candid", "warm"] and doc["domain"] == ["story"]
    assert doc["prompt"]["persona"] and len(doc["prompt"]["examples"]) == 2 and len(doc["tests"]) == 2
    assert doc["stage"] == "draft" and doc["changelog"][0]["version"] == doc["version"]


def test_new_yaml_format_writes_a_valid_masque(mt: Invoke, invoke: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert mt(["mask", "new", "poet", "--format", "yaml", "--dir", out]).exit_code == 0
    assert (out / "poet.masque.yaml").is_file()
    assert invoke(["validate", out / "poet.masque.yaml"]).exit_code == 0
    assert mt(["mask", "test", out / "poet.masque.yaml"]).exit_code == 0  # its starter tests pass offline


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "a/b", "..", "Poet", "", "-x", "a" * 64, "poet.json"])
def test_new_refuses_unsafe_names(mt: Invoke, name: str, tmp_path: Path) -> None:
    result = mt(["mask", "new", "--", name])
    assert result.exit_code == 2
    assert "not a safe mask name" in result.stderr
    assert not list((tmp_path / "work").iterdir()) and not (tmp_path / "evil.mask.json").exists()


@pytest.mark.parametrize("name", ["poet\n", "poet\r\n", "po et", "poet\t", "poet\x00"])
def test_new_refuses_whitespace_and_control_characters(mt: Invoke, name: str, tmp_path: Path) -> None:
    result = mt(["mask", "new", "--", name])
    assert result.exit_code == 2
    assert f"{name!r} is not a safe mask name: it contains whitespace or a control character" in result.stderr
    assert not list((tmp_path / "work").iterdir())


def test_new_never_overwrites_without_force(mt: Invoke) -> None:
    target = Path("poet.mask.json")
    target.write_text("my own work", encoding="utf-8")
    result = mt(["mask", "new", "poet"])
    assert result.exit_code == 2 and "already exists" in result.stderr and "--force" in result.stderr
    assert target.read_text(encoding="utf-8") == "my own work"
    assert mt(["mask", "new", "poet", "--force"]).exit_code == 0
    assert json.loads(target.read_text(encoding="utf-8"))["id"] == "mask.poet"
    assert [p.name for p in Path.cwd().iterdir()] == ["poet.mask.json"]  # no temp file left behind


def test_force_replaces_a_symlink_instead_of_writing_through_it(mt: Invoke, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep", encoding="utf-8")
    Path("poet.mask.json").symlink_to(outside)
    assert mt(["mask", "new", "poet"]).exit_code == 2
    assert mt(["mask", "new", "poet", "--force"]).exit_code == 0
    assert outside.read_text(encoding="utf-8") == "keep" and not Path("poet.mask.json").is_symlink()


def test_new_into_a_missing_dir_is_a_usage_error(mt: Invoke) -> None:
    result = mt(["mask", "new", "poet", "--dir", "nowhere"])
    assert result.exit_code == 2 and "nowhere" in result.stderr


# --- mask test ----------------------------------------------------------------------------------------


def test_the_example_suites_pass_offline(mt: Invoke) -> None:
    result = mt(["mask", "test", EXAMPLES, "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["provider"] == "offline" and report["ok"] and report["failed"] == 0
    assert report["total"] == 17 and report["masks"] == 10
    first = report["runs"][0]
    assert {"mask", "test", "run", "passed", "output", "assertions"} <= set(first)
    assert all(a["reason"] for r in report["runs"] for a in r["assertions"])


def test_a_failing_assertion_fails_the_suite_with_its_reason(mt: Invoke) -> None:
    mt(["mask", "new", "poet"])
    path = with_tests(
        Path("poet.mask.json"),
        [
            {
                "name": "passes",
                "input": "Give me one idea for the next step.",
                "assertions": [{"contains": "Suggestion"}],
            },
            {
                "name": "fails",
                "input": "Give me one idea for the next step.",
                "assertions": [{"contains": "sonnet"}, {"notStartsWith": "###"}],
            },
        ],
    )
    result = mt(["mask", "test", path])
    assert result.exit_code == 1
    assert "FAIL mask.poet@0.1.0 :: fails" in result.stdout
    assert "contains 'sonnet': output does not contain 'sonnet'" in result.stdout
    assert "notStartsWith '###': negated: output starts with '###'" in result.stdout
    assert "1/2 runs passed (50%)" in result.stdout
    assert mt(["mask", "test", path, "--threshold", "0.5"]).exit_code == 0  # meets the threshold
    assert mt(["mask", "test", path, "--threshold", "0.51"]).exit_code == 1
    assert mt(["mask", "validate", path]).exit_code == 1  # validate runs the suite too
    assert mt(["mask", "validate", path, "--no-tests"]).exit_code == 0


def test_repeat_runs_each_test_n_times(mt: Invoke) -> None:
    mt(["mask", "new", "poet"])
    report = json.loads(mt(["mask", "test", "poet.mask.json", "--repeat", "3", "--format", "json"]).stdout)
    assert report["total"] == 6 and [r["run"] for r in report["runs"]] == [1, 2, 3, 1, 2, 3]


def test_junit_xml_lists_every_run_and_failure(mt: Invoke, tmp_path: Path) -> None:
    mt(["mask", "new", "poet"])
    with_tests(
        Path("poet.mask.json"),
        [
            {"name": "ok", "input": "x", "assertions": [{"maxLength": 5000}]},
            {"name": "bad", "input": "x", "assertions": [{"isJson": True}]},
        ],
    )
    report = tmp_path / "junit.xml"
    result = mt(["mask", "test", "poet.mask.json", "--format", "junit", "--output", report])
    assert result.exit_code == 1
    root = ET.fromstring(report.read_text(encoding="utf-8"))
    assert root.tag == "testsuites" and root.get("tests") == "2" and root.get("failures") == "1"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "mask.poet@0.1.0" and suite.get("failures") == "1"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["ok"].find("failure") is None
    failure = cases["bad"].find("failure")
    assert failure is not None and "isJson" in str(failure.get("message"))
    assert ET.fromstring(result.stdout).tag == "testsuites"  # also on stdout


def test_a_mask_with_a_broken_regex_fails_validation_with_its_line(mt: Invoke) -> None:
    mt(["mask", "new", "poet"])
    with_tests(Path("poet.mask.json"), [{"name": "r", "input": "x", "assertions": [{"regex": "(oops"}]}])
    result = mt(["mask", "validate", "poet.mask.json"])
    assert result.exit_code == 1 and "error[assertion-regex]" in result.stdout
    assert "poet.mask.json:" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--threshold", "1.5"],
        ["--repeat", "0"],
        ["--provider", "psychic"],
        ["--provider", "openai"],  # no service configured
        ["--format", "xml"],
    ],
)
def test_usage_errors_exit_2(mt: Invoke, args: list[str]) -> None:
    mt(["mask", "new", "poet"])
    assert mt(["mask", "test", "poet.mask.json", *args]).exit_code == 2


def test_validate_json_carries_the_test_results(mt: Invoke) -> None:
    mt(["mask", "new", "poet"])
    result = mt(["mask", "validate", "poet.mask.json", "--format", "json"])
    payload = json.loads(result.stdout)
    assert payload["summary"]["valid"] == 1 and payload["tests"]["passed"] == 2


def test_validate_github_format_annotates_failing_tests(mt: Invoke) -> None:
    mt(["mask", "new", "poet"])
    with_tests(Path("poet.mask.json"), [{"name": "bad", "input": "x", "assertions": [{"isJson": True}]}])
    result = mt(["mask", "validate", "poet.mask.json", "--format", "github"])
    assert result.exit_code == 1
    assert "::error file=poet.mask.json,title=mythatron test::mask.poet@0.1.0 :: bad" in result.stdout


def test_mythatron_help_and_version(mt: Invoke) -> None:
    assert "mask" in mt(["--help"]).stdout and "route" in mt(["--help"]).stdout
    assert mt(["--version"]).stdout.startswith("mythatron")


@settings(max_examples=300, deadline=None)
@given(name=st.text(max_size=20))
def test_an_accepted_name_never_escapes_the_target_dir(name: str) -> None:
    from masque.mythatron.scaffold import check_slug

    try:
        check_slug(name)
    except UsageError:
        return
    base = Path("/srv/masks")
    target = (base / f"{name}.mask.json").resolve()
    assert target.parent == base and not Path(name).is_absolute() and ".." not in name


SEED_PROFESSOR = REPO / "tests" / "cases" / "seed" / "professor.mask.json"  # seed 000's own example, verbatim


def test_the_seeds_professor_validates_with_a_changelog_warning(mt: Invoke, invoke: Invoke) -> None:
    for result in (invoke(["validate", SEED_PROFESSOR]), mt(["mask", "validate", "--no-tests", SEED_PROFESSOR])):
        assert result.exit_code == 0, result.stdout
        assert f"{SEED_PROFESSOR}:3:3: warning[changelog-missing] $.version: version 1.3.0" in result.stdout
    for result in (
        invoke(["validate", "--strict", SEED_PROFESSOR]),
        mt(["mask", "validate", "--strict", "--no-tests", SEED_PROFESSOR]),
    ):
        assert result.exit_code == 1
        assert f"{SEED_PROFESSOR}:3:3: error[changelog-missing]" in result.stdout

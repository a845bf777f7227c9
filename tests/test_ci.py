"""CI is reproducible: every dependency is pinned in constraints.txt, and .ci/run installs with it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the project depends on tomli there
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent


def _named() -> list[Requirement]:
    """The runtime dependencies and the test extra's, with `masque[mcp,...]` expanded to those extras."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    found: list[Requirement] = []
    todo, seen = [*project["dependencies"], *extras["test"]], set()
    while todo:
        req = Requirement(todo.pop(0))
        if canonicalize_name(req.name) == "masque":
            todo += [r for extra in sorted(req.extras - seen) for r in extras[extra]]
            seen |= req.extras
        else:
            found.append(req)
    return found


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        (spec,) = req.specifier  # exactly one specifier ...
        assert spec.operator == "==" and not req.marker, f"not an exact pin: {line}"  # ... and an exact one
        pins[canonicalize_name(req.name)] = spec.version
    return pins


def test_every_dependency_in_pyproject_is_pinned_in_constraints() -> None:
    pins = _pins()
    wanted = [r for r in _named() if r.marker is None or r.marker.evaluate()]
    missing = [r.name for r in wanted if canonicalize_name(r.name) not in pins]
    assert missing == [], "not in constraints.txt; regenerate it with .ci/constraints"
    outside = [
        f"{r} (pinned {pins[canonicalize_name(r.name)]})"
        for r in wanted
        if not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)
    ]
    assert outside == [], "pins outside pyproject.toml's ranges; regenerate with .ci/constraints"
    assert "masque" not in pins  # CI installs the checkout, never a pinned release of itself


def test_ci_installs_every_package_through_the_constraints() -> None:
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    installs = re.findall(r"^.*pip install .*$", script, re.M)
    assert len(installs) == 2  # the README's two quick-start commands
    assert all("-c constraints.txt" in line for line in installs), installs


def _slow_tests() -> tuple[set[str], set[str]]:
    """(every test, the tests marked slow), as "file::function", read from the test sources."""
    import ast

    every: set[str] = set()
    slow: set[str] = set()
    for path in sorted((REPO / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module_slow = any(
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
            and "slow" in ast.unparse(node.value)
            for node in tree.body
        )
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                name = f"{path.name}::{node.name}"
                every.add(name)
                if module_slow or any(ast.unparse(d) == "pytest.mark.slow" for d in node.decorator_list):
                    slow.add(name)
    return every, slow


def test_the_quick_loop_skips_real_process_races_kills_and_signals() -> None:
    every, slow = _slow_tests()
    must_be_slow = {t for t in every if t.startswith("test_concurrency.py::")}
    must_be_slow |= {
        "test_memory_reliability.py::test_four_concurrent_writers_lose_nothing",
        "test_memory_reliability.py::test_kill_9_during_import_leaves_whole_batches",
        "test_docs.py::test_the_tour_runs_as_written",
        "test_examples.py::test_agent_session_example_runs",
        "test_cli_root.py::test_a_closed_pipe_is_quiet",
        "test_sessions_exec.py::test_exec_forwards_signals_to_the_command",
        "test_sessions_exec.py::test_graceful_revoke_signals_the_exec_command_and_waits_for_it",
    }
    assert must_be_slow - slow == set()
    assert len(slow) < len(every) / 10  # the quick loop still runs nearly everything
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert 'python -m pytest -m "not slow"' in readme.replace("\n", " ")

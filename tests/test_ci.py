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
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["test"]]]


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

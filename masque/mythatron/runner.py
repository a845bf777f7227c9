"""The mask test runner: each test's input goes to a provider with the mask worn, its assertions judge
the answer; results per test with reasons, a pass rate against a threshold, and JUnit XML for CI.

A run fails when any of its assertions fails, when an assertion is malformed, or when the provider
errors (the error is the reason; one broken call does not stop the suite). `repeat` runs every test N
times (useful with a sampling LLM); the pass rate is passed runs / all runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from masque.errors import MasqueError, UsageError
from masque.model import Masque
from masque.mythatron import assertions
from masque.mythatron.providers import Provider, build_request


@dataclass(frozen=True)
class TestRun:
    mask: str
    path: str
    test: str
    run: int  # 1-based repetition number
    passed: bool
    output: str
    results: tuple[assertions.AssertionResult, ...]
    error: str | None
    seconds: float

    def reasons(self) -> list[str]:
        """Why it failed: the provider error or each failing assertion with its reason."""
        if self.error:
            return [self.error]
        return [f"{r.assertion.label()}: {r.reason}" for r in self.results if not r.passed]


@dataclass(frozen=True)
class SuiteResult:
    runs: tuple[TestRun, ...]
    threshold: float
    provider: str
    masks: int

    @property
    def total(self) -> int:
        return len(self.runs)

    @property
    def passed(self) -> int:
        return sum(1 for r in self.runs if r.passed)

    @property
    def pass_rate(self) -> float:
        # An empty suite has nothing failing; the CLI says there were no tests.
        return self.passed / self.total if self.total else 1.0

    @property
    def ok(self) -> bool:
        return self.pass_rate + 1e-12 >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "masks": self.masks,
            "total": self.total,
            "passed": self.passed,
            "failed": self.total - self.passed,
            "pass_rate": round(self.pass_rate, 6),
            "threshold": self.threshold,
            "ok": self.ok,
            "runs": [
                {
                    "mask": r.mask,
                    "path": r.path,
                    "test": r.test,
                    "run": r.run,
                    "passed": r.passed,
                    "output": r.output,
                    "error": r.error,
                    "seconds": round(r.seconds, 6),
                    "assertions": [
                        {"assertion": a.assertion.label(), "passed": a.passed, "reason": a.reason} for a in r.results
                    ],
                }
                for r in self.runs
            ],
        }


def check_threshold(threshold: float) -> float:
    if not 0.0 <= threshold <= 1.0:
        raise UsageError(f"--threshold {threshold:g} is outside 0..1; e.g. 0.9 means 90% of runs must pass")
    return threshold


def run_test(masque: Masque, path: str, test: Any, run: int, provider: Provider, model: str | None) -> TestRun:
    start = time.perf_counter()
    name = str(test.get("name"))
    try:
        parsed = [assertions.parse(a) for a in test.get("assertions") or ()]
        completion = provider.complete(build_request(masque, str(test.get("input", "")), model))
    except MasqueError as exc:
        return TestRun(masque.ref, path, name, run, False, "", (), str(exc), time.perf_counter() - start)
    try:
        results = tuple(assertions.evaluate(a, completion.text) for a in parsed)
    except UsageError as exc:  # a regex that does not compile
        return TestRun(masque.ref, path, name, run, False, completion.text, (), str(exc), time.perf_counter() - start)
    passed = all(r.passed for r in results)
    return TestRun(masque.ref, path, name, run, passed, completion.text, results, None, time.perf_counter() - start)


def run_suite(
    masques: Sequence[tuple[Masque, Path | str]],
    provider: Provider,
    *,
    model: str | None = None,
    repeat: int = 1,
    threshold: float = 1.0,
) -> SuiteResult:
    """Run every test of every masque `repeat` times."""
    if repeat < 1:
        raise UsageError(f"--repeat {repeat} must be at least 1")
    check_threshold(threshold)
    runs = [
        run_test(masque, str(path), test, n, provider, model)
        for masque, path in masques
        for test in masque.tests
        for n in range(1, repeat + 1)
    ]
    return SuiteResult(tuple(runs), threshold, provider.name, len(masques))


def to_junit(result: SuiteResult) -> str:
    """JUnit XML: one <testsuite> per mask, one <testcase> per run, <failure> with the reasons."""
    import xml.etree.ElementTree as ET

    root = ET.Element(
        "testsuites",
        name="mythatron",
        tests=str(result.total),
        failures=str(result.total - result.passed),
        errors="0",
        time=f"{sum(r.seconds for r in result.runs):.6f}",
    )
    suites: dict[str, ET.Element] = {}
    for run in result.runs:
        suite = suites.get(run.mask)
        if suite is None:
            suite = ET.SubElement(root, "testsuite", name=run.mask, file=run.path, tests="0", failures="0")
            suites[run.mask] = suite
        suite.set("tests", str(int(suite.get("tests", "0")) + 1))
        label = run.test if run.run == 1 else f"{run.test} [run {run.run}]"
        case = ET.SubElement(suite, "testcase", classname=run.mask, name=label, time=f"{run.seconds:.6f}")
        if not run.passed:
            suite.set("failures", str(int(suite.get("failures", "0")) + 1))
            reasons = run.reasons()
            failure = ET.SubElement(case, "failure", message=reasons[0] if reasons else "failed", type="assertion")
            failure.text = "\n".join(reasons) + f"\n--- output ---\n{run.output}"
        out = ET.SubElement(case, "system-out")
        out.text = run.output
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

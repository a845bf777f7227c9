"""Every benchmark in bench/ still runs: each at its smallest size must exit 0, so the benches cannot rot.

The numbers are not checked (a shared CI machine cannot time anything); the benches check their own
contenders agree before timing, so a run that exits 0 also says the comparison is still apples to apples.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

SMALLEST = {
    "intent": ["--seconds", "0.01", "--intents", "50"],
    "validate": ["--files", "12", "--runs", "1"],
    "assume": ["--runs", "1", "--cycles", "2", "--against", str(REPO)],
    "stats": ["--sessions", "300", "--runs", "1"],
    "turns": ["--runs", "1"],
    "forget": ["--rows", "200", "--repeat", "1"],
    "memory": ["--n", "300", "--queries", "3"],
    "startup": ["--runs", "1"],
    "partitioned": ["--sessions", "2000", "--files", "8", "--runs", "1"],
    "memory_s3": ["--rows", "30", "--repeat", "2"],
    "serve": ["--seconds", "1", "--rate", "4", "--cli", "1", "--quiet", "1"],
}


def test_every_bench_has_a_smoke_run() -> None:
    assert sorted(p.stem for p in (REPO / "bench").glob("*.py") if not p.stem.startswith("_")) == sorted(
        [*SMALLEST, "stats_data"]
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMALLEST))
def test_bench_runs_at_its_smallest_size(name: str, tmp_path: Path) -> None:
    if name == "validate" and shutil.which("check-jsonschema") is None:
        pytest.skip("check-jsonschema is not installed (pip install -e '.[bench]')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / f"{name}.py"), *SMALLEST[name]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"bench/{name}.py failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip(), f"bench/{name}.py printed nothing"

"""Start-up of the agent hot path: wall time of short `masque` processes, best of N.

    python bench/startup.py [--runs 10] [--json]

Each command runs as its own `python -m masque` process (bytecode cached: the first run is dropped)
in a temporary MASQUE_HOME with the shipped personas; the best run counts, so load from other
processes on a shared machine skews it least. Target from issue 11: `masque --help` <= 150 ms.
Also printed: whether pydantic (Typer's coercion) or typer.rich_utils (Rich help) was imported,
from one `-X importtime` run of each command: both should be "no".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELP_TARGET_S = 0.150
COMMANDS = [
    ["--help"],
    ["--version"],
    ["check", "codesmith", "--intent", "implement the parser"],
    ["assume", "codesmith", "--intent", "implement the parser", "--format", "json"],
    ["whoami"],
]


def _env(home: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, MASQUE_HOME=home, MASQUE_PATH=str(ROOT / "personas"))


def measure(args: list[str], runs: int, env: dict[str, str]) -> dict[str, object]:
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "masque", *args], capture_output=True, env=env, cwd=ROOT)
        times.append(time.perf_counter() - start)
    probe = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "masque", *args], capture_output=True, text=True, env=env, cwd=ROOT
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in probe.stderr.splitlines() if "|" in line}
    return {
        "command": " ".join(args),
        "best_s": min(times[1:]),
        "exit_code": proc.returncode,
        "pydantic": "pydantic" in imported,
        "rich_utils": "typer.rich_utils" in imported,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = _env(home)
        results = [measure(args, opts.runs, env) for args in COMMANDS]
    if opts.json:
        print(json.dumps(results, indent=2))
        return
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"start-up, best of {opts.runs} runs (load {load:.2f}; python {sys.version.split()[0]})")
    for r in results:
        print(
            f"  masque {r['command'][:48]:50} {float(r['best_s']) * 1000:7.1f} ms  exit {r['exit_code']}  "  # type: ignore[arg-type]
            f"pydantic {'yes' if r['pydantic'] else 'no '}  rich help {'yes' if r['rich_utils'] else 'no'}"
        )
    best = float(results[0]["best_s"])  # type: ignore[arg-type]
    verdict = "ok" if best <= HELP_TARGET_S else "MISSED"
    print(f"  --help target <= {HELP_TARGET_S * 1000:.0f} ms: ratio {HELP_TARGET_S / best:.2f} {verdict}")


if __name__ == "__main__":
    main()

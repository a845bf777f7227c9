"""Benchmark: `masque validate` vs `check-jsonschema` on the same generated files, in one run.

    python bench/validate.py [--files 2000] [--runs 5]

Both run as whole processes (interpreter start included, after one untimed warm-up run, with bytecode
caches as installed software has them); medians of --runs. check-jsonschema gets the same
schema file; it reports no line numbers, masque does. Prints seconds and the ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = (REPO / "personas" / "codesmith.masque.yaml").read_text(encoding="utf-8")


def make_files(directory: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        name = f"bench-{i:05d}"
        text = TEMPLATE.replace("name: Codesmith", f"name: {name}").replace("index: 1\n", f"index: {i + 1}\n")
        path = directory / f"{name}.masque.yaml"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


# Both tools run as installed software does: with bytecode caches (pip writes them for installed
# packages; an editable checkout gets them on the warm-up run) and a warm file cache.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str], runs: int) -> float:
    subprocess.run(cmd, capture_output=True, env=ENV)  # warm-up, untimed
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            sys.exit(
                f"command failed ({proc.returncode}): {' '.join(cmd[:4])} ...\n"
                f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cjs = shutil.which("check-jsonschema")
    if cjs is None:
        sys.exit("check-jsonschema is not installed: pip install -e '.[bench]'")
    masque = [sys.executable, "-m", "masque", "validate"]
    schema = str(REPO / "schemas" / "masque.schema.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_files(Path(tmp), args.files)
        single = [str(paths[0])]
        rows = []
        for label, ours, peer in (
            (f"{args.files} files", [*masque, tmp], [cjs, "--schemafile", schema, *map(str, paths)]),
            ("1 file", [*masque, *single], [cjs, "--schemafile", schema, *single]),
        ):
            t_ours = timed(ours, args.runs)
            t_peer = timed(peer, args.runs)
            rows.append((label, t_ours, t_peer))
    print(f"{'case':<14}{'masque validate':>18}{'check-jsonschema':>20}{'ratio':>10}")
    for label, t_ours, t_peer in rows:
        print(f"{label:<14}{t_ours:>17.3f}s{t_peer:>19.3f}s{t_peer / t_ours:>9.1f}x")


if __name__ == "__main__":
    main()

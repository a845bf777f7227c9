"""Benchmark: `masque validate` vs `check-jsonschema` on the same generated files, in one run.

    python bench/validate.py [--files 2000] [--invalid-every 10] [--runs 5]

Both run as whole processes (interpreter start included, after one untimed warm-up run, with bytecode
caches as installed software has them); medians of --runs. check-jsonschema gets the same schema file
and the same paths; it reports no line numbers, masque does (and also checks semantic rules).

The input mixes valid and invalid files: every --invalid-every'th file is broken, in turn, by an enum
violation (ring), a pattern violation (version), a nested enum violation (skill level) and a YAML
syntax error. Before timing, both tools' JSON reports are read to check that they fail the very same
files. Both then exit 1 (files with errors), which the bench expects.

Two costs per command: wall time, and CPU time (user + sys of the process and of every child it
waited for: `masque validate` forks workers for big inputs, so wall alone would hide the work done
in parallel). Ratios are check-jsonschema / masque: above 1, masque is faster (or cheaper).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = (REPO / "personas" / "codesmith.masque.yaml").read_text(encoding="utf-8")
BREAKS = (
    lambda t: t.replace("\nring: player\n", "\nring: wizard\n"),
    lambda t: t.replace('\nversion: "0.1.0"\n', '\nversion: "zero"\n'),
    lambda t: t.replace("level: competent", "level: guru", 1),
    lambda t: t + "lens: [unclosed\n",
)


def make_files(directory: Path, count: int, invalid_every: int) -> tuple[list[Path], set[str]]:
    """`count` masque files; every `invalid_every`'th one broken (0: none). Returns paths and the broken."""
    paths, broken = [], set()
    for i in range(count):
        name = f"bench-{i:05d}"
        text = TEMPLATE.replace("name: Codesmith", f"name: {name}").replace("index: 1\n", f"index: {i + 1}\n")
        if invalid_every and i % invalid_every == invalid_every - 1:
            changed = BREAKS[(i // invalid_every) % len(BREAKS)](text)
            assert changed != text, "the template changed: update BREAKS"
            text = changed
            broken.add(name)
        path = directory / f"{name}.masque.yaml"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths, broken


# Both tools run as installed software does: with bytecode caches (pip writes them for installed
# packages; an editable checkout gets them on the warm-up run) and a warm file cache.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], runs: int, expect: int) -> tuple[float, float]:
    """Median (wall seconds, CPU seconds) of `runs` runs after one untimed warm-up."""
    subprocess.run(cmd, capture_output=True, env=ENV)  # warm-up, untimed
    walls, cpus = [], []
    for _ in range(runs):
        cpu = _children_cpu()
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
        walls.append(time.perf_counter() - start)
        cpus.append(_children_cpu() - cpu)
        if proc.returncode != expect:
            sys.exit(
                f"command exited {proc.returncode}, expected {expect}: {' '.join(cmd[:4])} ...\n"
                f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )
    return statistics.median(walls), statistics.median(cpus)


def _stem(path: str) -> str:
    return Path(path).name.removesuffix(".masque.yaml")


def failed_files(masque: list[str], cjs: list[str]) -> tuple[set[str], set[str]]:
    """The files each tool fails, from its JSON report."""
    ours = subprocess.run([*masque, "--format", "json"], capture_output=True, text=True, env=ENV)
    peer = subprocess.run([*cjs, "-o", "json"], capture_output=True, text=True, env=ENV)
    mine = {_stem(f["path"]) for f in json.loads(ours.stdout)["files"] if not f["valid"]}
    report = json.loads(peer.stdout)
    theirs = {_stem(e["filename"]) for e in (*report.get("errors", []), *report.get("parse_errors", []))}
    return mine, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--invalid-every", type=int, default=10, help="break every Nth file (0: all valid)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cjs = shutil.which("check-jsonschema")
    if cjs is None:
        sys.exit("check-jsonschema is not installed: pip install -e '.[bench]'")
    masque = [sys.executable, "-m", "masque", "validate"]
    peer = [cjs, "--schemafile", str(REPO / "schemas" / "masque.schema.yaml")]
    with tempfile.TemporaryDirectory() as tmp:
        paths, broken = make_files(Path(tmp), args.files, args.invalid_every)
        mine, theirs = failed_files([*masque, tmp], [*peer, *map(str, paths)])
        if not mine == theirs == broken:
            sys.exit(
                f"the tools disagree on which files fail: broken {len(broken)}, masque failed {len(mine)}, "
                f"check-jsonschema failed {len(theirs)}; e.g. {sorted(mine ^ theirs or mine ^ broken)[:5]}"
            )
        single = [str(paths[0])]
        rows = []
        for label, ours, theirs_cmd, expect in (
            (f"{args.files} files", [*masque, tmp], [*peer, *map(str, paths)], 1 if broken else 0),
            ("1 file", [*masque, *single], [*peer, *single], 0),
        ):
            t_ours = timed(ours, args.runs, expect)
            t_peer = timed(theirs_cmd, args.runs, expect)
            rows.append((label, t_ours, t_peer))
    print(
        f"input: {args.files} files, {len(broken)} invalid (both tools fail exactly those); "
        f"median of {args.runs}; cpu = user+sys incl. children; ratio = check-jsonschema / masque"
    )
    print(
        f"{'case':<12}{'masque wall':>12}{'cpu':>8}{'check-jsonschema wall':>23}{'cpu':>8}"
        f"{'wall ratio':>12}{'cpu ratio':>11}"
    )
    for label, (w_ours, c_ours), (w_peer, c_peer) in rows:
        print(
            f"{label:<12}{w_ours:>11.3f}s{c_ours:>7.3f}s{w_peer:>22.3f}s{c_peer:>7.3f}s"
            f"{w_peer / w_ours:>11.1f}x{c_peer / c_ours:>10.1f}x"
        )


if __name__ == "__main__":
    main()

"""What erasing costs: `masque memory forget` of one memory in a shard of N rows (temporary MASQUE_HOME).

    python bench/forget.py [--rows 10000] [--repeat 5] [--index]

Fills one shard with N memories (hashing embedder), then forgets one memory at a time, `--repeat`
times, in-process (`memory.forget`) and as a cold `masque memory forget` process; prints the median
of each, the shard's versions and size on disk after. `--index` builds the vector index first (a
shard past `index_threshold`), which forget then rebuilds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--index", action="store_true", help="build the vector index before forgetting")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["MASQUE_HOME"] = home
        os.environ["MASQUE_PATH"] = str(REPO / "personas")
        from masque import memory
        from masque.memory import shards

        ids = list(
            memory.add([f"note {i} about module {i % 97} and the parser" for i in range(args.rows)], "codesmith").ids
        )
        if args.index:
            memory.index("codesmith")
        in_process = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            memory.forget("codesmith", memory.Filters(ids=(ids.pop(),)))
            in_process.append(time.perf_counter() - start)
        cold = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "masque", "memory", "forget", "codesmith", ids.pop()],
                check=True,
                capture_output=True,
            )
            cold.append(time.perf_counter() - start)
        shard = shards.open_shard("codesmith")
        assert shard is not None
        print(f"rows {args.rows}, vector index {'yes' if args.index else 'no'}")
        print(f"memory.forget of one id, in-process: p50 {statistics.median(in_process) * 1000:.0f} ms")
        print(f"cold `masque memory forget` process:  p50 {statistics.median(cold) * 1000:.0f} ms")
        print(
            f"versions kept: {len(shard.table.list_versions())}, size on disk {shards.size_on_disk(shard) / 1e6:.1f} MB"
        )


if __name__ == "__main__":
    main()

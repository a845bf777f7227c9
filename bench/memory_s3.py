"""Memory on object storage against local disk: `memory.find()` and `memory.forget()` on one shard.

    python bench/memory_s3.py [--rows 300] [--repeat 20]

Runs the same work twice in one process, each with its own temporary MASQUE_HOME: first with the
shard on local disk, then on `s3://bench/m` served by moto's server (`pip install 'moto[server]'`)
on a free 127.0.0.1 port. Prints the median of `--repeat` searches and of 3 single-id forgets.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _measure(label: str, rows: int, repeat: int) -> None:
    from masque import memory

    os.environ["MASQUE_HOME"] = tempfile.mkdtemp()
    ids = memory.add([f"note {i} about the parser and line numbers {i % 17}" for i in range(rows)], "codesmith").ids
    memory.find("parser line numbers", "codesmith", k=5)
    finds = []
    for _ in range(repeat):
        start = time.perf_counter()
        memory.find("parser line numbers", "codesmith", k=5)
        finds.append(time.perf_counter() - start)
    forgets = []
    for mid in ids[:3]:
        start = time.perf_counter()
        memory.forget("codesmith", memory.Filters(ids=(mid,)))
        forgets.append(time.perf_counter() - start)
    print(
        f"{label:28} find p50 {statistics.median(finds) * 1000:7.1f} ms   "
        f"forget p50 {statistics.median(forgets) * 1000:7.1f} ms   ({rows} rows)"
    )


def _moto() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(endpoint + "/", timeout=5).close()
            break
        except (urllib.error.URLError, OSError):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("moto's server did not start: pip install 'moto[server]'") from None
            time.sleep(0.05)
    urllib.request.urlopen(urllib.request.Request(endpoint + "/bench", method="PUT"), timeout=30).close()
    return proc, endpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    os.environ["MASQUE_PATH"] = str(REPO / "personas")
    os.environ.pop("MASQUE_CONFIG", None)
    os.chdir(tempfile.mkdtemp())
    _measure("local disk", args.rows, args.repeat)
    proc, endpoint = _moto()
    try:
        config = Path(tempfile.mkdtemp()) / "masque.toml"
        config.write_text(
            f'[memory]\nuri = "s3://bench/m"\n\n[memory.s3]\nendpoint = "{endpoint}"\nallow_http = true\n',
            encoding="utf-8",
        )
        os.environ.update(MASQUE_CONFIG=str(config), AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
        _measure("s3 (moto on 127.0.0.1)", args.rows, args.repeat)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()

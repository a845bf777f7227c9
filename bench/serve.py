"""Benchmark: `masque serve` under load beside busy CLI processes, against cold CLI invocations.

    python bench/serve.py [--seconds 30] [--rate 50] [--cli 4]

Runs against a throw-away store (a temp MASQUE_HOME, `masque init` once) and the shipped personas.
Starts `python -m masque serve` on a free 127.0.0.1 port, then for --seconds at once:

- --cli processes loop `masque assume` -> `masque check` -> `masque sessions --json` -> `masque release`
  (each a cold process; each one timed), and
- an open-loop client sends --rate requests per second to the server, cycling through the same
  operations: POST /masks/activate, POST /check, GET /sessions, POST /masks/deactivate.

It prints the failures of both (any non-zero exit or non-2xx answer; must be 0, else it exits 1), the
warm p50/p95 of each request, and the ratio of the cold CLI's p50 for the same operation, measured in
the same seconds under the same load, to the served p50. The server keeps the store between requests
only while no CLI process waits for it (the store lease), so the CLI loops never see a lock error.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx

REPO = Path(__file__).resolve().parent.parent
REF, INTENT = "codesmith", "implement the parser"
OPS = ("activate", "check", "sessions", "deactivate")
CLI_OF = {"activate": "assume", "check": "check", "sessions": "sessions", "deactivate": "release"}


class Tally:
    """Latencies per operation and failures, shared by the worker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.took: dict[str, list[float]] = defaultdict(list)
        self.failures: list[str] = []

    def add(self, op: str, seconds: float) -> None:
        with self.lock:
            self.took[op].append(seconds)

    def fail(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cli_cycle(masque: list[str], env: dict[str, str], tally: Tally) -> None:
    """One cold-process round of the four operations, each timed."""

    def run(op: str, *args: str) -> str | None:
        start = time.perf_counter()
        proc = subprocess.run([*masque, *args], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            tally.fail(f"cli {' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()[-300:]}")
            return None
        tally.add(op, time.perf_counter() - start)
        return proc.stdout

    out = run("activate", "assume", REF, "--intent", INTENT, "--format", "json")
    run("check", "check", REF, "--intent", INTENT)
    run("sessions", "sessions", "--json", "-n", "20")
    if out is not None:
        run("deactivate", "release", json.loads(out)["session_id"])


def cli_loop(masque: list[str], env: dict[str, str], stop: threading.Event, tally: Tally) -> None:
    while not stop.is_set():
        cli_cycle(masque, env, tally)


class Served:
    """The served side of one cycle: activate, check, sessions, deactivate, one request per call."""

    def __init__(self, client: httpx.Client, key: str, tally: Tally) -> None:
        self.client, self.key, self.tally = client, key, tally
        self.tokens: list[str] = []
        self.lock = threading.Lock()

    def request(self, op: str) -> None:
        auth = {"Authorization": f"Bearer {self.key}"}
        start = time.perf_counter()
        try:
            if op == "activate":
                r = self.client.post("/masks/activate", json={"masque": REF, "intent": INTENT}, headers=auth)
            elif op == "check":
                r = self.client.post("/check", json={"masque": REF, "intent": INTENT}, headers=auth)
            elif op == "sessions":
                r = self.client.get("/sessions", params={"limit": 20}, headers=auth)
            else:
                with self.lock:
                    token = self.tokens.pop() if self.tokens else None
                if token is None:
                    return  # its activate has not answered yet: nothing to end this round
                r = self.client.post("/masks/deactivate", json={}, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            self.tally.fail(f"serve {op}: {type(exc).__name__}: {exc}")
            return
        took = time.perf_counter() - start
        if r.status_code // 100 != 2:
            self.tally.fail(f"serve {op}: {r.status_code} {r.text[:300]}")
            return
        if op == "activate":
            with self.lock:
                self.tokens.append(r.json()["token"])
        self.tally.add(op, took)


def drive(served: Served, rate: float, seconds: float, in_flight: int) -> int:
    """Open loop: a request every 1/rate s, at most `in_flight` at once (past that the schedule slips
    instead of queueing without bound). Returns how many were sent."""
    sent = 0
    slots = threading.Semaphore(in_flight)

    def one(op: str) -> None:
        try:
            served.request(op)
        finally:
            slots.release()

    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        start = time.perf_counter()
        while (now := time.perf_counter() - start) < seconds:
            due = sent / rate
            if now < due:
                time.sleep(due - now)
                continue
            if not slots.acquire(timeout=max(0.0, seconds - now)):
                break
            pool.submit(one, OPS[sent % len(OPS)])
            sent += 1
    return sent


def wait_answering(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"masque serve exited early ({proc.returncode})")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    sys.exit(f"masque serve did not answer {url} within {timeout:g}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30, help="how long the load runs")
    parser.add_argument("--rate", type=float, default=50, help="requests per second to the server")
    parser.add_argument("--cli", type=int, default=4, help="CLI processes looping beside it")
    parser.add_argument("--in-flight", type=int, default=16, help="most requests outstanding at once")
    parser.add_argument("--quiet", type=int, default=10, help="then this many rounds one at a time, no load")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            MASQUE_HOME=str(Path(tmp) / "home"),
            MASQUE_PATH=str(REPO / "personas"),
            XDG_CONFIG_HOME=str(Path(tmp) / "xdg"),
        )
        for name in ("MASQUE_SESSION_ID", "MASQUE_TOKEN", "MASQUE_ACTOR", "MASQUE_ACTOR_KEY", "MASQUE_CONFIG"):
            env.pop(name, None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        masque = [sys.executable, "-m", "masque"]
        init = subprocess.run(
            [*masque, "init", "--founder", "bench", "--json"], env=env, check=True, capture_output=True
        )
        key = json.loads(init.stdout)["key"]
        port = _free_port()
        server = subprocess.Popen(
            [*masque, "serve", "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_answering(f"{base}/health", server)
            cli, served_tally = Tally(), Tally()
            with httpx.Client(base_url=base, timeout=60) as client:
                served = Served(client, key, served_tally)
                for op in (*OPS, *OPS):  # warm: imports, registry, the first store open; untimed
                    served.request(op)
                served_tally.took.clear()
                stop = threading.Event()
                loops = [
                    threading.Thread(target=cli_loop, args=(masque, env, stop, cli), daemon=True)
                    for _ in range(args.cli)
                ]
                for t in loops:
                    t.start()
                started = time.perf_counter()
                sent = drive(served, args.rate, args.seconds, args.in_flight)
                elapsed = time.perf_counter() - started
                stop.set()
                for t in loops:
                    t.join()
                # Quiet: one request (one process) at a time, nothing else running: warm vs cold as such.
                quiet_served, quiet_cli = Tally(), Tally()
                served.tally = quiet_served
                for _ in range(args.quiet):
                    for op in OPS:
                        served.request(op)
                    cli_cycle(masque, env, quiet_cli)
        finally:
            server.terminate()
            _, err = server.communicate(timeout=60)
    report(args, sent, elapsed, (served_tally, cli), (quiet_served, quiet_cli), server.returncode, err)


def table(title: str, served: Tally, cli: Tally) -> None:
    print(title)
    print(f"  {'operation':<30} {'served p50':>10} {'p95':>8} {'n':>5}   {'cold CLI p50':>12} {'n':>4}  CLI/served")
    for op in OPS:
        s, c = served.took.get(op, []), cli.took.get(op, [])
        if not s:
            continue
        s50, s95 = statistics.median(s) * 1000, _pct(s, 0.95) * 1000
        line = f"  {op + ' / masque ' + CLI_OF[op]:<30} {s50:8.1f}ms {s95:6.1f}ms {len(s):5}"
        if c:
            c50 = statistics.median(c) * 1000
            line += f"   {c50:10.1f}ms {len(c):4}  {c50 / s50:6.1f}x"
        print(line)


def report(
    args: Any,
    sent: int,
    elapsed: float,
    loaded: tuple[Tally, Tally],
    quiet: tuple[Tally, Tally],
    code: int | None,
    err: str,
) -> None:
    served, cli = loaded
    answered = sum(len(v) for v in served.took.values())
    print(
        f"masque serve: asked {args.rate:g} req/s for {args.seconds:g} s (at most {args.in_flight} in flight) "
        f"beside {args.cli} CLI process loop(s)"
    )
    print(
        f"sent {sent}, answered 2xx {answered} in {elapsed:.1f} s = {answered / elapsed:.1f} req/s served; "
        f"CLI ran {sum(len(v) for v in cli.took.values())} commands"
    )
    table("under load (served and CLI in the same seconds):", served, cli)
    table(f"quiet ({args.quiet} rounds, one request or process at a time):", *quiet)
    failures = served.failures + cli.failures + quiet[0].failures + quiet[1].failures
    served_failed = len(served.failures) + len(quiet[0].failures)
    print(f"failures: served {served_failed}, CLI {len(failures) - served_failed} (must be 0)")
    for f in failures[:10]:
        print(f"  {f}")
    clean = code == 0 and "Traceback" not in err
    print(f"server stopped with SIGTERM: exit {code}{'' if clean else ' (NOT CLEAN)'}")
    if failures or not clean:
        if err.strip():
            print(err[-2000:], file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

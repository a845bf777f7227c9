"""The search hot path: its compliance entry is spooled (never lost, always shown) and the caller's proof
is reused only while the store is unchanged, so a revoked token, a changed ring or a new policy counts
at the very next call.

Actors: the founder `root` (admin) and `pat` (player). Masques: tests/memory_support.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.memory_support import memory_masques  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("memory_masques")

Invoke = Callable[..., Any]


@pytest.fixture
def pat() -> Any:
    """An initialised store with `root` and the player `pat`; returns pat's Selection (name and key)."""
    from masque.model import Ring
    from masque.trust import rings

    rings.init("root")
    key = rings.add_actor("pat", Ring.PLAYER, rings.Selection()).key
    return rings.Selection(name="pat", key=key)


def _settled_and_cached(search: Callable[[], Any]) -> Any:
    """Run `search` once the store's last write has settled, so its proof is remembered; returns the result."""
    from masque import store
    from masque.memory import readcache

    deadline = time.monotonic() + 30
    while not store.change_marker()[1]:
        assert time.monotonic() < deadline, "the store never settled"
        time.sleep(0.01)
    readcache.clear()
    result = search()
    assert readcache._entries, "the proof was not remembered: this test would not exercise the cache"
    return result


def _log(invoke: Invoke, masque: str, action: str = "search") -> list[dict[str, Any]]:
    result = invoke(["memory", "log", masque, "--action", action, "--json"])
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout)["entries"])


def test_every_search_is_in_the_compliance_log_exactly_once(invoke: Invoke) -> None:
    from masque import memory
    from masque.memory import spool

    memory.add(["the parser keeps tokens", "the lexer keeps spans"], "scratch")
    found = [memory.find("parser tokens", "scratch") for _ in range(3)]
    assert spool.pending()  # searches did not open the store to log
    entries = _log(invoke, "scratch")
    assert len(entries) == 3
    assert entries[0]["memory_ids"] == [h.memory.id for h in found[-1].hits]
    assert not spool.pending()
    assert len(_log(invoke, "scratch")) == 3  # folding again adds nothing


def test_a_fold_interrupted_before_truncating_never_duplicates_entries(invoke: Invoke) -> None:
    from masque import config, memory
    from masque.memory import spool

    memory.add("the parser keeps tokens", "scratch")
    memory.find("parser", "scratch")
    spooled = config.memory_log_spool_path().read_bytes()
    assert spool.fold() == 1
    config.memory_log_spool_path().write_bytes(spooled)  # as if killed after the commit, before the truncate
    assert len(_log(invoke, "scratch")) == 1


def test_a_torn_spool_line_does_not_cost_the_next_entry(invoke: Invoke) -> None:
    from masque import config, memory

    memory.add("the parser keeps tokens", "scratch")
    config.memory_log_spool_path().write_bytes(b'\n["mlg_torn", "2026-')  # a writer killed mid-line
    memory.find("parser", "scratch")
    assert len(_log(invoke, "scratch")) == 1


@pytest.mark.slow
def test_a_search_killed_right_after_it_returns_keeps_its_log_entry(invoke: Invoke) -> None:
    from masque import memory

    memory.add("the parser keeps tokens", "scratch")
    script = textwrap.dedent(
        """
        import sys, time
        from masque import memory
        found = memory.find("parser tokens", "scratch")
        print(",".join(h.memory.id for h in found.hits), flush=True)
        time.sleep(600)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env) as child:
        try:
            assert child.stdout is not None
            ids = child.stdout.readline().strip().split(",")
            child.send_signal(signal.SIGKILL)  # the search has returned: nothing after it may be needed
            child.wait(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
    assert ids and ids[0].startswith("mem_")
    entries = _log(invoke, "scratch")
    assert [e["memory_ids"] for e in entries] == [ids]


def test_a_policy_change_counts_at_the_next_search(invoke: Invoke, pat: Any) -> None:
    from masque import memory
    from masque.errors import Refused
    from masque.memory.policy import Access
    from masque.sessions import lifecycle
    from masque.trust import rings

    memory.add("style: prefer early returns", "reviewer")
    memory.set_mode("reviewer", memory.Mode.SCOPED_SHARE)
    memory.share("reviewer", "codesmith")
    token = lifecycle.assume("codesmith", "implement the parser", selection=pat).token
    session = rings.Selection(token=token)
    shared = _settled_and_cached(lambda: memory.find("early returns", "reviewer", selection=session))
    assert shared.access is Access.SHARED and shared.hits

    assert invoke(["memory", "unshare", "reviewer", "--with", "codesmith"]).exit_code == 0
    with pytest.raises(Refused) as refused:
        memory.find("early returns", "reviewer", selection=session)
    assert refused.value.reason == "memory_not_shared"


def test_an_opt_out_counts_at_the_next_search(pat: Any) -> None:
    from masque import memory
    from masque.memory import manage
    from masque.memory.policy import Access

    memory.add("the parser keeps tokens", "codesmith")
    assert _settled_and_cached(lambda: memory.find("parser", "codesmith", selection=pat)).hits
    manage.opt("codesmith", out=True, selection=pat)
    assert memory.find("parser", "codesmith", selection=pat).access is Access.OPTED_OUT


def test_a_released_token_is_refused_at_the_next_search(invoke: Invoke, pat: Any) -> None:
    from masque import memory
    from masque.errors import Refused
    from masque.sessions import end, lifecycle
    from masque.trust import rings

    memory.add("the parser keeps tokens", "codesmith")
    worn = lifecycle.assume("codesmith", "implement the parser", selection=pat)
    session = rings.Selection(token=worn.token)
    assert _settled_and_cached(lambda: memory.find("parser", selection=session)).hits

    end.release(worn.session_id, selection=pat)
    with pytest.raises(Refused) as refused:
        memory.find("parser", selection=session)
    assert refused.value.reason == "token_invalid"


def test_a_demoted_actor_is_refused_at_the_next_search(invoke: Invoke, pat: Any) -> None:
    from masque import memory
    from masque.errors import Refused

    memory.add("the parser keeps tokens", "codesmith")
    assert _settled_and_cached(lambda: memory.find("parser", "codesmith", selection=pat)).hits

    assert invoke(["actor", "demote", "pat"]).exit_code == 0  # player -> guest; codesmith is a player masque
    with pytest.raises(Refused) as refused:
        memory.find("parser", "codesmith", selection=pat)
    assert refused.value.reason == "ring_refused"


def test_a_wrong_key_is_refused_even_when_the_right_one_is_remembered(pat: Any) -> None:
    from masque import memory
    from masque.errors import Refused
    from masque.trust import rings

    memory.add("the parser keeps tokens", "codesmith")
    assert _settled_and_cached(lambda: memory.find("parser", "codesmith", selection=pat)).hits
    with pytest.raises(Refused) as refused:
        memory.find("parser", "codesmith", selection=rings.Selection(name="pat", key=pat.key + "x"))
    assert refused.value.reason == "actor_key_invalid"


@pytest.mark.slow
def test_searches_racing_log_readers_lose_no_entry(invoke: Invoke) -> None:
    """Four processes search while a fifth keeps reading (and so folding) the log: every search is logged once."""
    from masque import memory

    memory.add("the parser keeps tokens", "scratch")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    searcher = "from masque import memory\nfor _ in range(25): memory.find('parser', 'scratch')\n"
    reader = (
        "import sys\nfrom masque.memory import audit\n"
        "while not sys.stdin.readline().startswith('stop'): audit.read_log(limit=1); print('read', flush=True)\n"
    )
    searchers = [subprocess.Popen([sys.executable, "-c", searcher], env=env) for _ in range(4)]
    with subprocess.Popen(
        [sys.executable, "-c", reader], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as folder:
        assert folder.stdin is not None and folder.stdout is not None
        try:
            while any(s.poll() is None for s in searchers):  # fold over and over while searches append
                folder.stdin.write("go\n")
                folder.stdin.flush()
                assert folder.stdout.readline().startswith("read")
            folder.stdin.write("stop\n")
            folder.stdin.flush()
            folder.wait(timeout=60)
        finally:
            for s in searchers:
                if s.poll() is None:
                    s.kill()
    assert [s.wait(timeout=60) for s in searchers] == [0, 0, 0, 0]
    result = invoke(["memory", "log", "scratch", "--action", "search", "--limit", "1000", "--json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)["entries"]
    assert len(entries) == 100 and len({e["id"] for e in entries}) == 100

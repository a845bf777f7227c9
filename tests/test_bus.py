"""The collaboration bus (docs/bus.md): posting under the contract, conflicts, resolutions, reading, watching."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.bus_support import make_team, post_json, read_json, write_bus_masques
from tests.test_sessions_support import add_actor, events, init_store, store_rows

TRIO = {"lyricist": "lyricist", "critic": "critic", "producer": "producer"}


@pytest.fixture
def trio(invoke: Callable[..., Any]) -> Any:
    write_bus_masques()
    init_store(invoke)
    return make_team(invoke, {**TRIO, "chief": "editor-in-chief", "plain": "plain"}, arbiter="chief")


def _bus_rows() -> int:
    return int(store_rows("SELECT count(*) FROM mask_events")[0][0])


def test_a_proposal_critique_revision_approval_cycle_among_three_members(invoke: Any, trio: Any) -> None:
    # Each member posts from its own session token, as inside its `masque exec`.
    proposal = post_json(invoke, "crew", "--kind", "proposal", "--text", "verse one", env=trio.token_env("lyricist"))
    p = proposal["event"]
    assert p["topic"] == "lyricist.proposal" and p["author_session"] == trio.sessions["lyricist"]["session_id"]
    critique = post_json(invoke, "crew", "--kind", "critique", "--reply-to", p["id"], "--request-revision",
                         "--text", "the rhyme is forced", env=trio.token_env("critic"))["event"]  # fmt: skip
    assert critique["payload"]["verdict"] == "revise" and critique["author_member"] == "critic"
    revision = post_json(invoke, "crew", "--kind", "revision", "--reply-to", critique["id"], "--text", "verse one, v2",
                         env=trio.token_env("lyricist"))["event"]  # fmt: skip
    approved = post_json(invoke, "crew", "--kind", "approval", "--reply-to", revision["id"],
                         env=trio.token_env("producer"))  # fmt: skip
    assert approved["conflict"] is None  # the critique asked for the revision the approval approves

    history = read_json(invoke, "crew")
    assert [(e["kind"], e["author_member"], e["reply_to"]) for e in history] == [
        ("proposal", "lyricist", None),
        ("critique", "critic", p["id"]),
        ("revision", "lyricist", critique["id"]),
        ("approval", "producer", revision["id"]),
    ]
    assert [e["id"] for e in history] == sorted(e["id"] for e in history)  # time-sortable, in posting order
    assert (
        read_json(invoke, "crew", "--since", critique["id"], "--kind", "approval")[0]["id"] == approved["event"]["id"]
    )


def test_the_teams_actor_posts_as_a_member_with_member_and_as_a_person_without(invoke: Any, trio: Any) -> None:
    as_member = post_json(
        invoke, "crew", "--kind", "proposal", "--member", "lyricist", "--data", '{"text": "x", "n": 1}'
    )
    assert as_member["event"]["author_member"] == "lyricist" and as_member["event"]["payload"] == {"text": "x", "n": 1}
    person = post_json(invoke, "crew", "--kind", "context_delta", "--text", "tempo is 92 bpm")["event"]
    assert (
        person["author_member"] is None
        and person["author_session"] is None
        and person["topic"] == "human.context_delta"
    )
    assert person["actor"] == "root"


def test_a_member_token_posts_only_as_itself(invoke: Any, trio: Any) -> None:
    result = invoke(["bus", "post", "crew", "--kind", "proposal", "--member", "producer", "--text", "x"],
                    env=trio.token_env("lyricist"))  # fmt: skip
    assert result.exit_code == 3 and "cannot post as member producer" in result.stderr
    assert _bus_rows() == 0


def test_an_approval_and_a_revision_request_on_one_proposal_surface_a_conflict(invoke: Any, trio: Any) -> None:
    p = post_json(invoke, "crew", "--kind", "proposal", "--text", "chorus", env=trio.token_env("lyricist"))["event"]
    approval = post_json(invoke, "crew", "--kind", "approval", "--reply-to", p["id"], env=trio.token_env("producer"))
    assert approval["conflict"] is None
    result = invoke(["bus", "post", "crew", "--kind", "critique", "--reply-to", p["id"], "--request-revision",
                     "--text", "too long"], env=trio.token_env("critic"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "conflict bus_" in result.stderr and "masque bus resolve" in result.stderr  # surfaced, not resolved
    conflicts = read_json(invoke, "crew", "--kind", "conflict")
    assert len(conflicts) == 1
    c = conflicts[0]
    critique = read_json(invoke, "crew", "--kind", "critique")[0]
    assert c["reply_to"] == p["id"] and c["topic"] == "masque.conflict" and c["author_member"] is None
    assert c["payload"]["events"] == [approval["event"]["id"], critique["id"]]
    assert c["id"] > critique["id"]  # recorded right after the review that caused it
    assert read_json(invoke, "crew", "--kind", "resolution") == []  # nothing decided for anyone


def _conflict(invoke: Any, trio: Any) -> tuple[str, dict[str, Any]]:
    p = post_json(invoke, "crew", "--kind", "proposal", "--text", "bridge", env=trio.token_env("lyricist"))["event"]
    post_json(invoke, "crew", "--kind", "approval", "--reply-to", p["id"], env=trio.token_env("producer"))
    posted = post_json(invoke, "crew", "--kind", "critique", "--reply-to", p["id"], "--request-revision",
                       env=trio.token_env("critic"))  # fmt: skip
    assert posted["conflict"] is not None
    return p["id"], posted["conflict"]


def test_the_arbiter_member_resolves_a_conflict_once(invoke: Any, trio: Any) -> None:
    _, conflict = _conflict(invoke, trio)
    critique_id = conflict["payload"]["events"][1]
    result = invoke(["bus", "resolve", "crew", conflict["id"], "--decision", "revise", "--notes", "tighten it",
                     "--prevails", critique_id, "--json"], env=trio.token_env("chief"))  # fmt: skip
    assert result.exit_code == 0, result.output
    resolution = json.loads(result.stdout)["event"]
    assert resolution["kind"] == "resolution" and resolution["author_member"] == "chief"
    assert resolution["payload"] == {
        "decision": "revise",
        "notes": "tighten it",
        "prevails": conflict["payload"]["events"][1],
    }
    again = invoke(["bus", "resolve", "crew", conflict["id"], "--decision", "accept"])  # a person tries too
    assert again.exit_code == 3 and "already resolved by chief" in again.stderr
    kinds = [e["kind"] for e in read_json(invoke, "crew")]
    assert kinds == ["proposal", "approval", "critique", "conflict", "resolution"]  # the full history stays
    assert events("bus_conflict_resolved")[0]["payload"]["decision"] == "revise"


def test_a_person_resolves_a_conflict_and_settled_reviews_stop_disagreeing(invoke: Any, trio: Any) -> None:
    proposal_id, conflict = _conflict(invoke, trio)
    resolved = post_json(invoke, "crew", "--kind", "resolution", "--reply-to", conflict["id"],
                         "--data", '{"decision": "revise"}')["event"]  # fmt: skip
    assert resolved["author_member"] is None and resolved["actor"] == "root"
    # The lyricist revises; the producer approves the revision: the settled approval of the first draft
    # does not make a second conflict.
    rev = post_json(invoke, "crew", "--kind", "revision", "--reply-to", proposal_id, env=trio.token_env("lyricist"))
    ok = post_json(
        invoke, "crew", "--kind", "approval", "--reply-to", rev["event"]["id"], env=trio.token_env("producer")
    )
    assert ok["conflict"] is None


def test_two_approvals_of_different_versions_conflict(invoke: Any, trio: Any) -> None:
    p = post_json(invoke, "crew", "--kind", "proposal", "--member", "lyricist", "--text", "a")["event"]
    post_json(invoke, "crew", "--kind", "approval", "--member", "producer", "--reply-to", p["id"])
    rev = post_json(invoke, "crew", "--kind", "revision", "--member", "lyricist", "--reply-to", p["id"])["event"]
    second = post_json(invoke, "crew", "--kind", "approval", "--member", "producer", "--reply-to", rev["id"])
    assert second["conflict"] is not None and second["conflict"]["reply_to"] == p["id"]
    assert sorted(second["conflict"]["payload"]["targets"]) == sorted([p["id"], rev["id"]])


@pytest.mark.parametrize(
    ("member", "args", "reason"),
    [
        ("lyricist", ["--kind", "approval"], "does not declare can_approve"),
        ("critic", ["--kind", "approval"], "does not declare can_approve"),
        ("producer", ["--kind", "critique", "--request-revision"], "cannot request a revision"),
        ("plain", ["--kind", "critique"], "does not declare can_provide_feedback"),
        ("producer", ["--kind", "resolution", "--data", '{"decision": "accept"}'], "does not declare can_arbitrate"),
    ],
)
def test_a_member_without_the_capability_is_refused_and_nothing_is_written(
    invoke: Any, trio: Any, member: str, args: list[str], reason: str
) -> None:
    p = post_json(invoke, "crew", "--kind", "proposal", "--text", "x", env=trio.token_env("plain"))["event"]
    before = _bus_rows()
    result = invoke(["bus", "post", "crew", *args, "--reply-to", p["id"]], env=trio.token_env(member))
    assert result.exit_code == 3, result.output
    assert reason in result.stderr and "hint:" in result.stderr
    assert _bus_rows() == before


def test_replies_must_answer_a_kind_they_can_answer(invoke: Any, trio: Any) -> None:
    out = post_json(invoke, "crew", "--kind", "output", "--text", "mix v1", env=trio.token_env("plain"))["event"]
    wrong = invoke(
        ["bus", "post", "crew", "--kind", "approval", "--reply-to", out["id"]], env=trio.token_env("producer")
    )
    assert wrong.exit_code == 3 and "approval cannot reply to output" in wrong.stderr
    missing = invoke(["bus", "post", "crew", "--kind", "critique"], env=trio.token_env("critic"))
    assert missing.exit_code == 2 and "must reply to a proposal or revision" in missing.stderr
    p = post_json(invoke, "crew", "--kind", "proposal", "--text", "x", env=trio.token_env("lyricist"))["event"]
    not_mine = invoke(["bus", "post", "crew", "--kind", "revision", "--reply-to", p["id"]], env=trio.token_env("plain"))
    assert not_mine.exit_code == 3 and "only the author" in not_mine.stderr
    own = post_json(invoke, "crew", "--kind", "proposal", "--text", "y", env=trio.token_env("producer"))["event"]
    selfish = invoke(
        ["bus", "post", "crew", "--kind", "approval", "--reply-to", own["id"]], env=trio.token_env("producer")
    )
    assert selfish.exit_code == 3 and "its own proposal" in selfish.stderr
    forged = invoke(["bus", "post", "crew", "--kind", "conflict", "--member", "chief"])
    assert forged.exit_code == 2 and "recorded by Masque itself" in forged.stderr


def test_a_non_member_token_and_an_outsider_key_are_refused(invoke: Any, trio: Any, tmp_path: Path) -> None:
    from tests.test_sessions_support import assume_json

    post_json(invoke, "crew", "--kind", "proposal", "--text", "x", env=trio.token_env("lyricist"))
    stranger = assume_json(invoke, "plain", "--intent", "work alone")  # the team actor's, but not a member
    for verb in (["read", "crew"], ["post", "crew", "--kind", "proposal", "--text", "sneaky"]):
        result = invoke(["bus", *verb], env={"MASQUE_TOKEN": stranger["token"]})
        assert result.exit_code == 3 and "is not a member of team crew" in result.stderr
    key = add_actor(invoke, "olga", "player")
    key_file = tmp_path / "olga.key"
    key_file.write_text(key)
    for verb in (["read", "crew"], ["post", "crew", "--kind", "context_delta", "--text", "x"], ["watch", "crew"]):
        result = invoke(["bus", *verb, "--as", "olga", "--key-file", key_file])
        assert result.exit_code == 3 and "neither the actor of team crew" in result.stderr
    assert _bus_rows() == 1


def test_an_ended_members_token_is_refused(invoke: Any, trio: Any) -> None:
    assert invoke(["release", trio.sessions["critic"]["session_id"]]).exit_code == 0
    result = invoke(["bus", "read", "crew"], env=trio.token_env("critic"))
    assert result.exit_code == 3
    as_member = invoke(["bus", "post", "crew", "--kind", "proposal", "--member", "critic", "--text", "x"])
    assert as_member.exit_code == 3 and "has ended" in as_member.stderr


def test_read_member_returns_only_its_subscribed_topics(invoke: Any, trio: Any) -> None:
    p = post_json(invoke, "crew", "--kind", "proposal", "--text", "x", env=trio.token_env("lyricist"))["event"]
    post_json(invoke, "crew", "--kind", "output", "--text", "demo", env=trio.token_env("lyricist"))
    post_json(invoke, "crew", "--kind", "critique", "--reply-to", p["id"], env=trio.token_env("critic"))
    # The critic subscribes to *.proposal and *.revision (its masque); the lyricist to *.critique.
    assert [e["topic"] for e in read_json(invoke, "crew", "--member", "critic")] == ["lyricist.proposal"]
    assert [e["topic"] for e in read_json(invoke, "crew", "--member", "lyricist")] == ["critic.critique"]
    assert read_json(invoke, "crew", "--member", "plain") == []  # no collaboration block: no subscriptions
    added = invoke(["bus", "subscribe", "crew", "lyricist.output"], env=trio.token_env("plain"))
    assert added.exit_code == 0, added.output
    assert [e["topic"] for e in read_json(invoke, "crew", "--member", "plain")] == ["lyricist.output"]


def test_subscribing_to_what_a_member_cannot_answer_is_refused(invoke: Any, trio: Any) -> None:
    refused = invoke(["bus", "subscribe", "crew", "--member", "plain", "*.proposal"])
    assert refused.exit_code == 3 and "needs can_approve or can_provide_feedback" in refused.stderr
    conflict = invoke(["bus", "subscribe", "crew", "*.conflict"], env=trio.token_env("critic"))
    assert conflict.exit_code == 3 and "can_arbitrate" in conflict.stderr
    typo = invoke(["bus", "subscribe", "crew", "--member", "plain", "lyricist.outptu"])
    assert typo.exit_code == 3 and "matches no event kind" in typo.stderr
    listing = json.loads(invoke(["bus", "subscriptions", "crew", "--json"]).stdout)["subscriptions"]
    assert listing["plain"] == [] and listing["chief"] == ["*.conflict"]
    # The producer's masque asks for *.conflict too, but it cannot arbitrate: that one was not wired.
    assert listing["producer"] == ["*.proposal", "*.revision"]
    assert not [e for e in events("bus_subscribed") if e["payload"]["member"] == "plain"]


def test_wire_team_records_compatible_subscriptions_and_skips_the_rest(invoke: Any) -> None:
    from masque.bus.ops import wire_team
    from masque.masques import registry
    from masque.model import Collaboration
    from masque.store import turns
    from masque.teams.model import find_team

    write_bus_masques()
    init_store(invoke)
    make_team(invoke, {"critic": "critic", "plain": "plain"})
    eager = Collaboration(subscribes=("*.proposal", "*.output", "*.conflict"))  # listens; answers nothing gated
    with turns.transaction() as conn:
        team = find_team(conn, "crew")
        critic = registry.resolve("critic@1.0.0").masque  # a masque file's block: *.proposal, *.revision
        wired = wire_team(conn, team, {"plain": eager, "critic": critic})
    by_pattern = {(w.member, w.pattern): w for w in wired}
    assert by_pattern[("plain", "*.output")].wired
    assert not by_pattern[("plain", "*.proposal")].wired and "can_provide_feedback" in str(
        by_pattern[("plain", "*.proposal")].note
    )
    assert not by_pattern[("plain", "*.conflict")].wired
    assert by_pattern[("critic", "*.revision")].wired and by_pattern[("critic", "*.proposal")].wired
    assert store_rows("SELECT member, pattern FROM bus_subscriptions ORDER BY member, pattern") == [
        ("critic", "*.proposal"),
        ("critic", "*.revision"),
        ("plain", "*.output"),
    ]


def test_a_released_teams_bus_is_read_only(invoke: Any, trio: Any) -> None:
    from masque.durations import utcnow
    from masque.store import turns
    from masque.teams.model import mark_released

    post_json(invoke, "crew", "--kind", "proposal", "--text", "x", env=trio.token_env("lyricist"))
    with turns.transaction() as conn:
        mark_released(conn, trio.id, at=utcnow(), score="+", notes=None)
    late = invoke(["bus", "post", "crew", "--kind", "output", "--text", "late"])
    assert late.exit_code == 3 and "read-only" in late.stderr
    assert len(read_json(invoke, trio.id)) == 1


def test_watch_stops_after_count(invoke: Any, trio: Any) -> None:
    post_json(invoke, "crew", "--kind", "proposal", "--text", "one", env=trio.token_env("lyricist"))
    post_json(invoke, "crew", "--kind", "output", "--text", "two", env=trio.token_env("lyricist"))
    result = invoke(["bus", "watch", "crew", "--from-start", "--count", "2", "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["payload"]["text"] for e in lines] == ["one", "two"]


# --- a real watcher process -----------------------------------------------------------------------------


def _watch(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "masque", "bus", "watch", "crew", "--json", "--interval", "0.05", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def _pump(process: subprocess.Popen[str], into: list[dict[str, Any]]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        into.append(json.loads(line))


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.slow
def test_watch_prints_events_posted_by_another_process_and_exits_130_on_ctrl_c(
    invoke: Any, trio: Any, run_masque: Callable[..., Any]
) -> None:
    lines: list[dict[str, Any]] = []
    with _watch([]) as watcher:
        try:
            reader = threading.Thread(target=_pump, args=(watcher, lines), daemon=True)
            reader.start()
            pings = 0

            def watcher_has_spoken() -> bool:
                # It tails from "now": post until it has shown one, so it is surely polling.
                nonlocal pings
                pings += 1
                done = run_masque("bus", "post", "crew", "--kind", "context_delta", "--text", f"ping {pings}",
                                  env=trio.token_env("lyricist"))  # fmt: skip
                assert done.returncode == 0, done.stderr
                return _wait_until(lambda: bool(lines), timeout=2.0)

            assert _wait_until(watcher_has_spoken, timeout=60.0)
            shown = len(lines)
            done = run_masque("bus", "post", "crew", "--kind", "proposal", "--text", "verse",
                              env=trio.token_env("lyricist"))  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert _wait_until(lambda: len(lines) > shown, timeout=60.0)
            assert lines[-1]["kind"] == "proposal" and lines[-1]["payload"] == {"text": "verse"}
            assert all(a["id"] < b["id"] for a, b in itertools.pairwise(lines))
            watcher.send_signal(signal.SIGINT)
            assert watcher.wait(timeout=60) == 130
            reader.join(timeout=10)
            assert watcher.stderr is not None
            err = watcher.stderr.read()
            assert "Traceback" not in err and "interrupted" in err
        finally:
            if watcher.poll() is None:
                watcher.kill()
                watcher.wait()


@pytest.mark.slow
def test_watch_until_a_kind_exits_0(invoke: Any, trio: Any) -> None:
    p = post_json(invoke, "crew", "--kind", "proposal", "--text", "x", env=trio.token_env("lyricist"))["event"]
    with _watch(["--member", "chief", "--since", p["id"], "--until", "conflict"]) as watcher:
        try:
            post_json(invoke, "crew", "--kind", "approval", "--reply-to", p["id"], env=trio.token_env("producer"))
            post_json(invoke, "crew", "--kind", "critique", "--request-revision", "--reply-to", p["id"],
                      env=trio.token_env("critic"))  # fmt: skip
            out, err = watcher.communicate(timeout=60)
        finally:
            if watcher.poll() is None:
                watcher.kill()
                watcher.wait()
    assert watcher.returncode == 0, err
    # The arbiter hears conflicts (its masque subscribes to *.conflict), not approvals or critiques.
    assert [json.loads(line)["kind"] for line in out.splitlines()] == ["conflict"]


def test_library_callers_prove_identity_with_a_selection_never_a_bare_session_id(invoke: Any, trio: Any) -> None:
    from masque.bus import ops
    from masque.errors import Refused
    from masque.trust.rings import Selection

    lyricist = trio.sessions["lyricist"]
    posted = ops.post("crew", "proposal", payload={"text": "via MCP"}, selection=Selection(token=lyricist["token"]))
    assert posted.event.author_session == lyricist["session_id"] and posted.event.author_member == "lyricist"
    # A session id without its token proves nothing: refused, never a fall-back to someone else.
    with pytest.raises(Refused) as refused:
        ops.post("crew", "output", payload={}, selection=Selection(parent_session_id=lyricist["session_id"]))
    assert refused.value.reason == "parent_unproven"
    # MASQUE_SESSION_ID alone is not a token either: the caller is the founder, a person on the bus.
    person = post_json(invoke, "crew", "--kind", "context_delta", "--text", "x",
                       env={"MASQUE_SESSION_ID": lyricist["session_id"]})  # fmt: skip
    assert person["event"]["author_member"] is None and person["event"]["author_session"] is None
    assert [e.kind.value for e in ops.read("crew", selection=Selection(token=lyricist["token"]))] == [
        "proposal",
        "context_delta",
    ]


def test_an_admin_who_is_not_the_teams_actor_may_read_and_post(invoke: Any, trio: Any, tmp_path: Path) -> None:
    key_file = tmp_path / "ada.key"
    key_file.write_text(add_actor(invoke, "ada", "admin"))
    who = ["--as", "ada", "--key-file", str(key_file)]
    posted = post_json(invoke, "crew", "--kind", "context_delta", "--text", "budget is fixed", *who)
    assert posted["event"]["actor"] == "ada"
    assert [e["actor"] for e in read_json(invoke, "crew", *who)] == ["ada"]


def test_payload_options_and_usage_errors(invoke: Any, trio: Any, tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# Bridge\nslower here\n", encoding="utf-8")
    from_file = post_json(invoke, "crew", "--kind", "output", "--member", "plain", "--file", str(notes))["event"]
    assert from_file["payload"] == {"text": "# Bridge\nslower here\n"}
    piped = post_json(invoke, "crew", "--kind", "output", "--member", "plain", "--file", "-", input="from stdin")
    assert piped["event"]["payload"] == {"text": "from stdin"}
    for bad, message in [
        (["--data", "[1, 2]"], "--data must be a JSON object"),
        (["--data", "{nope"], "--data is not JSON"),
        (["--text", "a", "--data", "{}"], "give one of --text, --data or --file"),
        (["--kind", "proposal", "--request-revision"], "--request-revision goes with --kind critique"),
    ]:
        args = bad if "--kind" in bad else ["--kind", "output", *bad]
        result = invoke(["bus", "post", "crew", *args])
        assert result.exit_code == 2 and message in result.stderr, result.output
    assert invoke(["bus", "read", "crew", "--since", "yesterday"]).exit_code == 2
    assert invoke(["bus", "watch", "crew", "--count", "0"]).exit_code == 2
    assert invoke(["bus", "post", "crew", "--kind", "memo"]).exit_code == 2
    assert invoke(["bus", "read", "nobody"]).exit_code == 4
    assert _bus_rows() == 2


@pytest.mark.slow
def test_two_disagreeing_reviews_posted_at_once_by_two_processes_surface_exactly_one_conflict(
    invoke: Any, trio: Any
) -> None:
    p = post_json(invoke, "crew", "--kind", "proposal", "--text", "x", env=trio.token_env("lyricist"))["event"]
    reviews = {
        "producer": ["--kind", "approval"],
        "critic": ["--kind", "critique", "--request-revision"],
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "masque", "bus", "post", "crew", *args, "--reply-to", p["id"]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **trio.token_env(member)},
        )
        for member, args in reviews.items()
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    history = read_json(invoke, "crew")
    assert [e["kind"] for e in history][-1] == "conflict"  # after both reviews, whichever came second
    assert sum(e["kind"] == "conflict" for e in history) == 1
    conflict = history[-1]
    assert sorted(conflict["payload"]["events"]) == sorted(e["id"] for e in history[1:3])

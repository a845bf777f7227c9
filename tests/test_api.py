"""The Python API: `with masque.assume(...) as s`, and code-defined masques (opt-in only)."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_sessions_support import init_store, store_rows, write_masques

import masque
from masque import api
from masque.errors import Refused, UsageError
from masque.model import Access, Ring

Invoke = Callable[..., Any]

HOMELAB = textwrap.dedent(
    """
    from masque.api import Masque
    from masque.model import Access, Ring


    class Homelab(Masque):
        name = "Homelab"
        version = "2.3"
        ring_required = Ring.PLAYER
        intent_allowed = ("deploy *", "debug *", "investigate *")
        intent_denied = ("delete *", "destroy *")

        def knowledge(self):
            return ["mcp://homelab-inventory", "mcp://homelab-runbooks"]

        def access(self):
            return Access(vault_role="homelab-operator", ttl="session")

        def lens(self):
            return "You're operating Chris's homelab. Prefer stability over novelty."
    """
)


@pytest.fixture(autouse=True)
def _setup(invoke: Invoke) -> None:
    write_masques()
    init_store(invoke)


def test_with_assume_gives_the_session_and_releases_on_exit() -> None:
    with masque.assume("tool@1.0.0", intent="implement the parser") as s:
        assert dataclasses.is_dataclass(s) and s.token and s.token.startswith("msq_")
        assert (s.masque, s.version, s.actor, s.role) == ("tool", "1.0.0", "root", "tool-ci")
        assert "Be methodical" in (s.system_prompt or "")
        assert api.verify(s.token).valid
        with pytest.raises(dataclasses.FrozenInstanceError):
            s.intent = "something else"  # type: ignore[misc]
    assert not api.verify(s.token).valid
    assert store_rows("SELECT status, end_reason FROM sessions") == [("ended", "released")]


def test_an_exception_in_the_block_still_releases() -> None:
    with pytest.raises(RuntimeError), masque.assume("open", intent="work on it"):
        raise RuntimeError("boom")
    assert store_rows("SELECT status, end_reason FROM sessions") == [("ended", "error")]


def test_api_refusals_raise_refused_with_a_reason() -> None:
    with pytest.raises(Refused) as info:
        masque.assume("tool", intent="rush the release")
    assert info.value.reason == "intent_denied"


def test_release_with_score_and_check() -> None:
    s = masque.assume("tool", intent="implement it")
    ended = masque.release(s, score="*", notes="unblocked two people")
    assert ended.session.status == "ended" and not ended.already_ended
    assert store_rows("SELECT symbol FROM scores") == [("*",)]
    decision = masque.check("tool", "rush it")
    assert not decision.allowed and decision.pattern == "rush *"


def test_the_yaml_model_satisfies_the_masque_protocol() -> None:
    loaded = api.load("tool")
    assert isinstance(loaded, api.Masque)
    assert loaded.knowledge() == ["mcp://repo/source"]
    assert loaded.access() == Access("tool-ci", "PT2H")
    assert "methodical" in loaded.lens() and loaded.decide("test it").allowed


class Greeter(api.Masque):
    name = "Greeter"
    version = "0.1.0"
    ring_required = Ring.OUTSIDER

    def validate_intent(self, intent: str) -> bool:
        return intent.startswith("greet")

    def lens(self) -> str:
        return "Be warm."


def test_a_code_masque_instance_can_be_worn_directly() -> None:
    with masque.assume(Greeter(), intent="greet the new team") as s:
        assert (s.masque, s.version, s.role) == ("greeter", "0.1.0", None)
    with pytest.raises(Refused):
        masque.assume(Greeter(), intent="shout at them")
    with pytest.raises(Refused) as info:
        masque.assume(Greeter(), intent="   ")  # every assumption states its goal, code or not
    assert info.value.reason == "intent_empty"
    (row,) = store_rows("SELECT source_path, content_hash FROM sessions")
    assert row[0].endswith("test_api.py") and len(row[1]) == 64


@pytest.mark.slow
def test_code_masques_load_only_when_opted_in(monkeypatch: pytest.MonkeyPatch, run_masque: Any) -> None:
    Path("homelab_masque.py").write_text(HOMELAB)
    without = run_masque("assume", "homelab", "--intent", "deploy monitoring", "--format", "json")
    assert without.returncode == 4  # not on the search path, and code is never loaded implicitly
    spec = f"{Path('homelab_masque.py').resolve()}:Homelab"
    with_opt_in = run_masque(
        "assume",
        "homelab@2.3",
        "--intent",
        "deploy monitoring",
        "--format",
        "json",
        env={"MASQUE_CODE_MASQUES": spec},
    )
    assert with_opt_in.returncode == 0, with_opt_in.stderr
    data = json.loads(with_opt_in.stdout)
    assert (data["masque"], data["version"], data["role"]) == ("homelab", "2.3", "homelab-operator")
    assert [k["uri"] for k in data["knowledge"]] == ["mcp://homelab-inventory", "mcp://homelab-runbooks"]
    denied = run_masque("assume", "homelab", "--intent", "delete the backups", env={"MASQUE_CODE_MASQUES": spec})
    assert denied.returncode == 3


def test_load_code_masque_checks_the_spec() -> None:
    Path("not_a_masque.py").write_text("class Thing:\n    pass\n")
    with pytest.raises(UsageError, match=r"not a masque\.api\.Masque subclass"):
        api.load_code_masque("not_a_masque.py:Thing")
    with pytest.raises(UsageError, match="module:Class"):
        api.load_code_masque("no-colon")
    with pytest.raises(UsageError, match="cannot import"):
        api.load_code_masque("no_such_module_xyz:Thing")


class Auditor(Greeter):
    """A code masque whose intent check reads the store itself (say, to refuse a second live session)."""

    name = "Auditor"

    def validate_intent(self, intent: str) -> bool:
        from masque.sessions.queries import list_sessions

        return not any(s.masque == "auditor" for s in list_sessions(active=True))


def test_code_masque_user_code_runs_outside_the_store_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "masque.toml"
    config.write_text("[limits]\nlock_timeout = 2\n")  # a deadlock would surface as StoreBusy, not a hang
    monkeypatch.setenv("MASQUE_CONFIG", str(config))
    with masque.assume(Auditor(), intent="audit the books") as s:
        assert s.masque == "auditor"
        with pytest.raises(Refused):
            masque.assume(Auditor(), intent="audit them again")


class CodeSmith(api.Masque):
    """Claims the shipped codesmith@0.1.0, relabelled to the outermost ring with another role."""

    name, version, ring_required = "codesmith", "0.1.0", Ring.OUTSIDER
    intent_allowed = ("implement *",)

    def access(self) -> Access:
        return Access(vault_role="codesmith-deployer", ttl="session")

    def lens(self) -> str:
        return "Anything goes."


def test_a_code_masque_cannot_claim_a_pinned_definition(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    shipped = Path(__file__).resolve().parent.parent / "personas" / "codesmith.masque.yaml"
    shutil.copy(shipped, Path.cwd() / "personas")
    masque.release(masque.assume("codesmith@0.1.0", intent="implement the parser"))  # pins the file
    with pytest.raises(Refused) as info:
        masque.assume(CodeSmith(), intent="implement the parser")
    assert info.value.reason == "definition_mismatch" and "personas/codesmith.masque.yaml" in str(info.value)
    monkeypatch.setenv("MASQUE_CODE_MASQUES", f"{Path(__file__).resolve()}:CodeSmith")
    with pytest.raises(Refused) as info:
        masque.assume("codesmith@0.1.0", intent="implement the parser")
    assert info.value.reason == "definition_mismatch"
    # Only the pinned file's session was ever recorded: nothing minted for the code masque's role.
    assert [r[0] for r in store_rows("SELECT masque_ring FROM sessions WHERE masque = 'codesmith'")] == ["player"]

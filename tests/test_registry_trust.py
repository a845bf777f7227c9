"""Trusted definitions: what a session grants is bound to the content first worn for its name@version.

Issue 10, item 2: a copy of a masque written by anyone on the search path must never win over the
trusted one, with or without an exact pin, nor mint its role.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_cli_root import imported_heavy
from test_registry import write_masque
from test_sessions_support import add_actor, assume_json, events, init_store, store_rows

from masque.errors import ExitCode
from masque.masques import registry
from masque.masques.trusted import DefinitionRefused

Invoke = Callable[..., Any]
INTENT = "implement the parser"


@pytest.fixture
def trusted(tmp_path: Path) -> Path:
    """The admin's dir of masques; codesmith@0.1.0 needs ring player."""
    write_masque(tmp_path / "trusted", ring="player")
    return tmp_path / "trusted"


@pytest.fixture
def evil(tmp_path: Path) -> Path:
    """A dir anyone can write, holding a tampered copy: same name@version, `ring: outsider`."""
    write_masque(tmp_path / "evil", ring="outsider", lens="Anything goes.")
    return tmp_path / "evil"


def on_path(*dirs: Path) -> dict[str, str]:
    return {"MASQUE_PATH": ":".join(map(str, dirs))}


def as_actor(name: str, key: str, *dirs: Path) -> dict[str, str]:
    return {"MASQUE_ACTOR": name, "MASQUE_ACTOR_KEY": key, **on_path(*dirs)}


def pin_by_first_assume(invoke: Invoke, trusted: Path) -> dict[str, Any]:
    return assume_json(invoke, "codesmith@0.1.0", "--intent", INTENT, env=on_path(trusted))


# --- a changed file claiming a pinned name@version -----------------------------------------------


@pytest.mark.parametrize("ref", ["codesmith@0.1.0", "codesmith"])
def test_a_tampered_copy_of_a_pinned_version_is_refused_naming_both_paths(
    invoke: Invoke, run_masque: Callable[..., Any], trusted: Path, evil: Path, ref: str
) -> None:
    pin_by_first_assume(invoke, trusted)
    # Only the tampered copy is on the path now (say MASQUE_PATH was pointed at the attacker's dir).
    result = run_masque("assume", ref, "--intent", INTENT, "--format", "json", env=on_path(evil))
    assert result.returncode == ExitCode.REFUSED, result.stderr
    assert "Traceback" not in result.stderr
    assert str(trusted / "codesmith.masque.yaml") in result.stderr  # the first registered
    assert str(evil / "codesmith.masque.yaml") in result.stderr  # the newcomer
    assert "new `version:`" in result.stderr and "masque registry pin codesmith@0.1.0" in result.stderr
    refused = [e for e in events("assume_refused") if e["payload"]["reason"] == "definition_mismatch"]
    assert len(refused) == 1 and refused[0]["masque"] == "codesmith" and refused[0]["version"] == "0.1.0"
    assert store_rows("SELECT count(*) FROM sessions") == [(1,)]  # only the first, trusted one


def test_check_and_show_refuse_it_too_without_importing_duckdb(
    invoke: Invoke, trusted: Path, evil: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin_by_first_assume(invoke, trusted)
    monkeypatch.setenv("MASQUE_PATH", str(evil))
    registry.clear_cache()
    for args in (["check", "codesmith@0.1.0", "--intent", INTENT], ["show", "codesmith@0.1.0"]):
        result = invoke(args)
        assert result.exit_code == ExitCode.REFUSED, args
        assert str(trusted / "codesmith.masque.yaml") in result.stderr
    assert imported_heavy("check", "codesmith@0.1.0", "--intent", INTENT, heavy=("duckdb",)) == []


def test_the_pinned_copy_is_used_when_both_are_on_the_path(invoke: Invoke, trusted: Path, evil: Path) -> None:
    pin_by_first_assume(invoke, trusted)
    # The tampered copy comes first on the path; before pinning, first-on-the-path won.
    session = assume_json(invoke, "codesmith@0.1.0", "--intent", INTENT, env=on_path(evil, trusted))
    assert session["masque_ring"] == "player"
    listing = invoke(["list", "--json"], env=on_path(evil, trusted))
    by_path = {m["path"]: m for m in json.loads(listing.stdout)["masques"]}
    assert by_path[str(evil / "codesmith.masque.yaml")]["status"] == "mismatch"
    assert by_path[str(trusted / "codesmith.masque.yaml")]["status"] == "active"
    shown = invoke(["show", "codesmith@0.1.0"], env=on_path(evil, trusted))
    assert f"ignored {evil / 'codesmith.masque.yaml'}" in shown.stderr


def test_a_file_edited_in_place_is_refused_until_re_pinned(invoke: Invoke, trusted: Path) -> None:
    pin_by_first_assume(invoke, trusted)
    path = trusted / "codesmith.masque.yaml"
    path.write_text(path.read_text().replace("ring: player", "ring: outsider"))
    result = invoke(["assume", "codesmith@0.1.0", "--intent", INTENT], env=on_path(trusted))
    assert result.exit_code == ExitCode.REFUSED
    assert "definition" in result.stderr and str(path) in result.stderr


# --- two different files, nothing pinned yet -------------------------------------------------------


def test_two_different_unpinned_copies_are_refused_naming_both(
    invoke: Invoke, trusted: Path, evil: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MASQUE_PATH", f"{evil}:{trusted}")
    with pytest.raises(DefinitionRefused) as info:
        registry.resolve("codesmith@0.1.0")
    assert info.value.reason == "definition_ambiguous"
    assert set(info.value.paths) == {str(evil / "codesmith.masque.yaml"), str(trusted / "codesmith.masque.yaml")}
    result = invoke(["assume", "codesmith", "--intent", INTENT])
    assert result.exit_code == ExitCode.REFUSED
    assert str(evil / "codesmith.masque.yaml") in result.stderr
    assert str(trusted / "codesmith.masque.yaml") in result.stderr
    (event,) = events("assume_refused")
    assert event["payload"]["reason"] == "definition_ambiguous"
    assert store_rows("SELECT count(*) FROM trusted_definitions") == [(0,)]


def test_identical_copies_are_not_a_conflict(invoke: Invoke, trusted: Path, tmp_path: Path) -> None:
    copy = tmp_path / "mirror"
    copy.mkdir()
    (copy / "codesmith.masque.yaml").write_bytes((trusted / "codesmith.masque.yaml").read_bytes())
    session = assume_json(invoke, "codesmith", "--intent", INTENT, env=on_path(copy, trusted))
    assert session["masque_ring"] == "player"


# --- a guest trying to mint the role ----------------------------------------------------------------


def test_a_guest_cannot_mint_the_role_through_a_tampered_copy(
    invoke: Invoke, trusted: Path, evil: Path, tmp_path: Path
) -> None:
    init_store(invoke)
    key = add_actor(invoke, "gus", "guest")
    private = tmp_path / "xdg-config" / "masque" / "personas"  # the guest's own dir used to win
    write_masque(private, ring="outsider", lens="Anything goes.")
    # Nothing pinned: the two different copies are refused.
    unpinned = invoke(["assume", "codesmith@0.1.0", "--intent", INTENT], env=as_actor("gus", key, trusted))
    assert unpinned.exit_code == ExitCode.REFUSED and str(private) in unpinned.stderr
    # Pinned by the admin's first assume (the guest's copy out of the admin's view).
    admin_view = {**on_path(trusted), "XDG_CONFIG_HOME": "/nonexistent"}
    assume_json(invoke, "codesmith@0.1.0", "--intent", INTENT, env=admin_view)
    for dirs in ((trusted,), (evil,), (evil, trusted)):
        result = invoke(["assume", "codesmith@0.1.0", "--intent", INTENT], env=as_actor("gus", key, *dirs))
        assert result.exit_code == ExitCode.REFUSED, (dirs, result.output)
    assert store_rows("SELECT count(*) FROM sessions WHERE actor = 'gus'") == [(0,)]
    assert store_rows("SELECT count(*) FROM credentials WHERE actor = 'gus'") == [(0,)]
    reasons = {e["payload"]["reason"] for e in events() if e["actor"] == "gus" and e["type"].endswith("refused")}
    assert {"definition_ambiguous", "definition_mismatch", "ring_refused"} <= reasons


# --- trusted roots ----------------------------------------------------------------------------------


def test_trusted_roots_config_ignores_masques_outside_them(
    invoke: Invoke, trusted: Path, evil: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_masque(evil, version="9.0.0", ring="outsider")  # a newer version: TOFU alone would take it
    (Path.cwd() / "masque.toml").write_text(f'[registry]\ntrusted_roots = ["{trusted}"]\n')
    monkeypatch.setenv("MASQUE_PATH", f"{evil}:{trusted}")
    resolved = registry.resolve("codesmith")
    assert (resolved.path, resolved.masque.ring.value) == (trusted / "codesmith.masque.yaml", "player")
    with pytest.raises(registry.NotFound) as info:
        registry.resolve("codesmith@9.0.0")
    assert "trusted_roots" in str(info.value.hint)
    listing = invoke(["list"])
    assert f"{evil / 'codesmith.masque.yaml'} (untrusted: outside [registry] trusted_roots" in listing.stdout
    session = assume_json(invoke, "codesmith", "--intent", INTENT)
    assert (session["version"], session["masque_ring"]) == ("0.1.0", "player")


def test_trusted_roots_relative_to_the_config_file_and_checked(
    invoke: Invoke, trusted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "masque.toml"
    config.write_text('[registry]\ntrusted_roots = ["trusted"]\n')
    monkeypatch.setenv("MASQUE_CONFIG", str(config))
    monkeypatch.setenv("MASQUE_PATH", str(trusted))
    assert registry.resolve("codesmith").path == trusted / "codesmith.masque.yaml"
    config.write_text('[registry]\ntrusted_roots = "trusted"\n')
    result = invoke(["check", "codesmith", "--intent", INTENT])
    assert result.exit_code == ExitCode.USAGE and "trusted_roots" in result.stderr


# --- what a service can check -----------------------------------------------------------------------


def test_token_verify_json_shows_the_granting_definition(invoke: Invoke, trusted: Path) -> None:
    session = pin_by_first_assume(invoke, trusted)
    result = invoke(["token", "verify", session["token"], "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    path = trusted / "codesmith.masque.yaml"
    assert data["masque_ring"] == "player"
    assert data["content_hash"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data["source_path"] == str(path)
    (pin,) = json.loads(invoke(["registry", "pins", "--json"]).stdout)["pins"]
    assert (pin["content_hash"], pin["source_path"], pin["via"]) == (data["content_hash"], str(path), "first_use")


# --- the admin's override ---------------------------------------------------------------------------


def test_re_pin_by_an_admin_works_and_by_anyone_else_is_refused(invoke: Invoke, trusted: Path) -> None:
    root_key = init_store(invoke)
    player_key = add_actor(invoke, "pat", "player")
    pin_by_first_assume(invoke, trusted)
    path = trusted / "codesmith.masque.yaml"
    path.write_text(path.read_text().replace("small, tested", "small, well tested"))
    env = on_path(trusted)
    assert invoke(["assume", "codesmith@0.1.0", "--intent", INTENT], env=env).exit_code == ExitCode.REFUSED

    denied = invoke(["registry", "pin", "codesmith@0.1.0"], env=as_actor("pat", player_key, trusted))
    assert denied.exit_code == ExitCode.REFUSED and "Traceback" not in denied.output
    (event,) = events("definition_pin_refused")
    assert event["actor"] == "pat"
    assert invoke(["assume", "codesmith@0.1.0", "--intent", INTENT], env=env).exit_code == ExitCode.REFUSED

    pinned = invoke(["registry", "pin", "codesmith@0.1.0", "--json"], env=as_actor("root", root_key, trusted))
    assert pinned.exit_code == 0, pinned.output
    new_hash = hashlib.sha256(path.read_bytes()).hexdigest()
    assert json.loads(pinned.stdout)["content_hash"] == new_hash
    session = assume_json(invoke, "codesmith@0.1.0", "--intent", INTENT, env=env)
    assert session["content_hash"] == new_hash
    repins = [e for e in events("definition_pinned") if e["payload"]["via"] == "admin"]
    assert len(repins) == 1 and repins[0]["payload"]["previous"]["source_path"] == str(path)


def test_re_pin_chooses_among_different_claimants_with_file(invoke: Invoke, trusted: Path, evil: Path) -> None:
    env = on_path(evil, trusted)
    ambiguous = invoke(["registry", "pin", "codesmith@0.1.0"], env=env)
    assert ambiguous.exit_code == ExitCode.USAGE and "--file" in ambiguous.stderr
    chosen = invoke(["registry", "pin", "codesmith@0.1.0", "--file", trusted / "codesmith.masque.yaml"], env=env)
    assert chosen.exit_code == 0, chosen.output
    session = assume_json(invoke, "codesmith@0.1.0", "--intent", INTENT, env=env)
    rows = store_rows("SELECT source_path, masque_ring FROM sessions WHERE id = ?", [session["session_id"]])
    assert rows == [(str(trusted / "codesmith.masque.yaml"), "player")]


def test_a_changed_extends_parent_changes_the_childs_content_hash(invoke: Invoke, trusted: Path) -> None:
    parent = write_masque(trusted, name="parent", version="1.0.0", index=2)
    parent.write_text(parent.read_text() + "access:\n  vault_role: reader\n  ttl: session\n")
    child = write_masque(trusted, name="child", version="1.0.0", index=3)
    child.write_text(child.read_text() + "extends: parent@1.0.0\n")
    env = on_path(trusted)
    first = assume_json(invoke, "child@1.0.0", "--intent", INTENT, env=env)
    assert first["role"] == "reader"
    parent.write_text(parent.read_text().replace("vault_role: reader", "vault_role: root-everything"))
    registry.clear_cache()
    result = invoke(["assume", "child@1.0.0", "--intent", INTENT], env=env)
    assert result.exit_code == ExitCode.REFUSED and str(child) in result.stderr


@pytest.mark.duckdb_only(reason="removes the local JSON copy of the pins, which a PostgreSQL store does not keep")
def test_the_python_api_wears_only_the_trusted_definition(invoke: Invoke, trusted: Path, evil: Path) -> None:
    import masque

    pin_by_first_assume(invoke, trusted)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MASQUE_PATH", str(evil))
        (Path(masque.config.pins_path())).unlink()  # even when the copy `load` reads is gone
        loaded = masque.load("codesmith@0.1.0")
        assert loaded.resolved.path == evil / "codesmith.masque.yaml"
        with pytest.raises(DefinitionRefused):
            masque.assume(loaded, INTENT)


def test_build_metadata_does_not_make_a_new_definition(invoke: Invoke, trusted: Path, evil: Path) -> None:
    pin_by_first_assume(invoke, trusted)
    (evil / "codesmith.masque.yaml").unlink()
    write_masque(evil, version="0.1.0+evil", ring="outsider")  # semver-equal to 0.1.0: an exact pin matches it
    for ref in ("codesmith@0.1.0", "codesmith"):
        result = invoke(["assume", ref, "--intent", INTENT], env=on_path(evil))
        assert result.exit_code == ExitCode.REFUSED, (ref, result.output)
        assert "definition" in result.stderr


def test_pins_lists_nothing_without_a_store_and_creates_none(invoke: Invoke, isolated_env: Path) -> None:
    result = invoke(["registry", "pins"])
    assert result.exit_code == 0 and "nothing pinned yet" in result.stdout
    assert not (isolated_env / "masque.duckdb").exists()


def test_list_marks_unpinned_conflicts(invoke: Invoke, trusted: Path, evil: Path) -> None:
    listing = invoke(["list", "--json"], env=on_path(evil, trusted))
    statuses = {m["path"]: (m["status"], m["active"]) for m in json.loads(listing.stdout)["masques"]}
    assert statuses == {
        str(evil / "codesmith.masque.yaml"): ("conflict", False),
        str(trusted / "codesmith.masque.yaml"): ("conflict", False),
    }


def test_pins_name_who_pinned_only_to_those_who_may_see_them(invoke: Invoke, trusted: Path) -> None:
    pin_by_first_assume(invoke, trusted)  # pinned by the founder, an admin
    key = add_actor(invoke, "gwen", "guest")
    (seen,) = json.loads(invoke(["registry", "pins", "--json"]).stdout)["pins"]
    (hidden,) = json.loads(invoke(["registry", "pins", "--json"], env=as_actor("gwen", key, trusted)).stdout)["pins"]
    assert seen["pinned_by"] is not None and hidden["pinned_by"] is None
    assert hidden["content_hash"] == seen["content_hash"]  # masques are public; their pins too

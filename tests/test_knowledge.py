"""Knowledge pointers resolve through [knowledge] in the config file; strict mode refuses the unresolved."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masque.errors import ExitCode, Refused, UsageError
from masque.masques import knowledge


@pytest.fixture
def config() -> Path:
    path = Path.cwd() / "masque.toml"
    path.write_text(
        "[knowledge]\n"
        'homelab = "http://localhost:8080"\n'
        'homelab-prod = "https://prod.example:9443/mcp/"\n'
        'docs = "http://127.0.0.1:9000"\n'
    )
    return path


def test_server_and_resource_join_the_base_url(config: Path) -> None:
    [pointer] = knowledge.resolve(["mcp://homelab/inventory"])
    assert pointer == knowledge.Pointer(
        "mcp://homelab/inventory", "homelab", "inventory", "http://localhost:8080/inventory"
    )
    [nested] = knowledge.resolve(["mcp://docs/guides/deploy"])
    assert nested.endpoint == "http://127.0.0.1:9000/guides/deploy"


def test_server_alone_resolves_to_the_base_url(config: Path) -> None:
    [pointer] = knowledge.resolve(["mcp://homelab"])
    assert (pointer.resource, pointer.endpoint) == (None, "http://localhost:8080")


def test_seed_dashed_form_maps_the_suffix_to_a_resource(config: Path) -> None:
    pointers = knowledge.resolve(["mcp://homelab-inventory", "mcp://homelab-runbooks", "mcp://homelab-prod-logs"])
    assert [p.endpoint for p in pointers] == [
        "http://localhost:8080/inventory",
        "http://localhost:8080/runbooks",
        "https://prod.example:9443/mcp/logs",  # the longest matching server name wins
    ]
    # An exact key beats the dashed reading.
    assert knowledge.resolve(["mcp://homelab-prod"])[0].endpoint == "https://prod.example:9443/mcp"


def test_server_names_are_case_insensitive(config: Path) -> None:
    assert knowledge.resolve(["mcp://HomeLab/x"])[0].endpoint == "http://localhost:8080/x"


def test_unresolved_pointers_have_no_endpoint(config: Path) -> None:
    pointers = knowledge.resolve(["mcp://unknown/thing", "https://not-mcp.example/x", "mcp://homelab/ok"])
    assert [p.endpoint for p in pointers] == [None, None, "http://localhost:8080/ok"]
    assert [p.resolved for p in pointers] == [False, False, True]


def test_strict_refuses_listing_every_unresolved_pointer(config: Path) -> None:
    with pytest.raises(Refused) as info:
        knowledge.resolve(["mcp://homelab/ok", "mcp://wiki/a", "mcp://vault/b"], strict=True)
    assert info.value.reason == "knowledge_unresolved"
    assert info.value.exit_code == ExitCode.REFUSED
    assert "mcp://wiki/a, mcp://vault/b" in str(info.value)
    assert str(config) in (info.value.hint or "")
    assert knowledge.resolve(["mcp://homelab/ok"], strict=True)[0].endpoint


def test_without_a_config_nothing_resolves() -> None:
    assert knowledge.resolve(["mcp://homelab/inventory"])[0].endpoint is None
    with pytest.raises(Refused):
        knowledge.resolve(["mcp://homelab/inventory"], strict=True)


def test_masque_config_env_points_at_the_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text('[knowledge]\nwiki = "http://wiki.local"\n')
    monkeypatch.setenv("MASQUE_CONFIG", str(elsewhere))
    assert knowledge.resolve(["mcp://wiki/page"])[0].endpoint == "http://wiki.local/page"


def test_a_non_string_server_entry_is_a_usage_error_naming_it() -> None:
    (Path.cwd() / "masque.toml").write_text("[knowledge]\nhomelab = 8080\n")
    with pytest.raises(UsageError) as info:
        knowledge.resolve(["mcp://homelab/x"])
    assert "[knowledge] homelab" in str(info.value)


def test_pointer_serialises() -> None:
    assert knowledge.Pointer("mcp://a/b", "a", "b", None).to_dict() == {
        "uri": "mcp://a/b",
        "server": "a",
        "resource": "b",
        "endpoint": None,
    }


_NAME = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(server=_NAME, resource=st.from_regex(r"[a-z0-9_.-]{1,8}(/[a-z0-9_.-]{1,8}){0,2}", fullmatch=True))
def test_configured_server_always_resolves_to_base_plus_resource(server: str, resource: str) -> None:
    table = {server: "http://h:1/base/"}
    pointer = knowledge.resolve_one(f"mcp://{server}/{resource}", table)
    assert pointer.endpoint == f"http://h:1/base/{resource}"
    assert (pointer.server, pointer.resource) == (server, resource)

"""Credentials: token shape, only an HMAC stored, verify/renew/lookup/revoke, TTL rules."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sessions_support import add_actor, assume_json, events, init_store, store_rows, write_masques

from masque import store
from masque.errors import Refused
from masque.model import Ring
from masque.trust import credentials

Invoke = Callable[..., Any]


@pytest.fixture(autouse=True)
def _setup(invoke: Invoke) -> None:
    write_masques()
    init_store(invoke)


def _age(accessor: str, **column_offsets: dt.timedelta) -> None:
    """Move a credential's timestamps into the past (the clock is not something tests wait for)."""
    now = dt.datetime.now(dt.timezone.utc)
    with store.transaction() as conn:
        for column, offset in column_offsets.items():
            conn.execute(f"UPDATE credentials SET {column} = ? WHERE accessor = ?", [now + offset, accessor])


def test_token_is_prefixed_256_bit_and_never_stored_or_logged(invoke: Invoke) -> None:
    s = assume_json(invoke, "tool", "--intent", "implement the parser")
    token = s["token"]
    assert token.startswith("msq_") and len(token) == 4 + 43  # 32 random bytes, base64url
    assert s["accessor"].startswith("acc_") and s["role"] == "tool-ci"
    invoke(["release", s["session_id"]])
    for table in ("credentials", "sessions", "events", "settings", "actors"):
        for row in store_rows(f"SELECT * FROM {table}"):
            assert token not in json.dumps(row, default=str), table
    ((token_hash,),) = store_rows("SELECT token_hash FROM credentials")
    assert len(token_hash) == 64  # HMAC-SHA256 hex


def test_verify_valid_json_and_exit_codes(invoke: Invoke) -> None:
    s = assume_json(invoke, "tool", "--intent", "implement the parser")
    result = invoke(["token", "verify", s["token"], "--json"])
    data = json.loads(result.stdout)
    assert result.exit_code == 0 and data["valid"] and data["session_id"] == s["session_id"]
    assert data["role"] == "tool-ci" and data["accessor"] == s["accessor"]
    for bad, reason in (("msq_" + "A" * 43, "unknown"), ("hello", "malformed")):
        out = invoke(["token", "verify", bad, "--json"])
        assert out.exit_code == 3 and json.loads(out.stdout)["reason"] == reason


def test_iso_ttl_expires_even_while_the_session_is_open(invoke: Invoke) -> None:
    s = assume_json(invoke, "tool", "--intent", "implement the parser")
    started = dt.datetime.fromisoformat(s["started_at"])
    assert dt.datetime.fromisoformat(s["credential_expires_at"]) - started == dt.timedelta(hours=2)
    _age(s["accessor"], expires_at=dt.timedelta(seconds=-1))
    result = invoke(["token", "verify", s["token"], "--json"])
    assert result.exit_code == 3 and json.loads(result.stdout)["reason"] == "expired"
    ((status,),) = store_rows("SELECT status FROM sessions WHERE id = ?", [s["session_id"]])
    assert status == "active"


def test_session_ttl_dies_at_release(invoke: Invoke) -> None:
    s = assume_json(invoke, "ops", "--intent", "deploy monitoring")
    assert invoke(["token", "verify", s["token"]]).exit_code == 0
    invoke(["release", s["session_id"]])
    result = invoke(["token", "verify", s["token"], "--json"])
    assert result.exit_code == 3 and json.loads(result.stdout)["reason"] == "revoked"
    assert [e["payload"]["accessor"] for e in events("credential_revoked")] == [s["accessor"]]


def test_ttl_longer_than_the_masque_allows_is_refused_not_shortened(invoke: Invoke) -> None:
    result = invoke(["assume", "tool", "--intent", "implement it", "--ttl", "PT3H", "--format", "json"])
    assert result.exit_code == 3
    assert "at most 2h" in result.stderr and "access.ttl PT2H" in result.stderr
    (refusal,) = events("assume_refused")
    assert refusal["payload"]["reason"] == "ttl_too_long"
    assert store_rows("SELECT count(*) FROM credentials") == [(0,)]
    ok = assume_json(invoke, "tool", "--intent", "implement it", "--ttl", "15m")
    length = dt.datetime.fromisoformat(ok["credential_expires_at"]) - dt.datetime.fromisoformat(ok["started_at"])
    assert length == dt.timedelta(minutes=15)


def test_the_twelve_hour_cap_comes_from_config(invoke: Invoke, tmp_path: Any, monkeypatch: Any) -> None:
    assert invoke(["assume", "ops", "--intent", "deploy it", "--ttl", "13h"]).exit_code == 3
    cfg = tmp_path / "masque.toml"
    cfg.write_text("[limits]\nmax_ttl_seconds = 600\n")
    monkeypatch.setenv("MASQUE_CONFIG", str(cfg))
    s = assume_json(invoke, "ops", "--intent", "deploy it")
    length = dt.datetime.fromisoformat(s["expires_at"]) - dt.datetime.fromisoformat(s["started_at"])
    assert length == dt.timedelta(minutes=10)


def test_renew_extends_within_the_maximum(invoke: Invoke) -> None:
    s = assume_json(invoke, "tool", "--intent", "implement it", "--ttl", "15m")
    renewed = json.loads(invoke(["token", "renew", s["token"], "--ttl", "1h", "--json"]).stdout)
    new_expiry = dt.datetime.fromisoformat(renewed["expires_at"])
    assert new_expiry > dt.datetime.fromisoformat(s["credential_expires_at"])
    too_long = invoke(["token", "renew", s["token"], "--ttl", "3h"])
    assert too_long.exit_code == 3 and "maximum lifetime" in too_long.stderr
    assert len(events("credential_renewed")) == 1


def test_renew_of_an_expired_token_is_refused(invoke: Invoke) -> None:
    s = assume_json(invoke, "tool", "--intent", "implement it")
    _age(s["accessor"], expires_at=dt.timedelta(seconds=-5))
    assert invoke(["token", "renew", s["token"]]).exit_code == 3


def test_lookup_and_revoke_by_accessor_without_the_secret(invoke: Invoke) -> None:
    s = assume_json(invoke, "tool", "--intent", "implement it")
    looked = invoke(["token", "lookup", s["accessor"], "--json"])
    assert looked.exit_code == 0 and json.loads(looked.stdout)["session_id"] == s["session_id"]
    assert invoke(["token", "revoke", s["accessor"]]).exit_code == 0
    assert invoke(["token", "verify", s["token"]]).exit_code == 3
    assert invoke(["token", "lookup", "acc_nope"]).exit_code == 4


def test_a_player_cannot_revoke_or_even_see_an_admins_credential(invoke: Invoke) -> None:
    s = assume_json(invoke, "ops", "--intent", "deploy it")
    key = add_actor(invoke, "pat", "player")
    result = invoke(["token", "revoke", s["accessor"]], env={"MASQUE_ACTOR": "pat", "MASQUE_ACTOR_KEY": key})
    # A more trusted ring's credential is unknown to a player: not found, and its actor stays unnamed.
    assert result.exit_code == 4 and "actor" not in result.output
    ended = invoke(["revoke", s["session_id"], "--now"], env={"MASQUE_ACTOR": "pat", "MASQUE_ACTOR_KEY": key})
    assert ended.exit_code == 4 and "actor" not in ended.output
    assert invoke(["token", "verify", s["token"]]).exit_code == 0


def test_guest_token_stops_verifying_after_the_guest_cap(invoke: Invoke) -> None:
    key = add_actor(invoke, "gia", "guest")
    s = assume_json(invoke, "peer", "--intent", "review it", env={"MASQUE_ACTOR": "gia", "MASQUE_ACTOR_KEY": key})
    _age(s["accessor"], issued_at=dt.timedelta(hours=-2), expires_at=dt.timedelta(hours=1))
    result = json.loads(invoke(["token", "verify", s["token"], "--json"]).stdout)
    assert result["reason"] == "not_qualified" and "capped" in result["message"]


def test_no_credential_when_the_session_cannot_be_written(invoke: Invoke, store_url: str | None) -> None:
    """The session, its events and the credential commit together: a failing write mints nothing."""
    from masque.sessions import lifecycle as sessions

    with store.transaction() as conn:  # the event insert will fail
        if store_url is not None:  # PostgreSQL's simple views take inserts: refuse every new row instead
            conn.execute("ALTER TABLE events ADD CONSTRAINT no_new_events CHECK (false) NOT VALID")
        else:  # events becomes a read-only view
            conn.execute("DROP INDEX events_type")
            conn.execute("DROP INDEX events_session")
            conn.execute("ALTER TABLE events RENAME TO events_kept")
            conn.execute("CREATE VIEW events AS SELECT * FROM events_kept")
    with pytest.raises(Exception, match="events"):
        sessions.assume("tool", "implement it")
    assert store_rows("SELECT count(*) FROM credentials") == [(0,)]
    assert store_rows("SELECT count(*) FROM sessions") == [(0,)]


def test_broker_is_configurable_and_unknown_brokers_are_refused(monkeypatch: Any, tmp_path: Any) -> None:
    assert isinstance(credentials.broker(), credentials.LocalBroker)
    cfg = tmp_path / "masque.toml"
    cfg.write_text('[credentials]\nbroker = "vault"\n')
    monkeypatch.setenv("MASQUE_CONFIG", str(cfg))
    from masque.errors import UsageError

    with pytest.raises(UsageError, match="not available"):
        credentials.broker()


_TTLS = {"session": None, "PT30M": 1800, "PT2H": 7200, "PT20H": 72000}


@given(
    ring=st.sampled_from(list(Ring)),
    masque_ttl=st.sampled_from(sorted(_TTLS)),
    chained=st.booleans(),
    minutes=st.one_of(st.none(), st.integers(min_value=1, max_value=25 * 60)),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_ttl_rules_as_a_property(ring: Ring, masque_ttl: str, chained: bool, minutes: int | None) -> None:
    """Allowed = min(12h, guest 1h, chained 1h, the masque's ttl); longer requests are refused, never cut."""
    from masque.sessions import lifecycle as sessions
    from masque.trust.rings import Acting, ActingVia, Actor

    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    wearable = sessions.Wearable("m", "M", "1.0.0", Ring.OUTSIDER, lambda _: None, "lens", ttl=masque_ttl)  # type: ignore[arg-type,return-value]
    who = Acting(Actor("a", ring), ActingVia.KEY)
    parent = sessions.Session("ses_p", "p", "1", "a", "x", now, now + dt.timedelta(hours=12)) if chained else None
    cap = 12 * 3600
    if ring is Ring.GUEST or chained:
        cap = 3600
    masque_seconds = _TTLS[masque_ttl]
    allowed = min(cap, masque_seconds) if masque_seconds else cap
    requested = f"{minutes}m" if minutes is not None else None
    if minutes is not None and minutes * 60 > allowed:
        with pytest.raises(Refused) as info:
            sessions._plan_ttl(wearable, who, parent, False, requested, now)
        assert info.value.reason == "ttl_too_long"
        return
    plan = sessions._plan_ttl(wearable, who, parent, False, requested, now)
    assert (plan.session_expires - now).total_seconds() == cap
    assert (plan.cred_max - now).total_seconds() == allowed
    assert (plan.cred_expires - now).total_seconds() == (minutes * 60 if minutes is not None else allowed)

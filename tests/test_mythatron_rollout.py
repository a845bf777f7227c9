"""Blending with tone guardrails, routing with fallback events, and staged rollouts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from masque import store
from masque.errors import NotFound, Refused, UsageError
from masque.masques import stages
from masque.masques.catalog import lookup
from masque.model import Stage
from masque.mythatron.blend import blend_profiles
from masque.mythatron.routing import route
from masque.trust import rings

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "masks"
Invoke = Callable[..., Any]


@pytest.fixture(autouse=True)
def _on_path(masks: Path) -> Path:
    return masks


def events(kind: str) -> list[dict[str, Any]]:
    with store.connect(read_only=True) as conn:
        found = store.rows(conn, "SELECT * FROM events WHERE type = ? ORDER BY id", [kind])
    for row in found:
        row["payload"] = json.loads(row["payload"])
    return found


def new_version(masks: Path, slug: str, version: str, stage: str) -> Path:
    """Copy a mask as another version at another stage."""
    doc = json.loads((masks / f"{slug}.mask.json").read_text(encoding="utf-8"))
    doc.update(version=version, stage=stage)
    doc["changelog"].insert(0, {"version": version, "changes": "next"})
    path = masks / f"{slug}-{version}.mask.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


# --- blending ---------------------------------------------------------------------------------------


def test_blend_weights_are_normalised_and_the_heavier_persona_leads() -> None:
    blend = blend_profiles(["critic", "professor"], [3, 7])
    assert [(p.mask, round(p.weight, 2)) for p in blend.parts] == [
        ("mask.professor@1.3.0", 0.7),
        ("mask.critic@1.0.0", 0.3),
    ]
    assert blend.persona.startswith("You are a literary professor")
    assert "at 30% weight" in blend.persona and "exacting critic" in blend.persona
    assert blend.constraints.index("Cite textual evidence") < blend.constraints.index("Point to the exact sentence")
    assert not blend.flagged


def test_blend_unions_constraints_without_duplicates_and_formats_by_weight() -> None:
    blend = blend_profiles(["debugger", "mentor", "professor"], [0.2, 0.5, 0.3])
    assert blend.format == "markdown"  # mentor 0.5 + professor 0.3 outweigh debugger's json
    heavy_json = blend_profiles(["debugger", "mentor"], [0.6, 0.4])
    assert heavy_json.format == "json"
    with_parent = blend_profiles(["professor", "base/professor@1.0.0"], [2, 1])
    assert with_parent.constraints.count("Cite textual evidence") == 1  # shared with the parent: once
    assert with_parent.parts[1].mask == "mask.base.professor@1.0.0"


def test_blend_instructions_are_a_complete_prompt() -> None:
    blend = blend_profiles(["lyricist", "composer"], [0.5, 0.5])
    assert blend.lead == "mask.lyricist@1.0.0"  # equal weights keep the order given
    assert "Constraints:\n- Keep lines singable" in blend.instructions and "Format: verse" in blend.instructions


@pytest.mark.parametrize("weights", [[0.5, 0], [1, -1], [float("nan"), 1]])
def test_blend_weights_must_be_positive(weights: list[float]) -> None:
    with pytest.raises(UsageError, match="positive"):
        blend_profiles(["professor", "critic"], weights)


def test_romantic_plus_debugger_is_flagged_and_refused_unless_allowed(mt: Invoke) -> None:
    blend = blend_profiles(["romantic", "debugger"], [1, 1])
    assert blend.flagged and ("romantic", "debugger") in [f.pair for f in blend.flags]
    result = mt(["mask", "blend", "romantic:0.5", "debugger:0.5"])
    assert result.exit_code == 3 and "flagged for review" in result.stderr and "--allow-flagged" in result.stderr
    allowed = mt(["mask", "blend", "romantic:0.5", "debugger:0.5", "--allow-flagged", "--json"])
    assert allowed.exit_code == 0 and json.loads(allowed.stdout)["flagged"] is True


def test_the_guardrail_table_is_configurable(mt: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "masque.toml"
    config.write_text('[mythatron]\nincompatible_tones = [["scholarly", "candid"]]\n', encoding="utf-8")
    monkeypatch.setenv("MASQUE_CONFIG", str(config))
    assert mt(["mask", "blend", "romantic:1", "debugger:1"]).exit_code == 0  # no longer in the table
    result = mt(["mask", "blend", "professor:0.7", "critic:0.3"])
    assert result.exit_code == 3 and "scholarly (mask.professor@1.3.0) + candid (mask.critic@1.0.0)" in result.stderr


def test_blend_cli_text_and_bad_specs(mt: Invoke) -> None:
    result = mt(["mask", "blend", "professor:0.7", "critic:0.3"])
    assert result.exit_code == 0
    assert result.stdout.startswith("# blend: mask.professor@1.3.0 70%, mask.critic@1.0.0 30%")
    assert mt(["mask", "blend", "professor:lots"]).exit_code == 2
    assert mt(["mask", "blend", "nobody:1"]).exit_code == 4


# --- routing ----------------------------------------------------------------------------------------


def test_every_seed_mode_routes_to_its_masks(mt: Invoke) -> None:
    expected = {
        "story.continue": ["mask.professor@1.3.0", "mask.critic@1.0.0"],
        "song.compose": ["mask.lyricist@1.0.0", "mask.composer@1.0.0"],
        "poem.write": ["mask.poet@1.0.0", "mask.romantic@1.0.0"],
        "code.debug": ["mask.debugger@1.0.0", "mask.mentor@1.0.0"],
    }
    for mode, refs in expected.items():
        result = route(mode)
        assert [m.mask for m in result.masks] == refs and not result.events
    assert mt(["route", "code.debug"]).stdout.splitlines() == expected["code.debug"]


def test_a_missing_mask_degrades_to_generalist_and_records_an_event(masks: Path, mt: Invoke) -> None:
    (masks / "critic.mask.json").unlink()
    result = mt(["route", "story.continue", "--json"])
    assert result.exit_code == 0, result.output
    routed = json.loads(result.stdout)
    assert [m["mask"] for m in routed["masks"]] == ["mask.professor@1.3.0", "mask.generalist@1.0.0"]
    assert routed["masks"][1]["fallback"] and routed["masks"][1]["reason"] == "missing"
    (event,) = events("mask_routing_fallback")
    assert event["id"] == routed["fallback_events"][0] and event["masque"] == "mask.critic"
    assert event["payload"] == {
        "mode": "story.continue",
        "source": "routes",
        "requested": "critic",
        "reason": "missing",
        "detail": "no mask named 'critic' on the search path",
        "fallback": "mask.generalist@1.0.0",
    }


def test_a_fallback_event_records_the_proven_actor_never_a_bare_name(
    masks: Path, mt: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    (masks / "critic.mask.json").unlink()
    monkeypatch.setenv("MASQUE_ACTOR", "root")  # a name without its key proves nothing
    refused = mt(["route", "story.continue", "--json"])
    assert refused.exit_code == 3 and "MASQUE_ACTOR_KEY" in refused.output
    assert events("mask_routing_fallback") == []
    monkeypatch.delenv("MASQUE_ACTOR")
    assert mt(["route", "story.continue"]).exit_code == 0
    (event,) = events("mask_routing_fallback")
    assert event["actor"] == rings.acting().actor.name  # the founder: nothing was presented


def test_a_mask_that_is_not_live_or_is_retired_falls_back(masks: Path) -> None:
    doc = json.loads((masks / "poet.mask.json").read_text(encoding="utf-8"))
    doc["stage"] = "beta"
    (masks / "poet.mask.json").write_text(json.dumps(doc), encoding="utf-8")
    stages.retire("romantic@1.0.0")
    result = route("poem.write")
    assert [m.mask for m in result.masks] == ["mask.generalist@1.0.0"]  # both degrade to one generalist
    assert [(e["payload"]["requested"], e["payload"]["reason"]) for e in events("mask_routing_fallback")] == [
        ("poet", "not_live"),
        ("romantic", "retired"),
    ]


def test_override_and_experiment_flags(mt: Invoke) -> None:
    assert route("story.continue", flag="critic-first").masks[0].mask == "mask.critic@1.0.0"
    assert route("story.continue", flag="critic-first").source == "experiment:critic-first"
    assert route("code.debug", flag="critic-first").masks[0].mask == "mask.debugger@1.0.0"
    overridden = route("story.continue", override="poet")
    assert [m.mask for m in overridden.masks] == ["mask.poet@1.0.0"] and overridden.source == "override"
    assert mt(["route", "story.continue", "--flag", "nope"]).exit_code == 2


def test_unknown_modes_and_missing_fallbacks_are_not_found(masks: Path, mt: Invoke) -> None:
    result = mt(["route", "story.continu"])
    assert result.exit_code == 4 and "story.continue" in result.stderr  # suggests the close mode
    (masks / "critic.mask.json").unlink()
    (masks / "generalist.mask.json").unlink()
    with pytest.raises(NotFound, match="fallback 'generalist'"):
        route("story.continue")


def test_a_broken_routes_file_names_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "routes.yaml"
    bad.write_text("routes:\n  story.continue: []\n", encoding="utf-8")
    with pytest.raises(Exception, match=r"routes\.yaml:2:\d+: a route is a non-empty list"):
        route("story.continue", routes_file=str(bad))


# --- stages -----------------------------------------------------------------------------------------


def test_promotion_moves_one_stage_at_a_time(masks: Path, mt: Invoke) -> None:
    new_version(masks, "professor", "1.4.0", "draft")
    with pytest.raises(Refused) as skipped:
        stages.promote("professor@1.4.0", "live")
    assert skipped.value.reason == "stage_order" and "draft -> beta" in str(skipped.value)
    assert mt(["mask", "promote", "professor@1.4.0", "--to", "beta"]).exit_code == 0
    assert lookup("professor@1.4.0").stage is Stage.BETA
    assert lookup("professor").masque.version == "1.3.0"  # bare names still mean the newest live
    assert mt(["mask", "promote", "professor@1.4.0", "--to", "beta"]).exit_code == 3  # already beta
    assert mt(["mask", "promote", "professor@1.4.0", "--to", "live"]).exit_code == 0
    assert lookup("professor").masque.version == "1.4.0"
    assert mt(["mask", "promote", "professor@1.4.0", "--to", "draft"]).exit_code == 2
    history = json.loads(mt(["mask", "history", "professor", "--json"]).stdout)["changes"]
    assert [(h["from_stage"], h["to_stage"]) for h in history] == [("draft", "beta"), ("beta", "live")]
    assert [e["payload"]["to"] for e in events("mask_stage_changed")] == ["beta", "live"]


def test_retire_is_a_soft_delete(masks: Path, mt: Invoke) -> None:
    new_version(masks, "critic", "1.1.0", "live")
    assert lookup("critic").masque.version == "1.1.0"
    result = mt(["mask", "retire", "critic@1.1.0"])
    assert result.exit_code == 0 and "live -> retired" in result.stdout
    assert lookup("critic").masque.version == "1.0.0"  # hidden from bare-name resolution
    assert lookup("critic@1.1.0").stage is Stage.RETIRED  # still loadable by exact version
    assert "already retired" in mt(["mask", "retire", "critic@1.1.0"]).stdout
    with pytest.raises(Refused) as caught:
        stages.promote("critic@1.1.0", "live")
    assert caught.value.reason == "stage_retired"
    assert [h["to_stage"] for h in stages.history("critic@1.1.0")] == ["retired"]  # still in history


def test_generate_uses_the_mask_and_logs_the_call(mt: Invoke) -> None:
    result = mt(["generate", "professor", "What themes are in my lighthouse chapter?"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("### Theme Analysis")
    assert "offline provider" in result.stderr
    with store.connect(read_only=True) as conn:
        (row,) = store.rows(conn, "SELECT * FROM generations")
    assert row["masque"] == "mask.professor" and row["version"] == "1.3.0" and row["provider"] == "offline"
    assert row["prompt"] == "What themes are in my lighthouse chapter?" and row["status"] == "ok"
    assert row["response"].startswith("### Theme Analysis") and row["session_id"] is None
    assert row["completion_tokens"] > 0 and row["latency_ms"] >= 0


def test_generate_under_a_session_needs_that_session_proven(invoke: Invoke, mt: Invoke) -> None:
    from tests.test_sessions_support import add_actor

    assert invoke(["init", "--founder", "root", "--json"]).exit_code == 0
    founders = invoke(["assume", "mask.professor@1.3.0", "--intent", "critique my opening", "--format", "json"])
    session = json.loads(founders.stdout)["session_id"]
    key = add_actor(invoke, "gus", "guest")
    as_guest = {"MASQUE_ACTOR": "gus", "MASQUE_ACTOR_KEY": key}
    # The guest names the founder's player-ring session, bare or by its id in the environment: unknown to it.
    assert mt(["generate", "--session", session, "x"], env=as_guest).exit_code == 4
    assert mt(["generate", "x"], env={**as_guest, "MASQUE_SESSION_ID": session}).exit_code == 4
    with store.connect(read_only=True) as conn:
        assert store.rows(conn, "SELECT id FROM generations") == []


def test_generate_under_a_session_wears_its_version_and_needs_it_active(invoke: Invoke, mt: Invoke) -> None:
    assert invoke(["init", "--founder", "root", "--json"]).exit_code == 0
    assumed = invoke(["assume", "mask.critic@1.0.0", "--intent", "critique my opening", "--format", "json"])
    session = json.loads(assumed.stdout)["session_id"]
    result = invoke(["generate", "--session", session, "Critique: a dark and stormy night."])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("**Issue 1")
    result = mt(["generate", "Is my chase scene paced right?"], env={"MASQUE_SESSION_ID": session})
    assert result.exit_code == 0 and "pacing" in result.stdout
    with store.connect(read_only=True) as conn:
        logged = store.rows(conn, "SELECT session_id, masque, version FROM generations ORDER BY id")
    assert logged == [{"session_id": session, "masque": "mask.critic", "version": "1.0.0"}] * 2
    assert invoke(["release", session]).exit_code == 0
    ended = mt(["generate", "--session", session, "again"])
    assert ended.exit_code == 3 and "generate needs an active session" in ended.stderr
    assert mt(["generate", "--session", "ses_nope", "x"]).exit_code == 4
    assert mt(["generate", "critic", "--session", session, "x"]).exit_code == 2

"""`masque stats` at the five levels, checked against numbers worked out by hand.

The fixture tests/cases/reflection/sessions.jsonl holds ten sessions (S01-S10) of two masques and
three refusals. Values: - = -1, / = 0, + = 1, * = 2, e = 3. By hand:

  id   masque@version   actor(ring)  start (2026)  secs  status     scores (newest last)
  S01  codesmith@0.1.0  ann(player)  01-05 Mon     600   ended      +
  S02  codesmith@0.1.0  ann(player)  01-06         1200  ended      - then *
  S03  codesmith@0.1.0  bob(admin)   01-07         1800  ended      e
  S04  codesmith@0.2.0  ann(player)  01-13         2400  ended      /
  S05  codesmith@0.2.0  ann(player)  01-14         -     active     /
  S06  codesmith@0.2.0  bob(admin)   01-27         3000  abandoned  -
  S07  homelab@1.0.0    bob(admin)   01-05         3600  ended      *
  S08  homelab@1.0.0    bob(admin)   01-12         300   revoked    +
  S09  homelab@1.0.0    ann(player)  01-13         900   ended      e
  S10  homelab@1.0.0    ann(player)  01-28         -     active     (none)

codesmith needs ring player, homelab admin. Claims: codesmith@0.1.0 zig competent, @0.2.0 zig expert,
homelab@1.0.0 zig novice + ansible proficient. Refusals: R1 intent_denied codesmith@0.1.0 ann 01-05,
R2 ring_refused homelab@1.0.0 ann 01-06, R3 intent_denied homelab@1.0.0 bob 01-20 (no ring in the
payload: taken from homelab's sessions).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

FIXTURE = Path(__file__).parent / "cases" / "reflection" / "sessions.jsonl"
NO_SCORES = {"+": 0, "-": 0, "/": 0, "*": 0, "e": 0}


@pytest.fixture
def stats(invoke: Callable[..., Any]) -> Callable[..., dict[str, Any]]:
    """Import the fixture through the CLI, then run `masque stats ARGS --json`."""
    result = invoke(["sessions", "import", FIXTURE])
    assert result.exit_code == 0, result.output

    def _stats(*args: str) -> dict[str, Any]:
        out = invoke(["stats", *args, "--json"])
        assert out.exit_code == 0, out.output
        return json.loads(out.stdout)

    return _stats


def test_system_level_numbers(stats: Callable[..., dict[str, Any]]) -> None:
    r = stats()
    assert r["level"] == "system" and r["subject"] is None
    # S05 and S10 were active when exported: an import brings them in ended (imported_live), never live.
    assert r["sessions"] == {"total": 10, "active": 0, "revoking": 0, "ended": 8, "revoked": 1, "abandoned": 1}
    # 8 ended durations 300..3600: p50 halfway between 1200 and 1800; p95 = 3000 + 0.65 * 600.
    assert r["duration_seconds"] == {"p50": 1500.0, "p95": 3390.0, "measured": 8}
    assert r["score_counts"] == {"+": 2, "-": 1, "/": 2, "*": 2, "e": 2}
    assert r["scored_sessions"] == 9
    assert r["mean_score"] == 1.222  # (1+2+3+0+0-1+2+1+3) / 9 = 11/9
    assert r["trend"] == [
        {"week": "2026-01-05", "sessions": 4, "scored": 4, "mean_score": 2.0},
        {"week": "2026-01-12", "sessions": 4, "scored": 4, "mean_score": 1.0},
        {"week": "2026-01-19", "sessions": 0, "scored": 0, "mean_score": None},
        {"week": "2026-01-26", "sessions": 2, "scored": 1, "mean_score": -1.0},
    ]
    assert r["refusals"] == {"intent_denied": 2, "ring_refused": 1}
    assert r["top_intents"] == [
        {"intent": "deploy the stack", "sessions": 4},
        {"intent": "implement the parser", "sessions": 3},  # "Implement the parser " folds in
        {"intent": "test the cli", "sessions": 2},
        {"intent": "review docs", "sessions": 1},
    ]
    assert r["population"] == {"masques": 2, "actors": 2}
    assert [(m["masque"], m["sessions"], m["scored"], m["mean_score"]) for m in r["top_masques"]] == [
        ("homelab", 4, 3, 2.0),
        ("codesmith", 6, 6, 0.833),
    ]
    assert [m["masque"] for m in r["bottom_masques"]] == ["codesmith", "homelab"]
    assert [(x["masque_ring"], x["sessions"], x["scored"], x["mean_score"]) for x in r["rings"]] == [
        ("admin", 4, 3, 2.0),
        ("player", 6, 6, 0.833),
    ]


def test_masque_level_reports_each_version(stats: Callable[..., dict[str, Any]]) -> None:
    r = stats("Codesmith")  # names are case-folded like registry keys
    assert r["level"] == "masque" and r["subject"] == "codesmith"
    assert r["sessions"] == {"total": 6, "active": 0, "revoking": 0, "ended": 5, "revoked": 0, "abandoned": 1}
    assert r["duration_seconds"] == {"p50": 1800.0, "p95": 2880.0, "measured": 5}
    assert r["score_counts"] == {"+": 1, "-": 1, "/": 2, "*": 1, "e": 1}
    assert r["mean_score"] == 0.833  # 5 / 6
    assert r["refusals"] == {"intent_denied": 1, "ring_refused": 0}
    assert [(t["week"], t["sessions"], t["mean_score"]) for t in r["trend"]] == [
        ("2026-01-05", 3, 2.0),
        ("2026-01-12", 2, 0.0),
        ("2026-01-19", 0, None),
        ("2026-01-26", 1, -1.0),
    ]
    v1, v2 = r["versions"]
    assert (v1["version"], v1["sessions"], v1["scored"], v1["mean_score"]) == ("0.1.0", 3, 3, 2.0)
    assert (v1["duration_p50"], v1["duration_p95"], v1["active"], v1["abandoned"]) == (1200.0, 1740.0, 0, 0)
    assert v1["score_counts"] == {"+": 1, "-": 0, "/": 0, "*": 1, "e": 1}
    assert (v2["version"], v2["sessions"], v2["scored"], v2["mean_score"]) == ("0.2.0", 3, 3, -0.333)
    assert (v2["duration_p50"], v2["duration_p95"], v2["active"], v2["abandoned"]) == (2700.0, 2970.0, 0, 1)
    assert r["skills"] == [
        {"version": "0.1.0", "skill": "skill://programming/zig", "level": "competent"},
        {"version": "0.2.0", "skill": "skill://programming/zig", "level": "expert"},
    ]


def test_masque_at_one_version(stats: Callable[..., dict[str, Any]]) -> None:
    r = stats("codesmith@0.1.0")
    assert r["subject"] == "codesmith@0.1.0"
    assert r["sessions"]["total"] == 3 and r["mean_score"] == 2.0
    assert r["refusals"] == {"intent_denied": 1, "ring_refused": 0}
    assert [v["version"] for v in r["versions"]] == ["0.1.0"]


def test_skill_level_flags_over_and_under_claiming(stats: Callable[..., dict[str, Any]]) -> None:
    r = stats("--skill", "zig")
    assert r["subject"] == "skill://programming/zig"
    assert r["sessions"]["total"] == 10  # every version of both masques claims zig
    assert r["refusals"] == {"intent_denied": 2, "ring_refused": 1}
    claims = [
        (c["masque"], c["version"], c["level"], c["expected"], c["scored"], c["mean_score"], c["verdict"])
        for c in r["claims"]
    ]
    assert claims == [
        ("codesmith", "0.1.0", "competent", 1.0, 3, 2.0, "under"),  # 2.0 > 1.0 + 0.5
        ("codesmith", "0.2.0", "expert", 2.0, 3, -0.333, "over"),  # -0.33 < 2.0 - 0.5
        ("homelab", "1.0.0", "novice", 0.5, 3, 2.0, "under"),
    ]
    assert [(x["level"], x["masques"], x["scored"], x["mean_score"], x["verdict"]) for x in r["levels"]] == [
        ("novice", 1, 3, 2.0, "under"),
        ("competent", 1, 3, 2.0, "under"),
        ("expert", 1, 3, -0.333, "over"),
    ]
    assert r["over_claiming"] == ["codesmith@0.2.0"]
    assert r["under_claiming"] == ["codesmith@0.1.0", "homelab@1.0.0"]
    full = stats("--skill", "skill://ops/ansible")
    assert full["sessions"]["total"] == 4 and [c["masque"] for c in full["claims"]] == ["homelab"]


def test_ring_level_lists_masques_and_actors(stats: Callable[..., dict[str, Any]]) -> None:
    player = stats("--ring", "player")
    assert player["sessions"]["total"] == 6 and player["mean_score"] == 0.833
    assert player["refusals"] == {"intent_denied": 1, "ring_refused": 0}
    assert [(m["masque"], m["sessions"], m["scored"]) for m in player["masques"]] == [("codesmith", 6, 6)]
    # ann held ring player: S01 S02 S04 S05 S09 S10, five scored: (1+2+0+0+3) / 5.
    assert [(a["actor"], a["sessions"], a["scored"], a["mean_score"]) for a in player["actors"]] == [("ann", 6, 5, 1.2)]
    admin = stats("--ring", "ADMIN")
    assert admin["refusals"] == {"intent_denied": 1, "ring_refused": 1}
    assert [(a["actor"], a["sessions"], a["mean_score"]) for a in admin["actors"]] == [("bob", 4, 1.25)]


def test_session_level_shows_score_history(stats: Callable[..., dict[str, Any]]) -> None:
    r = stats("--session", "ses_S02")
    assert r["sessions"]["total"] == 1 and r["mean_score"] == 2.0
    assert r["session"]["score"] == "*" and r["session"]["duration_seconds"] == 1200.0
    assert [s["symbol"] for s in r["scores"]] == ["-", "*"]
    assert [e["type"] for e in r["events"]] == ["mask_session_started"]


def test_filters_by_time_window_and_actor(stats: Callable[..., dict[str, Any]]) -> None:
    week = stats("--since", "2026-01-12", "--until", "2026-01-19")
    assert week["sessions"]["total"] == 4 and week["mean_score"] == 1.0
    assert week["refusals"] == {"intent_denied": 0, "ring_refused": 0}
    assert week["filters"]["since"].startswith("2026-01-12T00:00:00")
    bob = stats("--actor", "bob")
    assert bob["sessions"]["total"] == 4 and bob["mean_score"] == 1.25  # (3-1+2+1)/4
    assert bob["refusals"] == {"intent_denied": 1, "ring_refused": 0}
    recent = stats("--since", "30d")  # the fixture is long past: nothing recent
    assert recent["sessions"]["total"] == 0 and recent["trend"] == [] and recent["mean_score"] is None
    assert recent["score_counts"] == NO_SCORES


def test_score_values_come_from_masque_toml(
    stats: Callable[..., dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "masque.toml"
    config.write_text('[scoring]\nnegative = -2\nexponential = 10\n"*" = 2\n', encoding="utf-8")
    monkeypatch.setenv("MASQUE_CONFIG", str(config))
    r = stats("codesmith@0.1.0")
    assert r["mean_score"] == 4.333  # (1 + 2 + 10) / 3


def test_unknown_subjects_exit_4_with_suggestions(
    stats: Callable[..., dict[str, Any]], invoke: Callable[..., Any]
) -> None:
    missing = invoke(["stats", "codesmyth"])
    assert missing.exit_code == 4 and "did you mean codesmith" in missing.stderr
    version = invoke(["stats", "codesmith@9.9.9"])
    assert version.exit_code == 4 and "0.1.0, 0.2.0" in version.stderr
    assert invoke(["stats", "--skill", "cobol"]).exit_code == 4
    assert invoke(["stats", "--session", "ses_nope"]).exit_code == 4
    bad_ring = invoke(["stats", "--ring", "wizard"])
    assert bad_ring.exit_code == 2 and "admin, player, guest, outsider" in bad_ring.stderr
    assert invoke(["stats", "codesmith", "--ring", "player"]).exit_code == 2
    assert invoke(["stats", "--since", "last tuesday"]).exit_code == 2


def test_table_output_has_charts_and_level_tables(
    stats: Callable[..., dict[str, Any]], invoke: Callable[..., Any]
) -> None:
    out = invoke(["stats", "--skill", "zig"])
    assert out.exit_code == 0
    assert "over-claiming" in out.stdout and "under-claiming" in out.stdout
    assert "weekly trend 2026-01-05 .. 2026-01-26 (4 weeks)" in out.stdout
    assert any(ch in out.stdout for ch in "▁▂▃▄▅▆▇█")
    system = invoke(["stats"]).stdout
    assert "top masques" in system and "bottom masques" in system and "homelab" in system


def test_csv_is_long_format_for_spreadsheets(stats: Callable[..., dict[str, Any]], invoke: Callable[..., Any]) -> None:
    out = invoke(["stats", "codesmith", "--format", "csv"])
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert rows[0] == ["section", "item", "metric", "value"]
    assert ["sessions", "", "total", "6"] in rows
    assert ["score_counts", "", "/", "2"] in rows
    assert ["versions", "0.2.0", "mean_score", "-0.333"] in rows
    assert ["trend", "2026-01-26", "sessions", "1"] in rows


def test_stats_on_an_empty_store(invoke: Callable[..., Any]) -> None:
    out = invoke(["stats", "--json"])
    assert out.exit_code == 0
    r = json.loads(out.stdout)
    assert r["sessions"]["total"] == 0 and r["top_masques"] == [] and r["trend"] == []


@given(st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)), max_size=60))
def test_sparkline_has_one_cell_per_value(values: list[float | None]) -> None:
    from masque.cli.stats import sparkline

    line = sparkline(values)
    if all(v is None for v in values):
        assert line == ""
    else:
        assert len(line) == len(values)
        assert all((c == " ") == (v is None) for c, v in zip(line, values, strict=True))


def test_an_actor_sees_only_its_ring_and_below(
    stats: Callable[..., dict[str, Any]], invoke: Callable[..., Any]
) -> None:
    """A player's stats leave out bob's (admin) sessions and refusals; admin rings and sessions stay hidden."""
    stats()  # imports the fixture
    added = invoke(["actor", "add", "pat", "--ring", "player", "--json"])
    pat = {"MASQUE_ACTOR": "pat", "MASQUE_ACTOR_KEY": json.loads(added.stdout)["key"]}

    seen = invoke(["stats", "--json"], env=pat)
    assert seen.exit_code == 0, seen.output
    r = json.loads(seen.stdout)
    assert r["filters"]["actor_rings"] == ["player", "guest", "outsider"]
    # ann's S01 S02 S04 S05 S09 S10; current scores + * / / e (S10 unscored): mean (1+2+0+0+3)/5
    assert r["sessions"]["total"] == 6 and r["sessions"]["ended"] == 6 and r["sessions"]["active"] == 0
    assert r["score_counts"] == {"+": 1, "-": 0, "/": 2, "*": 1, "e": 1} and r["mean_score"] == 1.2
    assert r["refusals"] == {"intent_denied": 1, "ring_refused": 1}  # R3 is bob's

    admin_ring = invoke(["stats", "--ring", "admin"], env=pat)
    assert admin_ring.exit_code == 3 and "ring admin is more trusted than yours" in admin_ring.stderr
    bobs = invoke(["stats", "--session", "ses_S03"], env=pat)
    assert bobs.exit_code == 4 and "no session 'ses_S03'" in bobs.stderr
    assert invoke(["stats", "--session", "ses_S01"], env=pat).exit_code == 0
    assert invoke(["score", "ses_S03", "+"], env=pat).exit_code == 4  # cannot score what it cannot see
    assert invoke(["score", "ses_S01", "+"], env=pat).exit_code == 0

    assert stats()["filters"]["actor_rings"] is None  # the founder (admin) sees everything
    assert stats()["sessions"]["total"] == 10


def test_reading_commands_work_before_any_actor_exists(invoke: Callable[..., Any]) -> None:
    """`stats` creates the store read-only; `sessions` after it must not try (and fail) to write a founder."""
    assert invoke(["stats", "--json"]).exit_code == 0
    listed = invoke(["sessions"])
    assert listed.exit_code == 0, listed.output
    assert invoke(["actor", "list", "--json"]).exit_code == 0

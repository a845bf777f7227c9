"""Scoring sessions (`masque release --score`, `masque score`) and writing scores back to masque files."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from masque import store
from masque.errors import NotFound, UsageError
from masque.model import Score
from masque.reflection.scoring import add_score, parse_symbol, scoring_config
from masque.reflection.writeback import updated_text

PERSONAS = Path(__file__).resolve().parent.parent / "personas"
T0 = datetime(2026, 2, 2, 9, 0, tzinfo=timezone.utc)


def _session(conn: Any, sid: str, masque: str = "codesmith", version: str = "0.1.0") -> None:
    conn.execute(
        "INSERT INTO sessions (id, masque, version, masque_ring, actor, actor_ring, originator, intent,"
        " status, started_at) VALUES (?, ?, ?, 'player', 'ann', 'player', 'ann', 'implement it', 'ended', ?)",
        [sid, masque, version, T0],
    )


@pytest.fixture
def worn(invoke: Callable[..., Any]) -> str:
    """A real session: init, assume the shipped codesmith persona, release it with a score."""
    shutil.copytree(PERSONAS, Path.cwd() / "personas")
    assert invoke(["init"]).exit_code == 0
    assumed = invoke(["assume", "codesmith", "--intent", "implement the parser", "--format", "json"])
    assert assumed.exit_code == 0, assumed.output
    sid = json.loads(assumed.stdout)["session_id"]
    released = invoke(["release", sid, "--score", "+", "--notes", "solid start"])
    assert released.exit_code == 0, released.output
    return str(sid)


def test_release_score_then_rescore_keeps_history(worn: str, invoke: Callable[..., Any]) -> None:
    rescored = invoke(["score", worn, "multiplicative", "--notes", "unblocked two teams", "--json"])
    assert rescored.exit_code == 0, rescored.output
    row = json.loads(rescored.stdout)
    assert (row["symbol"], row["value"], row["scored_by"]) == ("*", 2.0, "root")
    session = json.loads(invoke(["stats", "--session", worn, "--json"]).stdout)
    assert [(s["symbol"], s["notes"]) for s in session["scores"]] == [
        ("+", "solid start"),
        ("*", "unblocked two teams"),
    ]
    assert session["session"]["score"] == "*" and session["mean_score"] == 2.0
    masque = json.loads(invoke(["stats", "codesmith", "--json"]).stdout)
    assert masque["score_counts"]["*"] == 1 and masque["score_counts"]["+"] == 0  # the newest counts
    assert "session_scored" in [e["type"] for e in session["events"]]
    skill = json.loads(invoke(["stats", "--skill", "zig", "--json"]).stdout)  # claims recorded at assume
    assert [(c["masque"], c["level"], c["scored"]) for c in skill["claims"]] == [("codesmith", "competent", 1)]
    ring = json.loads(invoke(["stats", "--ring", "player", "--json"]).stdout)
    assert ring["sessions"]["total"] == 1 and ring["mean_score"] == 2.0


def test_score_rejects_bad_symbols_and_unknown_sessions(worn: str, invoke: Callable[..., Any]) -> None:
    bad = invoke(["score", worn, "x"])
    assert bad.exit_code == 2 and "not a score symbol: 'x'" in bad.stderr
    unknown = invoke(["score", "ses_missing", "+"])
    assert unknown.exit_code == 4 and "ses_missing" in unknown.stderr
    assert invoke(["score", worn]).exit_code == 2
    assert invoke(["score", worn, "+", "--write-back", "codesmith"]).exit_code == 2


def test_write_back_appends_and_keeps_every_other_byte(worn: str, invoke: Callable[..., Any]) -> None:
    path = Path.cwd() / "personas" / "codesmith.masque.yaml"
    before = path.read_bytes()
    assert invoke(["score", worn, "e", "--notes", "catalytic"]).exit_code == 0
    out = invoke(["score", "--write-back", "codesmith@0.1.0", "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert (result["appended"], result["changed"]) == (2, True)
    after = path.read_bytes()
    old, new = before.decode().splitlines(keepends=True), after.decode().splitlines(keepends=True)
    start = next(i for i, line in enumerate(old) if line.startswith("performance:"))
    assert new[:start] == old[:start]  # everything above the block, comments included, untouched
    # The block was last: the old history is kept as written; only performance.score moved, to the
    # symbol nearest the mean of the hand-written + (1) and the session's newest score e (3).
    assert new[start + 1] == '  score: "*"\n' and old[start + 1] == '  score: "+"\n'
    assert new[start + 2 : len(old)] == old[start + 2 :]
    added = "".join(new[len(old) :])
    assert f"      session_id: {worn}\n" in added and '      score: "e"\n' in added
    assert invoke(["validate", str(path)]).exit_code == 0
    again = json.loads(invoke(["score", "--write-back", "codesmith", "--json"]).stdout)
    assert (again["changed"], again["already_present"]) == (False, 2)
    assert path.read_bytes() == after


def test_write_back_moves_the_pin_of_a_trusted_file_along_and_needs_the_masques_ring(
    worn: str, invoke: Callable[..., Any]
) -> None:
    from tests.test_sessions_support import add_actor

    guest = {"MASQUE_ACTOR": "gil", "MASQUE_ACTOR_KEY": add_actor(invoke, "gil", "guest")}
    path = Path.cwd() / "personas" / "codesmith.masque.yaml"
    before = path.read_bytes()
    refused = invoke(["score", "--write-back", "codesmith@0.1.0"], env=guest)  # codesmith is a player masque
    assert refused.exit_code == 3 and path.read_bytes() == before
    assert invoke(["score", "--write-back", "codesmith@0.1.0"]).exit_code == 0
    # The file codesmith@0.1.0 was pinned to changed only by Masque's own write-back: it is still trusted.
    again = invoke(["assume", "codesmith@0.1.0", "--intent", "implement the parser", "--format", "json"])
    assert again.exit_code == 0, again.output
    with store.connect(read_only=True) as conn:
        (via,) = conn.execute("SELECT via FROM trusted_definitions WHERE masque = 'codesmith'").fetchone()
        moved = conn.execute("SELECT count(*) FROM events WHERE type = 'definition_pinned'").fetchone()
    assert via == "write_back" and moved == (1,)


SAMPLE = """\
# a comment that must survive
name: Sample   # trailing comment
index: 7
version: "1.0.0"
ring: guest
performance:    # the block we edit
  score: "-"
  history: []
# a comment above lens, outside the block
intent:
    allowed: ["help *"]     # odd indent on purpose
lens: |
  Be brief.
"""


def _entries(*symbols: str) -> list[tuple[str, str, str | None, datetime]]:
    return [(f"ses_{i}", s, None, T0.replace(hour=10 + i)) for i, s in enumerate(symbols)]


def test_write_back_splices_only_the_performance_block() -> None:
    text, appended, present, previous, score = updated_text(SAMPLE, _entries("*", "e"), scoring_config())
    assert (appended, present, previous, score) == (2, 0, "-", "*")  # mean (2 + 3) / 2 = 2.5 -> * (tie down)
    old, new = SAMPLE.splitlines(keepends=True), text.splitlines(keepends=True)
    assert new[:6] == old[:6]
    assert new[-5:] == old[-5:]  # from the comment above `intent` to the end, byte-for-byte
    block = "".join(new[5:-5])
    assert block.startswith('performance:    # the block we edit\n  score: "*"\n  history:\n')
    assert '  - date: "2026-02-02T10:00:00Z"\n    score: "*"\n    session_id: ses_0\n' in block


def test_write_back_adds_a_missing_block_and_keeps_crlf() -> None:
    crlf = SAMPLE.replace('performance:    # the block we edit\n  score: "-"\n  history: []\n', "")
    crlf = crlf.replace("\n", "\r\n")
    text, appended, *_ = updated_text(crlf, _entries("+"), scoring_config())
    assert appended == 1 and text.startswith(crlf)
    # The file indents mappings by 4 (see `intent:`), so the new block does too.
    assert text[len(crlf) :] == (
        'performance:\r\n    score: "+"\r\n    history:\r\n      - date: "2026-02-02T10:00:00Z"\r\n'
        '        score: "+"\r\n        session_id: ses_0\r\n'
    )


def test_write_back_refuses_files_it_cannot_edit(invoke: Callable[..., Any]) -> None:
    assert invoke(["score", "--write-back", "nothing-here"]).exit_code == 4
    shutil.copytree(PERSONAS, Path.cwd() / "personas")
    # A valid masque with no scored sessions in the store: nothing to write.
    out = invoke(["score", "--write-back", "codesmith"])
    assert out.exit_code == 4 and "no scored sessions of codesmith@0.1.0" in out.stderr


def test_add_score_appends_and_the_newest_is_current() -> None:
    with store.transaction() as conn:
        _session(conn, "ses_a")
        first = add_score(conn, "ses_a", "-", "rough", "bob")
        second = add_score(conn, "ses_a", Score.EXPONENTIAL, None, "bob")
        rows = conn.execute("SELECT symbol FROM scores WHERE session_id = 'ses_a' ORDER BY created_at").fetchall()
        current = conn.execute("SELECT symbol FROM score_facts WHERE session_id = 'ses_a' AND is_current").fetchall()
    assert (first.value, second.value) == (-1.0, 3.0)
    assert rows == [("-",), ("e",)] and current == [("e",)]
    with store.transaction() as conn, pytest.raises(NotFound):
        add_score(conn, "ses_none", "+")


def test_stats_see_scores_written_around_the_derived_table(invoke: Callable[..., Any]) -> None:
    """A writer that inserts into `scores` directly is caught: score_facts is rebuilt on read."""
    with store.transaction() as conn:
        _session(conn, "ses_b")
        conn.execute("INSERT INTO scores (id, session_id, symbol, created_at) VALUES ('scr_x', 'ses_b', '*', ?)", [T0])
    r = json.loads(invoke(["stats", "--json"]).stdout)
    assert r["score_counts"]["*"] == 1 and r["mean_score"] == 2.0


def test_scoring_config_validates_masque_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "masque.toml"
    monkeypatch.setenv("MASQUE_CONFIG", str(config))
    config.write_text(
        "[scoring]\nadditive = 1.5\nclaim_tolerance = 0.25\nmin_scored = 1\n[scoring.expected]\nmaster = 3\n",
        encoding="utf-8",
    )
    rules = scoring_config()
    assert rules.values["+"] == 1.5 and rules.tolerance == 0.25 and rules.min_scored == 1
    assert rules.expected["master"] == 3.0
    config.write_text('[scoring]\nadditive = "lots"\n', encoding="utf-8")
    with pytest.raises(UsageError, match="additive"):
        scoring_config()
    config.write_text("[scoring]\nbonus = 1\n", encoding="utf-8")
    with pytest.raises(UsageError, match="unknown key 'bonus'"):
        scoring_config()


@given(st.sampled_from([s.value for s in Score] + ["additive", "NEGATIVE", " e ", "Exponential"]))
def test_parse_symbol_accepts_symbols_and_names(text: str) -> None:
    assert parse_symbol(text) in set(Score)


@given(st.text(min_size=1, max_size=5).filter(lambda t: t.strip() not in {s.value for s in Score}))
def test_parse_symbol_rejects_everything_else(text: str) -> None:
    from masque.reflection.scoring import SYMBOL_NAMES

    if text.strip().casefold() in SYMBOL_NAMES:
        return
    with pytest.raises(UsageError):
        parse_symbol(text)


@given(st.floats(-5, 5, allow_nan=False))
def test_nearest_symbol_is_closest(mean: float) -> None:
    rules = scoring_config()
    chosen = rules.nearest_symbol(mean)
    best = min(abs(v - mean) for v in rules.values.values())
    assert abs(rules.values[chosen.value] - mean) == best


@given(
    st.lists(
        st.tuples(
            st.sampled_from([s.value for s in Score]),
            st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_write_back_of_any_notes_round_trips_and_spares_the_rest(scores: list[tuple[str, str | None]]) -> None:
    import yaml

    entries = [(f"ses_{i}", sym, notes, T0.replace(minute=i)) for i, (sym, notes) in enumerate(scores)]
    text, appended, *_ = updated_text(SAMPLE, entries, scoring_config())
    assert appended == len(entries)
    old, new = SAMPLE.splitlines(keepends=True), text.splitlines(keepends=True)
    assert new[:5] == old[:5] and new[-5:] == old[-5:]
    history = yaml.safe_load(text)["performance"]["history"]
    assert [(h["score"], h.get("notes")) for h in history] == [(s, n or None) for s, n in scores]


def test_text_report_reads_well_at_80_columns(invoke: Any, personas: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASQUE_PATH", str(personas))
    worn = json.loads(invoke(["assume", "codesmith", "--intent", "implement the parser", "--format", "json"]).stdout)
    assert invoke(["release", worn["session_id"], "--score", "+"]).exit_code == 0
    system = invoke(["stats"]).stdout
    assert "top and bottom masques: none yet (a masque is ranked once it has 3 scored sessions" in system
    masque_level = invoke(["stats", "codesmith"]).stdout
    header = next(line for line in masque_level.splitlines() if line.startswith("version") and "┃" in line)
    assert "abandoned" in header and "p50" in header  # headers never wrap mid-word

"""`masque sessions export` / `masque sessions import`: round trips, idempotence, bad rows, --atomic."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from masque import store

FIXTURE = Path(__file__).parent / "cases" / "reflection" / "sessions.jsonl"


AUDIT = "('actor_added', 'sessions_imported')"  # this store's own record of its founder and of each import


def _counts() -> tuple[int, int, int, int]:
    with store.connect(read_only=True) as conn:
        row = conn.execute(
            f"SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM events WHERE type NOT IN {AUDIT}),"
            " (SELECT count(*) FROM scores), (SELECT count(*) FROM masque_skills)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def _import(invoke: Callable[..., Any], path: Path, *extra: str) -> Any:
    return invoke(["sessions", "import", str(path), "--json", *extra])


def test_import_twice_adds_nothing(invoke: Callable[..., Any]) -> None:
    first = _import(invoke, FIXTURE)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) | {"path": ""} == {
        "path": "",
        "format": "jsonl",
        "records": 13,
        "sessions_added": 10,
        "sessions_skipped": 0,
        "events_added": 13,
        "scores_added": 10,
        "skills_added": 4,
        "problems": [],
    }
    second = json.loads(_import(invoke, FIXTURE).stdout)
    assert (second["sessions_added"], second["events_added"], second["scores_added"], second["skills_added"]) == (
        0,
        0,
        0,
        0,
    )
    assert second["sessions_skipped"] == 10
    assert _counts() == (10, 13, 10, 4)
    with store.connect(read_only=True) as conn:
        imports = conn.execute("SELECT count(*) FROM events WHERE type = 'sessions_imported'").fetchone()
    assert imports == (2,)  # each import is recorded, with who ran it


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_export_then_import_elsewhere_gives_the_same_stats(
    invoke: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    assert _import(invoke, FIXTURE).exit_code == 0
    before = json.loads(invoke(["stats", "--json"]).stdout)
    out = tmp_path / f"moved{suffix}"
    exported = invoke(["sessions", "export", str(out), "--json"])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout) | {"path": ""} == {
        "path": "",
        "format": suffix[1:],
        "sessions": 10,
        "events": 13 + 2,  # and this store's own audit: its founder's actor_added, the import
        "scores": 10,
    }
    monkeypatch.setenv("MASQUE_HOME", str(tmp_path / "other-machine"))
    assert _import(invoke, out).exit_code == 0
    assert _counts() == (10, 13, 10, 4)
    after = json.loads(invoke(["stats", "--json"]).stdout)
    assert after == before
    zig = json.loads(invoke(["stats", "--skill", "zig", "--json"]).stdout)
    assert zig["over_claiming"] == ["codesmith@0.2.0"]


def test_export_filters_and_jsonl_shape(invoke: Callable[..., Any], tmp_path: Path) -> None:
    assert _import(invoke, FIXTURE).exit_code == 0
    out = tmp_path / "homelab.jsonl"
    assert invoke(["sessions", "export", str(out), "--masque", "HomeLab", "--since", "2026-01-10"]).exit_code == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    sessions = [r for r in records if r["kind"] == "session"]
    assert [r["id"] for r in sessions] == ["ses_S08", "ses_S09", "ses_S10"]
    assert [r["kind"] for r in records].count("event") == 1  # R3 (homelab, 01-20); R2 is before --since
    s9 = sessions[1]
    assert s9["started_at"] == "2026-01-13T12:00:00.000000Z" and s9["ended_at"] == "2026-01-13T12:15:00.000000Z"
    assert s9["skills"] == [
        {"uri": "skill://ops/ansible", "level": "proficient"},
        {"uri": "skill://programming/zig", "level": "novice"},
    ]
    assert [(x["symbol"], x["scored_by"]) for x in s9["scores"]] == [("e", "bob")]
    assert s9["events"][0]["payload"] == {"intent": "deploy the stack"}  # JSON, not a string


def _broken(tmp_path: Path) -> Path:
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    lines[1] = "{not json"
    record = json.loads(lines[3])
    record["status"] = "sleeping"
    record["scores"][0]["symbol"] = "?"
    lines[3] = json.dumps(record)
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bad_rows_are_reported_by_line_and_the_rest_imported(invoke: Callable[..., Any], tmp_path: Path) -> None:
    result = _import(invoke, _broken(tmp_path))
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [p["line"] for p in report["problems"]] == [2, 4]
    assert "status must be one of" in report["problems"][1]["message"]
    assert "scores need" in report["problems"][1]["message"]
    assert report["sessions_added"] == 8
    text = invoke(["sessions", "import", str(_broken(tmp_path))])
    assert text.exit_code == 1 and "broken.jsonl:2: skipped:" in text.stderr


def test_atomic_import_takes_nothing_when_a_row_is_bad(invoke: Callable[..., Any], tmp_path: Path) -> None:
    result = invoke(["sessions", "import", str(_broken(tmp_path)), "--atomic"])
    assert result.exit_code == 1
    assert "2 bad record(s), nothing imported" in result.stderr and "broken.jsonl:4:" in result.stderr
    assert _counts() == (0, 0, 0, 0)


def test_a_session_already_here_is_skipped_never_overwritten(invoke: Callable[..., Any], tmp_path: Path) -> None:
    # Was: "a session that ended elsewhere is updated". An imported file may no longer change any
    # session of this store (issue 10, item 3); a session live elsewhere arrives ended instead.
    assert _import(invoke, FIXTURE).exit_code == 0
    session = json.loads(invoke(["stats", "--session", "ses_S10", "--json"]).stdout)["session"]
    assert session["status"] == "ended" and session["end_reason"] == "imported_live"
    record = json.loads(FIXTURE.read_text(encoding="utf-8").splitlines()[9])  # S10, active when exported
    record.update(status="ended", ended_at="2026-01-28T13:00:00Z", end_reason="released")
    later = tmp_path / "later.jsonl"
    later.write_text(json.dumps(record) + "\n", encoding="utf-8")
    report = json.loads(_import(invoke, later).stdout)
    assert (report["sessions_added"], report["sessions_skipped"]) == (0, 1)
    after = json.loads(invoke(["stats", "--session", "ses_S10", "--json"]).stdout)["session"]
    assert after["end_reason"] == "imported_live" and after["ended_at"] is None


def test_parquet_with_missing_columns_or_garbage_is_refused(invoke: Callable[..., Any], tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    thin = tmp_path / "thin.parquet"
    pq.write_table(pa.table({"kind": ["session"], "id": ["ses_1"]}), thin)
    missing = invoke(["sessions", "import", str(thin)])
    assert missing.exit_code == 1 and "missing column(s) masque, version, actor, intent, started_at" in missing.stderr
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    assert invoke(["sessions", "import", str(garbage)]).exit_code == 1
    assert invoke(["sessions", "import", str(tmp_path / "absent.parquet")]).exit_code == 4
    unknown = tmp_path / "sessions.csv"
    shutil.copy(FIXTURE, unknown)
    assert invoke(["sessions", "import", str(unknown)]).exit_code == 2
    assert invoke(["sessions", "import", str(unknown), "--format", "jsonl"]).exit_code == 0


def test_import_by_a_real_process(run_masque: Callable[..., Any]) -> None:
    done = run_masque("sessions", "import", str(FIXTURE))
    assert done.returncode == 0, done.stderr
    assert "imported 10 new session(s)" in done.stdout
    stats = run_masque("stats", "--ring", "player", "--json")
    assert json.loads(stats.stdout)["sessions"]["total"] == 6


def test_line_numbers_count_blank_lines(invoke: Callable[..., Any], tmp_path: Path) -> None:
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[2])
    record["exit_code"] = "seven"
    path = tmp_path / "gappy.jsonl"
    path.write_text("\n".join([lines[0], "", "   ", lines[1], json.dumps(record)]) + "\n", encoding="utf-8")
    report = json.loads(_import(invoke, path).stdout)
    assert report["problems"] == [{"line": 5, "message": "exit_code must be an integer, got 'seven'"}]
    assert report["sessions_added"] == 2
    clean = tmp_path / "clean-gappy.jsonl"
    clean.write_text("\n\n".join(lines) + "\n\n", encoding="utf-8")
    again = json.loads(_import(invoke, clean).stdout)
    assert (again["problems"], again["records"], again["sessions_added"]) == ([], 13, 8)

"""Mapper files and `masque mapper ...`, `masque map`: validation, versions, rings, the optimistic lock."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_sessions_support import add_actor, init_store, write_masques

from masque.errors import Conflict, ExitCode

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "mappers" / "focus.mapper.yaml"
MORNING = "2026-12-01T09:00:00+00:00"
Invoke = Callable[..., Any]


@pytest.fixture
def store(invoke: Invoke) -> str:
    write_masques()
    return init_store(invoke)


def as_actor(name: str, key: str) -> dict[str, str]:
    return {"MASQUE_ACTOR": name, "MASQUE_ACTOR_KEY": key}


def put(invoke: Invoke, path: Path = EXAMPLE, env: Any = None) -> dict[str, Any]:
    result = invoke(["mapper", "put", path, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def map_json(invoke: Invoke, *args: str, env: Any = None) -> dict[str, Any]:
    result = invoke(["map", "--mapper", "focus", "--masque", "tool", "--at", MORNING, "--json", *args], env=env)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


# --- the file -------------------------------------------------------------------------------------------


def test_the_example_mapper_validates(invoke: Invoke) -> None:
    result = invoke(["validate", EXAMPLE])
    assert result.exit_code == 0, result.output
    assert "1 valid" in result.output


def test_validate_finds_mapper_files_in_a_directory_beside_masques(invoke: Invoke, tmp_path: Path) -> None:
    write_masques()
    shutil.copy(EXAMPLE, Path("personas") / "focus.mapper.yaml")
    result = invoke(["validate", "personas", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert any(f["path"].endswith("focus.mapper.yaml") for f in json.loads(result.stdout)["files"])
    listed = invoke(["list", "--json"])  # a mapper is not a masque: the registry never scans it
    assert "focus.mapper.yaml" not in listed.stdout


BROKEN = """\
metadata:
  id: focus
  version: 1.0.0
rules:
  - id: a
    conditions:
      all:
        - {field: time.hour, op: greater}
        - {field: context.task, op: matches, value: "(unclosed"}
    actions:
      - generate_suggestion: {type: t, template: "at ${time.century}"}
    weight: 1
  - id: a
    conditions: {any: [{field: traits.x, op: in, value: 3}]}
    actions:
      - generate_suggestion: {type: t, template: "x"}
    weight: 1
feedback_settings: {min_weight: 5, max_weight: 1}
"""


def test_a_broken_mapper_gets_one_diagnostic_per_problem_at_its_line(invoke: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "broken.mapper.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    result = invoke(["validate", path])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    expected = {
        ("8", "missing-value"),  # greater with no value
        ("9", "bad-regex"),
        ("11", "unknown-placeholder"),
        ("13", "duplicate-rule"),
        ("14", "in-needs-list"),
        ("18", "weight-bounds"),
    }
    found = {(line.split(":")[1], line.split("[")[1].split("]")[0]) for line in lines if "error[" in line}
    assert expected <= found, result.stdout
    assert all(line.startswith(f"{path}:") for line in lines if "error[" in line)


def test_a_schema_error_points_at_its_field(invoke: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "bad.mapper.yaml"
    path.write_text("metadata:\n  id: focus\n  version: one\nrules: []\n", encoding="utf-8")
    result = invoke(["validate", path])
    assert result.exit_code == 1
    assert f"{path}:3:3: error[schema-pattern] $.metadata.version" in result.stdout


def test_the_mapper_schema_is_printed_for_editors(invoke: Invoke) -> None:
    result = invoke(["schema", "--which", "mapper", "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["title"] == "Mapper"


def test_validate_of_mapper_files_stays_on_the_fast_path(run_masque: Any) -> None:
    code = (
        "import sys; from masque.cli.validate_run import run_validate;"
        f" run_validate([{str(EXAMPLE)!r}], strict=False, fmt='json', verbose=False);"
        " heavy = {'duckdb', 'lancedb', 'pyarrow', 'openai', 'mcp', 'fastapi', 'pydantic'} & set(sys.modules);"
        " print('HEAVY', sorted(heavy))"
    )
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


# --- storing and versions ------------------------------------------------------------------------------


def test_put_stores_version_1_and_an_unchanged_file_writes_nothing(invoke: Invoke, store: str) -> None:
    first = put(invoke)
    assert (first["id"], first["version"], first["changed"]) == ("focus", 1, True)
    again = put(invoke)
    assert (again["version"], again["changed"]) == (1, False)
    listed = json.loads(invoke(["mapper", "list", "--json"]).stdout)
    assert [(m["id"], m["version"], m["declared_version"]) for m in listed] == [("focus", 1, "1.0.0")]


def test_put_of_an_edited_file_is_a_new_version_and_old_ones_stay_readable(
    invoke: Invoke, store: str, tmp_path: Path
) -> None:
    put(invoke)
    edited = tmp_path / "focus.mapper.yaml"
    edited.write_text(
        EXAMPLE.read_text().replace("version: 1.0.0", "version: 1.1.0").replace("weight: 2.0", "weight: 3.0")
    )
    assert put(invoke, edited)["version"] == 2
    history = json.loads(invoke(["mapper", "versions", "focus", "--json"]).stdout)
    assert [(v["version"], v["reason"], v["weights"]["deep-work-morning"]) for v in history] == [
        (1, "put", 2.0),
        (2, "put", 3.0),
    ]
    old = json.loads(invoke(["mapper", "show", "focus", "--version", "1", "--json"]).stdout)
    assert old["doc"]["metadata"]["version"] == "1.0.0"
    shown = invoke(["mapper", "show", "focus"])
    assert "weight: 3.0" in shown.stdout
    missing = invoke(["mapper", "show", "focus", "--version", "9"])
    assert missing.exit_code == ExitCode.NOT_FOUND
    assert "versions run from 1 to 2" in missing.output


def test_put_of_a_broken_file_is_refused_with_its_location(invoke: Invoke, store: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.mapper.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    result = invoke(["mapper", "put", path])
    assert result.exit_code == ExitCode.FAILED
    assert f"{path}:8:" in result.output and "masque validate" in result.output
    assert invoke(["mapper", "list", "--json"]).stdout.strip() == "[]"


def test_put_with_a_stale_expected_version_is_a_conflict_exit_6(run_masque: Any, store: str) -> None:
    first = run_masque("mapper", "put", EXAMPLE, "--expect-version", "0")
    assert first.returncode == 0, first.stderr
    again = run_masque("mapper", "put", EXAMPLE, "--expect-version", "0")
    assert again.returncode == 6
    assert "is at version 1, not 0" in again.stderr and "hint:" in again.stderr


def test_only_players_and_admins_may_put_a_mapper(invoke: Invoke, store: str) -> None:
    guest = add_actor(invoke, "gus", "guest")
    refused = invoke(["mapper", "put", EXAMPLE], env=as_actor("gus", guest))
    assert refused.exit_code == ExitCode.REFUSED
    assert "ring guest" in refused.output
    player = add_actor(invoke, "pat", "player")
    assert put(invoke, env=as_actor("pat", player))["actor"] == "pat"
    # Anyone proven may read mappers.
    assert invoke(["mapper", "list"], env=as_actor("gus", guest)).exit_code == 0


def test_a_wrong_key_is_refused_before_anything_else(invoke: Invoke, store: str) -> None:
    add_actor(invoke, "pat", "player")
    result = invoke(["mapper", "list"], env=as_actor("pat", "msqk_wrong"))
    assert result.exit_code == ExitCode.REFUSED
    assert "not valid" in result.output


# --- mapping -------------------------------------------------------------------------------------------


def test_map_orders_by_weight_and_records_each_suggestion(invoke: Invoke, store: str) -> None:
    put(invoke)
    invoke(["observe", "tool", "--kind", "focus", "--data", '{"level": 4, "interruptions": 7}'])
    out = map_json(invoke, "--context", '{"task": "review the parser"}')
    assert (out["mapper"], out["mapper_version"], out["masque"]) == ("focus", 1, "tool")
    rules = [s["rule"] for s in out["suggestions"]]
    assert rules == ["deep-work-morning", "batch-interruptions", "review-checklist"]
    assert out["suggestions"][0]["text"] == "Block 9:00-12:00 for deep work as Tool."
    assert out["suggestions"][2]["text"] == "Use the review checklist for: review the parser."
    from test_sessions_support import store_rows

    stored = store_rows("SELECT id, rule_id, mapper_version, actor FROM suggestions ORDER BY weight DESC")
    assert [(r[0], r[1], r[2], r[3]) for r in stored] == [(s["id"], s["rule"], 1, "root") for s in out["suggestions"]]


def test_time_and_context_decide_which_rules_match(invoke: Invoke, store: str) -> None:
    put(invoke)
    invoke(["observe", "tool", "--kind", "focus", "--data", '{"level": 4}'])
    evening = invoke(["map", "--mapper", "focus", "--masque", "tool", "--at", "2026-12-01T18:00:00Z", "--json"])
    assert [s["rule"] for s in json.loads(evening.stdout)["suggestions"]] == []
    chat = invoke(
        [
            "map",
            "--mapper",
            "focus",
            "--masque",
            "tool",
            "--at",
            "2026-12-01T18:00:00Z",
            "--context",
            '{"channel": "chat"}',
            "--json",
        ]
    )
    assert [s["rule"] for s in json.loads(chat.stdout)["suggestions"]] == ["batch-interruptions"]


def test_detail_levels_show_more_or_less(invoke: Invoke, store: str) -> None:
    put(invoke)
    invoke(["observe", "tool", "--kind", "focus", "--data", '{"level": 5}'])
    basic = map_json(invoke, "--detail-level", "basic")["suggestions"][0]
    assert set(basic) == {"id", "text"}
    full = map_json(invoke, "--detail-level", "full")
    first = full["suggestions"][0]
    assert first["detail"] == "Focus level 5 observed; mornings suit it."
    assert {"field": "traits.focus.level", "op": "greater", "value": 5} in first["matched"]
    assert full["traits"]["focus.level"] == 5
    text = invoke(["map", "--mapper", "focus", "--masque", "tool", "--at", MORNING, "--detail-level", "full"])
    assert "because traits.focus.level greater (saw 5)" in text.stdout
    bad = invoke(["map", "--mapper", "focus", "--masque", "tool", "--detail-level", "loud"])
    assert bad.exit_code == ExitCode.USAGE


def test_mapping_a_masque_needs_its_ring(invoke: Invoke, store: str) -> None:
    put(invoke)
    key = add_actor(invoke, "otto", "outsider")
    refused = invoke(["map", "--mapper", "focus", "--masque", "tool"], env=as_actor("otto", key))
    assert refused.exit_code == ExitCode.REFUSED
    assert "ring player" in refused.output
    allowed = invoke(["map", "--mapper", "focus", "--masque", "open", "--json"], env=as_actor("otto", key))
    assert allowed.exit_code == 0, allowed.output
    unknown = invoke(["map", "--mapper", "focus", "--masque", "tol"])
    assert unknown.exit_code == ExitCode.NOT_FOUND and "`tool`" in unknown.output
    no_mapper = invoke(["map", "--mapper", "nope", "--masque", "tool"])
    assert no_mapper.exit_code == ExitCode.NOT_FOUND and "mapper put" in no_mapper.output


def test_bad_context_is_a_usage_error(invoke: Invoke, store: str) -> None:
    put(invoke)
    result = invoke(["map", "--mapper", "focus", "--masque", "tool", "--context", "[1]"])
    assert result.exit_code == ExitCode.USAGE and "JSON object" in result.output


# --- the optimistic lock -------------------------------------------------------------------------------


def test_two_writers_race_one_conflicts_and_no_update_is_lost(invoke: Invoke, store: str) -> None:
    """Both read version 1 (a barrier holds each until the other has read), then both write."""
    from masque.feedback import mappers
    from masque.store import turns

    put(invoke)
    barrier = threading.Barrier(2, timeout=60)
    conflicts: dict[str, int] = {}
    errors: list[BaseException] = []

    def writer(rule: str) -> None:
        first = [True]

        def read() -> mappers.MapperVersion:
            seen = mappers.show("focus")  # its own connection, closed before the barrier
            if first[0]:
                first[0] = False
                barrier.wait()
            return seen

        def write(seen: mappers.MapperVersion) -> mappers.MapperVersion:
            doc = dict(seen.doc)
            doc["rules"] = [{**r, "weight": r["weight"] + 1} if r["id"] == rule else r for r in doc["rules"]]
            with turns.transaction() as conn:
                return mappers.write_version(conn, "focus", seen.version, doc, "test", "root")

        try:
            _, conflicts[rule] = mappers.update(read, write)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(r,)) for r in ("deep-work-morning", "review-checklist")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(conflicts.values()) == [0, 1]  # exactly one writer had to re-read
    final = mappers.show("focus")
    assert final.version == 3
    assert final.weights()["deep-work-morning"] == 3.0 and final.weights()["review-checklist"] == 2.0


def test_a_stale_write_raises_conflict_naming_both_versions(invoke: Invoke, store: str) -> None:
    from masque.feedback import mappers
    from masque.store import turns

    put(invoke)
    seen = mappers.show("focus")
    with turns.transaction() as conn:
        mappers.write_version(conn, "focus", seen.version, seen.doc, "test", "root")
    with pytest.raises(Conflict) as caught, turns.transaction() as conn:
        mappers.write_version(conn, "focus", seen.version, seen.doc, "test", "root")
    assert (caught.value.expected, caught.value.current, caught.value.exit_code) == (1, 2, 6)

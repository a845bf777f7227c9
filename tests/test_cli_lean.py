"""The lean dispatcher (masque.cli.lean) hands a command function exactly what Typer would, or steps aside."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from masque.cli import lean
from masque.cli.app import app, main, run_command
from masque.cli.output import reset_consoles

LEAN_LINES = [
    ["assume", "codesmith", "--intent", "implement the parser"],
    ["assume", "codesmith", "-i", "x", "--local", "--strict-knowledge", "--format", "json", "--ttl", "15m"],
    ["assume", "--intent=x", "codesmith", "--as", "bob", "--key-file", "key.txt", "-fenv"],
    ["assume", "codesmith", "-ix", "-i", "last one wins"],
    ["release"],
    ["release", "ses_1", "--score", "+", "--notes", "-n", "-f", "json"],
    ["check", "codesmith", "--intent", "", "--json"],
    ["check", "--intent", "x", "--", "-codesmith"],
    ["whoami"],
    ["whoami", "--json"],
    ["memory", "search", "codesmith", "the query", "-k", "3", "--tag", "a", "--tags", "b,c", "--json"],
    ["memory", "search", "q", "--limit=5", "--session", "s", "--branch", "main", "-k", "+07"],
    ["memory", "search", "-", "-k", "-1"],
    ["stats", "--json", "--top", "3"],
    ["stats", "--top", "100"],
    ["exec", "codesmith", "-i", "x", "--", "pytest", "-q", "--", "-k"],
    ["validate", "--format", "github", "a.masque.yaml", "-v"],
]

TYPER_LINES = [
    ["--debug", "whoami"],  # root options
    ["whoami", "--help"],
    ["assume", "-h"],
    ["stats", "--top", "0"],  # out of range: Typer's message
    ["stats", "--top", " 7 "],  # pydantic's lax reading is Typer's business
    ["stats", "--top", "1_0"],
    ["stats", "--top", "abc"],
    ["stats", "--top"],  # a value is missing
    ["check", "codesmith"],  # a required option is missing
    ["whoami", "--jso"],  # unknown
    ["whoami", "--json=yes"],
    ["validate", "-vv"],  # short flags run together
    ["validate", "--format", "JSON"],  # enums are matched exactly, or not here
    ["memory", "search"],  # a required argument is missing
    ["release", "a", "b"],  # one argument too many
    ["sessions"],  # a group with a callback of its own
    ["nope"],
    [],
]


def _recorder(calls: list[dict[str, Any]], original: Callable[..., Any]) -> Callable[..., None]:
    def record(**kwargs: Any) -> None:
        calls.append(kwargs)

    record.__signature__ = inspect.signature(original, eval_str=True)  # type: ignore[attr-defined]
    record.__annotations__ = typing.get_type_hints(original)
    return record


def _all_commands(typer_app: Any) -> list[Any]:
    found = list(typer_app.registered_commands)
    for group in typer_app.registered_groups:
        found += _all_commands(group.typer_instance)
    return found


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    for command in _all_commands(app):
        monkeypatch.setattr(command, "callback", _recorder(calls, command.callback))
    return calls


@pytest.mark.parametrize("args", LEAN_LINES, ids=" ".join)
def test_lean_path_passes_what_typer_passes(args: list[str], recorded: list[dict[str, Any]]) -> None:
    assert lean.dispatch(app, args, run_command) == 0
    with pytest.raises(SystemExit) as typer_exit:
        app(args=args, prog_name="masque")
    assert typer_exit.value.code in (0, None)
    lean_kwargs, typer_kwargs = recorded
    assert lean_kwargs == typer_kwargs
    assert [(k, type(v)) for k, v in lean_kwargs.items()] == [(k, type(v)) for k, v in typer_kwargs.items()]


@pytest.mark.parametrize("args", TYPER_LINES, ids=" ".join)
def test_anything_else_is_left_to_typer(args: list[str], recorded: list[dict[str, Any]]) -> None:
    assert lean.dispatch(app, args, run_command) is None
    assert recorded == []


def _main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    reset_consoles()
    with pytest.raises(SystemExit) as done:
        main(args)
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


@pytest.mark.parametrize(
    ("top", "message"),
    [
        ("abc", "Input should be a valid integer, unable to parse string as an integer"),
        ("0", "Input should be greater than or equal to 1"),
        ("101", "Input should be less than or equal to 100"),
        ("2.5", "Input should be a valid integer, unable to parse string as an integer"),
    ],
)
def test_bad_numbers_name_the_option(capsys: pytest.CaptureFixture[str], top: str, message: str) -> None:
    code, _, err = _main(["stats", "--top", top], capsys)
    assert code == 2
    assert "Invalid value for '--top'" in err
    assert message in " ".join(err.split())


def test_good_values_reach_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["stats", "--top", "7", "--json"], capsys)[0] == 0
    assert _main(["stats", "--top", " 7 ", "--json"], capsys)[0] == 0  # via Typer, as before


def test_errors_keep_their_exit_codes(capsys: pytest.CaptureFixture[str], personas: Path) -> None:
    code, _, err = _main(["check", "no-such-masque", "--intent", "x"], capsys)
    assert code == 4 and "no-such-masque" in err
    code, _, err = _main(["release", "--format", "yaml"], capsys)
    assert code == 2 and "unknown --format 'yaml'" in err


def test_paths_keep_typer_checks(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.parquet"
    code, _, err = _main(["sessions", "import", str(missing)], capsys)
    assert code != 0 and "nope.parquet" in err
    exported = tmp_path / "out.jsonl"
    assert _main(["sessions", "export", str(exported)], capsys)[0] == 0
    assert exported.exists()


def test_run_command_exits_as_typer_would(capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    from masque.errors import NotFound

    def raising(exc: BaseException) -> Callable[[], None]:
        def call() -> None:
            raise exc

        return call

    assert run_command(lambda: None) == 0
    assert run_command(raising(typer.Exit(3))) == 3
    assert run_command(raising(typer.Abort())) == 1
    assert run_command(raising(typer.BadParameter("nope"))) == 2
    assert run_command(raising(NotFound("no such masque"))) == 4
    err = capsys.readouterr().err
    assert "Aborted!" in err and "Invalid value: nope" in err and "no such masque" in err


# --- the cached spec (masque.cli.lean_cache): `assume` and `release` without Typer -------------------

CACHED = [args for args in LEAN_LINES if args[0] in ("assume", "release") or args[:2] == ["memory", "search"]]


@pytest.fixture
def cached_spec() -> Path:
    """The spec the Typer app writes on its first run, before any callback is replaced."""
    from masque.cli import lean_cache

    lean_cache.ensure_spec(app)
    path = lean_cache.spec_path()
    assert path.is_file()
    return path


def test_the_spec_covers_exactly_the_commands_marked_lean(cached_spec: Path) -> None:
    import json

    commands = json.loads(cached_spec.read_text(encoding="utf-8"))["commands"]
    assert {name: c["target"] for name, c in commands.items()} == {
        "assume": "masque.cli.sessions_run:assume",
        "release": "masque.cli.sessions_run:release",
        "memory search": "masque.cli.memory_run:search",
    }


@pytest.mark.parametrize("args", CACHED, ids=" ".join)
def test_cached_spec_passes_what_typer_passes(
    args: list[str], cached_spec: Path, recorded: list[dict[str, Any]]
) -> None:
    from masque.cli import lean_cache

    planned = lean_cache.plan(args)
    assert planned is not None
    with pytest.raises(SystemExit) as typer_exit:
        app(args=args, prog_name="masque")
    assert typer_exit.value.code in (0, None)
    (typer_kwargs,) = recorded
    assert planned[1] == typer_kwargs
    assert [(k, type(v)) for k, v in planned[1].items()] == [(k, type(v)) for k, v in typer_kwargs.items()]


@pytest.mark.parametrize(
    "args",
    [a for a in TYPER_LINES if a[:1] in (["assume"], ["release"]) or a[:2] == ["memory", "search"]]
    + [["assume", "codesmith"], ["release", "--help"], ["assume", "x", "-i", "y", "--format"], ["whoami"]],
    ids=" ".join,
)
def test_the_cached_spec_leaves_anything_else_to_typer(args: list[str], cached_spec: Path) -> None:
    from masque.cli import lean_cache

    assert lean_cache.plan(args) is None


def test_a_spec_of_another_format_or_a_damaged_one_is_ignored(cached_spec: Path) -> None:
    from masque.cli import lean_cache

    line = ["release", "ses_1", "-f", "json"]
    assert lean_cache.plan(line) is not None
    cached_spec.write_text('{"format": 0, "commands": {}}', encoding="utf-8")
    assert lean_cache.plan(line) is None
    cached_spec.write_text("{not json", encoding="utf-8")
    assert lean_cache.plan(line) is None


def test_the_cached_targets_never_import_typer() -> None:
    import subprocess
    import sys

    modules = "masque.cli.sessions_run, masque.cli.memory_run, masque.cli.lean_cache"
    code = f"import sys, {modules}; print('typer' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# `masque ARGS` in a fresh process that reports, on exit, whether Typer was ever imported, and which
# of the modules the cold agent cycle must not pay for were.
_NOT_ON_THE_HOT_PATH = (
    "semver",  # only to match or order several versions
    "difflib",  # only for a "did you mean" hint
    "shlex",  # only for `--format env`
    "masque.model",  # release: the masque model's classes (the enums are masque.enums)
    "masque.sessions.lifecycle",  # release: assuming
    "masque.sessions.wearable",  # release
    "masque.memory.audit",  # release: only the session's memory diff
    "masque.reflection.scoring",  # release without --score
    "lancedb",  # memory search, list and get read through lance (~0.4 s lighter)
    "isodate",  # a cached definition brings its access.ttl parsed (~5 ms)
)
_TRACED = f"""
import atexit, os, sys

def report() -> None:
    sys.stderr.write(f"typer imported: {{'typer' in sys.modules}}\\n")
    also = sorted(m for m in {_NOT_ON_THE_HOT_PATH!r} if m in sys.modules)
    sys.stderr.write(f"also imported: {{also}}\\n")

atexit.register(report)
_exit = os._exit
os._exit = lambda code: (report(), _exit(code))  # the hot commands end without atexit
from masque.cli.entry import main
sys.argv[0] = "masque"
main()
"""


def _also_imported(stderr: str) -> set[str]:
    import ast

    return set(ast.literal_eval(stderr.split("also imported: ", 1)[1].splitlines()[0]))


@pytest.mark.slow
def test_cold_assume_release_and_search_skip_typer_once_the_spec_is_cached(
    personas: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import subprocess
    import sys

    def masque(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", _TRACED, *args], capture_output=True, text=True, timeout=120)

    monkeypatch.setenv("MASQUE_PATH", str(personas))
    first = masque("whoami")  # any run through the Typer app writes the spec
    assert first.returncode == 0 and "typer imported: True" in first.stderr
    worn = masque("assume", "codesmith", "--intent", "implement the parser", "--format", "json")
    assert worn.returncode == 0, worn.stderr
    assert "typer imported: False" in worn.stderr
    released = masque("release", json.loads(worn.stdout)["session_id"], "--format", "json")
    assert released.returncode == 0 and json.loads(released.stdout)["status"] == "ended"
    assert "typer imported: False" in released.stderr
    assert _also_imported(released.stderr) == set()
    # Once the definition is cached: codesmith has one version, and json needs no shell quoting.
    again = masque("assume", "codesmith", "--intent", "implement the parser", "--format", "json")
    assert again.returncode == 0, again.stderr
    assert _also_imported(again.stderr) == {"masque.model", "masque.sessions.lifecycle", "masque.sessions.wearable"}
    again = masque("release", json.loads(worn.stdout)["session_id"], "--format", "yaml")
    assert again.returncode == 2 and "unknown --format 'yaml'" in again.stderr  # errors exit as before
    refused = masque("assume", "codesmith", "--intent", "deploy it", "--format", "json")
    assert refused.returncode == 3 and "matches none of the allowed patterns" in refused.stderr
    assert refused.stdout == "" and "typer imported: False" in refused.stderr
    assert masque("memory", "add", "codesmith", "the parser keeps tokens").returncode == 0
    found = masque("memory", "search", "codesmith", "parser", "--json")
    assert found.returncode == 0, found.stderr
    assert [r["text"] for r in json.loads(found.stdout)["results"]] == ["the parser keeps tokens"]
    assert "typer imported: False" in found.stderr
    assert "lancedb" not in _also_imported(found.stderr)


def test_an_unusable_cache_directory_changes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from masque.cli import lean_cache

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory would be", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    lean_cache.ensure_spec(app)  # nothing written, nothing raised
    assert lean_cache.plan(["release", "ses_1", "-f", "json"]) is None
    code, _, err = _main(["release", "--format", "yaml"], capsys)
    assert code == 2 and "unknown --format 'yaml'" in err


@pytest.mark.slow
def test_root_help_comes_from_the_spec_as_typer_prints_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    def masque(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", _TRACED, *args], capture_output=True, text=True, timeout=120)

    monkeypatch.setenv("COLUMNS", "120")  # wider than Click ever wraps help: the width it is cached at
    built = masque("--help")  # no spec yet: Typer prints it and writes the spec
    assert built.returncode == 0 and "typer imported: True" in built.stderr
    assert "Usage: masque [OPTIONS] COMMAND [ARGS]..." in built.stdout and "assume" in built.stdout
    for line in (["--help"], ["-h"]):
        cached = masque(*line)
        assert (cached.returncode, cached.stdout) == (0, built.stdout)
        assert "typer imported: False" in cached.stderr
    monkeypatch.setenv("COLUMNS", "60")  # a narrow terminal: Typer wraps it anew
    narrow = masque("--help")
    assert narrow.returncode == 0 and "typer imported: True" in narrow.stderr
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 58 < max(len(x) for x in built.stdout.splitlines())

"""Shared fixtures: every test gets its own MASQUE_HOME, config dirs and working directory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
PERSONAS = REPO / "personas"

_CLEARED = [
    "MASQUE_SESSION_ID",
    "MASQUE_TOKEN",
    "MASQUE_ACTOR",
    "MASQUE_ACTOR_KEY",
    "MASQUE_PARENT_SESSION_ID",  # set inside `masque exec`, with MASQUE_CREDENTIAL proving it
    "MASQUE_CREDENTIAL",
    "MASQUE_PATH",
    "MASQUE_CONFIG",
    "MASQUE_DEBUG",
    "MASQUE_STORE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "CI",
    "GITHUB_ACTIONS",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store",
        choices=("duckdb", "postgres"),
        default="duckdb",
        help="store backend for every test: the DuckDB file (default) or a fresh database per test on a "
        "throwaway PostgreSQL server",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--store") != "postgres":
        return
    for item in items:
        marker = item.get_closest_marker("duckdb_only")
        if marker is not None:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "about the DuckDB file")
            item.add_marker(pytest.mark.skip(reason=f"duckdb_only: {reason}"))


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The session's throwaway PostgreSQL server (only under --store=postgres)."""
    from tests.pg_support import Server

    server = Server()
    request.addfinalizer(server.stop)
    yield server


@pytest.fixture
def store_url(request: pytest.FixtureRequest) -> str | None:
    """A fresh PostgreSQL database for this test under --store=postgres, else None (the DuckDB file)."""
    if request.config.getoption("--store") != "postgres":
        return None
    server = request.getfixturevalue("pg_server")
    return str(server.new_database())


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_url: str | None) -> Iterator[Path]:
    """Point every location Masque uses into tmp_path and run from an empty working directory."""
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    if store_url is not None:
        monkeypatch.setenv("MASQUE_STORE_URL", store_url)
    home = tmp_path / "masque-home"
    monkeypatch.setenv("MASQUE_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("NO_COLOR", "1")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    from masque.cli import output
    from masque.masques import schema

    schema.fast_validator.cache_clear()
    output.reset_consoles()
    yield home
    output.reset_consoles()


@pytest.fixture
def personas() -> Path:
    """The shipped personas directory."""
    return PERSONAS


@pytest.fixture
def invoke() -> Callable[..., Any]:
    """Run the `masque` CLI in-process: invoke(["validate", path], input=None) -> Result."""
    from masque.cli.app import app
    from masque.cli.output import reset_consoles

    def _invoke(args: list[str], **kwargs: Any) -> Any:
        reset_consoles()
        return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False, **kwargs)

    return _invoke


@pytest.fixture
def run_masque() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `python -m masque ARGS` as a real process with the test's environment."""

    def _run(*args: str, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        kwargs.setdefault("timeout", 120)
        return subprocess.run(
            [sys.executable, "-m", "masque", *map(str, args)],
            capture_output=True,
            text=True,
            env=full_env,
            **kwargs,
        )

    return _run


@pytest.fixture
def mt() -> Callable[..., Any]:
    """Run the `mythatron` CLI in-process, like `invoke` does for `masque`."""
    from masque.cli.mythatron import app
    from masque.cli.output import reset_consoles

    def _invoke(args: list[str], **kwargs: Any) -> Any:
        reset_consoles()
        return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False, **kwargs)

    return _invoke


@pytest.fixture
def masks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped example masks (routes.yaml included) on MASQUE_PATH."""
    import shutil

    target = tmp_path / "masks"
    shutil.copytree(REPO / "examples" / "masks", target)
    monkeypatch.setenv("MASQUE_PATH", str(target))
    return target

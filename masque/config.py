"""Where things live and how Masque is configured. The only module that reads environment variables.

Precedence for the home: `$MASQUE_HOME`, else `$XDG_DATA_HOME/masque`, else `~/.local/share/masque`.
Configuration: `$MASQUE_CONFIG` (a TOML file), else `masque.toml` in the working directory, else
`$XDG_CONFIG_HOME/masque/masque.toml`. Every function re-reads the environment so tests and
long-lived library users see changes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from masque.errors import UsageError

DEFAULT_MAX_FILE_BYTES = 1024 * 1024
DEFAULT_MAX_TTL_SECONDS = 12 * 3600  # like STS's maximum session duration
# Seconds to wait for the store. 10 s was too short on a loaded machine (load 10 on 2 cores): eight
# processes queueing for the turn, each held ~0.4 s there, left the unluckiest waiting ~7 s.
DEFAULT_LOCK_TIMEOUT = 30.0


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def home() -> Path:
    """The data home (store, memory shards, crash logs). Not created here; see `ensure_home`."""
    explicit = _env("MASQUE_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = _env("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "masque"


def ensure_home() -> Path:
    """Create the home with mode 0700 if it does not exist, and return it."""
    path = home()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def store_path() -> Path:
    return home() / "masque.duckdb"


def memory_dir() -> Path:
    return home() / "memory"


def crash_log_path() -> Path:
    return home() / "crash.log"


def cache_dir() -> Path:
    """Regenerable files (compiled validators): `$XDG_CACHE_HOME/masque`, else `~/.cache/masque`."""
    xdg = _env("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "masque"


def config_home() -> Path:
    xdg = _env("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "masque"


def user_personas_dir() -> Path:
    return config_home() / "personas"


def config_file() -> Path | None:
    """The TOML config file in force, or None when there is none."""
    explicit = _env("MASQUE_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    local = Path.cwd() / "masque.toml"
    if local.is_file():
        return local
    user = config_home() / "masque.toml"
    return user if user.is_file() else None


def search_path() -> list[Path]:
    """Directories searched for masques, first wins: MASQUE_PATH, ./personas, the user's own dir.

    The user's own dir comes last in the list but a private masque overrides a shared one of the
    same name@version; the registry applies that rule, this only lists the places.
    """
    dirs: list[Path] = []
    raw = _env("MASQUE_PATH")
    if raw:
        dirs.extend(Path(p).expanduser() for p in raw.split(os.pathsep) if p)
    dirs.append(Path.cwd() / "personas")
    dirs.append(user_personas_dir())
    return dirs


@lru_cache(maxsize=8)
def _read_toml(path: str, mtime_ns: int) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}", hint="fix the file or point MASQUE_CONFIG elsewhere") from None


def load_config() -> dict[str, Any]:
    """The parsed config file (empty when none). Cached by path and mtime."""
    path = config_file()
    if path is None:
        return {}
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist", hint="unset MASQUE_CONFIG or create the file") from None
    return _read_toml(str(path), mtime)


def section(name: str) -> Mapping[str, Any]:
    """One `[name]` table of the config file, empty when absent."""
    value = load_config().get(name, {})
    if not isinstance(value, dict):
        raise UsageError(f"config: [{name}] must be a table, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Limits:
    """Input and policy limits; overridable in `[limits]` of the config file."""

    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_depth: int = 64
    max_nodes: int = 100_000  # after alias expansion: stops "billion laughs"
    max_ttl_seconds: int = DEFAULT_MAX_TTL_SECONDS
    max_intent_chars: int = 1000
    guest_ttl_seconds: int = 3600
    chained_ttl_seconds: int = 3600
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    extra: Mapping[str, Any] = field(default_factory=dict)


def limits() -> Limits:
    raw = dict(section("limits"))
    known = {k: raw.pop(k) for k in list(raw) if k in Limits.__dataclass_fields__ and k != "extra"}
    try:
        return Limits(**known, extra=raw)
    except TypeError as exc:  # pragma: no cover - dataclass rejects nothing we pass
        raise UsageError(f"config [limits]: {exc}") from None


def session_id_from_env() -> str | None:
    return _env("MASQUE_SESSION_ID")


def actor_from_env() -> tuple[str | None, str | None]:
    return _env("MASQUE_ACTOR"), _env("MASQUE_ACTOR_KEY")


def env_value(name: str) -> str | None:
    """Read one environment variable for modules that must not touch os.environ themselves."""
    return _env(name)

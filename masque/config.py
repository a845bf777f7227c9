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
from dataclasses import dataclass, field, fields
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


def _home_source() -> str:
    if _env("MASQUE_HOME"):
        return "MASQUE_HOME"
    return "XDG_DATA_HOME" if _env("XDG_DATA_HOME") else "the default home"


def ensure_home() -> Path:
    """Create the home with mode 0700 if it does not exist, and return it.

    Raises UsageError when it cannot be a home: a file is in the way, or it cannot be created or written.
    """
    path = home()
    source = _home_source()
    hint = "set MASQUE_HOME to a directory you can write (it is created if missing), or unset it"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"the home {path} (from {source}) is a file, not a directory", hint=hint) from None
    except OSError as exc:
        raise UsageError(f"cannot create the home {path} (from {source}): {exc.strerror or exc}", hint=hint) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"the home {path} (from {source}) is not writable", hint=hint)
    return path


def store_path() -> Path:
    return home() / "masque.duckdb"


_STORE_URL_OVERRIDE: list[str] = []  # `masque serve --store URL` sets it for its own process


def set_store_url(url: str) -> None:
    """Use `url` as the store for the rest of this process (what `masque serve --store` does)."""
    _STORE_URL_OVERRIDE[:] = [url]


def store_url() -> str | None:
    """The shared store's URL (`postgresql://...`), or None for the embedded DuckDB file (the default).

    `masque serve --store URL`, else `$MASQUE_STORE_URL`, else `[store] url` in the config file.
    """
    url = _STORE_URL_OVERRIDE[0] if _STORE_URL_OVERRIDE else _env("MASQUE_STORE_URL")
    where = "--store" if _STORE_URL_OVERRIDE else "MASQUE_STORE_URL"
    if url is None:
        raw = section("store").get("url")
        if raw is None:
            return None
        where = f"{config_file()}: [store] url"
        if not isinstance(raw, str):
            raise UsageError(f"{where} must be a string, got {type(raw).__name__}", hint=_STORE_HINT)
        url = raw
    url = url.strip()
    if not url:
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        raise UsageError(f"{where}: unsupported store URL {url.split('://')[0]!r}", hint=_STORE_HINT)
    return url


def store_display() -> str:
    """Where the store is, for people: the DuckDB file's path, or the PostgreSQL URL without its password."""
    url = store_url()
    if url is None:
        return str(store_path())
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


_STORE_HINT = 'use a PostgreSQL URL like "postgresql://user@127.0.0.1:5432/masque", or unset it for the DuckDB file'


def memory_dir() -> Path:
    return home() / "memory"


_S3_KEYS = ("endpoint", "region", "allow_http", "profile")
_URI_HINT = 'set [memory] uri = "s3://BUCKET/PREFIX" in the config file, or remove it to keep memory under the home'


@dataclass(frozen=True)
class MemoryStorage:
    """Where memory shards live: the local memory dir (default) or an `s3://bucket/prefix` URI.

    `options` are LanceDB storage options and may hold credentials: never print, log or store them.
    """

    uri: str
    remote: bool = False
    endpoint: str | None = None
    options: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def where(self) -> str:
        """The URI with the endpoint, for messages (never the credentials)."""
        return f"{self.uri} (endpoint {self.endpoint})" if self.endpoint else self.uri


def memory_storage() -> MemoryStorage:
    """`[memory] uri` and `[memory.s3]`; the local memory dir when no uri is set.

    Credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), else from the
    profile (`[memory.s3] profile`, else AWS_PROFILE, else `default`) in the shared credentials file;
    with neither, LanceDB's own chain (instance roles) applies.
    """
    memory = section("memory")
    raw = memory.get("uri")
    if raw is None or raw == "":
        return MemoryStorage(str(memory_dir()))
    where = f"{config_file()}: [memory]"
    if not isinstance(raw, str) or not raw.startswith("s3://") or not raw[5:].split("/")[0]:
        raise UsageError(f"{where} uri must be an s3://BUCKET/PREFIX URI, got {raw!r}", hint=_URI_HINT)
    s3 = memory.get("s3", {})
    if not isinstance(s3, dict):
        raise UsageError(f"{where}.s3 must be a table", hint='e.g. [memory.s3] endpoint = "http://127.0.0.1:9000"')
    unknown = sorted(set(s3) - set(_S3_KEYS))
    if unknown:
        raise UsageError(f"{where}.s3 has unknown keys {unknown}", hint=f"the valid keys are {', '.join(_S3_KEYS)}")
    for key in ("endpoint", "region", "profile"):
        if key in s3 and (not isinstance(s3[key], str) or not s3[key]):
            raise UsageError(f"{where}.s3 {key} must be a non-empty string, got {s3[key]!r}")
    allow_http = s3.get("allow_http", False)
    if not isinstance(allow_http, bool):
        raise UsageError(f"{where}.s3 allow_http must be true or false, got {allow_http!r}")
    endpoint = s3.get("endpoint") or _env("AWS_ENDPOINT_URL_S3") or _env("AWS_ENDPOINT_URL")
    options: dict[str, str] = {}
    if endpoint:
        if not endpoint.startswith(("http://", "https://")):
            raise UsageError(f"{where}.s3 endpoint must be an http(s):// URL, got {endpoint!r}")
        if endpoint.startswith("http://") and not allow_http:
            raise UsageError(
                f"{where}.s3 endpoint {endpoint} is plain HTTP, which is refused unless allowed",
                hint="set [memory.s3] allow_http = true (for a local test server), or use an https:// endpoint",
            )
        options["aws_endpoint"] = endpoint.rstrip("/")
    if allow_http:
        options["allow_http"] = "true"
    region = s3.get("region") or _env("AWS_REGION") or _env("AWS_DEFAULT_REGION") or ("us-east-1" if endpoint else None)
    if region:
        options["aws_region"] = region
    options.update(_aws_credentials(s3.get("profile"), where))
    return MemoryStorage(raw.rstrip("/"), remote=True, endpoint=options.get("aws_endpoint"), options=options)


def _aws_credentials(profile: str | None, where: str) -> dict[str, str]:
    key, secret = _env("AWS_ACCESS_KEY_ID"), _env("AWS_SECRET_ACCESS_KEY")
    if key and secret and profile is None:
        found = {"aws_access_key_id": key, "aws_secret_access_key": secret}
        token = _env("AWS_SESSION_TOKEN")
        return {**found, "aws_session_token": token} if token else found
    name = profile or _env("AWS_PROFILE") or "default"
    path = Path(_env("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials").expanduser()
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the AWS credentials file {path}: {exc}") from None
    if not parser.has_section(name):
        if profile or _env("AWS_PROFILE"):
            raise UsageError(
                f"AWS profile {name!r} (from {'[memory.s3] profile' if profile else 'AWS_PROFILE'}) is not in {path}",
                hint=f"add [{name}] with aws_access_key_id and aws_secret_access_key there, or fix {where}.s3 profile",
            )
        return {}
    wanted = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
    return {k: parser.get(name, k) for k in wanted if parser.get(name, k, fallback="")}


def crash_log_path() -> Path:
    return home() / "crash.log"


def pins_path() -> Path:
    """Read-only copy of the store's trusted definitions, so `check`/`list` need not open the store."""
    return home() / "trusted-definitions.json"


def stages_path() -> Path:
    """Read-only copy of the newest recorded rollout stage per name@version, for `check`/`list`."""
    return home() / "stages.json"


def memory_log_spool_path() -> Path:
    """Append-only side log of memory compliance entries, folded into the store's `memory_log`."""
    return home() / "memory_log.jsonl"


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


_CONFIG_HINT = "fix the file or point MASQUE_CONFIG elsewhere"


@lru_cache(maxsize=8)
def _read_toml(path: str, mtime_ns: int) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    from masque.files import read_regular

    limit = 1024 * 1024
    try:
        raw = read_regular(path, limit)  # a FIFO or /dev/zero as MASQUE_CONFIG must not hang us
    except OSError as exc:
        raise UsageError(f"cannot read the config file {path}: {exc.strerror or exc}", hint=_CONFIG_HINT) from None
    if len(raw) > limit:
        raise UsageError(f"the config file {path} is over {limit:,} bytes", hint=_CONFIG_HINT)
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{path}: the config file is not UTF-8 text", hint=_CONFIG_HINT) from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}", hint=_CONFIG_HINT) from None


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


def _limit_types() -> dict[str, type]:
    """Each `[limits]` key and the type of its value (int, or float where a fraction makes sense)."""
    return {f.name: type(f.default) for f in fields(Limits)}


def limits() -> Limits:
    """`[limits]` of the config file over the defaults; UsageError naming the file and key when wrong."""
    raw = dict(section("limits"))
    if not raw:
        return Limits()
    types = _limit_types()
    valid = ", ".join(f"{name} ({kind.__name__})" for name, kind in types.items())
    where = f"{config_file()}: [limits]"
    for key, value in raw.items():
        kind = types.get(key)
        if kind is None:
            raise UsageError(f"{where} has an unknown key {key!r}", hint=f"the valid keys are {valid}")
        numeric = (int, float) if kind is float else (int,)
        if isinstance(value, bool) or not isinstance(value, numeric):
            shown = "a number" if kind is float else "an integer"
            raise UsageError(
                f"{where} {key} must be {shown} > 0, got {value!r} ({type(value).__name__})",
                hint=f"for example `{key} = {getattr(Limits, key)}`; the valid keys are {valid}",
            )
        if not value > 0 or value == float("inf"):
            raise UsageError(
                f"{where} {key} must be > 0, got {value!r}",
                hint=f"for example `{key} = {getattr(Limits, key)}`; the valid keys are {valid}",
            )
    return Limits(**{key: kind(raw[key]) for key, kind in types.items() if key in raw})


def session_id_from_env() -> str | None:
    return _env("MASQUE_SESSION_ID")


def drop_session_claim() -> None:
    """Forget MASQUE_SESSION_ID in this process: a server (`masque mcp`) proves sessions by their tokens
    only, so the id of the shell it started from must not be taken as a claim for what it serves."""
    os.environ.pop("MASQUE_SESSION_ID", None)


def actor_from_env() -> tuple[str | None, str | None]:
    return _env("MASQUE_ACTOR"), _env("MASQUE_ACTOR_KEY")


def environment() -> dict[str, str]:
    """A copy of the whole environment, for a child process that inherits it (`masque exec`)."""
    return dict(os.environ)


def env_value(name: str) -> str | None:
    """Read one environment variable for modules that must not touch os.environ themselves."""
    return _env(name)


def trusted_roots() -> tuple[Path, ...] | None:
    """`[registry] trusted_roots`: the only dirs masques are used from; None when not set.

    Relative entries are taken from the config file's directory (not the working directory), so
    the setting means the same dirs wherever a command runs.
    """
    raw = section("registry").get("trusted_roots")
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(p, str) and p for p in raw):
        raise UsageError(
            "config [registry] trusted_roots must be a list of directory paths",
            hint='e.g. trusted_roots = ["/etc/masque/personas"]',
        )
    where = config_file()
    base = where.parent if where is not None else Path.cwd()
    return tuple(base / Path(p).expanduser() for p in raw)

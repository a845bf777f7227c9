"""Find masques on the search path and resolve references (`name`, `name@1.2.3`, `masque:name@v1.2.3`).

Search path (`masque.config.search_path`): `MASQUE_PATH` dirs, then `./personas`, then the user's own
dir. Precedence when the same name@version exists more than once: the user's own (private) copy wins,
then the first shared dir in search-path order. A bare name resolves to the newest `live` version
(semver order); a pinned version resolves whatever its stage, so a beta can be tried on purpose.

Speed matters because every cold `masque assume` resolves a ref. Parsed files are cached in-process by
(path, mtime_ns, size), and `resolve` only parses files that can declare the wanted name: the
top-level `name:` line of a `.masque.yaml` file is read with a regex first, and files whose declared
name differs are never parsed. Files the regex cannot read (flow style, escapes, other dialects) are
parsed, so the shortcut never hides a masque.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from masque import config
from masque.errors import MasqueError, NotFound, ValidationFailed
from masque.model import Masque, Ref, Stage

if TYPE_CHECKING:
    import duckdb


class Source(str, Enum):
    """Which part of the search path a masque came from."""

    MASQUE_PATH = "MASQUE_PATH"
    PERSONAS = "personas"
    USER = "user"


@dataclass(frozen=True)
class SearchDir:
    path: Path
    source: Source
    rank: int  # precedence when name@version collide: lower wins (the user's dir is 0)


@dataclass(frozen=True)
class Resolved:
    """A ref resolved to one validated masque file."""

    masque: Masque
    path: Path
    sha256: str  # of the file's bytes, recorded with every session
    source: str  # a Source value
    overrides: tuple[Path, ...] = ()  # files with the same name@version this one took precedence over
    warnings: tuple[str, ...] = ()  # e.g. a broken file that may have been meant to win

    @property
    def ref(self) -> str:
        """The exact, pinned ref: `name@version` (case-folded name)."""
        return self.masque.ref


@dataclass(frozen=True)
class Entry:
    """One file found on the search path, valid or not, and whether it won its name@version."""

    path: Path
    source: str
    masque: Masque | None
    sha256: str | None
    error: str | None = None  # "file:line:col: message" when the file is invalid
    shadowed_by: Path | None = None  # the file that won this name@version instead

    @property
    def valid(self) -> bool:
        return self.masque is not None

    @property
    def active(self) -> bool:
        return self.masque is not None and self.shadowed_by is None

    @property
    def name(self) -> str | None:
        return self.masque.name if self.masque else None

    @property
    def version(self) -> str | None:
        return self.masque.version if self.masque else None

    def to_dict(self) -> dict[str, Any]:
        m = self.masque
        return {
            "name": m.name if m else None,
            "version": m.version if m else None,
            "stage": m.stage.value if m else None,
            "ring": m.ring.value if m else None,
            "path": str(self.path),
            "source": str(self.source),
            "sha256": self.sha256,
            "active": self.active,
            "shadowed_by": str(self.shadowed_by) if self.shadowed_by else None,
            "error": self.error,
        }


# --- the search path --------------------------------------------------------------------------------


def search_dirs() -> list[SearchDir]:
    """The search path with each dir's source and precedence (duplicates removed, first kept)."""
    user = config.user_personas_dir()
    local = Path.cwd() / "personas"
    dirs: list[SearchDir] = []
    seen: set[Path] = set()
    for i, given in enumerate(config.search_path()):
        # Absolute, so that a path recorded with a session still means the same file later.
        path = given if given.is_absolute() else Path.cwd() / given
        key = _real(path)
        if key in seen:
            continue
        seen.add(key)
        if path == user:
            dirs.append(SearchDir(path, Source.USER, 0))
        else:
            dirs.append(SearchDir(path, Source.PERSONAS if path == local else Source.MASQUE_PATH, i + 1))
    return dirs


def _real(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


def _suffixes() -> tuple[str, ...]:
    from masque.validate import suffixes

    return suffixes()  # *.masque.yaml and every other dialect validate knows (*.mask.json)


def _files(where: SearchDir, suffixes: tuple[str, ...]) -> Iterable[Path]:
    """Masque files under one search dir, recursively, skipping hidden dirs; sorted for stable order."""
    root = where.path
    if root.is_file():  # MASQUE_PATH may name single files too
        if root.name.endswith(suffixes):
            yield root
        return
    stack = [root]
    seen: set[tuple[int, int]] = set()  # (device, inode) of dirs walked: symlink loops end here
    while stack:
        current = stack.pop()
        try:
            info = current.stat()
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(current) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:  # missing or unreadable dirs are simply not searched
            continue
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue
            if is_dir:
                subdirs.append(Path(entry.path))
            elif entry.name.endswith(suffixes):
                yield Path(entry.path)
        stack.extend(reversed(subdirs))


# --- loading, cached by (path, mtime_ns, size) ---------------------------------------------------

_Loaded = Any  # masque.validate.LoadedMasque, imported lazily
_load_cache: dict[str, tuple[int, int, _Loaded | MasqueError]] = {}
_name_cache: dict[str, tuple[int, int, str | None]] = {}


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _load(path: Path) -> _Loaded:
    """Load and validate one file (any dialect `masque.validate` knows); cached; raises MasqueError."""
    key = _stat_key(path)
    cached = _load_cache.get(str(path))
    if cached is not None and key is not None and cached[:2] == key:
        result = cached[2]
    else:
        from masque.validate import load_masque

        try:
            result = load_masque(path)
            if result.masque.extends is not None:
                # Worn as flattened: the pinned parents' lens, intents and lists merged in.
                from dataclasses import replace

                from masque.mythatron.inherit import resolve_file

                result = replace(result, masque=resolve_file(path)[0])
        except MasqueError as exc:
            result = exc
        if key is not None:
            _load_cache[str(path)] = (*key, result)
    if isinstance(result, MasqueError):
        raise result
    return result


# A top-level `name:` key in block style, with a plain or simply-quoted value and an optional comment
# (a comment needs whitespace before `#`, as in YAML).
_NAME_LINE = re.compile(
    r"^name:[ \t]*"
    r"""(?:"(?P<dq>[^"\\\n]*)"|'(?P<sq>[^'\n]*)'|(?P<plain>[^\s"'&*!|>#{\[%@`][^\n]*?))"""
    r"[ \t]*(?:[ \t]\#.*)?$"
    r"(?P<next>\n[ \t]+[^ \t\n#])?",  # an indented next line would continue a plain scalar
    re.MULTILINE,
)


def declared_name(path: Path) -> str | None:
    """The masque name a `.masque.yaml` file declares, read without parsing; None when unsure."""
    if not path.name.endswith(".masque.yaml"):
        return None
    key = _stat_key(path)
    cached = _name_cache.get(str(path))
    if cached is not None and key is not None and cached[:2] == key:
        return cached[2]
    limit = config.limits().max_file_bytes
    try:
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)  # an oversized file is left to the loader, which refuses it
        text = raw.decode("utf-8-sig") if len(raw) <= limit else ""
    except (OSError, UnicodeDecodeError):
        text = ""
    name = declared_name_in(text)
    if key is not None:
        _name_cache[str(path)] = (*key, name)
    return name


def declared_name_in(text: str) -> str | None:
    """The top-level `name:` of YAML text when a regex can read it for sure; None when unsure."""
    # Only trust the shortcut for plain single-document block mappings.
    if not text or "\r" in text or "\n---" in text or text.lstrip().startswith(("{", "---", "%")):
        return None
    found = list(_NAME_LINE.finditer(text))
    if len(found) != 1 or found[0]["next"] is not None:
        return None
    m = found[0]
    return m["dq"] if m["dq"] is not None else m["sq"] if m["sq"] is not None else m["plain"]


def name_key(name: str) -> str:
    """How names compare: case-insensitively, with spaces and hyphens equivalent ("Code Smith")."""
    return name.casefold().replace(" ", "-")


# --- version ordering -------------------------------------------------------------------------------


def version_key(version: str) -> tuple[int, Any]:
    """Sort key: semver order; anything that is not semver sorts before every semver version."""
    import semver

    try:
        return (1, semver.Version.parse(version))
    except (ValueError, TypeError):
        return (0, version)


def _version_matches(wanted: str, version: str) -> bool:
    """Exact pin (`1.2.3`, build metadata ignored as semver does) or a prefix (`2`, `2.3`)."""
    if wanted == version:
        return True
    import semver

    try:
        return semver.Version.parse(version).compare(wanted) == 0
    except (ValueError, TypeError):
        pass
    parts = wanted.split(".")
    if len(parts) < 3 and all(p.isdigit() for p in parts):
        core = re.split(r"[-+]", version, maxsplit=1)[0].split(".")
        return core[: len(parts)] == [str(int(p)) for p in parts]
    return False


def _is_full_version(wanted: str) -> bool:
    return version_key(wanted)[0] == 1


# --- available() ------------------------------------------------------------------------------------


def _scan(dirs: Sequence[SearchDir], want: Ref | None) -> list[tuple[SearchDir, Path, _Loaded | MasqueError]]:
    """(dir, file, loaded or error) for every file that may declare `want` (every file when None)."""
    suffixes = _suffixes()
    wanted = name_key(want.name.rsplit("/", 1)[-1]) if want else None
    subdir = want.name.rsplit("/", 1)[0].casefold() if want and "/" in want.name else None
    out: list[tuple[SearchDir, Path, _Loaded | MasqueError]] = []
    seen: set[Path] = set()
    for where in dirs:
        for path in _files(where, suffixes):
            real = _real(path)
            if real in seen:
                continue
            seen.add(real)
            if subdir is not None and _rel_parent(path, where.path) != subdir:
                continue
            if wanted is not None:
                declared = declared_name(path)
                if declared is not None and name_key(declared) != wanted:
                    continue
            try:
                out.append((where, path, _load(path)))
            except MasqueError as exc:
                out.append((where, path, exc))
    return out


def _rel_parent(path: Path, root: Path) -> str:
    try:
        return path.parent.relative_to(root).as_posix().casefold()
    except ValueError:
        return ""


def _entries(scanned: Sequence[tuple[SearchDir, Path, _Loaded | MasqueError]]) -> list[Entry]:
    """Entries with the override rule applied: per name@version the lowest-rank dir wins."""
    winners: dict[tuple[str, str], tuple[int, int, Path]] = {}
    for order, (where, path, loaded) in enumerate(scanned):
        if isinstance(loaded, MasqueError):
            continue
        slot = (name_key(loaded.masque.name), loaded.masque.version)
        candidate = (where.rank, order, path)
        if slot not in winners or candidate < winners[slot]:
            winners[slot] = candidate
    entries: list[Entry] = []
    for where, path, loaded in scanned:
        if isinstance(loaded, MasqueError):
            entries.append(Entry(path, where.source.value, None, None, error=str(loaded)))
            continue
        winner = winners[(name_key(loaded.masque.name), loaded.masque.version)][2]
        entries.append(
            Entry(
                path,
                where.source.value,
                loaded.masque,
                loaded.sha256,
                shadowed_by=None if winner == path else winner,
            )
        )
    return entries


def _sort_key(entry: Entry) -> tuple[Any, ...]:
    if entry.masque is None:
        return (1, "", (0, ""), str(entry.path))
    return (0, name_key(entry.masque.name), version_key(entry.masque.version), entry.shadowed_by is not None)


def available() -> list[Entry]:
    """Every masque file on the search path (invalid ones with their error), sorted by name, version."""
    entries = _entries(_scan(search_dirs(), None))
    # Python's sort is stable, so equal keys keep search-path order.
    try:
        return sorted(entries, key=_sort_key)
    except TypeError:  # a semver and a non-semver version of one name: fall back to text order
        return sorted(entries, key=lambda e: (e.masque is None, str(e.name), str(e.version)))


# --- resolve() --------------------------------------------------------------------------------------


def resolve(ref: str, *, conn: duckdb.DuckDBPyConnection | None = None) -> Resolved:
    """Resolve a ref to one validated masque file (`conn`: read recorded stages through it).

    Raises UsageError (malformed ref), NotFound (unknown name or version: lists versions or suggests
    close names) or ValidationFailed (only invalid files could be it: names file:line:col).
    """
    want = Ref.parse(ref)
    dirs = search_dirs()
    scanned = _scan(dirs, want)
    entries = _entries(scanned)
    wanted = name_key(want.name.rsplit("/", 1)[-1])
    mine = [e for e in entries if e.masque is not None and name_key(e.masque.name) == wanted]
    broken = [e for e in entries if e.masque is None]
    active = [e for e in mine if e.active]
    if not active:
        named = [e for e in broken if _named_like(e.path, wanted)]
        if named:
            first = named[0]
            raise ValidationFailed(
                f"{ref}: no valid masque found; {first.error}",
                hint=f"fix {first.path} (`masque validate {first.path}` lists every problem)",
            )
        raise _unknown_name(ref, want, dirs, skipped=len(broken))
    chosen = _pick(ref, want, active, conn)
    overrides = tuple(e.path for e in mine if e.shadowed_by == chosen.path)
    # A broken file that could be this masque (say, a private override with a typo) must not be
    # passed over silently.
    warnings = tuple(f"skipped invalid file: {e.error}" for e in broken)
    loaded = _load(chosen.path)
    warnings += tuple(
        f"{d.path}:{d.line}:{d.col}: warning: {d.message}" if d.line else f"{d.path}: warning: {d.message}"
        for d in loaded.warnings
    )
    assert chosen.masque is not None and chosen.sha256 is not None
    return Resolved(chosen.masque, chosen.path, chosen.sha256, chosen.source, overrides, warnings)


def _pick(ref: str, want: Ref, active: list[Entry], conn: duckdb.DuckDBPyConnection | None = None) -> Entry:
    def newest(candidates: list[Entry]) -> Entry | None:
        try:
            return max(candidates, key=lambda e: version_key(str(e.version)), default=None)
        except TypeError:
            return max(candidates, key=lambda e: str(e.version), default=None)

    if want.version is not None and _is_full_version(want.version):
        exact = [e for e in active if _version_matches(want.version, str(e.version))]
        if exact:
            # `1.0.0+a` and `1.0.0+b` are equal in semver; the one spelled exactly as asked comes first.
            return next((e for e in exact if e.version == want.version), exact[0])
        raise _unknown_version(ref, want, active)
    if want.version is not None:
        matching = [e for e in active if _version_matches(want.version, str(e.version))]
    else:
        matching = active
    stages = _recorded_stages(matching, conn)
    live = [
        e
        for e in matching
        if e.masque is not None
        and stages.get((name_key(e.masque.name), e.masque.version), e.masque.stage) is Stage.LIVE
    ]
    best = newest(live)
    if best is not None:
        return best
    raise _unknown_version(ref, want, active, no_live=bool(matching))


def _recorded_stages(
    candidates: list[Entry], conn: duckdb.DuckDBPyConnection | None = None
) -> dict[tuple[str, str], Stage]:
    """Stage changes recorded by `mythatron mask promote/retire` override the files' `stage` field."""
    if not candidates:
        return {}
    from masque.mythatron.catalog import recorded_stages

    return recorded_stages(conn)


def _listing(active: list[Entry]) -> str:
    ordered = sorted(active, key=lambda e: version_key(str(e.version)))
    return ", ".join(f"{e.version} ({e.masque.stage.value})" for e in ordered if e.masque is not None)


def _unknown_version(ref: str, want: Ref, active: list[Entry], no_live: bool = False) -> NotFound:
    name = active[0].masque.key if active[0].masque else want.name
    versions = _listing(active)
    if no_live:
        what = f"{ref}: no live version" + (f" matching {want.version}" if want.version else "")
        return NotFound(
            f"{what}; available: {versions}",
            hint=f"pin one of them, e.g. `{name}@{active[-1].version}`, or promote a version to stage: live",
        )
    return NotFound(
        f"{ref}: {name} has no version {want.version}; available: {versions}",
        hint=f"use one of those versions (e.g. `{name}@{active[0].version}`) or `{name}` for the newest live",
    )


def _named_like(path: Path, wanted: str) -> bool:
    """Does this (invalid) file look meant to be the masque `wanted`, by its name line or file name?"""
    declared = declared_name(path)
    stem = path.name.split(".", 1)[0]
    return (declared is not None and name_key(declared) == wanted) or name_key(stem) == wanted


def _unknown_name(ref: str, want: Ref, dirs: Sequence[SearchDir], skipped: int = 0) -> NotFound:
    names = sorted({name_key(n) for n in known_names()})
    close = difflib.get_close_matches(name_key(want.name), names, n=3, cutoff=0.6)
    where = ", ".join(str(d.path) for d in dirs)
    if close:
        hint = "did you mean " + " or ".join(f"`{c}`" for c in close) + "? (`masque list` shows all)"
    elif names:
        hint = "`masque list` shows every masque on the search path"
    else:
        hint = "add *.masque.yaml files to ./personas, your own dir, or a dir on MASQUE_PATH"
    if skipped:
        hint += f"; {skipped} invalid file(s) were skipped (`masque list` shows why)"
    return NotFound(f"no masque named {want.name!r} (ref {ref!r}) on the search path: {where}", hint=hint)


def known_names() -> list[str]:
    """Every name declared on the search path (cheaply: the `name:` line when it can be read)."""
    suffixes = _suffixes()
    names: set[str] = set()
    for where in search_dirs():
        for path in _files(where, suffixes):
            declared = declared_name(path)
            if declared is None:
                try:
                    declared = _load(path).masque.name
                except MasqueError:
                    continue
            names.add(declared)
    return sorted(names)


def prepare(ref: str) -> None:
    """Parse every file that may hold `ref` into the cache, so `resolve` under the store's turn only stats them.

    A malformed ref is left for `resolve` to report.
    """
    try:
        want = Ref.parse(ref)
    except MasqueError:
        return
    import semver  # noqa: F401  (version ordering)

    from masque.mythatron import catalog  # noqa: F401  (recorded stages)

    _scan(search_dirs(), want)


def clear_cache() -> None:
    """Forget parsed files (tests and long-lived processes that rewrite files within one mtime tick)."""
    _load_cache.clear()
    _name_cache.clear()


def to_plain(value: Any) -> Any:
    """A model value (frozen dataclasses, enums, read-only mappings, tuples) as plain JSON data."""
    import dataclasses
    from collections.abc import Mapping

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def resolved_to_dict(resolved: Resolved) -> dict[str, Any]:
    """The JSON shape of `masque show --json` (documented in the README (Registry))."""
    return {
        "ref": resolved.ref,
        "path": str(resolved.path),
        "source": str(resolved.source),
        "sha256": resolved.sha256,
        "overrides": [str(p) for p in resolved.overrides],
        "warnings": list(resolved.warnings),
        "masque": to_plain(resolved.masque),
    }

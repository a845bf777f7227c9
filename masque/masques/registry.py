"""Find masques on the search path and resolve references (`name`, `name@1.2.3`, `masque:name@v1.2.3`).

Search path (`masque.config.search_path`): `MASQUE_PATH` dirs, then `./personas`, then the user's own
dir; with `[registry] trusted_roots` set, files outside those roots are ignored. A bare name resolves
to the newest `live` version (semver order); a pinned version resolves whatever its stage.

Trust (`masque.masques.trusted`): each name@version is bound to the content hash it was first worn with. Files
claiming it with other content are never used: when no file matches the pin, or when several files
with different content claim an unpinned name@version, resolving it is refused (`trusted.DefinitionRefused`,
exit 3) naming every path. Identical copies are fine: then the user's own (private) copy wins, then
the first shared dir in search-path order.

Speed matters because every cold `masque assume` resolves a ref. Parsed files are cached in-process by
(path, mtime_ns, size), and `resolve` only parses files that can declare the wanted name: the
top-level `name:` line of a `.masque.yaml` file is read with a regex first, and files whose declared
name differs are never parsed. Files the regex cannot read (flow style, escapes, other dialects) are
parsed, so the shortcut never hides a masque.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from masque import config
from masque.durations import needs_isodate
from masque.errors import MasqueError, NotFound, UsageError, ValidationFailed
from masque.masques import trusted
from masque.masques.refs import name_key, slot_of, version_key
from masque.model import Masque, Ref, Stage

if TYPE_CHECKING:
    import duckdb

    from masque.masques.trusted import DefinitionRefused, Pin


class Source(str, Enum):
    """Which part of the search path a masque came from."""

    MASQUE_PATH = "MASQUE_PATH"
    PERSONAS = "personas"
    USER = "user"


@dataclass(frozen=True)
class SearchDir:
    """One directory of the search path and where it came from."""

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
    pinned: bool = False  # its name@version has a trusted definition (this file matches it)

    @property
    def ref(self) -> str:
        """The exact, pinned ref: `name@version` (case-folded name)."""
        return self.masque.ref


class Status(str, Enum):
    """What became of one file found on the search path."""

    ACTIVE = "active"  # the copy a ref to its name@version uses
    SHADOWED = "shadowed"  # an identical copy; another one takes precedence
    MISMATCH = "mismatch"  # differs from the definition pinned for its name@version: never used
    CONFLICT = "conflict"  # one of several different files claiming an unpinned name@version
    UNTRUSTED = "untrusted"  # outside `[registry] trusted_roots`: never used
    INVALID = "invalid"


BLOCKED = (Status.MISMATCH, Status.CONFLICT)


@dataclass(frozen=True)
class Entry:
    """One file found on the search path, valid or not, and whether it won its name@version."""

    path: Path
    source: str
    masque: Masque | None
    sha256: str | None
    error: str | None = None  # "file:line:col: message" when the file is invalid
    shadowed_by: Path | None = None  # the identical file that won this name@version instead
    status: Status = Status.ACTIVE
    note: str | None = None  # why a valid file is not used

    @property
    def valid(self) -> bool:
        return self.masque is not None

    @property
    def active(self) -> bool:
        return self.masque is not None and self.status is Status.ACTIVE

    @property
    def slot(self) -> tuple[str, str] | None:
        return slot_of(self.masque.name, self.masque.version) if self.masque else None

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
            "status": self.status.value,
            "note": self.note,
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
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop, before Python 3.13
        return path.absolute()


def _suffixes() -> tuple[str, ...]:
    from masque.masques.loaded import suffixes

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
            except OSError:  # e.g. a symlink loop: a file with our suffix is still reported, as unreadable
                is_dir = False
            if is_dir:
                subdirs.append(Path(entry.path))
            elif entry.name.endswith(suffixes):
                yield Path(entry.path)
        stack.extend(reversed(subdirs))


# --- loading, cached by (path, mtime_ns, size) ---------------------------------------------------

_Loaded = Any  # masque.masques.validate.LoadedMasque, imported lazily
_load_cache: dict[str, tuple[int, int, _Loaded | MasqueError]] = {}
_name_cache: dict[str, tuple[int, int, str | None]] = {}


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _load(path: Path) -> _Loaded:
    """Load and validate one file (any dialect `masque.masques.validate` knows); cached; raises MasqueError."""
    key = _stat_key(path)
    cached = _load_cache.get(str(path))
    if cached is not None and key is not None and cached[:2] == key:
        result = cached[2]
    else:
        from masque.masques import loaded

        result = loaded.cached(path)  # these exact bytes validated cleanly before: no PyYAML, no validator
        if result is None:
            result = _load_and_validate(path)
            if not isinstance(result, MasqueError):
                loaded.remember(result)
        if key is not None:
            _load_cache[str(path)] = (*key, result)
    if isinstance(result, MasqueError):
        raise result
    return result


def _load_and_validate(path: Path) -> _Loaded | MasqueError:
    """The loaded file (flattened when it `extends` another), or the error that stops it."""
    from masque.masques.validate import load_masque

    try:
        result = load_masque(path)
        if result.masque.extends is not None:
            # Worn as flattened: the pinned parents' lens, intents and lists merged in.
            from dataclasses import replace

            from masque.masques.validate import resolve_file

            flat = resolve_file(path)[0]
            result = replace(result, masque=flat, sha256=definition_hash(flat))
    except MasqueError as exc:
        return exc
    except Exception as exc:  # one bad file must never stop the others
        return ValidationFailed(
            f"{path}: cannot load: {type(exc).__name__}: {exc}",
            hint=f"run `masque validate {path}`; this is a bug if it passes",
        )
    return result


def content_hash(path: Path) -> str:
    """The hash a pin holds for this file: its bytes', or its flattened definition's with `extends`."""
    return _load(path).sha256


def definition_hash(masque: Masque) -> str:
    """SHA-256 of a flattened definition (canonical JSON): a changed `extends` parent changes it too."""
    import hashlib
    import json

    text = json.dumps(to_plain(masque), sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    from masque.files import read_regular

    try:
        raw = read_regular(path, limit)  # an oversized or irregular file is left to the loader, which refuses it
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


def _within(path: Path, roots: Sequence[Path]) -> bool:
    real = _real(path)
    return any(real.is_relative_to(_real(root)) for root in roots)


def _entries(
    scanned: Sequence[tuple[SearchDir, Path, _Loaded | MasqueError]],
    pins: dict[tuple[str, str], Pin] | None = None,
    roots: Sequence[Path] | None = None,
) -> list[Entry]:
    """Entries with the trust and override rules applied (see the module docstring)."""
    pins = pins or {}
    slots: dict[tuple[str, str], list[tuple[int, int, Path, str]]] = {}
    verdict: dict[Path, tuple[Status, Path | None, str | None]] = {}
    for order, (where, path, loaded) in enumerate(scanned):
        if isinstance(loaded, MasqueError):
            continue
        if roots is not None and not _within(path, roots):
            verdict[path] = (Status.UNTRUSTED, None, "outside [registry] trusted_roots: not used")
            continue
        slot = slot_of(loaded.masque.name, loaded.masque.version)
        slots.setdefault(slot, []).append((where.rank, order, path, loaded.sha256))
    for slot, claims in slots.items():
        claims.sort()
        pin = pins.get(slot)
        if pin is not None:
            good = [c for c in claims if c[3] == pin.content_hash]
            for c in claims:
                if c[3] != pin.content_hash:
                    pinned = f"{pin.source_path} (sha256 {pin.content_hash[:12]})"
                    note = f"differs from the pinned definition {pinned}: not used"
                    verdict[c[2]] = (Status.MISMATCH, None, note)
        elif len({c[3] for c in claims}) > 1:
            for c in claims:
                note = f"{len(claims)} different files claim {slot[0]}@{slot[1]} and none is pinned: not used"
                verdict[c[2]] = (Status.CONFLICT, None, note)
            continue
        else:
            good = claims
        if good:
            winner = good[0][2]
            verdict[winner] = (Status.ACTIVE, None, None)
            for c in good[1:]:
                verdict[c[2]] = (Status.SHADOWED, winner, None)
    entries: list[Entry] = []
    for where, path, loaded in scanned:
        if isinstance(loaded, MasqueError):
            entries.append(Entry(path, where.source.value, None, None, error=str(loaded), status=Status.INVALID))
            continue
        status, shadowed_by, why = verdict[path]
        entries.append(Entry(path, where.source.value, loaded.masque, loaded.sha256, None, shadowed_by, status, why))
    return entries


def _sort_key(entry: Entry) -> tuple[Any, ...]:
    if entry.masque is None:
        return (1, "", (0, ""), str(entry.path))
    return (0, name_key(entry.masque.name), version_key(entry.masque.version), not entry.active)


def available() -> list[Entry]:
    """Every masque file on the search path (invalid ones with their error), sorted by name, version."""
    entries = _entries(_scan(search_dirs(), None), _pins(), config.trusted_roots())
    # Python's sort is stable, so equal keys keep search-path order.
    try:
        return sorted(entries, key=_sort_key)
    except TypeError:  # a semver and a non-semver version of one name: fall back to text order
        return sorted(entries, key=lambda e: (e.masque is None, str(e.name), str(e.version)))


# --- resolve() --------------------------------------------------------------------------------------


def resolve(ref: str, *, conn: duckdb.DuckDBPyConnection | None = None) -> Resolved:
    """Resolve a ref to one validated, trusted masque file (`conn`: read stages and pins through it).

    Raises UsageError (malformed ref), NotFound (unknown name or version: lists versions or suggests
    close names), ValidationFailed (only invalid files could be it: names file:line:col) or
    `trusted.DefinitionRefused` (the chosen name@version has no trusted file: names every path).
    """
    want = Ref.parse(ref)
    dirs = search_dirs()
    scanned = _scan(dirs, want)
    pins = _pins(conn)
    entries = _entries(scanned, pins, config.trusted_roots())
    wanted = name_key(want.name.rsplit("/", 1)[-1])
    mine = [e for e in entries if e.masque is not None and name_key(e.masque.name) == wanted]
    broken = [e for e in entries if e.masque is None]
    won = {e.slot for e in mine if e.active}
    untrusted = [e for e in mine if e.status is Status.UNTRUSTED]
    # A name@version no file can be trusted for stays a candidate, so that choosing it is refused
    # rather than silently falling back to another version.
    pool = [e for e in mine if e.active or (e.status in BLOCKED and e.slot not in won)]
    if not pool:
        named = [e for e in broken if _named_like(e.path, wanted)]
        if named:
            first = named[0]
            raise ValidationFailed(
                f"{ref}: no valid masque found; {first.error}",
                hint=f"fix {first.path} (`masque validate {first.path}` lists every problem)",
            )
        raise _unknown_name(ref, want, dirs, skipped=len(broken), untrusted=len(untrusted))
    try:
        chosen = _pick(ref, want, pool, conn)
    except NotFound as exc:
        if untrusted:
            exc.hint = f"{exc.hint}; {_UNTRUSTED_NOTE.format(len(untrusted))}"
        raise
    if not chosen.active:
        raise _refusal(chosen, [e for e in mine if e.slot == chosen.slot], pins)
    overrides = tuple(e.path for e in mine if e.shadowed_by == chosen.path)
    # A broken file that could be this masque (say, a private override with a typo) must not be
    # passed over silently; nor a file that claims this name@version but is not trusted.
    warnings = tuple(f"skipped invalid file: {e.error}" for e in broken)
    warnings += tuple(
        f"ignored {e.path}: {e.note}"
        for e in mine
        if e.status in (Status.MISMATCH, Status.UNTRUSTED) and e.version == chosen.version
    )
    loaded = _load(chosen.path)
    warnings += tuple(
        f"{d.path}:{d.line}:{d.col}: warning: {d.message}" if d.line else f"{d.path}: warning: {d.message}"
        for d in loaded.warnings
    )
    assert chosen.masque is not None and chosen.sha256 is not None
    pinned = chosen.slot in pins
    return Resolved(chosen.masque, chosen.path, chosen.sha256, chosen.source, overrides, warnings, pinned)


_UNTRUSTED_NOTE = "{} file(s) with that name lie outside [registry] trusted_roots and were ignored"


def _pins(conn: duckdb.DuckDBPyConnection | None = None) -> dict[tuple[str, str], Pin]:
    return trusted.pins(conn)


def _refusal(chosen: Entry, claims: list[Entry], pins: dict[tuple[str, str], Pin]) -> DefinitionRefused:
    """The refusal for a name@version whose claimants cannot be trusted, naming every path."""
    assert chosen.masque is not None and chosen.slot is not None
    key, version = chosen.masque.key, chosen.masque.version
    ref = f"{key}@{version}"
    listed = [e for e in claims if e.status in BLOCKED]
    files = ", ".join(f"{e.path} (sha256 {str(e.sha256)[:12]})" for e in listed)
    pin = pins.get(chosen.slot)
    repin = f"`masque registry pin {ref} --file {listed[0].path}`"
    if pin is not None:
        by = f" by {pin.pinned_by}" if pin.pinned_by else ""
        return trusted.DefinitionRefused(
            f"{ref}: {files} differs from the trusted definition first registered at {pin.source_path} "
            f"(sha256 {pin.content_hash[:12]}, pinned{by})",
            reason="definition_mismatch",
            hint=f"publish a change under a new `version:`; if the new file is trusted, an admin re-pins: {repin}",
            key=key,
            version=version,
            paths=(pin.source_path, *(str(e.path) for e in listed)),
        )
    return trusted.DefinitionRefused(
        f"{ref} is claimed by {len(listed)} different files and none is trusted yet: {files}",
        reason="definition_ambiguous",
        hint=f"remove one or give it a new `version:`, or an admin pins one: {repin}",
        key=key,
        version=version,
        paths=tuple(str(e.path) for e in listed),
    )


def claimants(ref: str) -> list[Entry]:
    """Every valid, trusted-root file claiming exactly this name@version, pins ignored (for re-pinning)."""
    want = Ref.parse(ref)
    if want.version is None or not _is_full_version(want.version):
        raise UsageError(f"{ref}: give the exact name@version to pin", hint="e.g. `codesmith@0.1.0`")
    wanted = name_key(want.name.rsplit("/", 1)[-1])
    entries = _entries(_scan(search_dirs(), want), {}, config.trusted_roots())
    return [
        e
        for e in entries
        if e.masque is not None
        and e.status is not Status.UNTRUSTED
        and name_key(e.masque.name) == wanted
        and _version_matches(want.version, e.masque.version)
    ]


def _pick(ref: str, want: Ref, active: list[Entry], conn: duckdb.DuckDBPyConnection | None = None) -> Entry:
    def newest(candidates: list[Entry]) -> Entry | None:
        if len(candidates) < 2:  # nothing to order, so no semver import either
            return candidates[0] if candidates else None
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


def recorded_stages(conn: duckdb.DuckDBPyConnection | None = None) -> dict[tuple[str, str], Stage]:
    """(key, version) -> newest recorded stage. Empty when no store exists yet (never creates one).

    Reads through `conn` when given (an assume passes its transaction's, saving a store open), else
    from the copy the store keeps beside itself (`store.write_stages_copy`), else from the store.
    """
    from masque import store

    found: list[Any]
    if conn is not None:
        found = store.newest_stages(conn)
    elif not store.present():
        return {}
    else:
        copied = store.read_stages_copy()  # no DuckDB import for `check` and `list`
        if copied is not None:
            found = list(copied)
        else:
            with store.connect(read_only=True) as own:
                found = store.newest_stages(own)
    return {(str(k), str(v)): Stage(s) for k, v, s in found}


def _recorded_stages(
    candidates: list[Entry], conn: duckdb.DuckDBPyConnection | None = None
) -> dict[tuple[str, str], Stage]:
    """Stage changes recorded by `mythatron mask promote/retire` override the files' `stage` field."""
    if not candidates:
        return {}
    return recorded_stages(conn)


def _listing(active: list[Entry]) -> str:
    ordered = sorted(active, key=lambda e: version_key(str(e.version)))
    seen = dict.fromkeys(f"{e.version} ({e.masque.stage.value})" for e in ordered if e.masque is not None)
    return ", ".join(seen)


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


def _unknown_name(ref: str, want: Ref, dirs: Sequence[SearchDir], skipped: int = 0, untrusted: int = 0) -> NotFound:
    import difflib

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
    if untrusted:
        hint += f"; {_UNTRUSTED_NOTE.format(untrusted)}"
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
    scanned = _scan(search_dirs(), want)
    found = [loaded.masque for _, _, loaded in scanned if not isinstance(loaded, MasqueError)]
    versions = {m.version for m in found}
    if want.version is not None or len(versions) > 1 or any("+" in v for v in versions):
        import semver  # noqa: F401  (versions to match or order: `semver` is slow to import)
    if any(m.access is not None and needs_isodate(m.access.ttl) for m in found):
        import isodate  # noqa: F401  (an access.ttl no earlier validation parsed: see masque.durations)


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
    """The JSON shape of `masque show --json` (documented in docs/registry.md)."""
    return {
        "ref": resolved.ref,
        "path": str(resolved.path),
        "source": str(resolved.source),
        "sha256": resolved.sha256,
        "overrides": [str(p) for p in resolved.overrides],
        "warnings": list(resolved.warnings),
        "masque": to_plain(resolved.masque),
    }

"""`masque validate`: find files, check each (parse, schema, semantics), then checks across files."""

from __future__ import annotations

import glob
import importlib
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from masque.config import Limits
from masque.config import limits as current_limits
from masque.errors import UsageError, ValidationFailed
from masque.masques.diagnostics import Diagnostic, FileResult, Report, Severity
from masque.masques.diagnostics import strict as make_strict
from masque.masques.loaded import DIALECTS as DIALECTS
from masque.masques.loaded import MASQUE_SUFFIX as MASQUE_SUFFIX
from masque.masques.loaded import LoadedMasque as LoadedMasque
from masque.masques.loaded import suffixes as suffixes
from masque.masques.loader import Document, LoadProblem, decode, load_text
from masque.model import Masque, masque_from_data

if TYPE_CHECKING:
    from masque.masques.inheritance import Resolved

# Files `masque validate` checks that are not masques (the registry never scans them), same hook shape
# as DIALECTS: suffix -> "module:function(path, text) -> (diagnostics, Masque | None)".
CHECKED_FILES: dict[str, str] = {".mapper.yaml": "masque.masques.mapper_file:check_mapper_file"}
_GLOB_CHARS = set("*?[")


def checked_suffixes() -> tuple[str, ...]:
    """Every suffix `masque validate` finds in a directory: masque files and the other checked files."""
    return (*suffixes(), *CHECKED_FILES)


def _gitignore_spec(directory: Path) -> object | None:
    ignore = directory / ".gitignore"
    if not ignore.is_file():
        return None
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(ignore.read_text(encoding="utf-8", errors="replace").splitlines())


def _walk(root: Path) -> Iterable[Path]:
    """Files under root with a known suffix, honouring .gitignore files found on the way down."""
    specs: list[tuple[Path, object]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        spec = _gitignore_spec(here)
        if spec is not None:
            specs.append((here, spec))
        active = [(base, s) for base, s in specs if here == base or base in here.parents]

        def ignored(path: Path, is_dir: bool, active: list[tuple[Path, object]] = active) -> bool:
            for base, s in active:
                rel = path.relative_to(base).as_posix() + ("/" if is_dir else "")
                if s.match_file(rel):  # type: ignore[attr-defined]
                    return True
            return False

        dirnames[:] = sorted(d for d in dirnames if d != ".git" and not ignored(here / d, True))
        for name in sorted(filenames):
            if name.endswith(checked_suffixes()) and not ignored(here / name, False):
                yield here / name


def discover(paths: Sequence[str]) -> list[Path]:
    """Expand files, directories (recursive) and globs into a sorted, de-duplicated file list."""
    found: dict[str, Path] = {}
    for raw in paths or ["personas"]:
        path = Path(raw)
        if path.is_dir():
            for file in _walk(path):
                found.setdefault(str(file), file)
        elif path.exists():
            found.setdefault(str(path), path)
        elif _GLOB_CHARS & set(raw):
            # Not is_file(): a FIFO or device that matches is reported as unreadable, not skipped.
            matches = [Path(m) for m in sorted(glob.glob(raw, recursive=True)) if not Path(m).is_dir()]
            if not matches:
                raise UsageError(f"no files match {raw!r}")
            for m in matches:
                found.setdefault(str(m), m)
        else:
            hint = "run from your repository root or pass a path" if not paths else "check the spelling"
            raise UsageError(f"{raw}: no such file or directory", hint=hint)
    return list(found.values())


def check_document(doc: Document, lim: Limits) -> tuple[list[Diagnostic], Masque | None]:
    """Schema, then semantic checks for a parsed `.masque.yaml` document."""
    from masque.masques import schema
    from masque.masques.semantics import semantic_diagnostics

    errors = schema.check(doc)
    if errors is not None:
        return errors, None
    diags = semantic_diagnostics(doc, lim)
    if any(d.severity is Severity.ERROR for d in diags):
        return diags, None
    return diags, masque_from_data(doc.data)


def _dialect(path: str) -> Callable[[str, str], tuple[list[Diagnostic], Masque | None]] | None:
    """The checker for a dialect or other checked file (by suffix); None for `*.masque.yaml`."""
    for suffix, target in (*DIALECTS.items(), *CHECKED_FILES.items()):
        if path.endswith(suffix):
            module, func = target.split(":")
            return getattr(importlib.import_module(module), func)
    return None


def check_bytes(path: str, raw: bytes, lim: Limits | None = None) -> FileResult:
    lim = lim or current_limits()
    result = FileResult(path)
    try:
        text = decode(path, raw, lim)
        dialect = _dialect(path)
        if dialect is not None:
            result.diagnostics, result.masque = dialect(path, text)
            return result
        doc = load_text(path, text, lim)
    except LoadProblem as problem:
        result.diagnostics.append(problem.diagnostic)
        return result
    result.diagnostics, result.masque = check_document(doc, lim)
    return result


def read_limited(path: Path, lim: Limits) -> bytes:
    """The file's bytes, one past the size limit at most; raises OSError for FIFOs, devices and the like."""
    from masque.files import read_regular

    return read_regular(path, lim.max_file_bytes)


def check_file(path: Path | str, lim: Limits | None = None) -> FileResult:
    """Every problem in one file; `.masque` holds the model when there are no errors."""
    lim = lim or current_limits()
    try:
        raw = read_limited(Path(path), lim)
    except OSError as exc:
        return FileResult(str(path), [Diagnostic(str(path), "unreadable", f"cannot read file: {exc.strerror or exc}")])
    return check_bytes(str(path), raw, lim)


def _check_parents(results: Sequence[FileResult]) -> None:
    """Files with `extends` must have a reachable, acyclic chain of pinned parents."""
    for result in results:
        if isinstance(result.masque, Masque) and result.masque.extends is not None:
            from masque.masques.inheritance import check_chain

            check_chain(result)


def cross_file_diagnostics(results: Sequence[FileResult]) -> None:
    """`index` and `name@version` must be unique across the files checked together."""
    by_index: dict[int, str] = {}
    by_ref: dict[str, str] = {}
    for result in results:
        m = result.masque
        if not isinstance(m, Masque):
            continue
        if m.index in by_index:
            result.diagnostics.append(
                Diagnostic(
                    result.path,
                    "duplicate-index",
                    f"index {m.index} is already used by {by_index[m.index]}; give each masque its own index",
                    json_path="$.index",
                )
            )
        else:
            by_index[m.index] = result.path
        if m.ref in by_ref:
            result.diagnostics.append(
                Diagnostic(
                    result.path,
                    "duplicate-ref",
                    f"{m.name}@{m.version} is already defined in {by_ref[m.ref]}; bump the version or rename",
                    json_path="$.version",
                )
            )
        else:
            by_ref[m.ref] = result.path


def _positions_for_cross_file(results: Sequence[FileResult], lim: Limits) -> None:
    """Fill line/col of cross-file diagnostics (rare, so re-reading the file here is fine)."""
    for result in results:
        for i, d in enumerate(result.diagnostics):
            if d.line is None and d.code in ("duplicate-index", "duplicate-ref"):
                try:
                    doc = load_text(result.path, decode(result.path, read_limited(Path(result.path), lim), lim), lim)
                except (OSError, LoadProblem):
                    continue
                line, col = doc.position((d.json_path.removeprefix("$."),))
                result.diagnostics[i] = Diagnostic(d.path, d.code, d.message, d.severity, line, col, d.json_path)
                if result.masque is not None and d.severity is Severity.ERROR:
                    result.masque = None


# Below this many files a worker process costs more than it saves.
PARALLEL_THRESHOLD = 400
_CHUNK = 100


def _check_chunk(args: tuple[list[str], Limits]) -> list[tuple[str, list[Diagnostic], object | None]]:
    """Worker side: check files, return picklable (path, diagnostics, data-of-valid-file) triples."""
    paths, lim = args
    out = []
    for path in paths:
        result = check_file(path, lim)
        out.append((result.path, result.diagnostics, result.masque))
    return out


def _check_parallel(
    files: Sequence[Path], lim: Limits, progress: Callable[[int], None] | None
) -> list[FileResult] | None:
    """Check files on every core with forked workers; None when that is not possible here."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    workers = min(os.cpu_count() or 1, (len(files) + _CHUNK - 1) // _CHUNK)
    if workers < 2:
        return None
    names = [str(f) for f in files]
    chunks = [(names[i : i + _CHUNK], lim) for i in range(0, len(names), _CHUNK)]
    results: list[FileResult] = []
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for chunk in pool.imap(_check_chunk, chunks):
            for path, diagnostics, model in chunk:
                results.append(FileResult(path, diagnostics, model))
            if progress is not None:
                progress(len(chunk))
    return results


def validate_files(
    files: Sequence[Path],
    *,
    strict: bool = False,
    lim: Limits | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Check the given files (see `discover`); never raises for bad file content."""
    lim = lim or current_limits()
    results = _check_parallel(files, lim, progress) if len(files) >= PARALLEL_THRESHOLD else None
    if results is None:
        results = []
        for path in files:
            results.append(check_file(path, lim))
            if progress is not None:
                progress(1)
    _check_parents(results)
    cross_file_diagnostics(results)
    _positions_for_cross_file(results, lim)
    if strict:
        for result in results:
            result.diagnostics = make_strict(result.diagnostics)
    return Report(results)


def validate_paths(
    paths: Sequence[str],
    *,
    strict: bool = False,
    lim: Limits | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Discover files under `paths` and check them all."""
    return validate_files(discover(paths), strict=strict, lim=lim, progress=progress)


def load_masque(path: Path | str, lim: Limits | None = None) -> LoadedMasque:
    """Load one file for use (not just checking); raises ValidationFailed naming the first error."""
    lim = lim or current_limits()
    path = Path(path)
    try:
        raw = read_limited(path, lim)
    except OSError as exc:
        raise ValidationFailed(f"{path}: cannot read: {exc.strerror or exc}") from None
    result = check_bytes(str(path), raw, lim)
    if not isinstance(result.masque, Masque):
        errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
        # No error yet no model must not happen; if it ever does, the file is still refused, by name.
        first = errors[0] if errors else Diagnostic(str(path), "invalid", "the file did not load as a masque")
        where = f"{first.path}:{first.line}:{first.col}" if first.line else first.path
        more = f" (and {result.errors - 1} more)" if result.errors > 1 else ""
        raise ValidationFailed(
            f"{where}: {first.json_path}: {first.message}{more}",
            hint=f"run `masque validate {path}` for every problem",
        )
    warnings = tuple(d for d in result.diagnostics if d.severity is Severity.WARNING)
    import hashlib  # here, not at the top: OpenSSL's start-up is a cost `masque validate` never needs

    return LoadedMasque(result.masque, path, hashlib.sha256(raw).hexdigest(), warnings)


def resolve_file(path: Path | str) -> tuple[Masque, Resolved]:
    """Load a file of either dialect with its ancestors merged in: the flattened model and data.

    Raises ValidationFailed (via `load_masque`) when the file itself is invalid and
    InheritanceError when its chain is broken.
    """
    from masque.masques.dialect import masque_from_mask
    from masque.masques.inheritance import dialect_of, resolve
    from masque.masques.loader import load_file
    from masque.model import masque_from_data

    loaded = load_masque(path)  # the file must be valid on its own first
    resolved = resolve(load_file(path).data, path)
    if dialect_of(path) == "mask":
        return masque_from_mask(resolved.data), resolved
    if loaded.masque.extends is None:
        return loaded.masque, resolved
    return masque_from_data(resolved.data), resolved

"""`extends` for both file dialects: find the pinned parent, merge, detect cycles.

Merge rules (documented in docs/mythatron.md): lists merge (parent items first, then the child's new
items; items with the same identity key - `name` for tests, `input` for examples, `uri` for skills -
are replaced by the child's), mappings merge key by key, scalars override. Identity fields (`id`,
`name`, `index`, `version`, `extends`, `stage`, `changelog`, `$schema`) always belong to the child.

A parent `base/professor@1.0.0` is looked for next to the child first (`<dir>/base/professor.mask.json`,
`.masque.yaml`, or a versioned `professor@1.0.0.*` / `professor-1.0.0.*` file, also one or more levels up
for nested children), then on the masque search path. A mask parent may be named with or without its
`mask.` prefix. A parent in the other dialect is converted (lens <-> prompt.persona).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from masque import config
from masque.errors import ValidationFailed
from masque.masques.diagnostics import FileResult
from masque.model import Masque, Ref

MASK_SUFFIX = ".mask.json"
MASQUE_SUFFIX = ".masque.yaml"
MAX_DEPTH = 16
OWN_KEYS = frozenset({"id", "name", "index", "version", "extends", "stage", "changelog", "$schema"})
# List items that are mappings are matched by the first of these keys they carry.
IDENTITY_KEYS = ("name", "input", "uri", "version")


class InheritanceError(ValidationFailed):
    """A parent is missing, a chain loops or is too deep. `code` is the diagnostic code."""

    def __init__(self, message: str, *, code: str, chain: tuple[str, ...], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.chain = chain


@dataclass(frozen=True)
class Parent:
    """A parent file found for a ref: its raw data and dialect."""

    path: Path
    data: Mapping[str, Any]
    dialect: str  # "mask" or "masque"


@dataclass(frozen=True)
class Resolved:
    """Flattened data plus the chain walked, child first (`ref (path)` strings)."""

    data: dict[str, Any]
    chain: tuple[str, ...]


def dialect_of(path: Path | str) -> str:
    return "mask" if str(path).endswith(MASK_SUFFIX) else "masque"


def ident(data: Mapping[str, Any], dialect: str) -> str:
    """`key@version` of raw data, as refs name it."""
    name = data.get("id") if dialect == "mask" else data.get("name")
    return f"{str(name or '?').casefold()}@{data.get('version', '?')}"


def _item_key(item: Any) -> Any:
    if isinstance(item, Mapping):
        for key in IDENTITY_KEYS:
            if key in item:
                return (key, repr(item[key]))
    return ("value", repr(item))


def merge_lists(parent: list[Any], child: list[Any]) -> list[Any]:
    out = list(parent)
    index = {_item_key(item): i for i, item in enumerate(out)}
    for item in child:
        key = _item_key(item)
        if key in index:
            out[index[key]] = item  # the child's version of the same test/example wins
        else:
            index[key] = len(out)
            out.append(item)
    return out


def merge(parent: Mapping[str, Any], child: Mapping[str, Any], *, top: bool = True) -> dict[str, Any]:
    out = {k: v for k, v in parent.items() if not (top and k in OWN_KEYS)}
    for key, value in child.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = merge(old, value, top=False)
        elif isinstance(old, list) and isinstance(value, list):
            out[key] = merge_lists(old, value)
        else:
            out[key] = value
    return out


def render_lens(prompt: Mapping[str, Any]) -> str:
    """Prompt sections -> one system-prompt fragment (the masque lens)."""
    parts: list[str] = []
    persona = str(prompt.get("persona") or "").strip()
    if persona:
        parts.append(persona)
    for title, key in (("Constraints", "constraints"), ("Style guidelines", "style_guidelines")):
        items = [str(i).strip() for i in prompt.get(key) or () if str(i).strip()]
        if items:
            parts.append(title + ":\n" + "\n".join(f"- {i}" for i in items))
    fmt = prompt.get("format")
    if fmt:
        parts.append(f"Format: {fmt}")
    return "\n\n".join(parts)


def convert(data: Mapping[str, Any], source: str, target: str) -> dict[str, Any]:
    """Parent data in the child's dialect: only the sections both dialects share carry over."""
    shared = ("ring", "intent", "context", "knowledge", "access", "rubric", "tests", "attributes")
    # `collaboration` (masque files) and `capabilities` (masks) differ in shape: neither carries over.
    if source == target:
        return dict(data)
    out = {k: data[k] for k in shared if k in data}
    if target == "mask":
        if "lens" in data:
            out["prompt"] = {"persona": data["lens"]}
    else:
        lens = render_lens(data.get("prompt") or {})
        if lens:
            out["lens"] = lens
    return out


def _candidates(ref: Ref, base: Path) -> Iterable[Path]:
    parts = ref.name.removeprefix("mask.").split("/")
    stem = parts[-1]
    sub = Path(*parts[:-1]) if len(parts) > 1 else Path()
    for suffix in (MASK_SUFFIX, MASQUE_SUFFIX):
        for name in (f"{stem}{suffix}", f"{stem}@{ref.version}{suffix}", f"{stem}-{ref.version}{suffix}"):
            yield base / sub / name


def _search_dirs(near: Path | None, depth: int) -> list[Path]:
    dirs: list[Path] = []
    if near is not None:
        here = near.resolve().parent
        dirs.append(here)
        dirs.extend(list(here.parents)[:depth])
    dirs.extend(config.search_path())
    return dirs


def _read(path: Path) -> Mapping[str, Any] | None:
    """Raw data of a candidate parent, or None when it does not parse to a mapping."""
    from masque.masques.loader import LoadProblem, load_file

    try:
        data = load_file(path).data
    except LoadProblem:
        return None
    return data if isinstance(data, Mapping) else None


def find_parent(ref: Ref, near: Path | None) -> tuple[Parent | None, list[str]]:
    """The file defining `ref` exactly, and the other versions seen (for the error message)."""
    full = ref.name.casefold().removeprefix("mask.")
    # A mask names its family in its id (mask.base/professor); a masque only by where its file is
    # (base/scholar.masque.yaml declares `name: scholar`), so the last segment must match there.
    wanted = {full, f"mask.{full}", full.rsplit("/", 1)[-1].replace(" ", "-")}
    seen: list[str] = []
    for base in _search_dirs(near, ref.name.count("/") + 1):
        for path in _candidates(ref, base):
            if not path.is_file():
                continue
            data = _read(path)
            if data is None:
                continue
            dialect = dialect_of(path)
            key, version = ident(data, dialect).rsplit("@", 1)
            if key.replace(" ", "-") not in wanted or (dialect == "mask" and not key.startswith("mask.")):
                continue
            if version == ref.version:
                return Parent(path, data, dialect), seen
            seen.append(f"{version} ({path})")
    return None, seen


Finder = Callable[[Ref, "Path | None"], "tuple[Parent | None, list[str]]"]


def resolve(data: Mapping[str, Any], path: Path | str | None, *, finder: Finder | None = None) -> Resolved:
    """Flatten `data` (from `path`) with its ancestors; raises InheritanceError naming the chain."""
    finder = finder or find_parent
    dialect = dialect_of(path or "")
    here = Path(path) if path is not None else None
    chain = [f"{ident(data, dialect)} ({here})" if here else ident(data, dialect)]
    visited = {ident(data, dialect)}
    layers: list[dict[str, Any]] = [dict(data)]
    current: Mapping[str, Any] = data
    while isinstance(current.get("extends"), str):
        text = str(current["extends"])
        ref = Ref.parse(text)
        if ref.version is None:
            raise InheritanceError(
                f"extends {text!r} must pin a version (chain: {' -> '.join(chain)})",
                code="extends-unpinned",
                chain=tuple(chain),
                hint=f"write {text}@1.0.0 with the parent's exact version",
            )
        parent, others = finder(ref, here)
        if parent is None:
            found = f"; versions found: {', '.join(others)}" if others else ""
            raise InheritanceError(
                f"parent {text} not found (chain: {' -> '.join(chain)}){found}",
                code="extends-missing",
                chain=tuple(chain),
                hint="put the parent next to the child (e.g. base/professor.mask.json) or on MASQUE_PATH",
            )
        parent_id = ident(parent.data, parent.dialect)
        chain.append(f"{parent_id} ({parent.path})")
        if parent_id in visited:
            raise InheritanceError(
                f"extends cycle: {' -> '.join(chain)}",
                code="extends-cycle",
                chain=tuple(chain),
                hint="remove one of the extends links so the chain ends",
            )
        if len(chain) > MAX_DEPTH:
            raise InheritanceError(
                f"extends chain deeper than {MAX_DEPTH}: {' -> '.join(chain)}",
                code="extends-too-deep",
                chain=tuple(chain),
            )
        visited.add(parent_id)
        layers.append(convert(parent.data, parent.dialect, dialect))
        current, here = parent.data, parent.path
    flat = layers[-1]
    for layer in reversed(layers[:-1]):
        flat = merge(flat, layer)
    if len(layers) > 1:
        # The child's identity wins; its `extends` stays as a record of where the rest came from.
        own = {k: v for k, v in data.items() if k in OWN_KEYS}
        flat = {**own, **{k: v for k, v in flat.items() if k not in OWN_KEYS}}
    return Resolved(flat, tuple(chain))


def check_chain(result: FileResult) -> None:
    """Add the broken-chain error of a valid `.masque.yaml` file with `extends` to its result.

    Mask files get this check from their dialect; `masque validate` checks masque files one by one
    without following parents, so `mythatron mask validate` follows them here.
    """
    from masque.masques.diagnostics import Diagnostic
    from masque.masques.loader import LoadProblem, load_file

    masque = result.masque
    if not isinstance(masque, Masque) or masque.extends is None or dialect_of(result.path) != "masque":
        return
    try:
        doc = load_file(result.path)
        resolve(doc.data, result.path)
    except LoadProblem:
        return
    except InheritanceError as exc:
        line, col = doc.position(("extends",))
        result.diagnostics.append(
            Diagnostic(result.path, exc.code, str(exc), line=line, col=col, json_path="$.extends")
        )
        result.masque = None

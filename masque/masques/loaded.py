"""A loaded masque, the file suffixes the registry scans, and valid definitions cached by content.

Every cold `masque assume` loaded its masque file: importing PyYAML and the validator, parsing, checking
the schema and the semantic rules (~25 ms of a ~300 ms process on an idle machine). The outcome depends
only on the file's bytes, the limits in force and Masque's own code, so a `.masque.yaml` file that
validated without a single diagnostic (and does not `extends` another) keeps its parsed data in the cache
directory under a name made of exactly those three. The next process with the same bytes builds the
model from that data with `masque_from_data`, as validation itself does last, and never imports PyYAML.
Anything else (a new or edited file, warnings, inheritance, another dialect) takes the full path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from masque import config

if TYPE_CHECKING:
    from masque.masques.diagnostics import Diagnostic
    from masque.model import Masque

MASQUE_SUFFIX = ".masque.yaml"
# Other file dialects: suffix -> "module:function(path, text) -> (diagnostics, Masque | None)".
DIALECTS: dict[str, str] = {".mask.json": "masque.masques.dialect:check_mask_file"}
CACHE_FORMAT = 2  # 2: {"data": the parsed file, "durations": what its durations parsed to}


def suffixes() -> tuple[str, ...]:
    return (MASQUE_SUFFIX, *DIALECTS)


@dataclass(frozen=True)
class LoadedMasque:
    """A masque file parsed and validated: the model, its path, content hash and warnings."""

    masque: Masque
    path: Path
    sha256: str
    warnings: tuple[Diagnostic, ...] = ()


_code_key: list[str] = []


def _code() -> str:
    """A digest of what decides validity and builds the model (this package, the schema, the model, config)."""
    if not _code_key:
        digest = hashlib.sha256(f"{CACHE_FORMAT}".encode())
        package = Path(__file__).resolve().parent
        sources = sorted(package.glob("*.py")) + sorted(package.glob("*.json"))
        sources += [package.parent / name for name in ("model.py", "config.py", "files.py", "durations.py")]
        # The schema the bytes were checked against, where masque.masques.schema finds it (that module
        # imports PyYAML): inside the wheel, else beside the source tree.
        sources += [p for p in (package.parent / "_schemas", package.parent.parent / "schemas") if p.is_dir()]
        for source in sources:
            for file in sorted(f for f in source.glob("*.*") if f.is_file()) if source.is_dir() else [source]:
                digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
        _code_key.append(digest.hexdigest()[:16])
    return _code_key[0]


def _entry(sha256: str) -> Path:
    """The cache file for these bytes under this code and these limits (validity depends on all three)."""
    import dataclasses

    limits = json.dumps(dataclasses.asdict(config.limits()), sort_keys=True)
    suffix = hashlib.sha256(limits.encode()).hexdigest()[:8]
    return config.cache_dir() / "definitions" / f"{_code()}-{suffix}-{sha256}.json"


def _read(path: Path) -> bytes | None:
    from masque.files import read_regular

    try:
        raw = read_regular(path, config.limits().max_file_bytes)
    except OSError:
        return None
    return raw if len(raw) <= config.limits().max_file_bytes else None


def cached(path: Path) -> LoadedMasque | None:
    """The file's definition from the cache, when exactly these bytes validated cleanly before."""
    if not path.name.endswith(MASQUE_SUFFIX):
        return None
    raw = _read(path)
    if raw is None:
        return None
    sha256 = hashlib.sha256(raw).hexdigest()
    try:
        entry = json.loads(_entry(sha256).read_text(encoding="utf-8"))
    except (OSError, ValueError, RuntimeError):  # RuntimeError: no home for the cache directory
        return None
    from masque.durations import parsed_before
    from masque.model import masque_from_data

    try:
        found = LoadedMasque(masque_from_data(entry["data"]), path, sha256)
        for text, seconds in entry["durations"].items():
            parsed_before(text, float(seconds))
        return found
    except Exception:  # a damaged entry: the full path decides
        return None


def remember(loaded: LoadedMasque) -> None:
    """Cache a definition that loaded without any diagnostic (best effort: it is only a cache)."""
    path = loaded.path
    if loaded.warnings or loaded.masque.extends is not None or not path.name.endswith(MASQUE_SUFFIX):
        return
    raw = _read(path)
    if raw is None or hashlib.sha256(raw).hexdigest() != loaded.sha256:
        return  # changed since it was loaded
    from masque.durations import parse_duration
    from masque.errors import UsageError
    from masque.masques.loader import LoadProblem, decode, load_text
    from masque.model import masque_from_data

    try:
        data = load_text(str(path), decode(str(path), raw, config.limits()), config.limits()).data
        text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    except (LoadProblem, TypeError, ValueError):
        return  # not plain JSON data (a YAML date, say): never cached
    if json.loads(text) != data or masque_from_data(json.loads(text)) != loaded.masque:
        return
    ttl = loaded.masque.access.ttl if loaded.masque.access is not None else "session"
    durations: dict[str, float] = {}
    # Valid in a file but refused when assumed (P1M): not kept, so each assume says why.
    with contextlib.suppress(UsageError):
        if ttl != "session":
            durations[ttl] = parse_duration(ttl).total_seconds()
    try:
        entry = _entry(loaded.sha256)
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"data": data, "durations": durations}, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, entry)
    except (OSError, RuntimeError):
        pass

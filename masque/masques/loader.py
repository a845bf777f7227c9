"""YAML/JSON text -> plain data, plus the line/column of every key and item when a file has problems.

libyaml (PyYAML's C parser) produces events; the small iterative composer here builds plain Python
values from them directly. Composing ourselves, instead of with libyaml's recursive composer and
PyYAML's constructor, is ~3x faster and bounds nesting depth (libyaml segfaults near 100k levels),
alias expansion ("billion laughs") and node count. Valid files never pay for positions: a Document
re-reads its text with tracking on the first time a diagnostic asks where something is. Scalars
resolve with the YAML 1.2 core schema, so `yes`, `on` and unquoted dates stay strings, as in
ruamel.yaml (which round-trips files when Masque edits them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml import events as ev

from masque.config import Limits
from masque.config import limits as current_limits
from masque.masques.diagnostics import Diagnostic, Severity, json_path

_CLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PARSER_MAX_DEPTH = 1000  # libyaml >= 0.2.6 refuses deeper nesting itself ("exceeded maximum nesting depth")


class _Parser(_CLoader):
    """libyaml's event parser; resolution and construction happen in `compose` below."""


class LoadProblem(Exception):
    """A file could not be turned into data; carries the one diagnostic that says why."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def _problem(path: str, code: str, message: str, mark: Any = None) -> LoadProblem:
    line = mark.line + 1 if mark is not None else None
    col = mark.column + 1 if mark is not None else None
    return LoadProblem(Diagnostic(path, code, message, line=line, col=col))


def decode(path: str, raw: bytes, lim: Limits) -> str:
    """Bytes -> text, refusing oversized, binary and non-UTF-8 input with a precise diagnostic."""
    if len(raw) > lim.max_file_bytes:
        raise _problem(
            path,
            "file-too-large",
            f"file is {len(raw):,} bytes; the limit is {lim.max_file_bytes:,} "
            "(raise [limits] max_file_bytes in masque.toml if this is intended)",
        )
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise _problem(path, "not-utf8", f"invalid UTF-16 text: {exc.reason}") from None
    if b"\x00" in raw:
        offset = raw.index(b"\x00")
        line = raw.count(b"\n", 0, offset) + 1
        raise LoadProblem(
            Diagnostic(path, "binary-file", "file contains NUL bytes; it looks binary, not YAML", line=line, col=1)
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise LoadProblem(
            Diagnostic(
                path,
                "not-utf8",
                f"byte 0x{raw[exc.start]:02x} is not valid UTF-8; save the file as UTF-8",
                line=line,
                col=col,
            )
        ) from None


@dataclass
class Document:
    """Parsed file: plain JSON-like `data`, and (when asked for) the position of every key and item."""

    path: str
    text: str
    data: Any
    marks: dict[tuple[Any, ...], tuple[int, int]] | None = None
    limits: Limits | None = None

    def position(self, json_path: tuple[str | int, ...]) -> tuple[int, int]:
        """1-based (line, col) of the deepest known node on `json_path` (the key, for mapping members).

        Positions are recorded lazily: the fast path does not track them, and the first call re-reads
        the text with tracking on (only files with problems ever need it).
        """
        if self.marks is None:
            self.marks = {}
            compose(self.path, self.text, self.limits or current_limits(), self.marks)
        parts = tuple(json_path)
        while parts:
            found = self.marks.get(parts)
            if found is not None:
                return found
            parts = parts[:-1]
        return self.marks.get((), (1, 1))

    def diagnostic(
        self, parts: tuple[str | int, ...], code: str, message: str, severity: Severity = Severity.ERROR
    ) -> Diagnostic:
        """A diagnostic about the node at `parts`, with its position and JSON path."""
        line, col = self.position(parts)
        return Diagnostic(self.path, code, message, severity, line, col, json_path(parts))


class _Merge:
    """Marker for the `<<` merge key."""


_MERGE = _Merge()


_STR = "tag:yaml.org,2002:str"
_INT_RE = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_SPECIAL_FLOATS = {
    ".inf": float("inf"),
    ".Inf": float("inf"),
    ".INF": float("inf"),
    "+.inf": float("inf"),
    "+.Inf": float("inf"),
    "+.INF": float("inf"),
    "-.inf": float("-inf"),
    "-.Inf": float("-inf"),
    "-.INF": float("-inf"),
    ".nan": float("nan"),
    ".NaN": float("nan"),
    ".NAN": float("nan"),
}
_WORDS: dict[str, Any] = {
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
    "null": None,
    "Null": None,
    "NULL": None,
    "~": None,
    "": None,
}


def _to_int(value: str) -> int:
    if value.startswith("0o"):
        return int(value[2:], 8)
    if value.startswith("0x"):
        return int(value[2:], 16)
    return int(value)


def _plain(value: str) -> Any:
    """YAML 1.2 core schema resolution of a plain (unquoted) scalar."""
    if value in _WORDS:
        return _WORDS[value]
    first = value[0]
    if first in "-+.0123456789":
        if _INT_RE.fullmatch(value):
            return _to_int(value)
        if _FLOAT_RE.fullmatch(value):
            return float(value)
        if value in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[value]
    elif value == "<<":
        return _MERGE
    return value


def _scalar(event: Any, path: str) -> Any:
    """Resolve a scalar with the YAML 1.2 core schema; other explicit tags are refused."""
    try:
        return _resolve(event, path)
    except ValueError:  # int() refuses decimal strings past sys.get_int_max_str_digits() (CVE-2020-10735)
        import sys

        raise _problem(
            path,
            "number-too-long",
            f"a number of {len(event.value):,} digits is over Python's limit of "
            f"{sys.get_int_max_str_digits():,}; quote it if it is meant as text",
            event.start_mark,
        ) from None


def _resolve(event: Any, path: str) -> Any:
    value: str = event.value
    tag = event.tag
    if tag is None or tag == "!":
        return _plain(value) if event.implicit[0] else value  # quoted and block scalars are strings
    if tag == _STR:
        return value
    resolved = _plain(value)
    expected = {
        "tag:yaml.org,2002:int": int,
        "tag:yaml.org,2002:float": float,
        "tag:yaml.org,2002:bool": bool,
        "tag:yaml.org,2002:null": type(None),
    }.get(tag)
    if expected is None:
        raise _problem(path, "yaml-tag", f"tag {tag!r} is not supported; use plain YAML values", event.start_mark)
    if expected is float and type(resolved) is int:
        return float(resolved)
    if type(resolved) is not expected:
        raise _problem(path, "yaml-tag", f"{value!r} is not a valid {tag.rsplit(':', 1)[-1]}", event.start_mark)
    return resolved


def compose(path: str, text: str, lim: Limits, marks: dict[tuple[Any, ...], tuple[int, int]] | None = None) -> Any:
    """Events -> plain data, iteratively, enforcing one document, depth, size and alias limits.

    libyaml's own composer is recursive in C and segfaults near 100k nesting levels, so nodes are
    built here instead. Aliases reuse the anchored object; the expanded size is counted as if they
    were copies, which stops "billion laughs" within a few events. With `marks`, the 1-based
    position of every key and item is recorded under its JSON path.
    """
    loader = _Parser(text)
    anchors: dict[str, tuple[Any, int]] = {}  # anchor -> (value, expanded size)
    open_anchors: set[str] = set()
    # frame: [container, is_map, pending_key, size, seen_keys, merges, anchor, json_path]
    stack: list[list[Any]] = []
    root: Any = _NOTHING
    documents = 0
    total = 0
    track = marks is not None
    rec: dict[tuple[Any, ...], tuple[int, int]] = marks if marks is not None else {}
    try:
        while True:
            event = loader.get_event()
            cls = event.__class__ if event is not None else ev.StreamEndEvent
            if cls is ev.ScalarEvent:
                value, size = _scalar(event, path), 1
                if event.anchor is not None:
                    anchors[event.anchor] = (value, 1)
            elif cls is ev.MappingStartEvent or cls is ev.SequenceStartEvent:
                if len(stack) >= lim.max_depth:
                    raise _problem(path, "too-deep", f"nesting deeper than {lim.max_depth} levels", event.start_mark)
                if event.tag not in (None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"):
                    raise _problem(path, "yaml-tag", f"tag {event.tag!r} is not supported", event.start_mark)
                is_map = cls is ev.MappingStartEvent
                json_path = _child_path(stack) if track else None
                if event.anchor is not None:
                    open_anchors.add(event.anchor)
                stack.append([{} if is_map else [], is_map, _NOTHING, 1, None, None, event.anchor, json_path])
                if track and not stack[:-1]:
                    rec[()] = (event.start_mark.line + 1, event.start_mark.column + 1)
                continue
            elif cls is ev.MappingEndEvent or cls is ev.SequenceEndEvent:
                frame = stack.pop()
                value, size = frame[0], frame[3]
                if frame[5]:
                    _apply_merges(value, frame[5])
                if frame[6] is not None:
                    anchors[frame[6]] = (value, size)
                    open_anchors.discard(frame[6])
            elif cls is ev.AliasEvent:
                if event.anchor in open_anchors:
                    raise _problem(path, "recursive-alias", f"alias *{event.anchor} refers to itself", event.start_mark)
                found = anchors.get(event.anchor)
                if found is None:
                    raise _problem(path, "yaml-syntax", f"alias *{event.anchor} names no anchor", event.start_mark)
                value, size = found
            elif cls is ev.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _problem(
                        path,
                        "multiple-documents",
                        "a masque file holds exactly one YAML document; split it into one file per masque",
                        event.start_mark,
                    )
                continue
            elif cls is ev.StreamEndEvent:
                break
            else:  # StreamStart, DocumentEnd
                continue
            total += size
            if total > lim.max_nodes:
                raise _problem(
                    path,
                    "alias-bomb",
                    f"document expands to more than {lim.max_nodes:,} nodes (anchors and aliases used as a bomb?)",
                    event.start_mark,
                )
            if not stack:
                root = value
                if track and () not in rec:
                    rec[()] = (event.start_mark.line + 1, event.start_mark.column + 1)
                continue
            frame = stack[-1]
            frame[3] += size
            if not frame[1]:
                if track:
                    rec[(*frame[7], len(frame[0]))] = (
                        event.start_mark.line + 1,
                        event.start_mark.column + 1,
                    )
                frame[0].append(value)
            elif frame[2] is _NOTHING:
                _take_key(path, frame, value, event)
                if track and value is not _MERGE:
                    rec[(*frame[7], value)] = (event.start_mark.line + 1, event.start_mark.column + 1)
            else:
                key = frame[2]
                frame[2] = _NOTHING
                if key is _MERGE:
                    frame[5] = (frame[5] or []) + (value if isinstance(value, list) else [value])
                else:
                    frame[0][key] = value
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if "maximum nesting depth" in str(exc.problem):
            # libyaml >= 0.2.6 (PyYAML >= 6.0.4) stops nesting past its own limit, scanning flow
            # collections ahead of the events that would trip ours: the same refusal, same code.
            depth = min(lim.max_depth, _PARSER_MAX_DEPTH)
            raise _problem(path, "too-deep", f"nesting deeper than {depth} levels", mark) from None
        message = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise _problem(path, "yaml-syntax", message or "invalid YAML", mark) from None
    except yaml.reader.ReaderError as exc:  # control characters and the like
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        message = f"character U+{int(exc.character):04X} is not allowed in YAML ({exc.reason})"
        raise LoadProblem(Diagnostic(path, "yaml-syntax", message, line=line, col=col)) from None
    finally:
        loader.dispose()
    return root


class _Nothing:
    """Marker: no pending key / no document."""


_NOTHING: Any = _Nothing()


def _child_path(stack: list[list[Any]]) -> tuple[Any, ...]:
    if not stack:
        return ()
    parent = stack[-1]
    if parent[1]:
        return (*parent[7], parent[2]) if parent[2] is not _NOTHING else (*parent[7], "?")
    return (*parent[7], len(parent[0]))


def _take_key(path: str, frame: list[Any], key: Any, event: Any) -> None:
    if isinstance(key, (dict, list)):
        raise _problem(path, "yaml-syntax", "complex (mapping or list) keys are not supported", event.start_mark)
    if key is not _MERGE:
        seen = frame[4]
        if seen is None:
            seen = frame[4] = set()
        marker = (type(key), key)
        if marker in seen:
            raise _problem(
                path,
                "duplicate-key",
                f"duplicate key {key!r}: each key may appear once per mapping",
                event.start_mark,
            )
        seen.add(marker)
    frame[2] = key


def _apply_merges(target: dict[Any, Any], sources: list[Any]) -> None:
    """YAML merge keys: explicit keys win, then earlier merge sources win over later ones."""
    for source in sources:
        if isinstance(source, dict):
            for key, value in source.items():
                target.setdefault(key, value)


def load_text(path: str, text: str, lim: Limits | None = None, *, track: bool = False) -> Document:
    """Parse text that must hold one mapping document."""
    lim = lim or current_limits()
    marks: dict[tuple[Any, ...], tuple[int, int]] | None = {} if track else None
    data = compose(path, text, lim, marks)
    if data is _NOTHING or data is None:
        raise _problem(
            path,
            "empty-file",
            "file is empty; a masque needs at least name, index, version, ring, intent and lens",
        )
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a scalar"
        doc = Document(path, text, data, marks, lim)
        line, col = doc.position(())
        raise LoadProblem(
            Diagnostic(
                path,
                "root-not-mapping",
                f"the top level is {kind}; it must be a mapping of fields",
                line=line,
                col=col,
            )
        )
    return Document(path, text, data, marks, lim)


def load_file(path: str | Path, lim: Limits | None = None) -> Document:
    """Read and parse one file; raises LoadProblem with one diagnostic when it cannot."""
    lim = lim or current_limits()
    name = str(path)
    from masque.files import read_regular

    try:
        raw = read_regular(path, lim.max_file_bytes)  # a FIFO or device is refused, never read
    except OSError as exc:
        raise _problem(name, "unreadable", f"cannot read file: {exc.strerror or exc}") from None
    return load_text(name, decode(name, raw, lim), lim)

"""YAML/JSON bytes -> plain data plus a node tree that knows the line/column of every key and item.

One parse serves both the verdict and the positions: libyaml (via PyYAML's C parser) produces events
and a small iterative composer here builds the node tree. Composing ourselves, instead of with
libyaml's recursive composer, bounds nesting depth (libyaml segfaults near 100k levels), alias
expansion ("billion laughs") and node count before any Python object is built. Scalars resolve with
the YAML 1.2 core schema, so `yes`, `on` and unquoted timestamps stay strings, as in ruamel.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml import events as ev
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from masque.config import Limits, limits as current_limits
from masque.diagnostics import Diagnostic

_CLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Core12Loader(_CLoader):  # type: ignore[misc,valid-type]
    """libyaml parser + SafeConstructor + YAML 1.2 core-schema resolution."""

    yaml_implicit_resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}


def _add(tag: str, pattern: str, first: str) -> None:
    _Core12Loader.add_implicit_resolver(tag, re.compile(pattern, re.X), list(first))


_add("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF")
_add("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789")
_add(
    "tag:yaml.org,2002:float",
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
    "-+0123456789.",
)
_add("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""])  # type: ignore[arg-type]
_add("tag:yaml.org,2002:merge", r"^(?:<<)$", "<")


def _construct_int(loader: Any, node: ScalarNode) -> int:
    value = str(node.value)
    if value.startswith("0o"):
        return int(value[2:], 8)
    if value.startswith("0x"):
        return int(value[2:], 16)
    return int(value)


_Core12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


class LoadProblem(Exception):
    """A file could not be turned into data; carries the one diagnostic that says why."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


@dataclass
class Document:
    """Parsed file: plain JSON-like `data` and the `root` node for positions."""

    path: str
    text: str
    data: Any
    root: Node

    def position(self, json_path: tuple[str | int, ...]) -> tuple[int, int]:
        """1-based (line, col) of the deepest node on `json_path` (of the key, for mapping members)."""
        return locate(self.root, json_path)


def locate(root: Node, json_path: tuple[str | int, ...]) -> tuple[int, int]:
    node: Node = root
    mark = node.start_mark
    for part in json_path:
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if isinstance(key, ScalarNode) and key.value == str(part):
                    mark, node = key.start_mark, value
                    break
            else:
                break
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            mark = node.start_mark
        else:
            break
    return mark.line + 1, mark.column + 1


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


def compose(path: str, text: str, lim: Limits) -> Node | None:
    """Events -> node tree, iteratively, enforcing depth, alias-expansion and document-count limits."""
    loader = _Core12Loader(text)
    anchors: dict[str, Node] = {}
    sizes: dict[int, int] = {}  # id(node) -> expanded node count
    open_ids: set[int] = set()
    # Stack frames: [node, pending_key, expanded_size, seen_keys]
    stack: list[list[Any]] = []
    root: Node | None = None
    documents = 0
    total = 0
    try:
        while True:
            event = loader.get_event()
            if event is None or isinstance(event, ev.StreamEndEvent):
                break
            if isinstance(event, (ev.StreamStartEvent, ev.DocumentEndEvent)):
                continue
            if isinstance(event, ev.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _problem(
                        path,
                        "multiple-documents",
                        "a masque file holds exactly one YAML document; split it into one file per masque",
                        event.start_mark,
                    )
                continue
            node: Node
            size = 1
            if isinstance(event, ev.AliasEvent):
                target = anchors.get(event.anchor)  # type: ignore[arg-type]
                if target is None:
                    raise _problem(path, "yaml-syntax", f"alias *{event.anchor} names no anchor", event.start_mark)
                if id(target) in open_ids:
                    raise _problem(
                        path, "recursive-alias", f"alias *{event.anchor} refers to itself", event.start_mark
                    )
                node, size = target, sizes[id(target)]
            elif isinstance(event, ev.ScalarEvent):
                tag = event.tag
                if tag is None or tag == "!":
                    tag = loader.resolve(ScalarNode, event.value, event.implicit)
                node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
            elif isinstance(event, (ev.SequenceStartEvent, ev.MappingStartEvent)):
                if len(stack) >= lim.max_depth:
                    raise _problem(
                        path, "too-deep", f"nesting deeper than {lim.max_depth} levels", event.start_mark
                    )
                is_seq = isinstance(event, ev.SequenceStartEvent)
                kind = SequenceNode if is_seq else MappingNode
                tag = event.tag
                if tag is None or tag == "!":
                    tag = loader.resolve(kind, None, event.implicit)
                coll = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
                if event.anchor is not None:
                    anchors[event.anchor] = coll
                open_ids.add(id(coll))
                stack.append([coll, None, 1, set()])
                continue
            elif isinstance(event, (ev.SequenceEndEvent, ev.MappingEndEvent)):
                frame = stack.pop()
                node, size = frame[0], frame[2]
                node.end_mark = event.end_mark
                open_ids.discard(id(node))
                sizes[id(node)] = size
            else:  # pragma: no cover - libyaml emits no other events
                continue
            if isinstance(event, ev.ScalarEvent) and event.anchor is not None:
                anchors[event.anchor] = node
                sizes[id(node)] = 1
            total += size
            if total > lim.max_nodes:
                raise _problem(
                    path,
                    "alias-bomb",
                    f"document expands to more than {lim.max_nodes:,} nodes (anchors/aliases used as a bomb?)",
                    event.start_mark,
                )
            if not stack:
                root = node
                continue
            frame = stack[-1]
            parent = frame[0]
            frame[2] += size
            if isinstance(parent, SequenceNode):
                parent.value.append(node)
            elif frame[1] is None:
                if isinstance(node, ScalarNode) and node.tag != "tag:yaml.org,2002:merge":
                    key = (node.tag, node.value)
                    if key in frame[3]:
                        raise _problem(
                            path,
                            "duplicate-key",
                            f"duplicate key {node.value!r}: each key may appear once per mapping",
                            node.start_mark,
                        )
                    frame[3].add(key)
                frame[1] = node
            else:
                parent.value.append((frame[1], node))
                frame[1] = None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
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


def construct(path: str, root: Node) -> Any:
    loader = _Core12Loader("")
    try:
        return loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        raise _problem(path, "yaml-syntax", str(exc.problem or exc), exc.problem_mark) from None
    except (TypeError, ValueError) as exc:  # e.g. unhashable keys, bad !!binary
        raise _problem(path, "yaml-syntax", str(exc), root.start_mark) from None
    finally:
        loader.dispose()


def load_text(path: str, text: str, lim: Limits | None = None) -> Document:
    """Parse text that must hold one mapping document."""
    lim = lim or current_limits()
    root = compose(path, text, lim)
    if root is None:
        raise _problem(path, "empty-file", "file is empty; a masque needs at least name, index, version, ring, intent and lens")
    if not isinstance(root, MappingNode):
        kind = "a list" if isinstance(root, SequenceNode) else "a scalar"
        raise _problem(path, "root-not-mapping", f"the top level is {kind}; it must be a mapping of fields", root.start_mark)
    return Document(path, text, construct(path, root), root)


def load_file(path: str | Path, lim: Limits | None = None) -> Document:
    """Read and parse one file; raises LoadProblem with one diagnostic when it cannot."""
    lim = lim or current_limits()
    name = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(lim.max_file_bytes + 1)
    except OSError as exc:
        raise _problem(name, "unreadable", f"cannot read file: {exc.strerror or exc}") from None
    return load_text(name, decode(name, raw, lim), lim)

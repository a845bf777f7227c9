"""`masque score --write-back`: append stored session scores to a masque file's performance block.

ruamel.yaml's round trip keeps comments and key order, but re-emitting a whole file can still move
bytes elsewhere (indentation it normalises, line wrapping, CRLF). So the document is round-tripped to
produce the new `performance` block, and only that block's lines are spliced into the original text:
every byte outside it is guaranteed to be unchanged. The result is validated before it is written.
"""

from __future__ import annotations

import io
import itertools
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from masque.enums import Score
from masque.errors import NotFound, UsageError, ValidationFailed
from masque.reflection.scoring import ScoringConfig, scoring_config


@dataclass(frozen=True)
class WriteBackResult:
    """What a write-back did to one masque file."""

    path: Path
    ref: str
    appended: int  # history entries added
    already_present: int  # stored scores the file already had
    previous_score: str | None
    score: str | None  # performance.score after the write-back
    changed: bool  # False when the file was left untouched


def _rfc3339(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def resolve_path(ref: str) -> Path:
    """A masque file from a path, or from a ref through the registry."""
    candidate = Path(ref).expanduser()
    if candidate.is_file():
        return candidate
    from masque.masques import registry

    resolved: Any = registry.resolve(ref)
    path = getattr(resolved, "path", resolved)
    return Path(path)


def _stored_scores(key: str, version: str) -> list[tuple[str, str, str | None, datetime]]:
    """(session_id, symbol, notes, created_at) for every score of sessions of key@version, oldest first."""
    from masque import store

    with store.connect(read_only=True) as conn:
        found = conn.execute(
            "SELECT sc.session_id, sc.symbol, sc.notes, sc.created_at FROM scores sc"
            " JOIN sessions s ON s.id = sc.session_id"
            " WHERE s.masque = ? AND s.version = ? ORDER BY sc.created_at, sc.id",
            [key, version],
        ).fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in found]


def overall_symbol(history: list[Any], rules: ScoringConfig) -> Score | None:
    """The symbol nearest the mean of the history: each session counts once (its newest entry)."""
    per_session: dict[str, float] = {}
    loose: list[float] = []
    for entry in history:
        symbol = str(entry.get("score")) if hasattr(entry, "get") else ""
        if symbol not in rules.values:
            continue
        session_id = entry.get("session_id")
        if session_id:
            per_session[str(session_id)] = rules.values[symbol]
        else:
            loose.append(rules.values[symbol])
    values = [*per_session.values(), *loose]
    if not values:
        return None
    return rules.nearest_symbol(sum(values) / len(values))


def _top_level_lines(doc: Any, key: str, total_lines: int) -> tuple[int, int]:
    """0-based [start, end) line range of a top-level key's block (up to the next key or EOF)."""
    start = doc.lc.key(key)[0]
    later = [doc.lc.key(k)[0] for k in doc if doc.lc.key(k)[0] > start]
    return start, min(later) if later else total_lines


def _yaml(text: str) -> tuple[Any, Any]:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long notes
    mapping, sequence, offset = _layout(text)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml, yaml.load(text)


def _content(line: str) -> str:
    """The line without a trailing comment (good enough for keys: they hold no ` #`)."""
    return line.split(" #", 1)[0].rstrip()


def _layout(text: str) -> tuple[int, int, int]:
    """(mapping indent, sequence indent, dash offset) as the file writes them, the performance block first.

    ruamel can emit any layout but does not detect one, and its guesser reads only the first
    sequence; a new history entry should look like the entries around it.
    """
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    starts = [i for i, ln in enumerate(lines) if ln.startswith("performance:")]
    order = lines[starts[0] :] + lines[: starts[0]] if starts else lines
    mapping = sequence = offset = None
    for above, below in itertools.pairwise(order):
        head = _content(above)
        if not head.endswith(":"):
            continue
        base = len(above) - len(above.lstrip(" "))
        depth = len(below) - len(below.lstrip(" "))
        stripped = below.lstrip(" ")
        if stripped.startswith("- ") and depth >= base and sequence is None:
            after_dash = len(stripped) - len(stripped[1:].lstrip(" "))
            offset, sequence = depth - base, depth - base + after_dash
        elif depth > base and not stripped.startswith("-") and mapping is None and not head.lstrip().startswith("-"):
            mapping = depth - base
    mapping = mapping or 2
    if sequence is None or offset is None:
        offset = mapping - 2 if mapping >= 4 else 0  # "- " sits inside the indent, as most files do
        return mapping, max(mapping, offset + 2), offset
    return mapping, max(sequence, offset + 2), offset


def updated_text(
    text: str, entries: list[tuple[str, str, str | None, datetime]], rules: ScoringConfig
) -> tuple[str, int, int, str | None, str | None]:
    """The file text with `entries` appended to performance.history and performance.score updated.

    Returns (new_text, appended, already_present, previous_score, new_score).
    """
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    yaml, doc = _yaml(text)
    if not isinstance(doc, CommentedMap) or doc.fa.flow_style():
        raise UsageError("write-back needs a block-style YAML mapping at the top of the file")
    had_block = "performance" in doc
    perf = doc.get("performance")
    if perf is None:
        perf = CommentedMap()
        doc["performance"] = perf
    if not isinstance(perf, CommentedMap):
        raise UsageError("performance must be a mapping to write scores back")
    perf.fa.set_block_style()
    history = perf.get("history")
    if history is None:
        history = CommentedSeq()
        perf["history"] = history
    if not isinstance(history, CommentedSeq):
        raise UsageError("performance.history must be a list to write scores back")
    history.fa.set_block_style()
    seen = {(str(e.get("session_id")), str(e.get("date")), str(e.get("score"))) for e in history if hasattr(e, "get")}
    appended = present = 0
    for session_id, symbol, notes, created_at in entries:
        key = (session_id, _rfc3339(created_at), symbol)
        if key in seen:
            present += 1
            continue
        seen.add(key)
        item = CommentedMap()
        item["date"] = DoubleQuotedScalarString(key[1])
        item["score"] = DoubleQuotedScalarString(symbol)
        if notes:
            item["notes"] = DoubleQuotedScalarString(notes)  # as the seeds write it; never read as a bool
        item["session_id"] = session_id
        history.append(item)
        appended += 1
    previous = perf.get("score")
    previous_score = str(previous) if previous is not None else None
    overall = overall_symbol(list(history), rules)
    if overall is not None and overall.value != previous_score:
        if "score" in perf:
            perf["score"] = DoubleQuotedScalarString(overall.value)
        else:
            perf.insert(0, "score", DoubleQuotedScalarString(overall.value))
    new_score = overall.value if overall is not None else previous_score
    if appended == 0 and new_score == previous_score:
        return text, 0, present, previous_score, new_score
    out = io.StringIO()
    yaml.dump(doc, out)
    dumped = out.getvalue().splitlines(keepends=True)
    newline = "\r\n" if "\r\n" in text else "\n"
    original = text.splitlines(keepends=True)
    _, new_doc = _yaml(out.getvalue())
    new_start, new_end = _top_level_lines(new_doc, "performance", len(dumped))
    block = [line.rstrip("\r\n") + newline for line in dumped[new_start:new_end]]
    if had_block:
        start, end = _top_level_lines(doc_positions(text), "performance", len(original))
        if end == len(original) and original and not original[-1].endswith("\n"):
            block[-1] = block[-1].rstrip("\r\n")  # the file ended without a newline; keep it so
        lines = original[:start] + block + original[end:]
    else:
        if original and not original[-1].endswith("\n"):
            original[-1] += newline
        lines = original + block
    return "".join(lines), appended, present, previous_score, new_score


def doc_positions(text: str) -> Any:
    """The original document with positions (a fresh load: the edited one has shifted)."""
    return _yaml(text)[1]


def write_back(ref: str) -> WriteBackResult:
    """Append the stored scores of REF's sessions to its file and update performance.score."""
    from masque.masques import validate

    path = resolve_path(ref)
    if path.suffix not in (".yaml", ".yml"):
        raise UsageError(
            f"{path}: write-back edits YAML masque files only",
            hint="convert it to .masque.yaml; scores stay readable with `masque stats` meanwhile",
        )
    raw = path.read_bytes()
    loaded = validate.load_masque(path)
    masque = loaded.masque
    entries = _stored_scores(masque.key, masque.version)
    if not entries:
        raise NotFound(
            f"no scored sessions of {masque.ref} to write back into {path}",
            hint=f"score sessions first: masque score SESSION_ID SYMBOL (see `masque stats {masque.ref}`)",
        )
    text = raw.decode("utf-8")
    new_text, appended, present, previous, score = updated_text(text, entries, scoring_config())
    if new_text == text:
        return WriteBackResult(path, masque.ref, 0, present, previous, score, False)
    new_raw = new_text.encode("utf-8")
    result = validate.check_bytes(str(path), new_raw)
    if result.masque is None:
        from masque.masques.diagnostics import Severity

        first = next((d for d in result.diagnostics if d.severity is Severity.ERROR), None)
        raise ValidationFailed(
            f"{path}: the written-back file would not validate: {first.message if first else 'unknown'}",
            hint="the file was left unchanged; run `masque validate` on it and fix its performance block",
        )
    _replace_pinned(path, raw, new_raw, masque.key, masque.version, masque.ring)
    return WriteBackResult(path, masque.ref, appended, present, previous, score, True)


def _replace_pinned(path: Path, raw: bytes, new_raw: bytes, key: str, version: str, ring: Any) -> None:
    """Rewrite the file and, if it was the trusted definition, move its pin along: both or neither.

    Only an actor qualified for the masque's ring writes its scores back. The file is checked against
    what was read, under the store's turn, so an edit made meanwhile is never overwritten or pinned.
    """
    from masque.masques import registry, trusted
    from masque.store import turns
    from masque.trust import rings

    before = registry.content_hash(path)
    written = False
    try:
        with turns.transaction() as conn:
            who = rings.resolve_acting(conn, rings.selection_from_env()).actor
            rings.check_qualified(who, ring, f"writing scores back into {key}@{version}")
            if path.read_bytes() != raw:
                raise UsageError(f"{path} changed during the write-back; it was left as it is", hint="run it again")
            _replace(path, new_raw)
            written = True
            after = registry.content_hash(path)
            trusted.carry_over(conn, key, version, before=before, after=after, path=path, actor=who.name)
    except BaseException:
        if written:  # the pin did not move: put back the file it still trusts
            _replace(path, raw)
        raise


def _replace(path: Path, data: bytes) -> None:
    """Write atomically next to the original, keeping its mode."""
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

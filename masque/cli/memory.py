"""`masque memory ...`: per-masque memory shards. Thin: parse, call masque.memory, render."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from masque.cli import memory_run
from masque.cli.app import app
from masque.cli.lean import runs_lean
from masque.errors import UsageError

memory_app = typer.Typer(
    name="memory",
    help="Per-masque memory shards: add, search, share, snapshot, prune, opt out; every access is logged.",
    no_args_is_help=True,
)
app.add_typer(memory_app, name="memory")

_JSON = typer.Option(False, "--json", help="Print JSON.")
_SESSION = typer.Option(None, "--session", help="Only memories tagged with this session id.")
_BRANCH = typer.Option(None, "--branch", help="Only memories on this branch.")
_TAGS = typer.Option(None, "--tags", "--tag", help="Only memories with these tags (comma-separated or repeated).")
_AS = typer.Option(None, "--as", help="Act as this actor (needs --key-file).")
_KEY_FILE = typer.Option(None, "--key-file", help="File holding that actor's key.")


_sel = memory_run.selection
_positive = memory_run.positive
_tags = memory_run.split_tags
_filters = memory_run.filters
_json = memory_run.print_json


def _masque_and_rest(args: list[str], what: str) -> tuple[str | None, list[str]]:
    """`[MASQUE] REST...`: ids start with mem_, so a lone id means the session's masque."""
    if args and not args[0].startswith("mem_"):
        return args[0], args[1:]
    return None, args


def _read_text(arg: str | None, file: Path | None) -> str:
    if file is not None:
        try:
            return file.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read {file}: {exc.strerror}", hint="check the path given to --file") from None
    if arg == "-":
        return sys.stdin.read()
    if arg is None:
        raise UsageError("no memory text: pass TEXT, --file F or - (stdin)")
    return arg


_short = memory_run.short


@memory_app.command("add")
def add_cmd(
    args: list[str] = typer.Argument(
        None, metavar="MASQUE TEXT", help="[MASQUE] TEXT; TEXT '-' reads stdin. MASQUE defaults to the session's."
    ),
    file: Path | None = typer.Option(None, "--file", "-f", help="Read the memory text from this file."),
    session: str | None = typer.Option(
        None, "--session", help="Tag with this session: only the one MASQUE_TOKEN proves (the default)."
    ),
    branch: str | None = typer.Option(None, "--branch", help="Branch the memory belongs to."),
    tags: list[str] | None = typer.Option(None, "--tags", "--tag", help="Tags (comma-separated or repeated)."),
    ttl: str | None = typer.Option(None, "--ttl", help="Forget after this long: 30d, 12h, P7D."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Remember a text in a masque's shard. Example: masque memory add codesmith "tests live in tests/"."""
    from masque.durations import parse_duration
    from masque.memory import ops

    args = list(args or [])
    if len(args) > 2:
        raise UsageError(f"expected [MASQUE] TEXT, got {len(args)} arguments", hint="quote the text")
    if file is not None:
        if len(args) > 1:
            raise UsageError("give TEXT or --file, not both")
        masque, text = (args[0] if args else None), _read_text(None, file)
    elif len(args) == 2:
        masque, text = args[0], _read_text(args[1], None)
    else:
        masque, text = None, _read_text(args[0] if args else None, None)
    result = ops.add([text], masque, session_id=session, branch=branch, tags=_tags(tags),
                     ttl=parse_duration(ttl) if ttl else None, selection=_sel(as_name, key_file))  # fmt: skip
    if json_out:
        _json(result.to_json())
    elif result.stored:
        typer.echo(f"stored {result.ids[0]} in {result.masque}")
    else:
        typer.echo(f"not stored: {result.reason}")


@memory_app.command("search")
@runs_lean("masque.cli.memory_run:search")
def search_cmd(
    args: list[str] = typer.Argument(
        ..., metavar="[MASQUE] QUERY", help="[MASQUE] QUERY. MASQUE defaults to the session's."
    ),
    k: int = typer.Option(10, "-k", "--limit", help="Number of results."),
    session: str | None = _SESSION,
    branch: str | None = _BRANCH,
    tags: list[str] | None = _TAGS,
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Hybrid (vector + full-text) search, best first. --json: {"results": [{"id", "text", "score", ...}]}."""
    memory_run.search(args=args, k=k, session=session, branch=branch, tags=tags, as_name=as_name,
                      key_file=key_file, json_out=json_out)  # fmt: skip


@memory_app.command("list")
def list_cmd(
    masque: str | None = typer.Argument(None, help="Masque (default: the session's)."),
    session: str | None = _SESSION,
    branch: str | None = _BRANCH,
    tags: list[str] | None = _TAGS,
    limit: int = typer.Option(50, "--limit", "-n", help="At most this many (at least 1; `export` writes all)."),
    include_expired: bool = typer.Option(False, "--all", help="Include expired memories not yet pruned."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """List a shard's memories, newest first."""
    from masque.memory.ops import list_memories

    found = list_memories(masque, filters=_filters(None, session, branch, tags),
                          limit=_positive(limit, "--limit", "50"), include_expired=include_expired,
                          selection=_sel(as_name, key_file))  # fmt: skip
    if json_out:
        _json({"memories": [m.to_json() for m in found]})
        return
    for m in found:
        tags_text = f" [{','.join(m.tags)}]" if m.tags else ""
        typer.echo(f"{m.id}  {m.created_at:%Y-%m-%d %H:%M}  {_short(m.text, 70)}{tags_text}")


@memory_app.command("get")
def get_cmd(
    args: list[str] = typer.Argument(..., metavar="[MASQUE] ID", help="[MASQUE] ID"),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Show one memory with its provenance."""
    from masque.memory.ops import get

    masque, rest = _masque_and_rest(args, "get")
    if len(rest) != 1:
        raise UsageError("expected [MASQUE] ID", hint="ids look like mem_01J...; `masque memory list` shows them")
    memory = get(masque, rest[0], selection=_sel(as_name, key_file))
    if json_out:
        _json(memory.to_json())
        return
    for key, value in memory.to_json().items():
        if key != "text":
            typer.echo(f"{key:13} {value if value not in (None, [], {}) else '-'}")
    typer.echo("")
    typer.echo(memory.text)


@memory_app.command("forget")
def forget_cmd(
    args: list[str] = typer.Argument(None, metavar="MASQUE ID", help="[MASQUE] [ID...]"),
    session: str | None = typer.Option(None, "--session", help="Forget everything this session stored."),
    branch: str | None = typer.Option(None, "--branch", help="Forget everything on this branch."),
    tags: list[str] | None = typer.Option(None, "--tags", "--tag", help="Forget memories with these tags."),
    actor: str | None = typer.Option(None, "--actor", help="Forget everything this actor stored."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Delete memories by id or filter. A filter is required: never everything by accident."""
    from masque.memory.ops import forget

    masque, ids = _masque_and_rest(list(args or []), "forget")
    result = forget(masque, _filters(ids, session, branch, tags, actor), selection=_sel(as_name, key_file))
    if json_out:
        _json(result.to_json())
    else:
        typer.echo(f"forgot {len(result.removed)} memor{'y' if len(result.removed) == 1 else 'ies'}")


@memory_app.command("prune")
def prune_cmd(
    masque: str | None = typer.Argument(None, help="One masque (default: every shard)."),
    older_than: str | None = typer.Option(
        None, "--older-than", help="Also delete memories older than this: 90d, P30D."
    ),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Delete expired memories (ttl or retention), and with --older-than any older ones."""
    from masque.durations import parse_duration
    from masque.memory.ops import prune

    result = prune(masque, older_than=parse_duration(older_than) if older_than else None,
                   selection=_sel(as_name, key_file))  # fmt: skip
    if json_out:
        _json(result.to_json())
    else:
        typer.echo(f"pruned {len(result.removed)} memories from {len(result.shards)} shard(s)")


@memory_app.command("history")
def history_cmd(
    args: list[str] = typer.Argument(..., metavar="[MASQUE] ID", help="[MASQUE] ID"),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """The change history of one memory (hashes, never text)."""
    from masque.memory.ops import history

    masque, rest = _masque_and_rest(args, "history")
    if len(rest) != 1:
        raise UsageError("expected [MASQUE] ID")
    entries = history(masque, rest[0], selection=_sel(as_name, key_file))
    if json_out:
        _json({"history": [h.to_json() for h in entries]})
        return
    for h in entries:
        digest = (h.content_hash or "")[:12]
        typer.echo(f"{h.ts:%Y-%m-%d %H:%M:%S}  {h.event:10} {h.actor or '-':12} {h.session_id or '-'}  sha256:{digest}")


@memory_app.command("export")
def export_cmd(
    masques: list[str] = typer.Argument(None, metavar="MASQUE", help="Masques to export (default: every shard)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    include_expired: bool = typer.Option(False, "--all", help="Include expired memories not yet pruned."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
) -> None:
    """Write memories as JSONL (one object per line; `memory import` reads it back)."""
    import json

    from masque.memory.transfer import export

    rows = export(list(masques or ()), include_expired=include_expired, selection=_sel(as_name, key_file))
    out = output.open("w", encoding="utf-8") if output else sys.stdout
    count = 0
    try:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    finally:
        if output:
            out.close()
    if output:
        typer.echo(f"exported {count} memories to {output}", err=True)


@memory_app.command("import")
def import_cmd(
    source: str = typer.Argument(..., help="JSONL file from `memory export`, or - for stdin."),
    masque: str | None = typer.Option(None, "--masque", help="Import every line into this masque's shard."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Import JSONL in whole batches; ids already present are skipped, so re-running is safe."""
    from masque.memory.transfer import import_memories

    selection = _sel(as_name, key_file)
    if source == "-":
        result = import_memories(sys.stdin, source="<stdin>", masque=masque, selection=selection)
    else:
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"cannot read {source}: no such file", hint="pass a JSONL file from `memory export`, or -")
        with path.open(encoding="utf-8") as fh:
            result = import_memories(fh, source=source, masque=masque, selection=selection)
    if json_out:
        _json(result)
    else:
        typer.echo(f"imported {result['imported']} memories, skipped {result['skipped']}")


@memory_app.command("mode")
def mode_cmd(
    masque: str = typer.Argument(..., help="Masque whose shard to set."),
    mode: str = typer.Argument(..., help="isolated, scoped_share or global_snapshot."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Set a shard's sync mode."""
    from masque.memory.manage import set_mode
    from masque.memory.policy import Mode

    try:
        chosen = Mode(mode)
    except ValueError:
        raise UsageError(f"unknown mode {mode!r}", hint="use isolated, scoped_share or global_snapshot") from None
    settings = set_mode(masque, chosen, selection=_sel(as_name, key_file))
    if json_out:
        _json({"masque": settings.masque, "mode": settings.mode.value, "readers": list(settings.readers)})
    else:
        typer.echo(f"{settings.masque}: mode {settings.mode.value}")


def _share(masque: str, reader: str, grant: bool, json_out: bool, selection: Any) -> None:
    from masque.memory.manage import share

    settings = share(masque, reader, grant=grant, selection=selection)
    if json_out:
        _json({"masque": settings.masque, "mode": settings.mode.value, "readers": list(settings.readers)})
        return
    readers = ", ".join(settings.readers) or "nobody"
    typer.echo(f"{settings.masque}: shared with {readers} (mode {settings.mode.value})")
    if grant and settings.mode.value != "scoped_share":
        from masque.cli.output import print_warning

        print_warning(
            f"reads by {reader} start once the mode is scoped_share: masque memory mode {masque} scoped_share"
        )


@memory_app.command("share")
def share_cmd(
    masque: str = typer.Argument(..., help="Owner of the shard."),
    with_: str = typer.Option(..., "--with", help="Masque allowed to read it (in scoped_share mode)."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Whitelist another masque to read this shard."""
    _share(masque, with_, True, json_out, _sel(as_name, key_file))


@memory_app.command("unshare")
def unshare_cmd(
    masque: str = typer.Argument(..., help="Owner of the shard."),
    with_: str = typer.Option(..., "--with", help="Masque to remove from the whitelist."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Remove a masque from this shard's whitelist."""
    _share(masque, with_, False, json_out, _sel(as_name, key_file))


@memory_app.command("snapshot")
def snapshot_cmd(
    masques: list[str] = typer.Argument(
        None, metavar="MASQUE", help="Shards to condense (default: all in global_snapshot mode)."
    ),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Condense shards into the ai_memory_summary table (extractive; an LLM summary when memory.summary = "llm")."""
    from masque.memory.snapshot import summarize

    found = summarize(tuple(masques or ()), selection=_sel(as_name, key_file))
    if json_out:
        _json({"summaries": [s.to_json() for s in found]})
        return
    if not found:
        typer.echo("nothing to snapshot (no shard in global_snapshot mode has live memories)", err=True)
    for s in found:
        typer.echo(f"{s.masque} ({s.source_rows} memories, {s.method}):")
        typer.echo(s.summary)


@memory_app.command("summaries")
def summaries_cmd(
    masque: str | None = typer.Argument(None, help="Only this masque's summaries."),
    limit: int = typer.Option(1, "--limit", "-n", help="Summaries per masque, newest first."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Read stored summaries: your own, every global_snapshot one, and scoped_share ones shared with you."""
    from masque.memory.snapshot import summaries

    found = summaries(masque, limit=_positive(limit, "--limit", "3"), selection=_sel(as_name, key_file))
    if json_out:
        _json({"summaries": [s.to_json() for s in found]})
        return
    if not found:
        typer.echo("no summaries yet: `masque memory snapshot` makes them", err=True)
    for s in found:
        typer.echo(f"{s.masque} ({s.created_at:%Y-%m-%d %H:%M}, {s.source_rows} memories, {s.method}):")
        typer.echo(s.summary)


def _opt(masque: str | None, out: bool, actor: str | None, json_out: bool, selection: Any) -> None:
    from masque.memory.manage import opt

    result = opt(masque, out=out, actor=actor, selection=selection)
    if json_out:
        _json(result)
    else:
        state = "opted out of" if out else "opted in to"
        typer.echo(f"{result['actor']} {state} the memory of {result['masque']}")


@memory_app.command("opt-out")
def opt_out_cmd(
    masque: str | None = typer.Argument(None, help="Masque (default: the session's)."),
    actor: str | None = typer.Option(
        None, "--actor", help="Actor to opt out (default: the acting actor; another one: admins only)."
    ),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Store nothing for this actor in the masque's shard, and return nothing on reads."""
    _opt(masque, True, actor, json_out, _sel(as_name, key_file))


@memory_app.command("opt-in")
def opt_in_cmd(
    masque: str | None = typer.Argument(None, help="Masque (default: the session's)."),
    actor: str | None = typer.Option(
        None, "--actor", help="Actor to opt back in (default: the acting actor; another one: admins only)."
    ),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Undo opt-out for this actor."""
    _opt(masque, False, actor, json_out, _sel(as_name, key_file))


@memory_app.command("log")
def log_cmd(
    masque: str | None = typer.Argument(None, help="Only this shard."),
    session: str | None = typer.Option(None, "--session", help="Only accesses from this session."),
    action: str | None = typer.Option(None, "--action", help="Only this action (add, search, forget, ...)."),
    limit: int = typer.Option(100, "--limit", "-n", help="At most this many, newest first."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """The compliance log: who read or wrote which shard, when, from which session (never the text)."""
    from masque.memory.manage import log_entries

    entries = log_entries(masque, session_id=session, action=action, limit=_positive(limit, "--limit", "100"),
                          selection=_sel(as_name, key_file))  # fmt: skip
    if json_out:
        _json({"entries": [e.to_json() for e in entries]})
        return
    for e in entries:
        reader = e.reader_masque or "-"
        typer.echo(f"{e.ts:%Y-%m-%d %H:%M:%S}  {e.action:8} {e.shard:16} by {e.actor or '-'} as {reader} "
                   f"({e.access}) rows={e.rows} session={e.session_id or '-'}")  # fmt: skip


@memory_app.command("stats")
def stats_cmd(
    masque: str | None = typer.Argument(None, help="Only this shard."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Per-shard figures: rows, live, embedder, mode, index, size."""
    from masque.memory.manage import stats

    found = stats(masque, selection=_sel(as_name, key_file))
    if json_out:
        _json({"shards": [s.to_json() for s in found]})
        return
    if not found:
        typer.echo("no memory shards yet", err=True)
    for s in found:
        index = s.vector_index or "exact"
        typer.echo(f"{s.masque:16} {s.live:>8} live {s.rows - s.live:>6} expired  {s.embedder or '-'}  "
                   f"{s.mode}  index={index}  {s.size_bytes / 1e6:.1f} MB")  # fmt: skip


@memory_app.command("reembed")
def reembed_cmd(
    masque: str = typer.Argument(..., help="Shard to re-embed with the configured embedder."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Re-embed every memory of a shard with the configured embedder (after changing memory.embedder)."""
    from masque.memory.manage import reembed

    result = reembed(masque, selection=_sel(as_name, key_file))
    if json_out:
        _json(result)
    else:
        typer.echo(f"re-embedded {result['rows']} memories of {result['masque']} with {result['embedder']}")


@memory_app.command("index")
def index_cmd(
    masque: str | None = typer.Argument(None, help="Shard to index (default: the session's)."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Build the vector (ANN) index now and fold new rows into the indices."""
    from masque.memory.search import index

    report = index(masque, selection=_sel(as_name, key_file))
    if json_out:
        _json(report.to_json())
    else:
        typer.echo(f"{report.masque}: {report.rows} rows, vector index {report.vector_index or 'none (too few rows)'}")

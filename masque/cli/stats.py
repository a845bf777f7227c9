"""`masque stats` (the five reflection levels) and `masque score` (score a session, write scores back)."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from masque.cli.app import app
from masque.errors import UsageError

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

    from masque.reflection.levels import Report

_SPARKS = "▁▂▃▄▅▆▇█"
_SYMBOL_NAMES = {"+": "additive", "-": "negative", "/": "dividing", "*": "multiplicative", "e": "exponential"}
_FORMATS = ("table", "json", "csv")


@app.command("stats")
def stats_cmd(
    ref: str | None = typer.Argument(None, metavar="NAME[@VERSION]", help="Masque level: NAME or NAME@VERSION."),
    skill: str | None = typer.Option(None, "--skill", help="Skill level: skill://domain/name or its short name."),
    ring: str | None = typer.Option(None, "--ring", help="Ring level: admin, player, guest or outsider."),
    session: str | None = typer.Option(None, "--session", help="Session level: one session id."),
    since: str | None = typer.Option(None, "--since", help="Sessions started from: 2026-01-15, or 30d ago."),
    until: str | None = typer.Option(None, "--until", help="Sessions started before: a date or a duration ago."),
    actor: str | None = typer.Option(None, "--actor", help="Only sessions worn by this actor."),
    top: int = typer.Option(5, "--top", min=1, max=100, help="How many top intents / top and bottom masques."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON (same as --format json)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json or csv (long format for spreadsheets)."),
    as_name: str | None = typer.Option(None, "--as", help="Look as this actor (needs --key-file)."),
    key_file: Path | None = typer.Option(None, "--key-file", help="File holding that actor's key."),
    from_files: list[str] | None = typer.Option(
        None,
        "--from",
        metavar="GLOB",
        help="Reflect on exported Parquet files instead of the store, e.g. 'exports/**/*.parquet' (repeatable).",
    ),
) -> None:
    """Reflect on sessions: the system, a masque, a skill, a ring or one session.

    Reports sessions (total, active, abandoned...), duration p50/p95, the score
    distribution and mean (- = -1, / = 0, + = 1, * = 2, e = 3 unless the scoring
    table of masque.toml says otherwise), a weekly trend, refusals and top intents,
    plus per-version, claimed-versus-observed, ring and top/bottom tables.
    Counts only sessions of actors in your ring and the less trusted ones (all for an admin).
    With --from, the report covers the given `sessions export` files (e.g. every machine's
    partitioned export) instead of the store: what their exporters could see.
    Exit codes: 0 ok, 1 unreadable files, 2 bad options, 3 a ring more trusted than yours,
    4 unknown masque, skill or session (or no file matches --from).
    """
    from masque.reflection.levels import Filters, Selection, report
    from masque.trust.rings import selection_from_env

    fmt = "json" if json_out else fmt.lower()
    if fmt not in _FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint="use table, json or csv")
    selection = Selection.choose(masque=ref, skill=skill, ring=ring, session=session)
    if from_files:
        if as_name is not None or key_file is not None:
            raise UsageError("--from reads files, not the store: --as/--key-file do not apply", hint="drop them")
        from masque.reflection.partitioned import report_from_files

        result = report_from_files(list(from_files), selection, Filters.parse(since, until, actor), top=top)
    else:
        acting = selection_from_env(as_name, key_file)
        result = report(selection, Filters.parse(since, until, actor), top=top, acting=acting)
    if fmt == "json":
        from masque.cli.output import print_json

        print_json(result.to_json())
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["section", "item", "metric", "value"])
        writer.writerows(csv_rows(result.to_json()))
    else:
        _render(result)


def _scalar(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return "" if value is None else value


def csv_rows(data: Mapping[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    """The JSON shape flattened to (section, item, metric, value): one number per row, pivot-ready."""
    for section, value in data.items():
        if isinstance(value, Mapping):
            for metric, inner in value.items():
                if isinstance(inner, Mapping):
                    for sub, leaf in inner.items():
                        yield section, metric, str(sub), _scalar(leaf)
                else:
                    yield section, "", str(metric), _scalar(inner)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if not isinstance(item, Mapping):
                    yield section, str(index), "value", _scalar(item)
                    continue
                name = _item_name(item, index)
                for metric, inner in item.items():
                    if isinstance(inner, Mapping):
                        for sub, leaf in inner.items():
                            yield section, name, f"{metric}.{sub}", _scalar(leaf)
                    else:
                        yield section, name, str(metric), _scalar(inner)
        else:
            yield section, "", "value", _scalar(value)


def _item_name(item: Mapping[str, Any], index: int) -> str:
    if "masque" in item and "version" in item:
        return f"{item['masque']}@{item['version']}"
    for key in ("week", "version", "masque", "actor", "masque_ring", "level", "intent", "id", "skill"):
        if key in item and item[key] is not None:
            return str(item[key])
    return str(index)


def sparkline(values: Sequence[float | None], *, from_zero: bool = False) -> str:
    """Tiny trend chart; gaps (None) are spaces. Counts chart `from_zero` so a flat series reads flat."""
    present = [v for v in values if v is not None]
    if not present:
        return ""
    low, high = min(present), max(present)
    if from_zero:
        low = min(low, 0.0)
    span = (high - low) or 1.0
    return "".join(" " if v is None else _SPARKS[round((v - low) / span * (len(_SPARKS) - 1))] for v in values)


def _bar(count: int, total: int, width: int = 24) -> str:
    return "█" * (round(count / total * width) if total else 0)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    from datetime import timedelta

    from masque.durations import format_duration

    return format_duration(timedelta(seconds=seconds))


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for i, column in enumerate(columns):
        numeric = i > 0 and all(isinstance(row[i], (int, float)) or row[i] is None for row in rows)
        # Numbers and their headers never wrap ("abandone/d"); text columns fold when space runs out.
        table.add_column(
            column,
            justify="right" if numeric else "left",
            overflow="fold",
            no_wrap=numeric,
            min_width=len(column),
        )
    for row in rows:
        table.add_row(*(_num(c) for c in row))
    return table


def _score_cells(row: Mapping[str, Any]) -> list[Any]:
    counts = row.get("score_counts", {})
    return [row["sessions"], row["scored"], row["mean_score"], *(counts.get(s, 0) for s in _SYMBOL_NAMES)]


_SCORE_COLUMNS = ["sessions", "scored", "mean", *_SYMBOL_NAMES]


def _render(r: Report) -> None:
    from masque.cli.output import console

    out = console()
    data = r.to_json()
    title = {"system": "the whole registry"}.get(r.level.value)
    window = ", ".join(
        f"actors of rings {', '.join(v)}" if k == "actor_rings" else f"{k} {v}" for k, v in data["filters"].items() if v
    )
    out.print(f"[bold]Reflection[/bold] — {r.level.value}: {title or r.subject}" + (f" ({window})" if window else ""))
    s = r.sessions
    out.print(
        f"sessions {s['total']}  active {s['active'] + s['revoking']}  ended {s['ended']}  "
        f"revoked {s['revoked']}  abandoned {s['abandoned']}"
    )
    d = r.duration_seconds
    out.print(f"duration p50 {_duration(d['p50'])}  p95 {_duration(d['p95'])}  (of {d['measured']} ended)")
    refused = r.refusals
    out.print(f"refusals: intent denied {refused['intent_denied']}  ring refused {refused['ring_refused']}")
    mean = "-" if r.mean_score is None else f"{r.mean_score:+.2f}"
    out.print(f"\n[bold]scores[/bold] — {r.scored_sessions} scored, mean {mean}")
    for symbol, name in _SYMBOL_NAMES.items():
        count = r.score_counts[symbol]
        out.print(f"  {symbol} {name:<15}{count:>8}  {_bar(count, r.scored_sessions)}", markup=False)
    if r.trend:
        weeks = [t["week"] for t in r.trend]
        out.print(
            f"\n[bold]weekly trend[/bold] {weeks[0]} .. {weeks[-1]} ({len(weeks)} week{'s' if len(weeks) != 1 else ''})"
        )
        out.print(f"  sessions {sparkline([t['sessions'] for t in r.trend], from_zero=True)}", markup=False)
        out.print(f"  mean     {sparkline([t['mean_score'] for t in r.trend])}", markup=False)
    if r.top_intents:
        out.print(
            _table("\ntop intents", ["intent", "sessions"], [(i["intent"], i["sessions"]) for i in r.top_intents])
        )
    for table in _level_tables(data):
        out.print()
        out.print(table)


def _level_tables(data: Mapping[str, Any]) -> Iterator[Table | Text]:
    level = data["level"]
    if level == "masque":
        yield _table(
            "versions",
            ["version", *_SCORE_COLUMNS, "active", "abandoned", "p50"],
            [
                [v["version"], *_score_cells(v), v["active"], v["abandoned"], _duration(v["duration_p50"])]
                for v in data["versions"]
            ],
        )
        if data["skills"]:
            yield _table(
                "claimed skills",
                ["version", "skill", "level"],
                [(k["version"], k["skill"], k["level"]) for k in data["skills"]],
            )
    elif level == "skill":
        yield _table(
            "claimed level vs observed mean",
            ["level", "expected", "masques", "scored", "mean", "verdict"],
            [
                (v["level"], v["expected"], v["masques"], v["scored"], v["mean_score"], v["verdict"])
                for v in data["levels"]
            ],
        )
        yield _table(
            "masques claiming it",
            ["masque", "level", "sessions", "scored", "mean", "verdict"],
            [
                (
                    f"{c['masque']}@{c['version']}",
                    c["level"],
                    c["sessions"],
                    c["scored"],
                    c["mean_score"],
                    _flag(c["verdict"]),
                )
                for c in data["claims"]
            ],
        )
    elif level == "ring":
        yield _table(
            "masques of the ring",
            ["masque", *_SCORE_COLUMNS],
            [(m["masque"], *_score_cells(m)) for m in data["masques"]],
        )
        yield _table(
            "actors of the ring", ["actor", *_SCORE_COLUMNS], [(a["actor"], *_score_cells(a)) for a in data["actors"]]
        )
    elif level == "system":
        if data["top_masques"] or data["bottom_masques"]:
            yield _table(
                "top masques",
                ["masque", *_SCORE_COLUMNS],
                [(m["masque"], *_score_cells(m)) for m in data["top_masques"]],
            )
            yield _table(
                "bottom masques",
                ["masque", *_SCORE_COLUMNS],
                [(m["masque"], *_score_cells(m)) for m in data["bottom_masques"]],
            )
        else:
            from rich.text import Text

            from masque.reflection.scoring import scoring_config

            yield Text(
                f"top and bottom masques: none yet (a masque is ranked once it has "
                f"{scoring_config().min_scored} scored sessions; [scoring] min_scored in masque.toml)"
            )
        yield _table("rings", ["ring", *_SCORE_COLUMNS], [(x["masque_ring"], *_score_cells(x)) for x in data["rings"]])
    elif level == "session":
        s = data["session"]
        yield _table("session", ["field", "value"], [(k, _scalar(v)) for k, v in s.items()])
        yield _table(
            "scores (newest is current)",
            ["when", "symbol", "value", "by", "notes"],
            [
                (_scalar(x["created_at"]), x["symbol"], x["value"], x["scored_by"] or "-", x["notes"] or "")
                for x in data["scores"]
            ],
        )
        yield _table(
            "events",
            ["when", "type", "actor"],
            [(_scalar(e["ts"]), e["type"], e["actor"] or "-") for e in data["events"]],
        )


def _flag(verdict: str) -> str:
    return {"over": "over-claiming", "under": "under-claiming"}.get(verdict, verdict)


@app.command("score")
def score_cmd(
    session_id: str | None = typer.Argument(None, metavar="SESSION_ID", help="Session to score (ses_...)."),
    symbol: str | None = typer.Argument(
        None,
        metavar="SYMBOL",
        help="+ additive, - negative, / dividing, * multiplicative, e exponential (or the name).",
    ),
    notes: str | None = typer.Option(None, "--notes", help="Why this score."),
    write_back: str | None = typer.Option(
        None, "--write-back", metavar="REF", help="Append the stored scores of REF's sessions to its file."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Score a session (re-scoring appends; the newest score counts), or write scores back to a file.

    `masque score SESSION_ID SYMBOL [--notes TEXT]` records a score as the acting actor.
    `masque score --write-back REF` appends every stored score of REF's sessions to the file's
    performance.history and updates performance.score, leaving the rest of the file byte-for-byte.
    Exit codes: 0 ok, 1 the file would not validate, 2 bad symbol or arguments, 4 unknown session/ref.
    """
    from masque.cli.output import print_json

    if write_back is not None:
        if session_id or symbol or notes:
            raise UsageError(
                "--write-back REF takes no session, symbol or --notes",
                hint="score first, then run `masque score --write-back REF` on its own",
            )
        from masque.reflection.writeback import write_back as do_write_back

        result = do_write_back(write_back)
        if json_out:
            print_json(
                {
                    "path": str(result.path),
                    "ref": result.ref,
                    "appended": result.appended,
                    "already_present": result.already_present,
                    "previous_score": result.previous_score,
                    "score": result.score,
                    "changed": result.changed,
                }
            )
        elif result.changed:
            moved = (
                f"{result.previous_score or '-'} -> {result.score}"
                if result.previous_score != result.score
                else f"stays {result.score}"
            )
            typer.echo(f"{result.path}: appended {result.appended} score(s); performance.score {moved}")
        else:
            typer.echo(f"{result.path}: already up to date ({result.already_present} score(s) present)")
        return
    if not session_id or not symbol:
        raise UsageError(
            "give a SESSION_ID and a SYMBOL, or --write-back REF",
            hint="e.g. masque score ses_01J... + --notes 'solid work'",
        )
    from masque.reflection.scoring import score_session

    row = score_session(session_id, symbol, notes)
    if json_out:
        print_json(
            {
                "id": row.id,
                "session_id": row.session_id,
                "symbol": row.symbol.value,
                "value": row.value,
                "notes": row.notes,
                "scored_by": row.scored_by,
                "created_at": row.created_at,
            }
        )
        return
    typer.echo(f"scored {row.session_id} {row.symbol.value} ({_SYMBOL_NAMES[row.symbol.value]}, {row.value:+g})")

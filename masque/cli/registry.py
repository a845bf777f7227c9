"""`masque list`, `show`, `check`, and `masque registry pin|pins`: the registry, trust and intent policy."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from masque.cli.app import app

if TYPE_CHECKING:
    from masque.masques.knowledge import Pointer
    from masque.masques.registry import Entry, Resolved
    from masque.model import Masque


@app.command("list")
def list_cmd(
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List every masque on the search path, which copy wins, and files that are invalid.

    Search path: MASQUE_PATH dirs, ./personas, then your own dir ($XDG_CONFIG_HOME/masque/personas).
    Of identical copies of a name@version your own wins; files that differ from its pinned definition,
    disagree while unpinned, or lie outside [registry] trusted_roots are listed but not used.
    """
    from masque.cli.output import print_json, print_warning
    from masque.masques import registry

    entries = registry.available()
    if json_out:
        dirs = [
            {"path": str(d.path), "source": d.source.value, "exists": d.path.exists()} for d in registry.search_dirs()
        ]
        print_json({"search_path": dirs, "masques": [e.to_dict() for e in entries]})
        return
    for entry in entries:
        if entry.error:
            print_warning(f"skipped invalid file: {entry.error}")
    valid = [e for e in entries if e.masque is not None]
    if not valid:
        where = ", ".join(str(d.path) for d in registry.search_dirs())
        typer.echo(f"no masques found on the search path: {where}")
        return
    _print_table(valid)


def _print_table(entries: list[Entry]) -> None:
    rows = [("NAME", "VERSION", "STAGE", "RING", "SOURCE", "PATH")]
    for e in entries:
        assert e.masque is not None
        path = str(e.path) if e.shadowed_by is None else f"{e.path} (overridden by {e.shadowed_by})"
        if e.note:
            path = f"{e.path} ({e.status.value}: {e.note})"
        m = e.masque
        rows.append((m.key, m.version, m.stage.value, m.ring.value, e.source, path))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        cells = [c.ljust(w) for c, w in zip(row[:5], widths, strict=True)]
        typer.echo("  ".join([*cells, row[5]]).rstrip())


@app.command("show")
def show_cmd(
    ref: str = typer.Argument(..., metavar="REF", help="NAME, NAME@1.2.3 or masque:NAME@v1.2.3."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show the masque a ref resolves to, the file it came from and the file's SHA-256."""
    from masque.cli.output import print_json, print_warning
    from masque.masques import knowledge, registry

    resolved = registry.resolve(ref)
    pointers = knowledge.resolve(resolved.masque.knowledge)
    if json_out:
        print_json({**registry.resolved_to_dict(resolved), "knowledge": [p.to_dict() for p in pointers]})
        return
    for warning in resolved.warnings:
        print_warning(warning)
    _print_resolved(resolved, pointers)


def _print_resolved(resolved: Resolved, pointers: list[Pointer]) -> None:
    m: Masque = resolved.masque
    echo = typer.echo
    echo(f"{m.name} {m.version}  (ring {m.ring.value}, stage {m.stage.value})")
    echo(f"ref:      {resolved.ref}")
    echo(f"path:     {resolved.path}")
    echo(f"source:   {resolved.source}")
    echo(f"sha256:   {resolved.sha256}")
    for other in resolved.overrides:
        echo(f"overrides: {other}")
    echo("intent:")
    for pattern in m.intent.allowed:
        echo(f"  allowed: {pattern}")
    for pattern in m.intent.denied:
        echo(f"  denied:  {pattern}")
    if pointers:
        echo("knowledge:")
        for p in pointers:
            echo(f"  {p.uri} -> {p.endpoint or '(unresolved: add it under [knowledge] in masque.toml)'}")
    if m.access is not None:
        echo(f"access:   role {m.access.vault_role or '-'}, ttl {m.access.ttl}")
    if m.skills:
        echo("skills:")
        for skill in m.skills:
            echo(f"  {skill.uri} ({skill.level.value})")
    if m.context:
        echo("context:")
        for line in m.context.rstrip().splitlines():
            echo(f"  {line}")
    echo("lens:")
    for line in m.lens.rstrip().splitlines():
        echo(f"  {line}")


@app.command("check")
def check_cmd(
    ref: str = typer.Argument(..., metavar="REF", help="NAME, NAME@1.2.3 or masque:NAME@v1.2.3."),
    intent: str = typer.Option(..., "--intent", "-i", help="The goal you would state when assuming."),
    json_out: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
) -> None:
    """Would this intent be allowed? Answers without assuming. Exit 0 allowed, 3 refused.

    Denied patterns win; otherwise an allowed pattern must match the whole (normalised) intent.
    """
    from masque.cli.output import print_json, print_warning
    from masque.masques import registry
    from masque.masques.intent import Policy
    from masque.masques.intent_text import escape_undecodable

    resolved = registry.resolve(ref)
    decision = Policy.compile(resolved.masque.intent).decide(intent)
    if json_out:
        print_json(
            {
                "ref": resolved.ref,
                "path": str(resolved.path),
                "sha256": resolved.sha256,
                "intent": escape_undecodable(intent),
                **decision.to_dict(),
                "refusal_reason": None if decision.allowed else decision.refusal_reason,
            }
        )
    else:
        for warning in resolved.warnings:
            print_warning(warning)
        typer.echo(f"{resolved.ref}: {decision.message}")
    if not decision.allowed:
        raise typer.Exit(3)


registry_app = typer.Typer(
    name="registry", help="Trusted definitions: the content each name@version is pinned to.", no_args_is_help=True
)
app.add_typer(registry_app)


@registry_app.command("pins")
def pins_cmd(
    as_name: str | None = typer.Option(None, "--as", help="Act as this actor (needs --key-file)."),
    key_file: Path | None = typer.Option(None, "--key-file", help="File holding that actor's key."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List pinned definitions: name@version, content SHA-256, file, who pinned it (if you may see them) and how."""
    from masque.cli.output import print_json
    from masque.masques import trusted
    from masque.trust import rings

    found = trusted.list_pins(rings.selection_from_env(as_name, key_file))
    if json_out:
        print_json({"pins": [p.to_dict() for p in found]})
        return
    if not found:
        typer.echo("nothing pinned yet (the first granted assume of a name@version pins it)")
    for p in found:
        typer.echo(f"{p.ref}  {p.content_hash[:12]}  {p.via} by {p.pinned_by or '-'}  {p.source_path}")


@registry_app.command("pin")
def pin_cmd(
    ref: str = typer.Argument(..., metavar="NAME@VERSION", help="The exact name@version to (re-)pin."),
    file: Path | None = typer.Option(None, "--file", help="The claimant to trust when several differ."),
    as_name: str | None = typer.Option(None, "--as", help="Act as this actor (needs --key-file)."),
    key_file: Path | None = typer.Option(None, "--key-file", help="File holding that actor's key."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Admin: trust the file on the search path that claims NAME@VERSION (re-pins; exit 3 for others)."""
    from masque.cli.output import print_json
    from masque.masques import pinning
    from masque.trust import rings

    pinned = pinning.pin(ref, file, rings.selection_from_env(as_name, key_file))
    if json_out:
        print_json(pinned.to_dict())
        return
    typer.echo(f"pinned {pinned.ref} to {pinned.source_path} (sha256 {pinned.content_hash})")

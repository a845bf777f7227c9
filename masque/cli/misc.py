"""Small commands: where things live, and the schema."""

from __future__ import annotations

import typer

from masque.cli.app import app


@app.command("path")
def path_cmd(
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show where Masque keeps its store, memory, config and personas."""
    from masque import config

    places = {
        "home": str(config.home()),
        "store": config.store_display(),
        "memory": config.memory_storage().where(),
        "config": str(config.config_file() or (config.config_home() / "masque.toml")),
        "crash_log": str(config.crash_log_path()),
        "search_path": [str(p) for p in config.search_path()],
    }
    if json_out:
        from masque.cli.output import print_json

        print_json(places)
        return
    for key, value in places.items():
        if isinstance(value, list):
            value = ":".join(value)
        typer.echo(f"{key:12} {value}")


@app.command("schema")
def schema_cmd(
    fmt: str = typer.Option("yaml", "--format", "-f", help="yaml (as shipped) or json."),
    which: str = typer.Option("masque", "--which", help="masque, mask (the MythaTron JSON dialect) or mapper."),
) -> None:
    """Print the JSON Schema for masque files (for editors and SchemaStore)."""
    from masque.masques import schema

    typer.echo(schema.schema_text(which, fmt), nl=False)

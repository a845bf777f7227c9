"""`masque mcp install`: the config entry that makes an MCP client start `masque mcp`, printed or merged.

claude-code and cursor read JSON (`{"mcpServers": {"masque": {"command", "args"}}}`) from `.mcp.json` /
`.cursor/mcp.json` (project) or `~/.claude.json` / `~/.cursor/mcp.json` (user); codex reads TOML
(`[mcp_servers.masque]`) from `~/.codex/config.toml` (user) or `.codex/config.toml` (a trusted project).
Merging keeps every other server and key (TOML through tomlkit, so comments and layout survive) and
never replaces an existing `masque` entry without `force`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from masque.errors import UsageError

CLIENTS = ("claude-code", "codex", "cursor")
_FILES = {
    ("claude-code", "project"): ".mcp.json",
    ("claude-code", "user"): "~/.claude.json",
    ("cursor", "project"): ".cursor/mcp.json",
    ("cursor", "user"): "~/.cursor/mcp.json",
    ("codex", "project"): ".codex/config.toml",
    ("codex", "user"): "~/.codex/config.toml",
}
_DEFAULT_SCOPE = {"claude-code": "project", "cursor": "project", "codex": "user"}


@dataclass(frozen=True)
class Plan:
    client: str
    path: Path
    entry: dict[str, Any]
    snippet: str  # what to paste, in the file's format

    @property
    def toml(self) -> bool:
        return self.path.suffix == ".toml"


@dataclass(frozen=True)
class Written:
    path: Path
    replaced: bool


def server_entry(as_name: str | None = None, key_file: Path | None = None) -> dict[str, Any]:
    """`{"command", "args"}` starting `masque mcp` (stdio), acting as `as_name` when given."""
    if (as_name is None) != (key_file is None):
        raise UsageError("--as and --key-file go together", hint="pass both: --as NAME --key-file FILE")
    found = shutil.which("masque")
    command, args = ("masque", ["mcp"]) if found else (sys.executable, ["-m", "masque", "mcp"])
    if as_name is not None and key_file is not None:
        args += ["--as", as_name, "--key-file", str(key_file.expanduser().resolve())]
    return {"command": command, "args": args}


def plan(client: str, *, scope: str | None = None, as_name: str | None = None, key_file: Path | None = None) -> Plan:
    if client not in CLIENTS:
        raise UsageError(f"unknown --client {client!r}", hint=f"use one of: {', '.join(CLIENTS)}")
    scope = scope or _DEFAULT_SCOPE[client]
    if scope not in ("project", "user"):
        raise UsageError(f"unknown --scope {scope!r}", hint="use project or user")
    path = Path(_FILES[client, scope]).expanduser()
    entry = server_entry(as_name, key_file)
    if path.suffix == ".toml":
        import tomlkit

        doc = tomlkit.document()
        doc.add("mcp_servers", _toml_servers(entry))
        snippet = tomlkit.dumps(doc)
    else:
        snippet = json.dumps({"mcpServers": {"masque": entry}}, indent=2) + "\n"
    return Plan(client, path, entry, snippet)


def _toml_servers(entry: dict[str, Any]) -> Any:
    import tomlkit

    servers = tomlkit.table(is_super_table=True)
    servers.add("masque", _toml_entry(entry))
    return servers


def _toml_entry(entry: dict[str, Any]) -> Any:
    import tomlkit

    table = tomlkit.table()
    for key, value in entry.items():
        table.add(key, value)
    return table


def _exists_error(path: Path) -> UsageError:
    return UsageError(
        f"{path} already has an MCP server named `masque`; left unchanged",
        hint="rerun with --force to replace it, or edit that entry by hand",
    )


def write(p: Plan, *, force: bool = False) -> Written:
    """Merge the entry into the client's file (created if missing), keeping everything else in it."""
    text = _read(p.path)
    if p.toml:
        new_text, replaced = _merge_toml(p, text, force)
    else:
        new_text, replaced = _merge_json(p, text, force)
    _write_atomic(p.path, new_text)
    return Written(p.path, replaced)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}", hint="fix or move that file, then rerun") from None


def _merge_json(p: Plan, text: str, force: bool) -> tuple[str, bool]:
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{p.path} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}",
            hint="fix the file, or print the entry without --write and add it by hand",
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers", {}), dict):
        raise UsageError(f"{p.path}: expected a JSON object with an `mcpServers` object", hint="fix the file")
    servers = data.setdefault("mcpServers", {})
    replaced = "masque" in servers
    if replaced and not force:
        raise _exists_error(p.path)
    servers["masque"] = p.entry
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n", replaced


def _merge_toml(p: Plan, text: str, force: bool) -> tuple[str, bool]:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise UsageError(f"{p.path} is not valid TOML: {exc}", hint="fix the file, then rerun") from None
    servers = doc.get("mcp_servers")
    if servers is None:
        doc.add("mcp_servers", _toml_servers(p.entry))
        return tomlkit.dumps(doc), False
    if not isinstance(servers, dict):
        raise UsageError(f"{p.path}: `mcp_servers` is not a table", hint="fix the file")
    replaced = "masque" in servers
    if replaced and not force:
        raise _exists_error(p.path)
    servers["masque"] = _toml_entry(p.entry)
    return tomlkit.dumps(doc), replaced


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

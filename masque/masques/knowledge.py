"""Knowledge pointers: `mcp://server/resource` URIs resolved to endpoints through the config map.

The map is the `[knowledge]` table of the config file (`masque.toml` or `$MASQUE_CONFIG`):

    [knowledge]
    homelab = "http://localhost:8080"

- `mcp://homelab/inventory`  -> `http://localhost:8080/inventory` (server is a key: base + resource)
- `mcp://homelab`            -> `http://localhost:8080`
- `mcp://homelab-inventory`  -> `http://localhost:8080/inventory` when `homelab-inventory` is not a key
  itself: the seeds' dashed form, `<server>-<resource>`, longest matching key first.

Masques carry pointers, not blobs: nothing is fetched here. Unresolved pointers get `endpoint=None`;
`strict=True` refuses (exit 3) when any is unresolved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from masque import config
from masque.errors import Refused, UsageError

SCHEME = "mcp://"


@dataclass(frozen=True)
class Pointer:
    """A knowledge URI split into server and resource, with where it resolves to."""

    uri: str
    server: str  # "" when the URI is not an mcp:// URI
    resource: str | None  # the path after the server, None when there is none
    endpoint: str | None  # where it resolves to; None when unresolved

    @property
    def resolved(self) -> bool:
        return self.endpoint is not None

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.uri, "server": self.server, "resource": self.resource, "endpoint": self.endpoint}


def servers() -> dict[str, str]:
    """The `[knowledge]` map: server name -> base URL (validated: every value must be a string)."""
    table = config.section("knowledge")
    out: dict[str, str] = {}
    for key, value in table.items():
        if not isinstance(value, str) or not value.strip():
            raise UsageError(
                f"config {config.config_file()}: [knowledge] {key} must be a base URL string, got {value!r}",
                hint=f'write it as {key} = "http://host:port"',
            )
        out[key] = value.strip()
    return out


def _join(base: str, *parts: str | None) -> str:
    url = base.rstrip("/")
    for part in parts:
        if part:
            url += "/" + part.strip("/")
    return url


def _lookup(table: Mapping[str, str], server: str) -> str | None:
    if server in table:
        return table[server]
    folded = server.casefold()  # host names are case-insensitive
    for key, value in table.items():
        if key.casefold() == folded:
            return value
    return None


def resolve_one(uri: str, table: Mapping[str, str]) -> Pointer:
    """Resolve one pointer against a server map."""
    if not uri.startswith(SCHEME):
        return Pointer(uri, "", None, None)
    rest = uri[len(SCHEME) :]
    server, _, resource = rest.partition("/")
    resource_or_none = resource or None
    base = _lookup(table, server)
    if base is not None:
        return Pointer(uri, server, resource_or_none, _join(base, resource_or_none))
    # Dashed form: mcp://homelab-inventory -> [knowledge] homelab + /inventory. Longest key wins so
    # `homelab-prod` beats `homelab` for mcp://homelab-prod-inventory.
    folded = server.casefold()
    for key in sorted(table, key=len, reverse=True):
        prefix = key.casefold() + "-"
        if folded.startswith(prefix) and len(folded) > len(prefix):
            endpoint = _join(table[key], server[len(prefix) :], resource_or_none)
            return Pointer(uri, server, resource_or_none, endpoint)
    return Pointer(uri, server, resource_or_none, None)


def resolve(uris: Sequence[str], *, strict: bool = False) -> list[Pointer]:
    """Resolve every pointer; with `strict`, refuse (reason knowledge_unresolved) if any is unresolved."""
    table = servers()
    pointers = [resolve_one(uri, table) for uri in uris]
    missing = [p for p in pointers if p.endpoint is None]
    if strict and missing:
        listed = ", ".join(p.uri for p in missing)
        where = config.config_file() or (config.config_home() / "masque.toml")
        example = next((p.server for p in missing if p.server), "server")
        raise Refused(
            f"{len(missing)} knowledge pointer(s) do not resolve: {listed}",
            reason="knowledge_unresolved",
            hint=f'map each server under [knowledge] in {where}, e.g. {example} = "http://localhost:8080"',
        )
    return pointers

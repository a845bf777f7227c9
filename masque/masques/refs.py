"""How refs compare: name keys, semver version order and the slot one definition is keyed by."""

from __future__ import annotations

from typing import Any

__all__ = ["name_key", "slot_of", "version_key"]


def slot_of(name: str, version: str) -> tuple[str, str]:
    """What one definition is keyed by: the name key and the version without semver build metadata
    (semver makes `1.0.0+evil` equal to `1.0.0`, and an exact pin matches both)."""
    if "+" not in version:  # no build metadata to drop: no need to parse (nor import semver)
        return name_key(name), version
    return name_key(name), version.split("+", 1)[0] if version_key(version)[0] == 1 else version


def name_key(name: str) -> str:
    """How names compare: case-insensitively, with spaces and hyphens equivalent ("Code Smith")."""
    return name.casefold().replace(" ", "-")


# --- version ordering -------------------------------------------------------------------------------


def version_key(version: str) -> tuple[int, Any]:
    """Sort key: semver order; anything that is not semver sorts before every semver version."""
    import semver

    try:
        return (1, semver.Version.parse(version))
    except (ValueError, TypeError):
        return (0, version)

"""Teams: several masques worn together under one team id and one intent (seed 003).

The Python API mirrors `masque team ...`; names resolve lazily, so importing this package costs nothing:

    from masque import teams
    t = teams.spawn(["engineer:backend", "reviewer"], "implement user authentication", selection=sel)
    teams.show(t.team.id, selection=sel); teams.list(selection=sel)
    teams.release(t.team.id, selection=sel, score="+", notes="shipped")

Modules:
  model     Team / Member values, and reading and writing their rows (the one writer of teams tables)
  spawning  spawn: every member decided in one transaction, all qualify or nothing is recorded
  manage    list, show, release (one team outcome), member credentials for `masque exec --team`
  views     who may see a team, and its JSON shape
  runner    `masque exec --team`: run member processes with their own credentials
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "spawn": "masque.teams.spawning",
    "Spawned": "masque.teams.spawning",
    "list": "masque.teams.manage",
    "show": "masque.teams.manage",
    "release": "masque.teams.manage",
    "Released": "masque.teams.manage",
    "TeamView": "masque.teams.manage",
    "run_members": "masque.teams.runner",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'masque.teams' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value

"""Shared helpers for the sessions/rings/credentials/api/concurrency tests (no tests here).

Tests write their own masques into ./personas (the working directory is tmp_path/work), so they do
not depend on the shipped examples changing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

MASQUES = {
    "tool": """\
name: Tool
index: 1
version: "1.0.0"
ring: player
skills:
  - uri: skill://programming/python
    level: competent
intent:
  allowed: ["implement *", "test *", "work *"]
  denied: ["rush *"]
knowledge:
  - mcp://repo/source
access:
  vault_role: tool-ci
  ttl: PT2H
context: |
  A small team writing Python.
lens: |
  Be methodical. Test first.
""",
    "open": """\
name: Open
index: 2
version: "1.0.0"
ring: outsider
intent:
  allowed: ["answer *", "work *"]
lens: |
  Answer plainly.
""",
    "ops": """\
name: Ops
index: 3
version: "2.0.0"
ring: admin
intent:
  allowed: ["deploy *", "work *"]
  denied: ["delete *"]
access:
  vault_role: ops-operator
  ttl: session
lens: |
  Prefer stability over novelty.
""",
    "peer": """\
name: Peer
index: 4
version: "1.0.0"
ring: guest
intent:
  allowed: ["review *", "work *"]
access:
  vault_role: repo-read
  ttl: PT30M
lens: |
  Review carefully.
""",
}


def write_masques(directory: Path | None = None) -> Path:
    """Write the test masques into `directory` (default ./personas) and return it."""
    target = directory or Path.cwd() / "personas"
    target.mkdir(parents=True, exist_ok=True)
    for name, text in MASQUES.items():
        (target / f"{name}.masque.yaml").write_text(text, encoding="utf-8")
    return target


def init_store(invoke: Callable[..., Any]) -> str:
    """`masque init` as founder "root"; returns the founder key."""
    result = invoke(["init", "--founder", "root", "--json"])
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["key"])


def add_actor(invoke: Callable[..., Any], name: str, ring: str = "outsider", env: Any = None) -> str:
    """`masque actor add NAME --ring R --json` (as the founder unless env says otherwise); returns the key."""
    result = invoke(["actor", "add", name, "--ring", ring, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["key"])


def assume_json(invoke: Callable[..., Any], *args: str, env: Any = None) -> dict[str, Any]:
    result = invoke(["assume", *args, "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def store_rows(sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    from masque import store

    with store.connect(read_only=True) as conn:
        cur = conn.execute(sql, params) if params is not None else conn.execute(sql)
        return list(cur.fetchall())


def events(type_: str | None = None) -> list[dict[str, Any]]:
    from masque import store

    with store.connect(read_only=True) as conn:
        where, params = ("WHERE type = ?", [type_]) if type_ else ("", [])
        found = store.rows(conn, f"SELECT * FROM events {where} ORDER BY id", params)
    for e in found:
        e["payload"] = json.loads(e["payload"]) if e["payload"] else None
    return found


# A small formation for `masque team` tests: orchestrator (tank), engineer (dps), reviewer (healer).
TEAM_MASQUES = {
    "orchestrator": """\
name: Orchestrator
index: 11
version: "1.0.0"
ring: player
intent:
  allowed: ["implement *", "plan *"]
lens: |
  Split the work; decide or escalate.
collaboration:
  role: orchestrator
  capabilities:
    can_arbitrate: true
  subscribes: ["*.output"]
""",
    "engineer": """\
name: Engineer
index: 12
version: "1.0.0"
ring: player
intent:
  allowed: ["implement *", "fix *"]
  denied: ["deploy *"]
lens: |
  Ship small tested increments.
collaboration:
  role: engineer
  subscribes: ["orchestrator.proposal", "reviewer.critique"]
""",
    "reviewer": """\
name: Reviewer
index: 13
version: "1.0.0"
ring: guest
intent:
  allowed: ["implement *", "review *"]
lens: |
  Review what ships.
collaboration:
  role: healer
  capabilities:
    can_provide_feedback: true
""",
}


def write_team_masques(directory: Path | None = None) -> Path:
    """The test masques plus the team formation, into `directory` (default ./personas)."""
    target = write_masques(directory)
    for name, text in TEAM_MASQUES.items():
        (target / f"{name}.masque.yaml").write_text(text, encoding="utf-8")
    return target


def key_file(name: str, key: str) -> Path:
    """Write an actor key to ./NAME.key for `--as NAME --key-file`."""
    path = Path(f"{name}.key")
    path.write_text(key + "\n", encoding="utf-8")
    return path

"""The routing engine: a creative mode (`story.continue`) -> its masks, with fallback to `generalist`.

`routes.yaml` (seed 000 §3; managed by product ops):

    fallback: generalist            # optional; the mask unavailable ones degrade to
    routes:
      story.continue: [professor, critic]
      code.debug: [debugger, mentor]
    experiments:                    # optional; chosen with --flag NAME
      critic-first:
        story.continue: [critic, professor]

Found at --routes FILE, else `[mythatron] routes` in masque.toml, else ./routes.yaml, else the first
routes.yaml in a search-path dir. A mask is available when a live, unretired version resolves
(`masque.masques.catalog`); otherwise it degrades to the fallback and a `mask_routing_fallback`
event is recorded in the store, one per degraded mask, in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from masque.durations import utcnow
from masque.enums import Stage
from masque.errors import NotFound, UsageError, ValidationFailed
from masque.store.events import record_event

DEFAULT_FALLBACK = "generalist"
FALLBACK_EVENT = "mask_routing_fallback"


@dataclass(frozen=True)
class RouteTable:
    path: Path
    routes: Mapping[str, tuple[str, ...]]
    fallback: str = DEFAULT_FALLBACK
    experiments: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Routed:
    """One slot of a route: what was asked for and what it resolved to."""

    requested: str
    mask: str  # exact ref used
    path: str
    fallback: bool = False
    reason: str | None = None  # missing, not_live, retired (when fallback)
    detail: str | None = None


@dataclass(frozen=True)
class Routing:
    mode: str
    source: str  # routes, override or experiment:NAME
    masks: tuple[Routed, ...]
    events: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "source": self.source,
            "masks": [
                {
                    "requested": r.requested,
                    "mask": r.mask,
                    "path": r.path,
                    "fallback": r.fallback,
                    "reason": r.reason,
                    "detail": r.detail,
                }
                for r in self.masks
            ],
            "fallback_events": list(self.events),
        }


def _bad(path: Path, doc: Any, where: tuple[str | int, ...], message: str) -> ValidationFailed:
    line, col = doc.position(where)
    return ValidationFailed(
        f"{path}:{line}:{col}: {message}", hint="see docs/mythatron.md (routing) for the routes.yaml format"
    )


def _names(path: Path, doc: Any, where: tuple[str | int, ...], value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise _bad(path, doc, where, "a route is a non-empty list of mask names, e.g. [professor, critic]")
    return tuple(v.strip() for v in value)


def load_routes(path: Path | str) -> RouteTable:
    """Parse and check a routes file; problems raise ValidationFailed at file:line:col."""
    from masque.masques.loader import LoadProblem, load_file

    path = Path(path)
    try:
        doc = load_file(path)
    except LoadProblem as problem:
        d = problem.diagnostic
        raise ValidationFailed(f"{d.path}:{d.line or 1}:{d.col or 1}: {d.message}") from None
    data = doc.data
    unknown = [k for k in data if k not in ("routes", "fallback", "experiments")]
    if unknown:
        raise _bad(path, doc, (str(unknown[0]),), f"unknown key {unknown[0]!r}; use routes, fallback, experiments")
    routes = data.get("routes")
    if not isinstance(routes, dict) or not routes:
        raise _bad(path, doc, ("routes",), "`routes` must map creative modes to mask lists")
    table = {str(mode): _names(path, doc, ("routes", mode), masks) for mode, masks in routes.items()}
    fallback = data.get("fallback", DEFAULT_FALLBACK)
    if not isinstance(fallback, str) or not fallback.strip():
        raise _bad(path, doc, ("fallback",), "`fallback` is one mask name, e.g. generalist")
    experiments: dict[str, dict[str, tuple[str, ...]]] = {}
    raw_exp = data.get("experiments") or {}
    if not isinstance(raw_exp, dict):
        raise _bad(path, doc, ("experiments",), "`experiments` maps flag names to route overrides")
    for name, overrides in raw_exp.items():
        if not isinstance(overrides, dict):
            raise _bad(path, doc, ("experiments", name), "an experiment maps modes to mask lists")
        experiments[str(name)] = {
            str(mode): _names(path, doc, ("experiments", name, mode), masks) for mode, masks in overrides.items()
        }
    return RouteTable(path, table, fallback.strip(), experiments)


def find_routes(explicit: str | None = None) -> Path:
    from masque import config

    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise NotFound(f"routes file {path} does not exist")
        return path
    configured = config.section("mythatron").get("routes")
    candidates = [Path(str(configured))] if configured else []
    candidates.append(Path.cwd() / "routes.yaml")
    candidates.extend(d / "routes.yaml" for d in config.search_path())
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise NotFound(
        "no routes.yaml found (looked in: " + ", ".join(str(c) for c in candidates) + ")",
        hint='pass --routes FILE, set routes = "..." under [mythatron] in masque.toml, '
        "or put routes.yaml in a MASQUE_PATH dir (examples/masks/routes.yaml is a start)",
    )


def _unavailable(name: str, masks: list[Any]) -> tuple[str, str]:
    """(reason, detail) for a mask that did not resolve to a live version."""
    from masque.masques.catalog import candidate_keys
    from masque.masques.registry import name_key

    keys = candidate_keys(name)
    mine = [m for m in masks if name_key(m.masque.name) in keys]
    if not mine:
        return "missing", f"no mask named {name!r} on the search path"
    listing = ", ".join(f"{m.masque.version} ({m.stage.value})" for m in mine)
    if all(m.stage is Stage.RETIRED for m in mine):
        return "retired", f"every version is retired: {listing}"
    return "not_live", f"no live version: {listing}"


def route(
    mode: str, *, override: str | None = None, flag: str | None = None, routes_file: str | None = None
) -> Routing:
    """Resolve `mode` to its masks; unavailable masks degrade to the fallback (and are recorded)."""
    from masque.errors import MasqueError
    from masque.masques.catalog import all_masks, lookup

    table = load_routes(find_routes(routes_file))
    if mode not in table.routes and override is None:
        import difflib

        close = difflib.get_close_matches(mode, list(table.routes), n=3)
        raise NotFound(
            f"creative mode {mode!r} is not in {table.path}",
            hint=("did you mean " + " or ".join(close) + "? " if close else "")
            + f"known modes: {', '.join(sorted(table.routes))}",
        )
    source = "routes"
    requested = table.routes.get(mode, ())
    if flag is not None:
        if flag not in table.experiments:
            known = ", ".join(sorted(table.experiments)) or "none"
            raise UsageError(f"unknown experiment flag {flag!r} in {table.path}; known: {known}")
        if mode in table.experiments[flag]:
            requested, source = table.experiments[flag][mode], f"experiment:{flag}"
    if override is not None:
        requested, source = (override,), "override"
    masks = all_masks()
    slots: list[Routed] = []
    degraded: list[Routed] = []
    for name in requested:
        try:
            found = lookup(name, masks)
        except MasqueError:
            reason, detail = _unavailable(name, masks)
            try:
                fb = lookup(table.fallback, masks)
            except MasqueError as exc:
                raise NotFound(
                    f"{name} is unavailable ({detail}) and the fallback {table.fallback!r} is too: {exc}",
                    hint=f"add a live {table.fallback} mask to the search path",
                ) from None
            slot = Routed(name, fb.ref, str(fb.path), True, reason, detail)
            degraded.append(slot)
            if all(s.mask != fb.ref for s in slots):
                slots.append(slot)
            continue
        if all(s.mask != found.ref for s in slots):
            slots.append(Routed(name, found.ref, str(found.path)))
    events = _record_fallbacks(mode, source, degraded) if degraded else ()
    return Routing(mode, source, tuple(slots), events)


def _record_fallbacks(mode: str, source: str, degraded: list[Routed]) -> tuple[str, ...]:
    from masque import store
    from masque.masques.catalog import candidate_keys
    from masque.trust import rings

    now = utcnow()
    ids = []
    with store.transaction() as conn:
        # Who routed comes from the one identity check (a key or a token proves it), never a bare name.
        acting = rings.resolve_acting(conn, rings.selection_from_env())
        actor, session = acting.actor.name, acting.session_id
        for slot in degraded:
            payload = {
                "mode": mode,
                "source": source,
                "requested": slot.requested,
                "reason": slot.reason,
                "detail": slot.detail,
                "fallback": slot.mask,
            }
            ids.append(
                record_event(
                    conn,
                    FALLBACK_EVENT,
                    session_id=session,
                    masque=candidate_keys(slot.requested)[0],
                    actor=actor,
                    payload=payload,
                    ts=now,
                )
            )
    return tuple(ids)

"""`masque team spawn`: several masques assumed together, under one team id and one intent.

Every member is decided on ONE connection in ONE transaction, through the same steps `masque assume`
takes (`masque.sessions.lifecycle`: intent policy, ring qualification, trusted definition, TTL). Only
when every member qualifies are the member sessions, their credentials and the team rows written;
otherwise nothing of the team is: the refusal events a lone `assume` would record are recorded (the
audit trail shows who tried what), plus one `team_refused` event, and the error names every member
that failed and why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from masque.durations import utcnow
from masque.errors import MasqueError, NotFound, Refused, StoreError, UsageError, ValidationFailed
from masque.ids import new_id
from masque.model import Ref
from masque.store import turns
from masque.store.events import record_event
from masque.teams.model import Member, Team, insert_team

if TYPE_CHECKING:
    import duckdb

    from masque.sessions.lifecycle import Prepared, Session
    from masque.trust.rings import Selection

# (conn, team, {member: its masque's Collaboration or None}) -> results, e.g. masque.bus.wire_team
SpawnHook = Callable[[Any, Team, Mapping[str, Any]], Iterable[Any]]
_ROLE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_MEMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")


@dataclass(frozen=True)
class MemberSpec:
    """One `--masque NAME[:LABEL][@VERSION]`: LABEL names the member, else the masque name does."""

    text: str
    member: str
    ref: str  # what is assumed: NAME or NAME@VERSION

    @classmethod
    def parse(cls, text: str) -> MemberSpec:
        raw = text.strip()
        body = raw[len("masque:") :] if raw.startswith("masque:") else raw
        head, at, version = body.partition("@")
        name, colon, label = head.partition(":")
        ref = f"{name}@{version}" if at else name
        if not name or (colon and not label) or (at and not version):
            raise UsageError(
                f"not a member spec: {text!r}",
                hint="use NAME, NAME@VERSION or NAME:LABEL@VERSION (e.g. engineer:backend@1.0.0)",
            )
        parsed = Ref.parse(ref)  # a malformed name or version is a usage error here, before anything runs
        member = label or parsed.name.casefold().replace(" ", "-")
        if not _MEMBER.match(member):
            raise UsageError(
                f"member name {member!r} (from {text!r}) is not usable",
                hint="a LABEL is letters, digits, '.', '_', '-' (up to 64)",
            )
        return cls(raw, member, ref)


def env_name(member: str) -> str:
    """A member's name as a shell variable fragment: `backend` -> BACKEND, `base/prof-1` -> BASE_PROF_1."""
    return re.sub(r"[^A-Z0-9]", "_", member.upper())


def parse_members(specs: Sequence[str]) -> list[MemberSpec]:
    """The member specs, refusing duplicates (naming both specs) before anything is decided."""
    if not specs:
        raise UsageError("a team needs at least one member", hint="pass --masque NAME[:LABEL][@VERSION] per member")
    parsed: list[MemberSpec] = []
    for text in specs:
        spec = MemberSpec.parse(text)
        for other in parsed:
            if other.member == spec.member:
                raise UsageError(
                    f"--masque {other.text} and --masque {spec.text} are both member {spec.member!r}",
                    hint="give one a label: NAME:LABEL@VERSION (e.g. engineer:backend and engineer:frontend)",
                )
            if env_name(other.member) == env_name(spec.member):
                raise UsageError(
                    f"members {other.member!r} and {spec.member!r} would share the shell name "
                    f"MASQUE_TEAM_{env_name(spec.member)}_*",
                    hint="label one of them differently",
                )
        parsed.append(spec)
    return parsed


def parse_roles(pairs: Sequence[str] | Mapping[str, str], members: Sequence[MemberSpec]) -> dict[str, str]:
    """`--role MEMBER=ROLE` values (or a mapping), each naming a member of this team."""
    items = list(pairs.items()) if isinstance(pairs, Mapping) else [_split_role(p) for p in pairs]
    names = [m.member for m in members]
    roles: dict[str, str] = {}
    for member, role in items:
        if member not in names:
            raise UsageError(f"--role {member}={role}: no member {member!r}", hint=f"members: {', '.join(names)}")
        if not _ROLE.match(role):
            raise UsageError(
                f"--role {member}={role}: not a role name",
                hint="lower-case letters, digits, '_' and '-', starting with a letter (e.g. reviewer, tank)",
            )
        roles[member] = role
    return roles


def _split_role(text: str) -> tuple[str, str]:
    member, eq, role = text.partition("=")
    if not eq or not member.strip() or not role.strip():
        raise UsageError(f"--role {text!r} is not MEMBER=ROLE", hint="e.g. --role backend=dps")
    return member.strip(), role.strip()


@dataclass(frozen=True)
class Spawned:
    """A spawned team and each member's session, token included: shown once."""

    team: Team
    sessions: dict[str, Session] = field(repr=False)  # member name -> session (with token)
    wiring: list[Any] = field(default_factory=list)  # what `on_spawned` returned (bus subscriptions)

    def to_dict(self, *, with_tokens: bool = True) -> dict[str, Any]:
        from masque.teams.views import team_dict

        out = team_dict(self.team)
        for m in out["members"]:
            s = self.sessions[m["member"]]
            m.update(
                {
                    "accessor": s.accessor,
                    "expires_at": s.credential_expires_at.isoformat() if s.credential_expires_at else None,
                }
            )
            if with_tokens:
                m["token"] = s.token
        if self.wiring:
            out["subscriptions"] = [w.to_json() if hasattr(w, "to_json") else w for w in self.wiring]
        return out


@dataclass
class _Failure:
    spec: MemberSpec
    error: MasqueError


def spawn(
    masques: Sequence[str],
    intent: str,
    *,
    selection: Selection | None = None,
    name: str | None = None,
    roles: Sequence[str] | Mapping[str, str] = (),
    arbiter: str | None = None,
    ttl: str | None = None,
    holder_pid: int | None = None,
    on_spawned: SpawnHook | None = None,
) -> Spawned:
    """Spawn a team: every member qualifies for `intent` and gets its own session, or nothing is recorded.

    `masques` are member specs `NAME[:LABEL][@VERSION]`. Raises Refused (exit 3) naming every member
    that failed; a member whose masque cannot be found or is invalid makes it NotFound/ValidationFailed.
    `on_spawned(conn, team, collaborations)` runs inside the spawning transaction (the surfaces pass
    `masque.bus.wire_team`, which records the members' subscriptions; teams cannot import the bus,
    which builds on them). What it returns is kept as `Spawned.wiring`.
    """
    from masque.masques import trusted
    from masque.sessions import lifecycle
    from masque.trust import rings

    specs = parse_members(masques)
    role_of = parse_roles(roles, specs)
    if arbiter is not None and arbiter not in [s.member for s in specs]:
        raise UsageError(
            f"--arbiter {arbiter}: no member {arbiter!r}",
            hint=f"name one of the members: {', '.join(s.member for s in specs)}",
        )
    if name is not None and not _MEMBER.match(name):
        raise UsageError(f"--name {name!r} is not a usable team name", hint="letters, digits, '.', '_', '-'")
    sel = selection or rings.selection_from_env()
    team_id = new_id("team_")
    failures: list[_Failure] = []
    prepared: list[tuple[MemberSpec, Prepared]] = []
    for spec in specs:
        try:
            meta = {"team": team_id, "member": spec.member}
            prepared.append(
                (spec, lifecycle.prepare_assumption(spec.ref, intent, ttl=ttl, holder_pid=holder_pid, metadata=meta))
            )
        except MasqueError as exc:  # a code masque's own decide failed: still decide the others
            failures.append(_Failure(spec, exc))
    turns.prepare("masque.teams.model", "masque.teams.views")
    sessions: dict[str, Session] = {}
    team: Team | None = None
    wiring: list[Any] = []
    with turns.transaction() as conn:
        decided: list[tuple[MemberSpec, lifecycle.Decided]] = []
        denied: list[lifecycle.Denied] = []
        definition_refusals: list[trusted.DefinitionRefused] = []
        for spec, p in prepared:
            try:
                outcome = lifecycle.decide_assumption(conn, p, sel)
            except trusted.DefinitionRefused as exc:
                definition_refusals.append(exc)
                failures.append(_Failure(spec, exc))
                continue
            except StoreError:
                raise
            except MasqueError as exc:
                failures.append(_Failure(spec, exc))
                continue
            if isinstance(outcome, lifecycle.Denied):
                denied.append(outcome)
                failures.append(_Failure(spec, outcome.error))
            else:
                decided.append((spec, outcome))
        if failures:
            # The refusals a lone assume records are recorded; no session, credential or team row is.
            for denial in denied:
                lifecycle.record_denial(conn, denial)
            for refused in definition_refusals:
                lifecycle.record_definition_refusal(conn, refused, intent, sel)
            _record_team_refused(conn, team_id, intent, sel, failures, specs)
        else:
            who = decided[0][1].who
            team_name = _team_name(conn, name, intent)
            members: list[Member] = []
            for spec, d in decided:
                role = role_of.get(spec.member) or _collab_role(d) or d.w.key
                s = lifecycle.grant(conn, d)
                sessions[spec.member] = s
                members.append(Member(team_id, spec.member, s.session_id, s.masque, s.version, role))
            team = Team(
                team_id,
                team_name,
                intent,
                who.actor.name,
                arbiter,
                "active",
                utcnow(),
                members=tuple(sorted(members, key=lambda m: m.member)),
            )
            insert_team(conn, team)
            if on_spawned is not None:
                collabs = {spec.member: d.w.collaboration for spec, d in decided}
                wiring = list(on_spawned(conn, team, collabs))
            record_event(
                conn,
                "team_spawned",
                actor=who.actor.name,
                originator=decided[0][1].originator,
                payload={
                    "team_id": team_id,
                    "name": team_name,
                    "intent": intent,
                    "arbiter": arbiter,
                    "members": [
                        {"member": m.member, "session_id": m.session_id, "masque": m.masque, "version": m.version,
                         "role": m.role}
                        for m in members
                    ],
                },
            )  # fmt: skip
    if failures:
        raise _combined(failures, len(specs))
    assert team is not None
    # The tokens leave this function only after the transaction above committed.
    return Spawned(team, sessions, wiring)


def _collab_role(d: Any) -> str | None:
    collab = d.w.collaboration
    return collab.role if collab is not None else None


def _team_name(conn: duckdb.DuckDBPyConnection, name: str | None, intent: str) -> str:
    """The name asked for (refused when an active team has it), else one made from the intent."""
    taken = {r[0] for r in conn.execute("SELECT name FROM teams WHERE status = 'active'").fetchall()}
    if name is not None:
        if name in taken:
            raise UsageError(
                f"an active team is already named {name!r}",
                hint="pick another --name, or release that team first (`masque team release NAME`)",
            )
        return name
    words = re.findall(r"[a-z0-9]+", intent.casefold())[:4]
    base = "-".join(words) or "team"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _record_team_refused(
    conn: duckdb.DuckDBPyConnection,
    team_id: str,
    intent: str,
    sel: Selection,
    failures: list[_Failure],
    specs: list[MemberSpec],
) -> None:
    from masque.masques.intent_text import escape_undecodable

    record_event(
        conn,
        "team_refused",
        actor=sel.name,
        payload={
            "team_id": team_id,
            "intent": escape_undecodable(intent),
            "members": [s.text for s in specs],
            "failed": [
                {"member": f.spec.member, "spec": f.spec.text, "reason": _reason(f.error), "message": str(f.error)}
                for f in failures
            ],
        },
    )


def _reason(exc: MasqueError) -> str:
    return exc.reason if isinstance(exc, Refused) else type(exc).__name__


def _combined(failures: list[_Failure], total: int) -> MasqueError:
    """One error naming every member that failed: Refused (exit 3) unless a masque could not even be
    resolved (then that error's kind and exit code: not found, invalid, malformed)."""
    lines = "; ".join(f"{f.spec.member} ({f.spec.text}): {f.error}" for f in failures)
    head = f"team not spawned: {len(failures)} of {total} member(s) failed, no session was recorded: {lines}"
    hints = [f.error.hint for f in failures if getattr(f.error, "hint", None)]
    hint = hints[0] if hints else "fix or drop the failing members and spawn again"
    if len({str(f.error) for f in failures}) == 1 and len(failures) == total > 1:
        head = f"team not spawned (every member): {failures[0].error}"  # e.g. the actor key is not valid
    other = next((f.error for f in failures if not isinstance(f.error, Refused)), None)
    if other is not None:
        for kind in (NotFound, ValidationFailed, UsageError):
            if isinstance(other, kind):
                return kind(head, hint=hint)
        return other
    reasons = {_reason(f.error) for f in failures}
    reason = reasons.pop() if len(reasons) == 1 else "team_members_refused"
    return Refused(head, reason=reason, hint=hint)

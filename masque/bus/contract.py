"""The interaction contract: which kinds a member may post, what they answer, what conflicts.

Pure rules over values (no store access): `masque.bus.ops` loads the events and members and asks
these functions. docs/bus.md carries the same table for people.

  kind           needs (a member)                       replies to (same team)
  proposal       -                                      optional: any event
  output         -                                      optional: any event
  context_delta  -                                      optional: any event
  revision       - (only the author of the proposal)    proposal, revision or critique
  critique       can_provide_feedback                   proposal or revision
    + revise     can_request_revision as well           (payload verdict "revise")
  approval       can_approve (not of one's own work)    proposal or revision
  resolution     can_arbitrate, or be the team arbiter  conflict (exactly one resolution each)
  conflict       recorded by Masque only                the proposal whose reviews disagree

A person posting without a member (the team's actor or an admin) is not held to capabilities: they
are the ones who give masques their capabilities. The reply and lineage rules bind them too.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from masque.bus.model import BusEvent, Kind
from masque.errors import Refused, UsageError
from masque.model import Collaboration

FEEDBACK = "can_provide_feedback"
REQUEST_REVISION = "can_request_revision"
APPROVE = "can_approve"
ARBITRATE = "can_arbitrate"
CAPABILITIES = (FEEDBACK, REQUEST_REVISION, APPROVE, ARBITRATE)

# What a member must be able to do to post a kind (resolution: or be the team's arbiter).
NEEDS: Mapping[Kind, str] = {Kind.CRITIQUE: FEEDBACK, Kind.APPROVAL: APPROVE, Kind.RESOLUTION: ARBITRATE}
# What a kind must answer; kinds not listed may answer any event of the team, or nothing.
ANSWERS: Mapping[Kind, tuple[Kind, ...]] = {
    Kind.CRITIQUE: (Kind.PROPOSAL, Kind.REVISION),
    Kind.APPROVAL: (Kind.PROPOSAL, Kind.REVISION),
    Kind.REVISION: (Kind.PROPOSAL, Kind.REVISION, Kind.CRITIQUE),
    Kind.RESOLUTION: (Kind.CONFLICT,),
}
# What subscribing to a kind implies the subscriber will do with it, and the capabilities for that.
# Kinds not listed (critique, approval, output, context_delta, resolution) are context: anyone may listen.
SUBSCRIBE_IMPLIES: Mapping[Kind, tuple[str, ...]] = {
    Kind.PROPOSAL: (FEEDBACK, APPROVE),  # to review it
    Kind.REVISION: (FEEDBACK, APPROVE),
    Kind.CONFLICT: (ARBITRATE,),  # to arbitrate it
}
VERDICTS = ("revise", "comment")  # a critique's payload verdict (default: comment)
DECISIONS = ("accept", "reject", "revise")  # a resolution's decision
TOPIC_PATTERN = re.compile(r"^[A-Za-z0-9*?._-]+\.[a-z_*?]+$")  # as schemas/masque.schema.yaml


@dataclass(frozen=True)
class Poster:
    """Who a post is by, for the contract: a member (with its masque's collaboration block) or a person."""

    member: str | None  # None: a person (the team's actor or an admin)
    masque: str | None = None
    collaboration: Collaboration | None = None
    arbiter: bool = False  # the team's designated arbiter

    def can(self, capability: str) -> bool:
        if self.member is None:
            return True
        if capability == ARBITRATE and self.arbiter:
            return True
        return self.collaboration is not None and self.collaboration.can(capability)


def _refuse(message: str, hint: str, reason: str = "capability_missing") -> Refused:
    return Refused(message, reason=reason, hint=hint)


def check_capability(poster: Poster, kind: Kind, *, request_revision: bool) -> None:
    """Refuse (exit 3, `capability_missing`) a post the poster's masque does not declare it can make."""
    if kind is Kind.CONFLICT:
        raise UsageError(
            "conflict events are recorded by Masque itself, when two reviews of one proposal disagree",
            hint="post critiques and approvals; resolve a conflict with `masque bus resolve`",
        )
    who = f"member {poster.member!r} (masque {poster.masque})"
    needed = NEEDS.get(kind)
    if needed and not poster.can(needed):
        extra = " or be the team's arbiter" if kind is Kind.RESOLUTION else ""
        raise _refuse(
            f"{who} cannot post a {kind.value}: its masque does not declare {needed}",
            f"set collaboration.capabilities.{needed}: true in the masque{extra}, or post as another member",
        )
    if kind is Kind.CRITIQUE and request_revision and not poster.can(REQUEST_REVISION):
        raise _refuse(
            f"{who} cannot request a revision: its masque does not declare {REQUEST_REVISION}",
            f"post the critique without --request-revision, or set collaboration.capabilities.{REQUEST_REVISION}",
        )


def check_reply(kind: Kind, target: BusEvent | None, team_id: str) -> None:
    """A reply must answer an event of the same team, of a kind it can answer."""
    wanted = ANSWERS.get(kind)
    if target is None:
        if wanted:
            raise UsageError(
                f"a {kind.value} must reply to a {' or '.join(k.value for k in wanted)}",
                hint="pass --reply-to ID (`masque bus read TEAM` lists the event ids)",
            )
        return
    if target.team_id != team_id:
        raise UsageError(
            f"event {target.id} belongs to another team; a reply answers an event of its own team",
            hint="`masque bus read TEAM` lists this team's events",
        )
    if wanted and target.kind not in wanted:
        raise _refuse(
            f"{kind.value} cannot reply to {target.kind.value} {target.id}",
            f"a {kind.value} answers a {' or '.join(k.value for k in wanted)}",
            reason="reply_incompatible",
        )


def lineage_root(target: BusEvent, by_id: Mapping[str, BusEvent]) -> BusEvent | None:
    """The proposal a proposal, revision or review belongs to (walking reply_to up), if any."""
    seen: set[str] = set()
    current: BusEvent | None = target
    while current is not None and current.id not in seen:
        if current.kind is Kind.PROPOSAL:
            return current
        if current.kind not in (Kind.REVISION, Kind.CRITIQUE, Kind.APPROVAL) or not current.reply_to:
            return None
        seen.add(current.id)
        current = by_id.get(current.reply_to)
    return None


def check_lineage(kind: Kind, poster: Poster, target: BusEvent | None, by_id: Mapping[str, BusEvent]) -> None:
    """A revision revises one's own proposal; an approval does not approve one's own work."""
    if target is None or kind not in (Kind.REVISION, Kind.APPROVAL):
        return
    root = lineage_root(target, by_id)
    if root is None:
        return
    if kind is Kind.REVISION and root.author_member != poster.member:
        raise _refuse(
            f"only the author of proposal {root.id} ({root.author_member or 'a person'}) revises it",
            "post your own proposal instead, or a critique of this one",
            reason="not_the_author",
        )
    if kind is Kind.APPROVAL and poster.member is not None and target.author_member == poster.member:
        raise _refuse(
            f"member {poster.member!r} cannot approve its own {target.kind.value} {target.id}",
            "another member (with can_approve) approves it",
            reason="self_approval",
        )


def critique_verdict(payload: Mapping[str, object], request_revision: bool) -> str:
    verdict = payload.get("verdict", "revise" if request_revision else "comment")
    if verdict not in VERDICTS:
        raise UsageError(f"unknown critique verdict {verdict!r}", hint=f"use one of: {', '.join(VERDICTS)}")
    if request_revision and verdict != "revise":
        raise UsageError("--request-revision contradicts the payload's verdict", hint="drop one of them")
    return str(verdict)


# --- conflicts --------------------------------------------------------------------------------------


def conflicting(
    new: BusEvent, events: Sequence[BusEvent], settled: Iterable[str] = ()
) -> tuple[BusEvent | None, list[BusEvent]]:
    """(the proposal, the earlier reviews `new` disagrees with) among a team's `events`.

    Two reviews disagree when, on one target, one approves and the other requests a revision; or when
    two approvals in one proposal's lineage approve different versions (the proposal and a revision,
    or two revisions). Reviews that a resolution has settled no longer disagree with anything.
    """
    if new.verdict is None or new.reply_to is None:
        return None, []
    by_id = {e.id: e for e in events}
    by_id[new.id] = new
    target = by_id.get(new.reply_to)
    root = lineage_root(target, by_id) if target else None
    if root is None:
        return None, []
    done = set(settled)
    found = []
    for earlier in events:
        if earlier.id == new.id or earlier.id in done or earlier.verdict is None or earlier.reply_to is None:
            continue
        other = by_id.get(earlier.reply_to)
        other_root = lineage_root(other, by_id) if other else None
        if other_root is None or other_root.id != root.id:
            continue
        same_target = earlier.reply_to == new.reply_to
        if (same_target and earlier.verdict != new.verdict) or (
            not same_target and earlier.verdict == new.verdict == "approve"
        ):
            found.append(earlier)
    return root, found


def conflict_reason(new: BusEvent, earlier: Sequence[BusEvent]) -> str:
    if all(e.reply_to == new.reply_to for e in earlier):
        return f"reviews of {new.reply_to} disagree: approval and a request for revision"
    return "approvals of different versions of one proposal"


# --- subscriptions ----------------------------------------------------------------------------------


def check_pattern(pattern: str) -> str:
    text = pattern.strip()
    if not TOPIC_PATTERN.match(text):
        raise UsageError(
            f"not a topic pattern: {pattern!r}",
            hint="use member.kind globs, e.g. lyricist.output or '*.proposal'",
        )
    return text


def kinds_matched(pattern: str) -> list[Kind]:
    kind_glob = pattern.rpartition(".")[2]
    return [k for k in Kind if fnmatch.fnmatchcase(k.value, kind_glob)]


def subscription_problem(poster: Poster, pattern: str) -> str | None:
    """Why `poster` may not subscribe to `pattern` (None: it may).

    A subscription wires the subscriber to answer what it hears. It is compatible when at least one
    kind the pattern matches is one the subscriber can act on: context kinds always; proposals and
    revisions with can_provide_feedback or can_approve; conflicts with can_arbitrate (or as arbiter).
    """
    kinds = kinds_matched(pattern)
    if not kinds:
        return f"pattern {pattern!r} matches no event kind ({', '.join(k.value for k in Kind)})"
    for kind in kinds:
        needs = SUBSCRIBE_IMPLIES.get(kind, ())
        if not needs or any(poster.can(c) for c in needs):
            return None
    wanted = sorted({c for k in kinds for c in SUBSCRIBE_IMPLIES[k]})
    return (
        f"member {poster.member!r} (masque {poster.masque}) cannot answer what {pattern!r} carries:"
        f" it needs {' or '.join(wanted)}"
    )


def topic_matches(topic: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(topic, p) for p in patterns)

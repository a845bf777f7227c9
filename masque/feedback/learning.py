"""`masque feedback`: judge a suggestion (or every suggestion of a session) and let the rule weights learn.

1. The feedback is recorded (one row per suggestion, with the proven actor) together with a `feedback`
   observation of the masque naming the traits the suggestion's type maps to (`trait_mappings`), so
   the masque's profile turns stale and `feedback.<trait>` traits follow.
2. Each mapper involved learns: a rule whose pending (not yet applied) feedback has reached
   `min_feedback_count` moves its weight by `learning_rate` x the sum of their scores, clamped to
   [min_weight, max_weight]; the pending rows are marked applied in the new mapper version, written
   with the optimistic lock. On a conflict the pending feedback is re-read and re-applied (bounded),
   so two writers never lose an update and never count one feedback twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from masque.durations import utcnow
from masque.errors import NotFound, Refused, UsageError
from masque.feedback import access, mappers, observations
from masque.ids import new_id
from masque.masques.mapper_file import settings
from masque.store import turns

if TYPE_CHECKING:
    import duckdb

    from masque.trust.rings import Selection


@dataclass(frozen=True)
class WeightChange:
    rule: str
    before: float
    after: float
    feedback: int  # how many feedback items moved it

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "before": self.before, "after": self.after, "feedback": self.feedback}


@dataclass(frozen=True)
class Learned:
    mapper_id: str
    version_before: int
    version_after: int  # equal to version_before when nothing moved
    changes: tuple[WeightChange, ...]
    pending: Mapping[str, tuple[int, int]]  # rule -> (feedback pending, min_feedback_count)
    conflicts: int  # optimistic-lock conflicts retried

    def to_json(self) -> dict[str, Any]:
        return {
            "mapper": self.mapper_id,
            "version_before": self.version_before,
            "version_after": self.version_after,
            "changes": [c.to_json() for c in self.changes],
            "pending": {r: {"count": n, "needed": k} for r, (n, k) in self.pending.items()},
            "conflicts": self.conflicts,
        }


@dataclass(frozen=True)
class FeedbackResult:
    feedback_ids: tuple[str, ...]
    suggestions: tuple[str, ...]
    score: float
    actor: str
    learned: tuple[Learned, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "feedback": list(self.feedback_ids),
            "suggestions": list(self.suggestions),
            "score": self.score,
            "actor": self.actor,
            "learned": [x.to_json() for x in self.learned],
        }


def parse_score(text: str) -> float:
    """`+` is 1, `-` is -1, else a number from -1 to 1."""
    value = {"+": 1.0, "-": -1.0}.get(text.strip())
    if value is None:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
    if not -1.0 <= value <= 1.0:  # NaN fails too
        raise UsageError(f"score {text!r} is not +, - or a number from -1 to 1", hint="e.g. masque feedback ID +")
    return value


@dataclass(frozen=True)
class _Target:
    id: str
    mapper_id: str
    rule_id: str
    type: str
    masque: str
    actor: str


def _targets(conn: duckdb.DuckDBPyConnection, target: str) -> list[_Target]:
    column = "session_id" if target.startswith("ses_") else "id"
    found = conn.execute(
        f"SELECT id, mapper_id, rule_id, type, masque, actor FROM suggestions WHERE {column} = ? ORDER BY id", [target]
    ).fetchall()
    if not found:
        what = "session" if column == "session_id" else "suggestion"
        raise NotFound(
            f"no {what} {target!r} with suggestions",
            hint="`masque map ... --json` prints suggestion ids; feedback names one, or a session id",
        )
    return [_Target(*map(str, r)) for r in found]


def give_feedback(
    target: str,
    score: float | str,
    *,
    notes: str | None = None,
    selection: Selection | None = None,
    attempts: int = mappers.DEFAULT_ATTEMPTS,
) -> FeedbackResult:
    """Record feedback on a suggestion id (or a session id: each of its suggestions), then learn."""
    value = parse_score(score) if isinstance(score, str) else float(score)
    if not -1.0 <= value <= 1.0:
        raise UsageError(f"score {value} is outside -1..1")
    turns.prepare()
    with turns.connect() as conn:  # a short read: which masques (their rings are read off the path)
        masques = {t.masque for t in _targets(conn, target)}
    infos = {key: access.find_masque(key) for key in masques}
    ids: list[str] = []
    with turns.transaction() as conn:
        who = access.caller(conn, selection)
        found = _targets(conn, target)
        for t in found:
            if t.actor != who.actor.name:
                raise Refused(
                    f"suggestion {t.id} was made for actor {t.actor!r}, not {who.actor.name!r}",
                    reason="not_your_suggestion",
                    hint="only the actor a suggestion was made for may judge it",
                )
            access.check_masque(who, infos[t.masque], "feedback")
        mapped = _trait_mappings(conn, {t.mapper_id for t in found})
        now = utcnow()
        for t in found:
            fid = new_id("fbk_")
            ids.append(fid)
            conn.execute(
                "INSERT INTO feedback (id, suggestion_id, target, mapper_id, rule_id, score, notes, actor, ts)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [fid, t.id, target, t.mapper_id, t.rule_id, value, notes, who.actor.name, now],
            )
            data = {
                "suggestion": t.id,
                "mapper": t.mapper_id,
                "rule": t.rule_id,
                "type": t.type,
                "score": value,
                "traits": list(mapped.get(t.mapper_id, {}).get(t.type, ())),
            }
            observations.append(conn, who, t.masque, "feedback", data)
    learned = tuple(learn(m, actor=who.actor.name, attempts=attempts) for m in sorted({t.mapper_id for t in found}))
    return FeedbackResult(tuple(ids), tuple(t.id for t in found), value, who.actor.name, learned)


def _trait_mappings(conn: duckdb.DuckDBPyConnection, ids: set[str]) -> dict[str, dict[str, Sequence[str]]]:
    out: dict[str, dict[str, Sequence[str]]] = {}
    for mapper_id in ids:
        try:
            out[mapper_id] = dict(mappers.current(conn, mapper_id).doc.get("trait_mappings") or {})
        except NotFound:
            out[mapper_id] = {}
    return out


@dataclass(frozen=True)
class _Read:
    mapper: mappers.MapperVersion
    pending: dict[str, list[tuple[str, float]]]  # rule -> [(feedback id, score)]


def learn(mapper_id: str, *, actor: str, attempts: int = mappers.DEFAULT_ATTEMPTS) -> Learned:
    """Apply pending feedback to `mapper_id`'s weights as a new version (re-read and retried on conflict)."""
    result: dict[str, Any] = {}

    def read() -> _Read:
        with turns.connect() as conn:
            mapper = mappers.current(conn, mapper_id)
            pending: dict[str, list[tuple[str, float]]] = {}
            for fid, rule, score in conn.execute(
                "SELECT id, rule_id, score FROM feedback WHERE mapper_id = ? AND applied_in IS NULL ORDER BY id",
                [mapper_id],
            ).fetchall():
                pending.setdefault(str(rule), []).append((str(fid), float(score)))
        return _Read(mapper, pending)

    def write(seen: _Read) -> mappers.MapperVersion | None:
        doc, changes, used = adjust(seen.mapper.doc, seen.pending)
        fs = settings(dict(seen.mapper.doc))
        result.update(
            before=seen.mapper.version,
            changes=changes,
            pending={
                r: (len(v), int(fs["min_feedback_count"]))
                for r, v in seen.pending.items()
                if r not in {c.rule for c in changes}
            },
        )
        if not changes:
            result["after"] = seen.mapper.version
            return None
        with turns.transaction() as conn:
            written = mappers.write_version(
                conn,
                mapper_id,
                seen.mapper.version,
                doc,
                "feedback",
                actor,
                {"changes": [c.to_json() for c in changes], "feedback": used},
            )
            conn.execute(
                f"UPDATE feedback SET applied_in = ? WHERE id IN ({', '.join('?' for _ in used)})",
                [written.version, *used],
            )
        result["after"] = written.version
        return written

    _, conflicts = mappers.update(read, write, attempts)
    return Learned(mapper_id, result["before"], result["after"], tuple(result["changes"]), result["pending"], conflicts)


def adjust(
    doc: Mapping[str, Any], pending: Mapping[str, Sequence[tuple[str, float]]]
) -> tuple[dict[str, Any], list[WeightChange], list[str]]:
    """The document with learned weights, the changes, and the feedback ids they consumed (pure)."""
    fs = settings(dict(doc))
    rate, low, high, needed = (
        float(fs["learning_rate"]),
        float(fs["min_weight"]),
        float(fs["max_weight"]),
        int(fs["min_feedback_count"]),
    )
    new_rules = []
    changes: list[WeightChange] = []
    used: list[str] = []
    for rule in doc.get("rules", ()):
        items = pending.get(str(rule["id"]), ())
        rule = dict(rule)
        if len(items) >= needed:
            before = float(rule["weight"])
            after = round(min(high, max(low, before + rate * sum(s for _, s in items))), 6)
            rule["weight"] = after
            changes.append(WeightChange(str(rule["id"]), before, after, len(items)))
            used += [fid for fid, _ in items]
        new_rules.append(rule)
    return {**doc, "rules": new_rules}, changes, used

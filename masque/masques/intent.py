"""Intent policy: a masque's allowed/denied globs compiled once, and decisions that explain themselves.

Semantics (Cedar-style, documented in docs/registry.md):
- an intent that is not one line of valid text (undecodable bytes, line breaks, control characters)
  is refused before anything else (`invalid_utf8`, `invalid`);
- both the intent and every pattern are normalised the same way (`normalize`, in masque.masques.intent_text);
- denied patterns are also tried against the intent's other readings (invisible characters as word
  breaks; skeletons without marks, look-alikes and edge punctuation), and any match denies;
- globs are `fnmatch` globs (`*`, `?`, `[...]`, `[!...]`) over the WHOLE normalised intent;
- a matching denied pattern refuses (denied wins); else a matching allowed pattern permits; else the
  default is to refuse; an empty intent, one over the length cap, or any error also refuses.

Each side of a policy becomes ONE regex: the alternation of `fnmatch.translate` of every pattern, each
alternative wrapped in a capturing group so `match.lastindex` names the deciding pattern without a
second pass. Reusing `fnmatch.translate` keeps the compiled matcher exactly in step with the naive
`fnmatch` semantics (the property tests check that), including its bracket-expression edge cases.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from enum import Enum
from functools import lru_cache
from typing import Any, cast

from masque.errors import Refused
from masque.masques.intent_text import ascii_skeleton, boundary_problem, normalize, readings, skeleton_globs
from masque.model import Intent, Masque

__all__ = ["Decision", "Policy", "Reason", "decide", "normalize", "require"]


class Reason(str, Enum):
    """Why a decision came out the way it did (stable, machine-readable)."""

    ALLOWED = "allowed"
    DENIED = "denied"
    NO_MATCH = "no_match"
    EMPTY = "empty"
    TOO_LONG = "too_long"
    INVALID = "invalid"  # a line break or control character: an intent is one line
    INVALID_UTF8 = "invalid_utf8"  # undecodable bytes (surrogate-escaped in argv)
    ERROR = "error"


_new_tuple = tuple.__new__


# A tuple, not a frozen dataclass: measured with bench/intent.py (issue 11), a frozen slotted dataclass with
# an eager message made decide() 25-34% slower (e.g. 684k -> 451k ASCII decisions/s on the shipped personas).
class Decision(tuple):  # an immutable 6-tuple: built in ~0.15 us, not ~0.75 us
    """The answer to "may this masque be worn for this intent?" and why.

    Immutable and cheap to build: a decision is made on every assume and check, and its message is
    only needed when someone reads it, so the common outcomes keep the pieces and `message` joins them.
    """

    __slots__ = ()

    def __new__(cls, allowed: bool, reason: str, pattern: str | None, normalized: str, message: str) -> Decision:
        if isinstance(reason, Reason):
            reason = reason.value
        return _new_tuple(cls, (allowed, reason, pattern, normalized, message, None))

    def __getnewargs__(self) -> tuple[bool, str, str | None, str, str]:  # pickling goes through __new__
        return self.allowed, self.reason, self.pattern, self.normalized, self.message

    @property
    def allowed(self) -> bool:
        return bool(self[0])

    @property
    def reason(self) -> str:
        """A `Reason` value."""
        return str(self[1])

    @property
    def pattern(self) -> str | None:
        """The pattern that decided, as written in the masque (None: no pattern did)."""
        return cast("str | None", self[2])

    @property
    def normalized(self) -> str:
        return str(self[3])

    @property
    def message(self) -> str:
        message, tail = self[4], self[5]
        if tail is None:
            return str(message)
        # Lazily explained: self[4] is a "name@version: " prefix (or ""), tail follows the quoted intent.
        verb = "refused" if self[1] == Reason.NO_MATCH.value else self[1]
        return f"{message}{verb}: intent {_quote(self[3])}{tail}"

    def __repr__(self) -> str:
        return (
            f"Decision(allowed={self.allowed!r}, reason={self.reason!r}, pattern={self.pattern!r}, "
            f"normalized={self.normalized!r}, message={self.message!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((self[0], self[1], self[2], self[3], self.message))

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "pattern": self.pattern,
            "normalized": self.normalized,
            "message": self.message,
        }

    def about(self, subject: str) -> Decision:
        """This decision with its message prefixed by `subject` (e.g. the masque's name@version)."""
        return _new_tuple(Decision, (*self[:4], f"{subject}: {self[4]}", self[5]))

    @property
    def refusal_reason(self) -> str:
        """The `Refused.reason` / event name for this decision: intent_denied, intent_not_allowed, ..."""
        return _REFUSAL_REASONS[Reason(self.reason)]

    def refusal(self, ref: str) -> Refused:
        """A Refused error for this (refusing) decision, naming the masque ref."""
        return Refused(f"{ref}: {self.message}", reason=self.refusal_reason, hint=_HINTS[Reason(self.reason)])


_REFUSAL_REASONS = {
    Reason.ALLOWED: "allowed",
    Reason.DENIED: "intent_denied",
    Reason.NO_MATCH: "intent_not_allowed",
    Reason.EMPTY: "intent_empty",
    Reason.TOO_LONG: "intent_too_long",
    Reason.INVALID: "intent_invalid",
    Reason.INVALID_UTF8: "intent_invalid_utf8",
    Reason.ERROR: "intent_error",
}

_HINTS = {
    Reason.ALLOWED: None,
    Reason.DENIED: "a denied pattern always wins; state a different goal or use another masque",
    Reason.NO_MATCH: "state the intent so it matches one of the masque's intent.allowed patterns "
    "(see `masque show REF`)",
    Reason.EMPTY: 'every assumption states its goal: pass --intent "..."',
    Reason.TOO_LONG: "shorten the intent, or raise [limits] max_intent_chars in masque.toml",
    Reason.INVALID: "state the intent on one line, without tabs or other control characters",
    Reason.INVALID_UTF8: "pass the intent as UTF-8 text (check the terminal's or caller's encoding)",
    Reason.ERROR: "fix the masque's intent patterns (`masque validate`)",
}


def _quote(text: str, limit: int = 80) -> str:
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return '"' + shown.replace('"', '\\"') + '"'


def _policy_regex(globs: Sequence[str]) -> re.Pattern[str] | None:
    """One regex for the (normalised) globs, in order; group i+1 takes part exactly when glob i won.

    Alternation is ordered and every alternative is anchored at both ends, so the first glob that
    matches the whole intent is the one whose group closes the match (`lastindex`).
    """
    regex = re.compile("|".join(f"({fnmatch.translate(g)})" for g in globs))
    if regex.groups != len(globs):
        # fnmatch.translate made capturing groups of its own (Python 3.10 does), so group numbers no
        # longer map to globs; the caller falls back to one regex per glob.
        return None
    return regex


_WILD_START = frozenset("*?[")
_AS_SKELETON = "as its skeleton: marks, look-alike letters and edge punctuation set aside"


class _Matcher:
    """Finds the first glob (in order) matching a whole normalised intent, with one regex call.

    Globs are bucketed by their first character: a glob that starts with a literal `c` can only match
    intents starting with `c`, so each bucket's regex holds just those globs plus the ones starting
    with a wildcard, in their original order. Big policies then try a handful of alternatives, not all.
    A bucket's regex is compiled when an intent first needs it: a cold `masque assume` decides one
    intent, so it compiles one regex rather than one per first letter (~0.4 ms each).
    """

    __slots__ = ("_globs", "_members", "_ready", "_rest")

    def __init__(self, globs: Sequence[str], *, prepared: bool = False) -> None:
        self._globs = list(globs) if prepared else [normalize(g) for g in globs]
        first = [g[0] if g and g[0] not in _WILD_START else None for g in self._globs]
        self._rest = tuple(i for i, c in enumerate(first) if c is None)
        self._members = {
            char: tuple(i for i, c in enumerate(first) if c is None or c == char)
            for char in {c for c in first if c is not None}
        }
        # a glob's first character ("" for the rest) -> (the bucket's globs, their combined regex, or else
        # one regex each), filled as intents need them
        self._ready: dict[str, tuple[tuple[int, ...], re.Pattern[str] | None, tuple[re.Pattern[str], ...]]] = {}

    def _prepare(self, char: str) -> tuple[tuple[int, ...], re.Pattern[str] | None, tuple[re.Pattern[str], ...]]:
        key = char if char in self._members else ""  # one shared entry for the rest: no growth per character
        bucket = self._ready.get(key)
        if bucket is None:
            members = self._members.get(key, self._rest)
            globs = [self._globs[i] for i in members]
            combined = _policy_regex(globs) if globs else None
            each = tuple(re.compile(fnmatch.translate(g)) for g in globs) if globs and combined is None else ()
            bucket = self._ready[key] = (members, combined, each)  # a race compiles it twice, to the same value
        return bucket

    def first(self, normalized: str) -> int | None:
        """Index of the first glob matching all of `normalized` (non-empty), or None."""
        bucket = self._ready.get(normalized[0]) or self._prepare(normalized[0])
        members, combined, each = bucket
        if each:
            for i, regex in zip(members, each, strict=True):
                if regex.match(normalized):
                    return i
            return None
        if combined is None:
            return None
        m = combined.match(normalized)
        return None if m is None or m.lastindex is None else members[m.lastindex - 1]


class Policy:
    """A compiled intent policy. Build with `Policy.compile(intent)` (cached by the Intent value).

    Denied and allowed globs are compiled together, denied first: regex alternation takes the first
    alternative that matches, so a matching denied glob always wins, and one `match` call decides.
    Messages are assembled from pieces prepared at compile time.
    """

    __slots__ = ("_denied", "_error", "_matcher", "_no_match", "_odd", "_outcomes", "_skeletons", "intent", "max_chars")

    def __init__(self, intent: Intent, max_chars: int) -> None:
        self.intent = intent
        self.max_chars = max_chars
        self._error: str | None = None
        self._matcher = _Matcher(())
        self._denied = len(intent.denied)
        # The skeletons of the denied globs (see masque.masques.intent_text), and which denied glob each is.
        self._skeletons: tuple[_Matcher, tuple[int, ...]] = (_Matcher(()), ())
        self._odd = False  # does any denied glob have a skeleton unlike its normal form?
        # Per glob, in regex order: (allowed?, reason, glob as written, message suffix).
        self._outcomes: tuple[tuple[bool, str, str, str], ...] = ()
        try:
            globs = [*intent.denied, *intent.allowed]
            self._outcomes = tuple(
                [(False, Reason.DENIED.value, g, f" matches denied pattern {_quote(g)}") for g in intent.denied]
                + [(True, Reason.ALLOWED.value, g, f" matches allowed pattern {_quote(g)}") for g in intent.allowed]
            )
            self._matcher = _Matcher(globs)
            forms = [(form, i) for i, g in enumerate(intent.denied) for form in skeleton_globs(g)]
            self._skeletons = (_Matcher([f for f, _ in forms], prepared=True), tuple(i for _, i in forms))
            self._odd = any(form != normalize(intent.denied[i]) for form, i in forms)
        except Exception as exc:  # any compile problem refuses every intent, with the cause
            self._error = f"the intent policy could not be compiled: {exc}"
        if intent.allowed:
            listed = ", ".join(_quote(str(p), 40) for p in intent.allowed[:5])
            more = f" (and {len(intent.allowed) - 5} more)" if len(intent.allowed) > 5 else ""
            self._no_match = f" matches none of the allowed patterns {listed}{more}"
        else:
            self._no_match = " cannot match: the masque allows no intents"

    @classmethod
    def compile(cls, intent: Intent) -> Policy:
        """The compiled policy for `intent`; compiled once per (Intent, length cap) per process."""
        from masque.config import limits

        return _compile(intent, limits().max_intent_chars)

    def decide(self, text: str) -> Decision:
        """Decide one intent. Never raises: any error becomes a refusing Decision(reason="error")."""
        try:
            if self._error is not None:
                return Decision(False, Reason.ERROR.value, None, "", f"refused: {self._error}")
            if not isinstance(text, str):
                raise TypeError(f"the intent must be text, not {type(text).__name__}")
            # Never normalise megabytes: anything far over the cap is refused before any work.
            if len(text) > 4 * self.max_chars:
                return self._too_long(len(text), "")
            plain = text.isascii() and text.isprintable()
            if plain:  # the common case, inlined from normalize()
                normalized = text.lower()
                if "  " in normalized or normalized[:1] == " " or normalized[-1:] == " ":
                    normalized = " ".join(normalized.split())
            else:
                problem = boundary_problem(text)
                if problem is not None:
                    reason, why = problem
                    return Decision(False, reason, None, "", f"refused: {why}")
                normalized = normalize(text)
            if not normalized:
                return Decision(False, "empty", None, "", "refused: the intent is empty; state what you are doing")
            if len(normalized) > self.max_chars:
                return self._too_long(len(normalized), normalized)
            index = self._matcher.first(normalized)
            # Denied wins on every reading: only text (or globs) that could read differently pay for it.
            if (index is None or index >= self._denied) and self._denied:
                if not plain:
                    denial = self._deny_reading(text, normalized)
                    if denial is not None:
                        return denial
                elif (skeleton := ascii_skeleton(normalized)) != normalized or self._odd:
                    found = self._skeletons[0].first(skeleton) if skeleton else None
                    if found is not None:
                        return self._denied_as(self._skeletons[1][found], skeleton, _AS_SKELETON)
            if index is None:
                return _new_tuple(Decision, (False, "no_match", None, normalized, "", self._no_match))
            allowed, reason, glob, tail = self._outcomes[index]
            return _new_tuple(Decision, (allowed, reason, glob, normalized, "", tail))
        except Exception as exc:  # e.g. a non-str intent from a library caller
            return _error_decision(exc)

    def _deny_reading(self, text: str, normalized: str) -> Decision | None:
        """The denial of the first other reading of `text` a denied glob matches (see `readings`)."""
        _, plain, skeletons = readings(text, normalized)
        for reading in plain:
            index = self._matcher.first(reading) if reading else None
            if index is not None and index < self._denied:
                return self._denied_as(index, reading, "with invisible characters as word breaks")
        matcher, owners = self._skeletons
        for reading in skeletons:
            if reading == normalized and not self._odd:
                continue  # the same text against the same globs: already not denied
            index = matcher.first(reading) if reading else None
            if index is not None:
                return self._denied_as(owners[index], reading, _AS_SKELETON)
        return None

    def _denied_as(self, index: int, reading: str, how: str) -> Decision:
        _, reason, glob, tail = self._outcomes[index]
        return _new_tuple(Decision, (False, reason, glob, reading, "", f"{tail} (read {how})"))

    def match(self, normalized: str) -> tuple[bool, str] | None:
        """(allowed?, glob as written) of the glob deciding an already-normalised, non-empty intent.

        The bare matcher without the checks and explanation of `decide` (routing and benchmarks).
        """
        index = self._matcher.first(normalized) if normalized else None
        if index is None:
            return None
        allowed, _, glob, _ = self._outcomes[index]
        return allowed, glob

    def _too_long(self, length: int, normalized: str) -> Decision:
        return Decision(
            False,
            Reason.TOO_LONG.value,
            None,
            normalized,
            f"refused: the intent is {length:,} characters; the limit is {self.max_chars:,}",
        )


def _error_decision(exc: Exception) -> Decision:
    return Decision(False, Reason.ERROR.value, None, "", f"refused: the intent could not be checked ({exc})")


@lru_cache(maxsize=512)
def _compile(intent: Intent, max_chars: int) -> Policy:
    return Policy(intent, max_chars)


def _intent_of(subject: Masque | Intent | Any) -> Intent:
    if isinstance(subject, Intent):
        return subject
    intent = getattr(subject, "intent", None)
    if isinstance(intent, Intent):
        return intent
    raise TypeError(f"expected a Masque or an Intent, got {type(subject).__name__}")


def decide(subject: Masque | Intent, text: str) -> Decision:
    """Decide `text` against a masque's (or a bare Intent's) policy. Never raises."""
    try:
        policy = Policy.compile(_intent_of(subject))
    except Exception as exc:
        return _error_decision(exc)
    decision = policy.decide(text)
    if isinstance(subject, Masque):
        return decision.about(f"{subject.name}@{subject.version}")
    return decision


def require(subject: Masque | Intent, text: str, ref: str | None = None) -> Decision:
    """Like `decide`, but raise `Refused` (exit 3, reason intent_*) unless the intent is allowed."""
    if isinstance(subject, Masque):
        ref = ref or f"{subject.name}@{subject.version}"
    decision = Policy.compile(_intent_of(subject)).decide(text)
    if not decision.allowed:
        raise decision.refusal(ref or "intent")
    return decision

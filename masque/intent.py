"""Intent policy: a masque's allowed/denied globs compiled once, and decisions that explain themselves.

Semantics (Cedar-style, documented in docs/registry.md):
- both the intent and every pattern are normalised the same way (`normalize`);
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
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from functools import lru_cache
from typing import Any

from masque.errors import Refused
from masque.model import Intent, Masque


class Reason(str, Enum):
    """Why a decision came out the way it did (stable, machine-readable)."""

    ALLOWED = "allowed"
    DENIED = "denied"
    NO_MATCH = "no_match"
    EMPTY = "empty"
    TOO_LONG = "too_long"
    ERROR = "error"


# Zero-width and other invisible format characters are stripped; whitespace (str.isspace) collapses.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf"})
# For ASCII text only C0 controls and DEL can be present; \t\n\v\f\r and \x1c-\x1f count as whitespace.
_ASCII_CONTROLS = {c: None for c in range(0x20) if not chr(c).isspace()} | {0x7F: None}


def _strip_invisible(text: str) -> str:
    return "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) not in _INVISIBLE_CATEGORIES)


def _full_pass(text: str) -> str:
    # Strip first: removing a zero-width joiner can bring a combining mark next to its base, and NFKC
    # must see that pair. NFKC again after casefold, because casefolding can leave unnormalised text.
    text = _strip_invisible(text)
    text = unicodedata.normalize("NFKC", text).casefold()
    text = unicodedata.normalize("NFKC", text)
    text = _strip_invisible(text)
    return " ".join(text.split())


def normalize(text: str) -> str:
    """Canonical form for matching: NFKC, case-folded, invisible characters removed, whitespace collapsed.

    Idempotent: `normalize(normalize(x)) == normalize(x)` (property-tested).
    """
    if text.isascii():
        # Fast path (the common case): NFKC is the identity on ASCII and casefold() equals lower().
        if not text.isprintable():
            text = text.translate(_ASCII_CONTROLS)
        return " ".join(text.lower().split())
    result = _full_pass(text)
    # A handful of compatibility characters need a second pass to reach a fixed point (e.g. a
    # decomposition that yields a combining mark after collapsed whitespace); loop until stable.
    for _ in range(4):
        again = _full_pass(result)
        if again == result:
            break
        result = again
    return result


@dataclass(frozen=True)
class Decision:
    """The answer to "may this masque be worn for this intent?" and why."""

    allowed: bool
    reason: str  # a Reason value
    pattern: str | None  # the pattern that decided, as written in the masque (None: no pattern did)
    normalized: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "reason": str(self.reason),
            "pattern": self.pattern,
            "normalized": self.normalized,
            "message": self.message,
        }

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
    Reason.ERROR: "intent_error",
}

_HINTS = {
    Reason.ALLOWED: None,
    Reason.DENIED: "a denied pattern always wins; state a different goal or use another masque",
    Reason.NO_MATCH: "state the intent so it matches one of the masque's intent.allowed patterns "
    "(see `masque show REF`)",
    Reason.EMPTY: "every assumption states its goal: pass --intent \"...\"",
    Reason.TOO_LONG: "shorten the intent, or raise [limits] max_intent_chars in masque.toml",
    Reason.ERROR: "fix the masque's intent patterns (`masque validate`)",
}


def _side_regex(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """One regex for a list of globs; group i+1 matches exactly when pattern i matched first."""
    if not patterns:
        return None
    parts = [f"({fnmatch.translate(normalize(p))})" for p in patterns]
    regex = re.compile("|".join(parts))
    if regex.groups != len(patterns):
        # fnmatch.translate produced capturing groups of its own (older Pythons do), so lastindex no
        # longer maps to pattern numbers; fall back to per-pattern regexes.
        raise _NeedsPerPattern
    return regex


class _NeedsPerPattern(Exception):
    pass


def _quote(text: str, limit: int = 80) -> str:
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return '"' + shown.replace('"', '\\"') + '"'


class _Side:
    """The compiled matcher for one side (allowed or denied) of a policy."""

    __slots__ = ("_each", "_one", "patterns")

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)
        self._each: tuple[re.Pattern[str], ...] = ()
        try:
            self._one = _side_regex(self.patterns)
        except _NeedsPerPattern:
            self._one = None
            self._each = tuple(re.compile(fnmatch.translate(normalize(p))) for p in self.patterns)

    def first_match(self, normalized: str) -> str | None:
        """The first pattern (in file order) matching the normalised intent, or None."""
        if self._one is not None:
            m = self._one.match(normalized)
            if m is None or m.lastindex is None:
                return None
            return self.patterns[m.lastindex - 1]
        for pattern, regex in zip(self.patterns, self._each, strict=True):
            if regex.match(normalized):
                return pattern
        return None


class Policy:
    """A compiled intent policy. Build with `Policy.compile(intent)` (cached by the Intent value)."""

    __slots__ = ("_allowed", "_denied", "_error", "intent", "max_chars")

    def __init__(self, intent: Intent, max_chars: int) -> None:
        self.intent = intent
        self.max_chars = max_chars
        self._error: str | None = None
        try:
            self._denied = _Side(intent.denied)
            self._allowed = _Side(intent.allowed)
        except Exception as exc:  # any compile problem refuses every intent, with the cause
            self._error = f"the intent policy could not be compiled: {exc}"
            self._denied = self._allowed = _Side(())

    @classmethod
    def compile(cls, intent: Intent) -> Policy:
        """The compiled policy for `intent`; compiled once per (Intent, length cap) per process."""
        from masque.config import limits

        return _compile(intent, limits().max_intent_chars)

    def decide(self, text: str) -> Decision:
        """Decide one intent. Never raises: any error becomes a refusing Decision(reason="error")."""
        try:
            return self._decide(text)
        except Exception as exc:
            return _error_decision(exc)

    def _decide(self, text: str) -> Decision:
        if self._error is not None:
            return Decision(False, Reason.ERROR.value, None, "", f"refused: {self._error}")
        if not isinstance(text, str):
            raise TypeError(f"the intent must be text, not {type(text).__name__}")
        # Never normalise megabytes: anything far over the cap is refused before any work.
        if len(text) > 4 * self.max_chars:
            return self._too_long(len(text), "")
        normalized = normalize(text)
        if not normalized:
            return Decision(
                False, Reason.EMPTY.value, None, "", "refused: the intent is empty; state what you are doing"
            )
        if len(normalized) > self.max_chars:
            return self._too_long(len(normalized), normalized)
        denied = self._denied.first_match(normalized)
        if denied is not None:
            return Decision(
                False,
                Reason.DENIED.value,
                denied,
                normalized,
                f"denied: intent {_quote(normalized)} matches denied pattern {_quote(denied)}",
            )
        allowed = self._allowed.first_match(normalized)
        if allowed is not None:
            return Decision(
                True,
                Reason.ALLOWED.value,
                allowed,
                normalized,
                f"allowed: intent {_quote(normalized)} matches allowed pattern {_quote(allowed)}",
            )
        if self.intent.allowed:
            listed = ", ".join(_quote(p, 40) for p in self.intent.allowed[:5])
            more = f" (and {len(self.intent.allowed) - 5} more)" if len(self.intent.allowed) > 5 else ""
            why = f"matches none of the allowed patterns {listed}{more}"
        else:
            why = "cannot match: the masque allows no intents"
        return Decision(
            False, Reason.NO_MATCH.value, None, normalized, f"refused: intent {_quote(normalized)} {why}"
        )

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
        return replace(decision, message=f"{subject.name}@{subject.version}: {decision.message}")
    return decision


def require(subject: Masque | Intent, text: str, ref: str | None = None) -> Decision:
    """Like `decide`, but raise `Refused` (exit 3, reason intent_*) unless the intent is allowed."""
    if isinstance(subject, Masque):
        ref = ref or f"{subject.name}@{subject.version}"
    decision = Policy.compile(_intent_of(subject)).decide(text)
    if not decision.allowed:
        raise decision.refusal(ref or "intent")
    return decision

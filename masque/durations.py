"""Durations and points in time as users type them: ISO 8601 (`PT8H`, `P1D`) or short forms (`30d`, `1h30m`).

Shared by `--ttl`, `access.ttl`, retention settings and `--since` filters. Calendar units (months,
years) have no fixed length, so they are refused where a duration must become seconds.
"""

from __future__ import annotations

import datetime as dt
import re

from masque.errors import UsageError

_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
# Patterns, not compiled regexes: `re` compiles (and caches) them on first use, so a command that
# parses no duration (every `release`) pays nothing for them at import.
_SHORT = r"^(?:(\d+(?:\.\d+)?)([wdhms]))+$"
_SHORT_PART = r"(\d+(?:\.\d+)?)([wdhms])"
_HINT = "use an ISO 8601 duration such as PT15M, PT8H or P1D, or a short form such as 15m, 12h, 30d, 1h30m"
# The longest duration accepted anywhere: 100 years keeps `now ± duration` inside datetime's range
# (years 1-9999) with room to spare; nothing Masque times (TTLs, retention, --since) needs more.
MAX_DAYS = 36_500
MAX_DURATION = dt.timedelta(days=MAX_DAYS)


def _too_long(text: str) -> UsageError:
    shown = text if len(text) <= 40 else text[:37] + "..."
    return UsageError(
        f"the duration {shown!r} is over the maximum of {MAX_DAYS}d (100 years)",
        hint=f"use at most {MAX_DAYS}d (P{MAX_DAYS}D)",
    )


# Durations parsed before, by validation in an earlier process: a definition the cache kept
# (`masque.masques.loaded`) brings its `access.ttl` here, so a cold assume need not import isodate.
_parsed: dict[str, dt.timedelta] = {}


def parsed_before(text: str, seconds: float) -> None:
    """Remember that `text` parsed to `seconds` (a positive duration within range, as parse_duration says)."""
    if 0 < seconds <= MAX_DURATION.total_seconds():
        _parsed[text] = dt.timedelta(seconds=seconds)


def needs_isodate(text: str | None) -> bool:
    """Whether parsing `text` would import isodate: an ISO form this process has not seen parsed."""
    return isinstance(text, str) and text.strip()[:1] in ("P", "p") and text not in _parsed


def parse_duration(text: str) -> dt.timedelta:
    """`PT8H`, `P1DT2H`, `30d`, `12h`, `15m`, `90s`, `1h30m`, `2w` -> a positive timedelta.

    Raises UsageError naming the value when it is not a duration, is zero or negative, or uses
    months/years (whose length depends on the calendar).
    """
    known = _parsed.get(text) if isinstance(text, str) else None
    if known is not None:
        return known
    raw = text.strip() if isinstance(text, str) else ""
    if not raw:
        raise UsageError(f"not a duration: {text!r}", hint=_HINT)
    lowered = raw.lower()
    if re.match(_SHORT, lowered):
        seconds = sum(float(n) * _UNITS[u] for n, u in re.findall(_SHORT_PART, lowered))
        if not seconds <= MAX_DURATION.total_seconds():  # also inf, from digits past float's range
            raise _too_long(text)
        value = dt.timedelta(seconds=seconds)
    elif lowered.startswith("p"):
        value = _parse_iso(raw)
    else:
        raise UsageError(f"not a duration: {text!r}", hint=_HINT)
    if value <= dt.timedelta(0):
        raise UsageError(f"the duration {text!r} must be longer than zero", hint=_HINT)
    if value > MAX_DURATION:
        raise _too_long(text)
    return value


def _parse_iso(raw: str) -> dt.timedelta:
    import isodate

    try:
        value = isodate.parse_duration(raw.upper())
    except OverflowError:
        raise _too_long(raw) from None
    except (isodate.ISO8601Error, ValueError) as exc:
        raise UsageError(f"not an ISO 8601 duration: {raw!r} ({exc})", hint=_HINT) from None
    if not isinstance(value, dt.timedelta):
        # isodate returns its own Duration when months or years are present.
        raise UsageError(
            f"the duration {raw!r} uses months or years, whose length depends on the calendar",
            hint="express it in weeks, days, hours or minutes, e.g. P30D instead of P1M",
        )
    return value


def format_duration(value: dt.timedelta) -> str:
    """A compact human form: `8h`, `1h30m`, `45s`, `2d3h` (whole seconds)."""
    seconds = round(value.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC (the store's TIMESTAMPTZ values compare with it)."""
    return dt.datetime.now(dt.timezone.utc)


def parse_since(text: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """A point in time from a date (`2026-01-15`), a datetime (ISO 8601) or a duration ago (`7d`, `PT1H`).

    Naive dates and datetimes are taken as UTC. The result is timezone-aware.
    """
    raw = text.strip() if isinstance(text, str) else ""
    if not raw:
        raise UsageError("an empty --since value", hint="use a date (2026-01-15) or a duration ago (7d)")
    try:
        return (now or utcnow()) - parse_duration(raw)
    except UsageError:
        if re.match(_SHORT, raw.lower()) or raw[:1] in "pP":
            raise  # a duration, but a bad one (say, too long): its own message says why

    try:
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"not a date, time or duration: {text!r}",
            hint="use a date (2026-01-15), an ISO 8601 time (2026-01-15T10:30:00Z) or a duration ago (7d)",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """Normalise a datetime from the store (pytz or naive) to an aware UTC datetime."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)

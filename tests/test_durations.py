"""Durations and --since values as users type them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from masque.durations import format_duration, parse_duration, parse_since
from masque.errors import UsageError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT8H", 8 * 3600),
        ("PT15M", 900),
        ("P1D", 86400),
        ("P1DT2H", 26 * 3600),
        ("pt1h", 3600),
        ("30d", 30 * 86400),
        ("12h", 12 * 3600),
        ("15m", 900),
        ("90s", 90),
        ("1h30m", 5400),
        ("2w", 14 * 86400),
        ("1.5h", 5400),
        (" 10m ", 600),
    ],
)
def test_parse_duration_accepts_iso_and_short_forms(text: str, seconds: int) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "  ", "soon", "10", "h", "P1M", "P1Y", "0m", "PT0S", "-5m", "10x", "P"])
def test_parse_duration_refuses_what_is_not_a_fixed_positive_duration(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_duration(text)
    assert repr(text.strip()) in str(info.value) or repr(text) in str(info.value)


def test_months_are_refused_with_a_hint() -> None:
    with pytest.raises(UsageError, match="months or years") as info:
        parse_duration("P1M")
    assert info.value.hint and "P30D" in info.value.hint


def _isodate_reading(text: str) -> dt.timedelta | str:
    """What parse_duration made of an ISO 8601 duration when isodate read every one of them."""
    import isodate

    from masque.durations import MAX_DURATION

    try:
        value = isodate.parse_duration(text.strip().upper())
    except OverflowError:
        return "too long"
    except (isodate.ISO8601Error, ValueError):
        return "not a duration"
    if not isinstance(value, dt.timedelta):
        return "months or years"
    return "too long" if value > MAX_DURATION else "not positive" if value <= dt.timedelta(0) else value


def _our_reading(text: str) -> dt.timedelta | str:
    try:
        return parse_duration(text)
    except UsageError as exc:
        message = str(exc)
        outcomes = {"maximum": "too long", "months or years": "months or years", "zero": "not positive"}
        for words, outcome in outcomes.items():
            if words in message:
                return outcome
        return "not a duration"


_UNIT = st.one_of(st.integers(0, 60), st.integers(0, 10**12))


@given(
    st.tuples(*(st.one_of(st.none(), _UNIT) for _ in "WDHMS")),
    st.booleans(),
    st.sampled_from(["", " ", "X", ".5", ",5"]),
)
def test_whole_iso_durations_read_as_isodate_reads_them(parts: tuple[int | None, ...], lower: bool, tail: str) -> None:
    """Every outcome (a value to the microsecond, or which refusal) is what isodate's reading implies."""
    weeks, days, hours, minutes, seconds = parts
    date = "".join(f"{n}{u}" for n, u in zip((weeks, days), "WD", strict=True) if n is not None)
    time = "".join(f"{n}{u}" for n, u in zip((hours, minutes, seconds), "HMS", strict=True) if n is not None)
    text = f"P{date}{'T' + time if time else ''}{tail}"
    text = text.lower() if lower else text
    assert _our_reading(text) == _isodate_reading(text)


@given(st.integers(min_value=1, max_value=400 * 86400))
def test_format_then_parse_round_trips(seconds: int) -> None:
    value = dt.timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


@given(st.text(max_size=30))
def test_parse_duration_never_raises_anything_but_usage_error(text: str) -> None:
    try:
        value = parse_duration(text)
    except UsageError:
        return
    assert value > dt.timedelta(0)


def test_parse_since_takes_dates_times_and_durations_ago() -> None:
    now = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
    assert parse_since("7d", now=now) == now - dt.timedelta(days=7)
    assert parse_since("PT1H", now=now) == now - dt.timedelta(hours=1)
    assert parse_since("2026-01-15") == dt.datetime(2026, 1, 15, tzinfo=dt.timezone.utc)
    assert parse_since("2026-01-15T10:30:00Z") == dt.datetime(2026, 1, 15, 10, 30, tzinfo=dt.timezone.utc)
    offset = parse_since("2026-01-15T10:30:00+02:00")
    assert offset == dt.datetime(2026, 1, 15, 8, 30, tzinfo=dt.timezone.utc)
    with pytest.raises(UsageError, match="not a date"):
        parse_since("last tuesday")


@pytest.mark.parametrize(
    "text",
    ["3000000d", "P3000000D", "P99999999999999999999D", pytest.param("9" * 400 + "s", id="400-digits"), "36501d"],
)
def test_a_duration_past_the_maximum_is_a_usage_error_naming_it(text: str) -> None:
    with pytest.raises(UsageError, match=r"is over the maximum of 36500d \(100 years\)") as caught:
        parse_duration(text)
    assert text[:30] in str(caught.value)
    with pytest.raises(UsageError, match="over the maximum"):
        parse_since(text)
    assert parse_duration("36500d") == dt.timedelta(days=36500)


@pytest.mark.parametrize(
    "args",
    [
        ["assume", "reviewer", "-i", "review the parser", "--ttl", "3000000d"],
        ["stats", "--since", "3000000d"],
        ["sessions", "export", "out.json", "--since", "3000000d"],
        ["token", "renew", "msq_x", "--ttl", "3000000d"],
        ["revoke", "01ABC", "--grace", "3000000d"],
        ["memory", "add", "reviewer", "hello", "--ttl", "3000000d"],
    ],
)
def test_cli_durations_past_the_maximum_exit_2(args: list[str], invoke: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    monkeypatch.setenv("MASQUE_PATH", str(Path(__file__).resolve().parent.parent / "personas"))
    result = invoke(args)
    assert result.exit_code == 2, result.stderr
    assert "the duration '3000000d' is over the maximum of 36500d (100 years)" in result.stderr


def test_a_duration_parsed_before_is_answered_as_parsed_and_nothing_else_is_trusted() -> None:
    from masque import durations

    durations.parsed_before("PT7H", 7 * 3600.0)
    assert durations.parse_duration("PT7H") == dt.timedelta(hours=7) and not durations.needs_isodate("PT7H")
    for text, seconds in (("PT0S", 0.0), ("P99999D", 99999 * 86400.0), ("PT-1H", -3600.0)):
        durations.parsed_before(text, seconds)  # out of range: never remembered, so parsing still refuses
        with pytest.raises(UsageError):
            durations.parse_duration(text)
    assert durations.needs_isodate(" pt9h") and not durations.needs_isodate("9h") and not durations.needs_isodate(None)

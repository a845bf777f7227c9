"""Option values coerced without pydantic (masque.cli.fastparams) read exactly as Typer's own path."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import Field, TypeAdapter, ValidationError

from masque.cli import fastparams
from masque.cli.fastparams import coerce_plain, plain_type

# Typer's own coercion for these types (typer/_adapters.py): bool strings are stripped first, and an
# empty one is False; numbers go to pydantic's lax int/float with ge/le bounds.
_TEXT = st.text(alphabet=list("0123456789+-._ eEinfatruoyslxINF\t\u00a0\u0663"), max_size=8)


def typer_way(value: str, kind: type, low: float | None = None, high: float | None = None) -> Any:
    if kind is bool:
        stripped = value.strip()
        value = stripped if stripped else False  # type: ignore[assignment]
    bounds = {k: v for k, v in (("ge", low), ("le", high)) if v is not None}
    adapter: Any = TypeAdapter(Annotated[kind, Field(**bounds)] if bounds else kind)
    return adapter.validate_python(value)


def both(value: str, kind: type, low: float | None = None, high: float | None = None) -> tuple[Any, Any]:
    try:
        expected = ("ok", typer_way(value, kind, low, high))
    except ValidationError as exc:
        expected = ("error", exc.errors()[0]["msg"])
    try:
        got = ("ok", coerce_plain(value, kind, low, high, False))
    except ValueError as exc:
        got = ("error", str(exc))
    return got, expected


def _not_pydantic_core_quirk(value: str) -> bool:
    """pydantic-core reads "0-5" as -5 and "00-0" as 0 (zeros, then a sign); Typer inherits that, we do not."""
    return re.match(r"\s*0+[-+]", value) is None


@given(_TEXT)
def test_integers_read_like_typer(value: str) -> None:
    assume(_not_pydantic_core_quirk(value))
    got, expected = both(value, int)
    assert got == expected


@given(_TEXT)
def test_bounded_integers_read_like_typer(value: str) -> None:
    assume(_not_pydantic_core_quirk(value))
    got, expected = both(value, int, 1, 100)
    assert got == expected


@pytest.mark.parametrize("value", ["0-5", "00-5", "0+5", "0-0"])
def test_a_sign_after_leading_zeros_is_not_an_integer(value: str) -> None:
    with pytest.raises(ValueError):
        coerce_plain(value, int, None, None, False)


@given(_TEXT)
def test_floats_read_like_typer(value: str) -> None:
    got, expected = both(value, float)
    if got[0] == expected[0] == "ok" and got[1] != got[1]:  # nan != nan
        assert expected[1] != expected[1]
        return
    assert got == expected


@given(st.one_of(_TEXT, st.sampled_from(["yes", " No ", "TRUE", "off", "t", "F", "", "  ", "2", "on "])))
def test_booleans_read_like_typer(value: str) -> None:
    got, expected = both(value, bool)
    assert got == expected


def test_which_annotations_are_taken() -> None:
    assert plain_type(str) == (str, False)
    assert plain_type(int | None) == (int, False)
    assert plain_type(list[str]) == (str, True)
    assert plain_type(list[str] | None) == (str, True)
    # Everything else stays with Typer: paths, enums, other lists, unions of two real types.
    assert plain_type(list[int]) is None
    assert plain_type(int | str) is None
    assert plain_type(Path | None) == (Path, False)


def test_installed_on_the_checked_typer_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # A newer Typer is left alone (slower, still correct) until fastparams is re-checked against it.
    assert fastparams.install() is typer.__version__.startswith(fastparams.CHECKED_TYPER)
    monkeypatch.setattr(fastparams, "_installed", False)
    monkeypatch.setattr(typer, "__version__", "0.30.0")
    assert fastparams.install() is False


@pytest.mark.parametrize(
    ("top", "message"),
    [
        ("abc", "Input should be a valid integer, unable to parse string as an integer"),
        ("0", "Input should be greater than or equal to 1"),
        ("101", "Input should be less than or equal to 100"),
        ("2.5", "Input should be a valid integer, unable to parse string as an integer"),
    ],
)
def test_bad_numbers_name_the_option(invoke: Callable[..., Any], top: str, message: str) -> None:
    result = invoke(["stats", "--top", top])
    assert result.exit_code == 2
    assert "Invalid value for '--top'" in result.stderr
    assert message in " ".join(result.stderr.replace("│", " ").split())


def test_good_values_reach_the_command(invoke: Callable[..., Any]) -> None:
    result = invoke(["stats", "--top", " 7 ", "--json"])
    assert result.exit_code == 0, result.stderr


def test_paths_keep_typer_checks(invoke: Callable[..., Any], tmp_path: Path) -> None:
    missing = tmp_path / "nope.parquet"
    result = invoke(["sessions", "import", str(missing)])
    assert result.exit_code != 0
    assert "nope.parquet" in result.stderr
    exported = tmp_path / "out.jsonl"
    assert invoke(["sessions", "export", str(exported)]).exit_code == 0
    assert exported.exists()

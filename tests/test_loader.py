"""The loader: hostile or broken input gives exactly one clear diagnostic, never a crash or a hang."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from masque.config import Limits
from masque.masques.loader import LoadProblem, load_file, load_text

LIMITS = Limits()


def problem(text: str, lim: Limits = LIMITS) -> tuple[str, int | None, int | None]:
    with pytest.raises(LoadProblem) as info:
        load_text("f.masque.yaml", text, lim)
    d = info.value.diagnostic
    return d.code, d.line, d.col


def test_yaml_12_core_schema_keeps_yes_and_dates_as_strings() -> None:
    doc = load_text("f", "a: yes\nb: on\nc: 2026-01-15\nd: 0x1F\ne: 0o17\nf: 1_000\ng: true\nh: ~\n")
    assert doc.data == {
        "a": "yes",
        "b": "on",
        "c": "2026-01-15",
        "d": 31,
        "e": 15,
        "f": "1_000",
        "g": True,
        "h": None,
    }


def test_positions_point_at_keys_and_items() -> None:
    doc = load_text("f", "name: x\nintent:\n  allowed:\n    - one\n    - two\n")
    assert doc.position(("intent", "allowed", 1)) == (5, 7)
    assert doc.position(("intent",)) == (2, 1)
    assert doc.position(("missing",)) == (1, 1)


def test_duplicate_key_names_the_second_occurrence() -> None:
    assert problem("a: 1\nb: 2\na: 3\n") == ("duplicate-key", 3, 1)


def test_duplicate_key_in_nested_flow_mapping() -> None:
    assert problem("a: {x: 1, x: 2}\n") == ("duplicate-key", 1, 11)


def test_merge_keys_are_not_duplicates() -> None:
    doc = load_text("f", "base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n")
    assert doc.data["other"] == {"x": 1, "y": 2}


def test_billion_laughs_is_rejected_quickly_with_bounded_memory() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    code, line, _ = problem("\n".join(lines) + "\n")
    assert code == "alias-bomb"
    assert line is not None and line <= 7  # stopped while reading, not after expanding


def test_deep_nesting_is_refused_not_a_segfault() -> None:
    depth = 200_000
    assert problem("[" * depth + "]" * depth)[0] == "too-deep"
    assert problem("a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 100)))[0] == "too-deep"


class _NewLibyaml:
    """Stands in for libyaml >= 0.2.6 (PyYAML >= 6.0.4), which refuses deep nesting itself."""

    def __init__(self, text: str) -> None:
        self.text = text

    def get_event(self) -> None:
        import yaml

        mark = yaml.Mark("<unicode string>", 1000, 0, 1000, None, None)
        raise yaml.scanner.ScannerError("while increasing flow level", mark, "exceeded maximum nesting depth", mark)

    def dispose(self) -> None:
        pass


@pytest.mark.parametrize("max_depth", [64, 5000])
def test_the_parsers_own_depth_limit_is_too_deep_too(max_depth: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from masque.masques import loader

    monkeypatch.setattr(loader, "_Parser", _NewLibyaml)
    depth = 2000
    with pytest.raises(LoadProblem) as info:
        load_text("f.masque.yaml", "[" * depth + "]" * depth, Limits(max_depth=max_depth))
    d = info.value.diagnostic
    assert (d.code, d.line, d.col) == ("too-deep", 1, 1001)
    assert d.message == f"nesting deeper than {min(max_depth, 1000)} levels"


def test_recursive_alias() -> None:
    assert problem("a: &x\n  b: *x\n")[0] == "recursive-alias"


def test_undefined_alias_is_a_syntax_error() -> None:
    assert problem("a: *nope\n")[0] == "yaml-syntax"


def test_control_character_reports_its_position() -> None:
    assert problem("a: 1\nb: x\x07y\n") == ("yaml-syntax", 2, 5)


def test_unhashable_key() -> None:
    assert problem("? [1, 2]\n: x\n")[0] == "yaml-syntax"


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "f.masque.yaml"
    path.write_bytes(data)
    return path


def file_problem(path: Path, lim: Limits = LIMITS) -> tuple[str, int | None, int | None]:
    with pytest.raises(LoadProblem) as info:
        load_file(path, lim)
    d = info.value.diagnostic
    return d.code, d.line, d.col


def test_non_utf8_bytes_name_line_and_column(tmp_path: Path) -> None:
    assert file_problem(write(tmp_path, b"name: ok\nlens: caf\xe9\n")) == ("not-utf8", 2, 10)


def test_binary_file(tmp_path: Path) -> None:
    assert file_problem(write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00"))[0] == "binary-file"


def test_utf16_with_bom_is_accepted(tmp_path: Path) -> None:
    doc = load_file(write(tmp_path, "name: ü\n".encode("utf-16")))
    assert doc.data == {"name": "ü"}


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    assert load_file(write(tmp_path, b"\xef\xbb\xbfname: x\n")).data == {"name": "x"}


def test_size_limit_is_configurable(tmp_path: Path) -> None:
    path = write(tmp_path, b"a: " + b"x" * 200 + b"\n")
    assert file_problem(path, Limits(max_file_bytes=100))[0] == "file-too-large"
    assert load_file(path, Limits(max_file_bytes=1000)).data["a"] == "x" * 200


def test_unreadable_path(tmp_path: Path) -> None:
    assert file_problem(tmp_path / "missing.masque.yaml")[0] == "unreadable"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(text: str) -> None:
    try:
        doc = load_text("f", text, Limits(max_nodes=2000))
    except LoadProblem as exc:
        assert exc.diagnostic.code
    else:
        assert isinstance(doc.data, dict)


# YAML emitters mangle NEL and the Unicode line/paragraph separators; that is not the loader's doing.
_chars = st.characters(blacklist_characters="\x85\u2028\u2029", blacklist_categories=("Cs",))


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        # Leading indicator characters (`?0`, `:x`) are plain scalars in YAML 1.2 but errors to libyaml.
        st.none() | st.booleans() | st.integers() | st.text(_chars, max_size=20).filter(lambda s: s[:1].isalnum()),
        lambda children: (
            st.lists(children, max_size=4)
            # Keys start with a letter: libyaml (a YAML 1.1 parser) rejects plain scalars such as ":0"
            # that YAML 1.2 emitters write unquoted; masque keys never look like that.
            | st.dictionaries(st.from_regex(r"[A-Za-z][\w -]{0,7}", fullmatch=True), children, max_size=4)
        ),
        max_leaves=20,
    )
)
@example(value={"A": None, "A000": -(10**31), "A0000000": None, "B00000 0": None})  # folded by the emitter
def test_round_trip_of_dumped_data(value: object) -> None:
    """Whatever a YAML 1.2 emitter (ruamel.yaml) writes, the loader reads back as the same data."""
    import io

    from ruamel.yaml import YAML

    out = io.StringIO()
    emitter = YAML(typ="safe", pure=True)
    # Unbounded lines: ruamel.yaml 0.19 folds a long flow mapping inside a plain key ("B00000 \n 0: null"),
    # which is invalid YAML (an implicit key is one line) that no parser reads; folding is not under test.
    emitter.width = 1 << 16
    emitter.dump({"root": value}, out)
    text = out.getvalue()
    assert load_text("f", text).data == {"root": value}

"""Registry: search path, refs, newest live version, private overrides, invalid files, the name shortcut."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from masque.errors import ExitCode, NotFound, UsageError, ValidationFailed
from masque.masques import registry, trusted
from masque.masques.loader import LoadProblem, load_text


def write_masque(
    directory: Path,
    name: str = "codesmith",
    version: str = "0.1.0",
    *,
    stage: str = "live",
    ring: str = "player",
    index: int = 1,
    lens: str = "Write small, tested changes.",
    filename: str | None = None,
) -> Path:
    """A valid masque file; `filename` defaults to the expected `<name>.masque.yaml`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (filename or f"{name.lower().replace(' ', '-')}.masque.yaml")
    path.write_text(
        f"name: {name}\n"
        f"index: {index}\n"
        f'version: "{version}"\n'
        f"ring: {ring}\n"
        f"stage: {stage}\n"
        "intent:\n"
        "  allowed:\n"
        '    - "implement *"\n'
        "  denied:\n"
        '    - "delete production *"\n'
        f"lens: {lens}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A MASQUE_PATH dir."""
    path = tmp_path / "shared"
    path.mkdir()
    monkeypatch.setenv("MASQUE_PATH", str(path))
    return path


@pytest.fixture
def local() -> Path:
    """./personas (the working directory is tmp_path/work)."""
    return Path.cwd() / "personas"


@pytest.fixture
def private(tmp_path: Path) -> Path:
    """The user's own dir: $XDG_CONFIG_HOME/masque/personas."""
    return tmp_path / "xdg-config" / "masque" / "personas"


# --- versions -------------------------------------------------------------------------------------


def test_bare_name_resolves_to_the_newest_live_version_in_semver_order(local: Path) -> None:
    write_masque(local / "a", version="0.9.0")
    write_masque(local / "b", version="0.10.0")  # newer than 0.9.0, though it sorts first as text
    write_masque(local / "c", version="0.11.0", stage="beta")
    write_masque(local / "d", version="1.0.0-rc.1")  # a live pre-release of 1.0.0 is still newer than 0.10.0
    write_masque(local / "e", version="2.0.0", stage="draft")
    resolved = registry.resolve("codesmith")
    assert resolved.masque.version == "1.0.0-rc.1"
    (local / "d" / "codesmith.masque.yaml").unlink()
    assert registry.resolve("codesmith").masque.version == "0.10.0"


def test_pinned_refs_in_every_form_resolve_whatever_the_stage(local: Path) -> None:
    write_masque(local / "v1", version="1.0.0")
    write_masque(local / "v2", version="1.1.0", stage="beta")
    assert registry.resolve("codesmith@1.1.0").masque.version == "1.1.0"
    assert registry.resolve("masque:codesmith@v1.1.0").masque.version == "1.1.0"
    assert registry.resolve("CodeSmith@1.0.0").ref == "codesmith@1.0.0"


def test_partial_version_picks_the_newest_live_match(local: Path) -> None:
    write_masque(local / "a", version="2.3.0")
    write_masque(local / "b", version="2.3.4")
    write_masque(local / "c", version="2.4.0")
    assert registry.resolve("masque:codesmith@v2.3").masque.version == "2.3.4"
    assert registry.resolve("codesmith@2").masque.version == "2.4.0"


def test_missing_version_lists_the_available_ones(local: Path) -> None:
    write_masque(local / "a", version="0.1.0")
    write_masque(local / "b", version="0.2.0", stage="beta")
    with pytest.raises(NotFound) as info:
        registry.resolve("codesmith@9.9.9")
    assert info.value.exit_code == ExitCode.NOT_FOUND
    assert "has no version 9.9.9; available: 0.1.0 (live), 0.2.0 (beta)" in str(info.value)


def test_name_without_a_live_version_says_so(local: Path) -> None:
    write_masque(local, version="0.1.0", stage="draft")
    with pytest.raises(NotFound) as info:
        registry.resolve("codesmith")
    assert "no live version; available: 0.1.0 (draft)" in str(info.value)
    assert "codesmith@0.1.0" in (info.value.hint or "")


def test_unknown_name_suggests_close_names(local: Path) -> None:
    write_masque(local, name="codesmith")
    write_masque(local, name="homelab", index=2)
    with pytest.raises(NotFound) as info:
        registry.resolve("codesmyth")
    assert "no masque named 'codesmyth'" in str(info.value)
    assert "`codesmith`" in (info.value.hint or "")
    assert str(local) in str(info.value)  # names the places it looked


def test_malformed_ref_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        registry.resolve("not a ref!")


# --- where masques come from ------------------------------------------------------------------------


def test_private_copy_wins_over_identical_shared_ones(shared: Path, local: Path, private: Path) -> None:
    # Copies of one name@version must agree (tests/test_registry_trust.py); then precedence picks.
    shared_file = write_masque(shared)
    local_file = write_masque(local)
    private_file = write_masque(private)
    resolved = registry.resolve("codesmith@0.1.0")
    assert resolved.path == private_file
    assert resolved.source == "user"
    assert set(resolved.overrides) == {shared_file, local_file}
    by_path = {e.path: e for e in registry.available()}
    assert by_path[private_file].active
    assert by_path[shared_file].shadowed_by == private_file
    assert by_path[local_file].shadowed_by == private_file


def test_shared_dirs_win_in_search_path_order(shared: Path, local: Path) -> None:
    first = write_masque(shared)
    write_masque(local)
    resolved = registry.resolve("codesmith")
    assert (resolved.path, resolved.source) == (first, "MASQUE_PATH")


def test_newer_shared_version_still_beats_an_older_private_one(shared: Path, private: Path) -> None:
    write_masque(private, version="0.1.0")
    write_masque(shared, version="0.2.0")
    assert registry.resolve("codesmith").masque.version == "0.2.0"
    assert registry.resolve("codesmith@0.1.0").source == "user"


def test_masque_path_lists_several_dirs_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = write_masque(tmp_path / "one", name="alpha")
    two = write_masque(tmp_path / "two", name="beta", index=2)
    entries = [str(one), str(tmp_path / "two"), str(tmp_path / "none")]
    monkeypatch.setenv("MASQUE_PATH", os.pathsep.join(entries))
    assert registry.resolve("alpha").path == one
    assert registry.resolve("beta").path == two


def test_hash_is_of_the_file_bytes_and_follows_edits(local: Path) -> None:
    path = write_masque(local)
    resolved = registry.resolve("codesmith")
    assert resolved.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    write_masque(local, lens="A different lens, a different hash and size.")
    again = registry.resolve("codesmith")
    assert again.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() != resolved.sha256
    assert again.masque.lens.startswith("A different lens")


def test_nested_dirs_and_path_refs(local: Path) -> None:
    write_masque(local / "base", name="professor", version="1.0.0")
    write_masque(local / "other", name="professor", version="2.0.0", index=2)
    assert registry.resolve("professor").masque.version == "2.0.0"
    assert registry.resolve("base/professor").masque.version == "1.0.0"
    assert registry.resolve("base/professor@1.0.0").path == local / "base" / "professor.masque.yaml"


def test_hidden_dirs_are_not_searched(local: Path) -> None:
    write_masque(local / ".git", name="secret")
    with pytest.raises(NotFound):
        registry.resolve("secret")


def test_shipped_personas_resolve(personas: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASQUE_PATH", str(personas))
    names = {e.masque.key for e in registry.available() if e.masque}
    assert {"codesmith", "homelab", "reviewer", "generalist"} <= names
    assert registry.resolve("masque:homelab@v2.3").masque.ring.value == "admin"


# --- invalid files ----------------------------------------------------------------------------------


def test_invalid_files_are_listed_with_their_error_and_skipped(local: Path) -> None:
    write_masque(local)
    bad = local / "broken.masque.yaml"
    bad.write_text("name: broken\nindex: 3\nversion: 1.0\nring: player\n")
    entries = registry.available()
    broken = [e for e in entries if e.error]
    assert len(broken) == 1 and broken[0].path == bad
    assert str(bad) in (broken[0].error or "")
    assert registry.resolve("codesmith").warnings == ()  # unrelated broken files are not even parsed


def test_ref_that_only_matches_an_invalid_file_names_file_and_line(local: Path) -> None:
    bad = local / "codesmith.masque.yaml"
    local.mkdir()
    bad.write_text('name: codesmith\nindex: 1\nversion: "0.1.0"\nring: wizard\nintent: {allowed: ["x *"]}\nlens: x\n')
    with pytest.raises(ValidationFailed) as info:
        registry.resolve("codesmith")
    message = str(info.value)
    assert f"{bad}:4:" in message  # the bad ring is on line 4
    assert "masque validate" in (info.value.hint or "")


def test_broken_private_override_is_warned_about_not_silently_skipped(local: Path, private: Path) -> None:
    write_masque(local)
    private.mkdir(parents=True)
    (private / "codesmith.masque.yaml").write_text("name: codesmith\nversion: [unclosed\n")
    resolved = registry.resolve("codesmith")
    assert resolved.source == "personas"
    assert any("skipped invalid file" in w and str(private) in w for w in resolved.warnings)


def test_name_shortcut_never_hides_a_masque_written_in_flow_style(local: Path) -> None:
    local.mkdir()
    (local / "codesmith.masque.yaml").write_text(
        '{name: codesmith, index: 1, version: "0.3.0", ring: guest, '
        'intent: {allowed: ["review *"]}, lens: "Look closely."}\n'
    )
    write_masque(local / "old", version="0.1.0")
    assert registry.resolve("codesmith").masque.version == "0.3.0"


def test_a_file_declaring_another_name_is_not_parsed_for_a_ref(local: Path) -> None:
    write_masque(local)
    # Broken beyond its first line: parsing it would produce a warning; the shortcut skips it.
    (local / "zzz.masque.yaml").write_text("name: other\nindex: [oops\n")
    assert registry.resolve("codesmith").warnings == ()
    assert any(e.error for e in registry.available())


# --- the name shortcut agrees with the YAML parser --------------------------------------------------

_VALUE = st.text(st.sampled_from(list("ab Z09#:'\"-_.&*!|>{}[]%@`\\\t")), min_size=0, max_size=10)
_STYLE = st.sampled_from(["plain", "double", "single"])
_COMMENT = st.sampled_from(["", " # note", "\t# x", "#tight"])
_NEXT = st.sampled_from(["", "  continued\n", "version: x\n", "# c\n", "\n", "name: again\n", "---\n"])
_BEFORE = st.sampled_from(["", "a: 1\n", "# c\n"])


@settings(max_examples=400, deadline=None)
@given(value=_VALUE, style=_STYLE, comment=_COMMENT, after=_NEXT, before=_BEFORE)
def test_name_shortcut_is_either_unsure_or_right(value: str, style: str, comment: str, after: str, before: str) -> None:
    quoted = {"plain": value, "double": f'"{value}"', "single": f"'{value}'"}[style]
    text = f"{before}name: {quoted}{comment}\n{after}index: 1\n"
    shortcut = registry.declared_name_in(text)
    if shortcut is None:
        return
    try:
        data = load_text("t.masque.yaml", text).data
    except LoadProblem:
        data = None
    # When the parser gives a string name, the shortcut must agree; otherwise the file is invalid
    # anyway (no string name) and resolve() reports it through available().
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        assert shortcut == data["name"]


def test_relative_masque_path_entries_give_absolute_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    write_masque(Path.cwd() / "team" / "masques")
    monkeypatch.setenv("MASQUE_PATH", "team/masques")
    resolved = registry.resolve("codesmith")
    assert resolved.path == Path.cwd() / "team" / "masques" / "codesmith.masque.yaml"
    assert resolved.path.is_absolute()


def test_an_unrelated_unreadable_file_does_not_turn_not_found_into_a_validation_error(local: Path) -> None:
    write_masque(local)
    (local / "scratch.masque.yaml").write_text("{{{ not yaml\n")
    with pytest.raises(NotFound) as info:
        registry.resolve("homelab")
    assert "1 invalid file(s) were skipped" in (info.value.hint or "")


def test_semver_equal_versions_are_one_definition(local: Path) -> None:
    # An exact pin matches build metadata as semver does, so `1.0.0+build.1` and `1.0.0+build.2` claim
    # one name@version: different files for it are refused, never picked by spelling (issue 10, item 2).
    one = write_masque(local / "a", version="1.0.0+build.1")
    two = write_masque(local / "b", version="1.0.0+build.2")
    for ref in ("codesmith@1.0.0+build.2", "codesmith@1.0.0", "codesmith"):
        with pytest.raises(trusted.DefinitionRefused) as info:
            registry.resolve(ref)
        assert set(info.value.paths) == {str(one), str(two)}
    one.unlink()
    assert registry.resolve("codesmith@1.0.0").masque.version == "1.0.0+build.2"


def test_symlinked_dirs_are_followed_and_loops_end(local: Path) -> None:
    team = Path.cwd() / "team"
    write_masque(team, name="alpha")
    local.mkdir()
    (local / "team").symlink_to(team, target_is_directory=True)
    (team / "loop").symlink_to(local, target_is_directory=True)  # personas/team/loop -> personas
    assert registry.resolve("alpha").masque.name == "alpha"
    assert [e.masque.name for e in registry.available() if e.masque] == ["alpha"]


def test_oversized_file_is_refused_by_the_size_limit(local: Path) -> None:
    (Path.cwd() / "masque.toml").write_text("[limits]\nmax_file_bytes = 100\n")
    write_masque(local, lens="x" * 200)
    with pytest.raises(ValidationFailed) as info:
        registry.resolve("codesmith")
    assert "the limit is 100" in str(info.value)


_SEMVER = st.tuples(
    st.integers(0, 3), st.integers(0, 12), st.integers(0, 12), st.sampled_from(["", "-rc.1", "-alpha", "-rc.2"])
).map(lambda v: f"{v[0]}.{v[1]}.{v[2]}{v[3]}")
_RELEASES = st.dictionaries(_SEMVER, st.sampled_from(["live", "beta", "draft"]), min_size=1, max_size=6)
_examples = iter(range(1_000_000))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(releases=_RELEASES)
def test_bare_name_is_the_semver_newest_live_release(
    releases: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import semver

    root = tmp_path / f"example-{next(_examples)}"  # fresh files per example: no stale cache entries
    for i, (version, stage) in enumerate(releases.items()):
        write_masque(root / f"r{i}", version=version, stage=stage)
    monkeypatch.setenv("MASQUE_PATH", str(root))
    live = [v for v, s in releases.items() if s == "live"]
    if live:
        newest = max(live, key=semver.Version.parse)
        assert registry.resolve("codesmith").masque.version == newest
    else:
        with pytest.raises(NotFound):
            registry.resolve("codesmith")
    pinned = next(iter(releases))
    assert registry.resolve(f"masque:codesmith@v{pinned}").masque.version == pinned

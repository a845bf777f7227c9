"""Docs stay true: every command has help, a hand-written entry in docs/ and a generated one in docs/cli.md
that matches its --help; the docs build without a broken link; the README's tour runs as written."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
DOCS = REPO / "docs"
CLI_REFERENCE = DOCS / "cli.md"
# The hand-written pages (cli.md is generated from --help, so it names every command by construction).
GUIDE = "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")) if p != CLI_REFERENCE)


def _commands(cmd: Any, prefix: list[str]) -> Iterator[tuple[str, Any]]:
    subs = getattr(cmd, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from _commands(sub, [*prefix, name])
    else:
        yield " ".join(prefix), cmd


def all_commands() -> list[tuple[str, Any]]:
    import typer.main

    from masque.cli.app import app
    from masque.cli.mythatron import app as mythatron_app

    return [
        *_commands(typer.main.get_command(app), ["masque"]),
        *_commands(typer.main.get_command(mythatron_app), ["mythatron"]),
    ]


@pytest.mark.parametrize(("path", "command"), all_commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_has_help_and_a_docs_entry(path: str, command: Any) -> None:
    assert (command.help or "").strip(), f"{path} has no help text"
    documented = f"`{path}" in GUIDE or f"<code>{path}" in GUIDE  # <code> where a table cell needs a |
    assert documented, f"no page under docs/ (besides the generated cli.md) documents `{path}`"
    assert f"\n## {path}\n" in CLI_REFERENCE.read_text(encoding="utf-8"), f"docs/cli.md has no section for {path}"


def test_the_cli_reference_is_up_to_date() -> None:
    """docs/cli.md's generated block is exactly what the commands' --help prints (regenerate: cog -r docs/cli.md)."""
    cogapp = pytest.importorskip("cogapp")
    assert "[[[cog" in CLI_REFERENCE.read_text(encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    cog = cogapp.Cog()
    cog.set_output(stdout=out, stderr=err)
    status = cog.main(["cog", "--check", str(CLI_REFERENCE)])
    assert status == 0, f"docs/cli.md is stale: run `cog -r docs/cli.md`\n{out.getvalue()}{err.getvalue()}"


def test_the_cli_reference_renders_the_same_everywhere() -> None:
    """Plain text at a fixed width: no rich boxes, colours or paths of the machine that generated it."""
    reference = CLI_REFERENCE.read_text(encoding="utf-8")
    assert not re.search(r"[\u2500-\u257f]|\x1b\[", reference)  # box drawing, ANSI escapes
    for where in {Path.home(), REPO, Path(sys.prefix)}:
        if len(where.parts) > 1:  # "/" alone proves nothing
            assert not re.search(re.escape(str(where)) + r"(?![\w.-])", reference), where
    blocks = re.findall(r"```text\n(.*?)```", reference, re.S)
    commands = [path for path, _ in all_commands()]
    groups = {" ".join(path.split()[:n]) for path in commands for n in range(1, len(path.split()))}
    assert len(blocks) == len(commands) + len(groups)  # one --help per command and per group (roots too)
    assert max(len(line) for block in blocks for line in block.splitlines()) <= 100


def test_the_docs_build_without_a_broken_link(tmp_path: Path) -> None:
    """`mkdocs build --strict`: a broken link or anchor, or a page missing from the nav, fails it."""
    pytest.importorskip("mkdocs")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "cli" / "index.html").is_file()


def _slugs(page: Path) -> set[str]:
    """The anchors mkdocs gives a page's headings (its toc extension's slugify, code marks dropped)."""
    from markdown.extensions.toc import slugify

    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    slugs = set()
    for m in re.finditer(r"^#{1,6} (.+?)(?: \{ #([\w-]+) \})?$", text, re.M):
        slugs.add(m[2] or slugify(m[1].replace("`", ""), "-"))  # an explicit `{ #id }` (attr_list) wins
    return slugs


def test_the_readme_is_the_front_door_into_the_docs() -> None:
    """The README keeps the quick start and links every docs page; each link and anchor resolves."""
    assert 'pip install . && masque assume codesmith --intent "implement the parser"' in README
    assert "pip install -e '.[test]' && python -m pytest" in README
    links = re.findall(r"\]\((docs/[^)#]+)(?:#([^)]+))?\)", README)
    linked = {page for page, _ in links}
    assert linked >= {f"docs/{p.name}" for p in DOCS.glob("*.md")}, "a docs page the README does not link"
    for page, anchor in links:
        assert (REPO / page).is_file(), page
        if anchor:
            pytest.importorskip("markdown")
            assert anchor in _slugs(REPO / page), f"{page}#{anchor}"
    assert "docs/sessions.md#threat-model" in README


@pytest.mark.slow
def test_the_tour_runs_as_written(tmp_path: Path) -> None:
    block = re.search(r"<!-- tour:start -->\n```bash\n(.*?)```\n<!-- tour:end -->", README, re.S)
    assert block is not None
    shutil.copytree(REPO / "personas", tmp_path / "personas")
    # The console scripts may not be on PATH in every test environment: run the same entry points.
    prelude = (
        f'masque() {{ "{sys.executable}" -m masque "$@"; }}\n'
        f'mythatron() {{ "{sys.executable}" -m masque.mythatron "$@"; }}\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASQUE_")}
    env["MASQUE_HOME"] = str(tmp_path / "home")
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", prelude + block[1]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "refused with exit 3" in proc.stdout
    assert "The parser is a Pratt loop" in proc.stdout
    assert "wearing reviewer" in proc.stdout
    assert "2/2 runs passed" in proc.stdout


def test_every_test_the_threat_model_names_exists() -> None:
    """The threat model says which test holds each promise; a renamed or deleted test must show up here."""
    sessions = (DOCS / "sessions.md").read_text(encoding="utf-8")
    start = sessions.index("\n## Threat model\n")
    section = sessions[start : sessions.index("\n## ", start + 1)]  # up to the next section (Exit codes)
    defined = {
        m.group(1)
        for path in (REPO / "tests").glob("test_*.py")
        for m in re.finditer(r"^def (test_\w+)", path.read_text(encoding="utf-8"), re.MULTILINE)
    }
    files = {p.name for p in (REPO / "tests").glob("test_*.py")}
    named = re.findall(r"`(?:(test_\w+\.py)(?:::)?)?(test_\w+\*?)?`", section)
    assert len(named) > 20  # the table is there
    for file, test in named:
        assert not file or file in files, file
        if test.endswith("*"):
            assert any(d.startswith(test[:-1]) for d in defined), test
        elif test:
            assert test in defined, test
    numbered = re.findall(r"^\| (\d+) \|", section, re.MULTILINE)
    assert numbered == [str(n) for n in range(1, len(numbered) + 1)] and len(numbered) >= 17  # numbered in order

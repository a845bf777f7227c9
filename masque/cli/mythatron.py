"""The `mythatron` console script: the mask SDK (new, validate, test, show, blend, promote, retire),
routing and generation. Thin: each command parses, calls one core function, renders.

Errors go through the same handler as `masque` (MasqueGroup): one message, the documented exit code.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from masque.cli.app import MasqueGroup, add_root_options
from masque.cli.generate import generate_cmd

if TYPE_CHECKING:
    from masque.model import Masque

app = typer.Typer(
    name="mythatron",
    cls=MasqueGroup,
    help="MythaTron mask SDK: scaffold, validate and test JSON personas; blend, route, roll out, generate.",
    epilog=(
        "Exit codes: 0 ok, 1 validation or tests failed, 2 usage error, 3 refused (flagged blend, stage rule), "
        "4 not found, 5 store busy or damaged. --debug shows tracebacks."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help formatter, as `masque`'s (typer.rich_utils costs ~70 ms)
    context_settings={"help_option_names": ["-h", "--help"]},
)
mask_app = typer.Typer(
    help="Work with masks: new, validate, test, show, blend, promote, retire, history.", no_args_is_help=True
)
app.add_typer(mask_app, name="mask")
add_root_options(app, "mythatron (masque)")


_AS = typer.Option(None, "--as", help="Act as this actor (needs --key-file).")
_KEY_FILE = typer.Option(None, "--key-file", help="File holding the actor key `masque actor add` printed.")


class ValidateFormat(str, Enum):
    text = "text"
    json = "json"
    github = "github"


class TestFormat(str, Enum):
    text = "text"
    json = "json"
    junit = "junit"


@mask_app.command("new")
def new_cmd(
    name: str = typer.Argument(..., help="Mask name: a slug such as poet or story-critic."),
    domain: list[str] = typer.Option(
        None, "--domain", "-d", help="Domain tag (repeatable): story, song, poem, code..."
    ),
    tone: list[str] = typer.Option(None, "--tone", "-t", help="Tone descriptor (repeatable)."),
    fmt: str = typer.Option("json", "--format", "-f", help="json (NAME.mask.json) or yaml (NAME.masque.yaml)."),
    directory: str = typer.Option(".", "--dir", help="Directory to write into (must exist)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
) -> None:
    """Scaffold a complete, valid mask with a persona template, examples and two starter tests."""
    from masque.mythatron.scaffold import new_mask

    made = new_mask(name, domains=domain or [], tones=tone or [], fmt=fmt, directory=directory, force=force)
    verb = "replaced" if made.overwritten else "wrote"
    typer.echo(f"{verb} {made.path}")
    typer.echo(f"next: edit the persona, then `mythatron mask validate {made.path}`")


def _load_for_tests(paths: list[str]) -> list[tuple[Masque, Path | str]]:
    from masque.masques.validate import discover, resolve_file

    files = discover(paths)
    return [(resolve_file(f)[0], str(f)) for f in files]


def _render_runs(result: object, *, verbose: bool) -> str:
    from masque.mythatron.runner import SuiteResult

    assert isinstance(result, SuiteResult)
    lines = []
    for run in result.runs:
        tag = "PASS" if run.passed else "FAIL"
        label = run.test if run.run == 1 else f"{run.test} [run {run.run}]"
        lines.append(f"{tag} {run.mask} :: {label}")
        if not run.passed or verbose:
            for reason in (
                run.reasons() if not run.passed else [f"{a.assertion.label()}: {a.reason}" for a in run.results]
            ):
                lines.append(f"    - {reason}")
    if not result.runs:
        lines.append("no tests found (add `tests` to your masks)")
    verdict = "ok" if result.ok else "FAILED"
    lines.append(
        f"{result.passed}/{result.total} runs passed ({result.pass_rate:.0%}) across {result.masks} "
        f"mask{'s' if result.masks != 1 else ''}, threshold {result.threshold:.0%}: {verdict} "
        f"[provider: {result.provider}]"
    )
    return "\n".join(lines)


def _offline_notice(provider_name: str) -> None:
    if provider_name == "offline":
        sys.stderr.write(
            "mythatron: offline provider: answers come from each mask's examples "
            "(set OPENAI_API_KEY or OPENAI_BASE_URL, or pass --provider openai, for a real model)\n"
        )


@mask_app.command("test")
def test_cmd(
    paths: list[str] = typer.Argument(..., help="Mask files (or directories of them) whose tests to run."),
    provider: str = typer.Option(None, "--provider", help="offline or openai (default: openai when configured)."),
    model: str = typer.Option(None, "--model", help="Model for every test (default: each mask's default_llm)."),
    repeat: int = typer.Option(1, "--repeat", help="Run every test N times."),
    threshold: float = typer.Option(1.0, "--threshold", help="Pass rate (0..1) the suite must reach, e.g. 0.9."),
    fmt: TestFormat = typer.Option(TestFormat.text, "--format", "-f", help="text, json or junit (XML)."),
    output: str = typer.Option(None, "--output", "-o", help="Also write the report (json/junit) to this file."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show every assertion, not only failures."),
) -> None:
    """Run the masks' prompt tests and judge the answers with their assertions.

    Exit 0 when the pass rate meets --threshold, 1 when it does not, 2 on usage errors.
    """
    from masque.mythatron.providers import select
    from masque.mythatron.runner import check_threshold, run_suite, to_junit

    check_threshold(threshold)
    chosen = select(provider)
    masques = _load_for_tests(paths)
    result = run_suite(masques, chosen, model=model, repeat=repeat, threshold=threshold)
    if fmt is TestFormat.junit:
        rendered = to_junit(result)
    elif fmt is TestFormat.json:
        import json

        rendered = json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"
    else:
        rendered = _render_runs(result, verbose=verbose) + "\n"
    if output:
        Path(output).write_text(rendered, encoding="utf-8")
    sys.stdout.write(rendered)
    _offline_notice(chosen.name)
    raise typer.Exit(0 if result.ok else 1)


@mask_app.command("validate")
def validate_cmd(
    paths: list[str] = typer.Argument(..., help="Mask or masque files, directories or globs."),
    no_tests: bool = typer.Option(False, "--no-tests", help="Only schema and semantic checks; skip the test suites."),
    strict: bool = typer.Option(False, "--strict", help="Treat warnings as errors."),
    fmt: ValidateFormat = typer.Option(ValidateFormat.text, "--format", "-f", help="text, json or github."),
    provider: str = typer.Option(
        None,
        "--provider",
        help="Provider for the test suites (default: offline unless an OpenAI-compatible service is configured).",
    ),
    threshold: float = typer.Option(1.0, "--threshold", help="Pass rate the test suites must reach."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List valid files too."),
) -> None:
    """Schema + semantic checks (as `masque validate`), then each valid file's test suite.

    Exit 0 when every file is valid and the suites meet the threshold, 1 otherwise, 2 on usage errors.
    """
    import json

    from masque.masques.diagnostics import REPORTER_BY_NAME
    from masque.masques.inheritance import check_chain
    from masque.masques.validate import discover, validate_paths
    from masque.mythatron.runner import check_threshold, run_suite

    check_threshold(threshold)
    files = [str(f) for f in discover(paths)]
    report = validate_paths(files, strict=strict)
    for result in report.files:
        check_chain(result)
    rendered = REPORTER_BY_NAME[fmt.value](report, verbose=verbose)
    suite = None
    if not no_tests:
        from masque.masques.validate import resolve_file
        from masque.mythatron.providers import select

        valid = [(resolve_file(r.path)[0], r.path) for r in report.files if r.valid and r.masque is not None]
        chosen = select(provider)
        suite = run_suite(valid, chosen, threshold=threshold)
    if fmt is ValidateFormat.json:
        payload = json.loads(rendered)
        if suite is not None:
            payload["tests"] = suite.to_dict()
        rendered = json.dumps(payload, indent=2, ensure_ascii=False)
    elif suite is not None and fmt is ValidateFormat.github:
        extra = [
            f"::error file={r.path},title=mythatron test::{r.mask} :: {r.test}: {'; '.join(r.reasons())}"
            for r in suite.runs
            if not r.passed
        ]
        rendered = "\n".join([rendered, *extra])
    elif suite is not None:
        rendered = rendered + "\n" + _render_runs(suite, verbose=verbose)
    typer.echo(rendered)
    if suite is not None and suite.runs:
        _offline_notice(suite.provider)
    ok = report.ok and (suite is None or suite.ok)
    raise typer.Exit(0 if ok else 1)


@mask_app.command("show")
def show_cmd(
    target: str = typer.Argument(..., help="A mask file, or a name/ref found on the search path."),
    resolved: bool = typer.Option(False, "--resolved", help="Flatten `extends`: print the persona as worn."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (the default for mask files is JSON anyway)."),
) -> None:
    """Show a mask as written, or with --resolved as flattened through its `extends` chain."""
    from masque.cli.output import print_json
    from masque.masques.loader import load_file
    from masque.masques.validate import resolve_file

    path = Path(target)
    if not path.is_file():
        from masque.masques.catalog import lookup

        path = lookup(target).path
    masque, flat = resolve_file(path)
    # resolve_file has validated the file, so reading it again cannot fail to parse.
    data = flat.data if resolved else load_file(path).data
    if json_out or str(path).endswith(".json"):
        payload = {"ref": masque.ref, "path": str(path), "chain": list(flat.chain), "mask": data}
        if resolved:
            payload["lens"] = masque.lens
        print_json(payload)
        return
    import yaml

    typer.echo(f"# {masque.ref} from {path}" + (f"\n# chain: {' -> '.join(flat.chain)}" if resolved else ""))
    typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100), nl=False)


@mask_app.command("blend")
def blend_cmd(
    specs: list[str] = typer.Argument(..., help="NAME:WEIGHT pairs, e.g. professor:0.7 critic:0.3."),
    json_out: bool = typer.Option(False, "--json", help="Print the blend as JSON."),
    allow_flagged: bool = typer.Option(False, "--allow-flagged", help="Accept a blend the tone guardrails flag."),
) -> None:
    """Blend masks into composite instructions, weighted by section.

    Exit 0 on success, 2 for bad weights, 3 when the tone guardrails flag the blend (unless
    --allow-flagged), 4 when a mask is not found.
    """
    from masque.errors import Refused
    from masque.mythatron.blend import blend_profiles, parse_spec

    pairs = [parse_spec(s) for s in specs]
    blend = blend_profiles([p[0] for p in pairs], [p[1] for p in pairs])
    if blend.flagged and not allow_flagged:
        raise Refused(
            "blend flagged for review: incompatible tones " + "; ".join(f.describe() for f in blend.flags),
            reason="blend_flagged",
            hint="pass --allow-flagged to accept it, or change [mythatron] incompatible_tones in masque.toml",
        )
    if json_out:
        from masque.cli.output import print_json

        print_json(blend.to_dict())
        return
    shares = ", ".join(f"{p.mask} {p.weight:.0%}" for p in blend.parts)
    typer.echo(f"# blend: {shares} (lead: {blend.lead})")
    for flag in blend.flags:
        typer.echo(f"# flagged: {flag.describe()}")
    typer.echo(blend.instructions)


@mask_app.command("promote")
def promote_cmd(
    ref: str = typer.Argument(..., help="Mask ref, e.g. professor@1.3.0 (a bare name means its newest version)."),
    to: str = typer.Option(..., "--to", help="beta or live: one stage forward from the current one."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = typer.Option(False, "--json", help="Print the change as JSON."),
) -> None:
    """Promote a version one stage: draft -> beta -> live. Exit 3 when the step is not allowed.

    Also exit 3 (recorded) when the acting actor does not qualify for the mask's ring."""
    from masque.masques.stages import promote
    from masque.trust import rings

    _print_change(promote(ref, to, rings.selection_from_env(as_name, key_file)), json_out)


@mask_app.command("retire")
def retire_cmd(
    ref: str = typer.Argument(..., help="Mask ref, e.g. professor@1.2.0."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = typer.Option(False, "--json", help="Print the change as JSON."),
) -> None:
    """Retire a version (soft delete): hidden from routing and bare names, still loadable by exact version.

    Exit 3 when the acting actor does not qualify for the mask's ring."""
    from masque.masques.stages import retire
    from masque.trust import rings

    _print_change(retire(ref, rings.selection_from_env(as_name, key_file)), json_out)


def _print_change(change: object, json_out: bool) -> None:
    from masque.masques.stages import StageChange

    assert isinstance(change, StageChange)
    if json_out:
        from masque.cli.output import print_json

        print_json(
            {
                "masque": change.masque,
                "version": change.version,
                "from": change.from_stage.value,
                "to": change.to_stage.value,
                "changed": change.changed,
                "id": change.id,
            }
        )
        return
    if not change.changed:
        typer.echo(f"{change.masque}@{change.version} is already {change.to_stage.value}; nothing to do")
        return
    typer.echo(f"{change.masque}@{change.version}: {change.from_stage.value} -> {change.to_stage.value}")


@mask_app.command("history")
def history_cmd(
    ref: str = typer.Argument(None, help="Limit to one name or name@version."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List recorded stage changes, oldest first."""
    from masque.masques.stages import history

    rows = history(ref)
    if json_out:
        from masque.cli.output import print_json

        print_json({"changes": rows})
        return
    if not rows:
        typer.echo("no stage changes recorded")
    for row in rows:
        typer.echo(
            f"{row['changed_at']:%Y-%m-%d %H:%M:%S} {row['masque']}@{row['version']}: "
            f"{row['from_stage']} -> {row['to_stage']}" + (f" by {row['actor']}" if row["actor"] else "")
        )


@app.command("route")
def route_cmd(
    mode: str = typer.Argument(..., help="Creative mode, e.g. story.continue."),
    override: str = typer.Option(None, "--override", help="Use this mask instead of the table's (user selection)."),
    flag: str = typer.Option(None, "--flag", help="Experiment flag: use that experiment's routes."),
    routes: str = typer.Option(None, "--routes", help="routes.yaml to use (default: see docs)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Resolve a creative mode to its masks; unavailable masks fall back to `generalist` (and are logged).

    Exit 0 when routed (fallbacks included), 2 unknown flag, 4 unknown mode or no fallback available.
    """
    from masque.mythatron.routing import route

    result = route(mode, override=override, flag=flag, routes_file=routes)
    if json_out:
        from masque.cli.output import print_json

        print_json(result.to_dict())
        return
    for slot in result.masks:
        note = f"  (fallback for {slot.requested}: {slot.detail})" if slot.fallback else ""
        typer.echo(f"{slot.mask}{note}")
    for slot in (s for s in result.masks if s.fallback):
        sys.stderr.write(f"mythatron: {slot.requested} unavailable ({slot.reason}); routed to {slot.mask}\n")


app.command("generate")(generate_cmd)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: `mythatron = "masque.cli.mythatron:main"`."""
    from masque.cli.output import PROGRAM

    PROGRAM["name"] = "mythatron"
    try:
        from masque.cli.app import run_command
        from masque.cli.lean import dispatch

        code = dispatch(app, list(sys.argv[1:] if argv is None else argv), run_command)
        if code is not None:
            sys.stdout.flush()
            sys.exit(code)
        app(args=argv, prog_name="mythatron")
        sys.stdout.flush()
    except BrokenPipeError:
        from masque.cli.output import quiet_broken_pipe

        quiet_broken_pipe()

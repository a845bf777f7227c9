"""The root Typer app, global options and the one place errors become messages and exit codes."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import typer
from typer.core import TyperGroup

from masque import __version__
from masque.cli.failures import exit_code_for, set_debug

# Command modules register themselves on `app` (or on a group below) when imported.
COMMAND_MODULES = [
    "masque.cli.validate",
    "masque.cli.misc",
    "masque.cli.registry",
    "masque.cli.actors",
    "masque.cli.sessions",
    "masque.cli.tokens",
    "masque.cli.generate",
    "masque.cli.memory",
    "masque.cli.stats",
    "masque.cli.transfer",
    "masque.cli.feedback",
    "masque.cli.mcp",
    "masque.cli.serve",
    "masque.cli.bus",
    "masque.cli.teams",
    "masque.cli.sync",
]


@contextlib.contextmanager
def errors_to_exit() -> Iterator[None]:
    """Typer's side of the one error handler (`masque.cli.failures`): its exit code as a typer.Exit."""
    try:
        yield
    except (typer.Exit, typer.Abort, BrokenPipeError):
        raise
    except (Exception, KeyboardInterrupt) as exc:
        if _is_click_exception(exc):
            raise
        code = exit_code_for(exc)
        if code is None:
            raise
        raise typer.Exit(code) from None


class MasqueGroup(TyperGroup):
    """The root group: every command runs inside errors_to_exit()."""

    def invoke(self, ctx: Any) -> Any:
        with errors_to_exit():
            return super().invoke(ctx)


def run_command(call: Callable[[], Any]) -> int:
    """Run a command function the lean dispatcher parsed, as Typer's `main` would: returns the exit code."""
    try:
        with errors_to_exit():
            call()
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("Aborted!\n")
        return 1
    except typer.TyperException as exc:  # a command's own typer.BadParameter: printed as Typer prints it
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            sys.stderr.write(f"Error: {exc.format_message()}\n")
        return int(exc.exit_code)
    return 0


def _is_click_exception(exc: BaseException) -> bool:
    return isinstance(exc, typer.TyperException)  # click's exceptions (BadParameter, UsageError) as Typer exports them


app = typer.Typer(
    name="masque",
    cls=MasqueGroup,
    help="AssumeRole for AI agents: don a versioned, validated persona (a masque) with a stated intent.",
    epilog=(
        "Exit codes: 0 ok, 1 validation or check failed, 2 usage error, 3 refused (intent, ring, token), "
        "4 not found, 5 store busy or damaged, 6 conflict (re-read and retry), 130 interrupted. "
        "--debug shows tracebacks."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Click's plain help formatter: rich's (typer.rich_utils pulls in rich.markdown, pygments...) cost ~70 ms
    # of every `--help`, and no help text here uses markup.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def add_root_options(typer_app: typer.Typer, program: str) -> None:
    """`--version` and `--debug`, shared by the `masque` and `mythatron` apps."""

    def show_version(value: bool) -> None:
        if value:
            typer.echo(f"{program} {__version__}")
            raise typer.Exit()

    def root(
        version: bool = typer.Option(
            False, "--version", callback=show_version, is_eager=True, help="Show the version and exit."
        ),
        debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors."),
    ) -> None:
        set_debug(debug)

    typer_app.callback()(root)


add_root_options(app, "masque")


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name)


_load_commands()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: plain command lines take the lean path (no pydantic), the rest Typer."""
    from masque.cli.lean import dispatch
    from masque.cli.lean_cache import ensure_spec

    ensure_spec(app)  # so the next `assume`/`release` need not build this app
    code = dispatch(app, list(sys.argv[1:] if argv is None else argv), run_command)
    if code is not None:
        sys.stdout.flush()
        sys.exit(code)
    app(args=argv, prog_name="masque")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])

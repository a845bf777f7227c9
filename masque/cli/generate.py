"""`masque generate` (also `mythatron generate`): one LLM call with a mask's context, streamed."""

from __future__ import annotations

import sys

import typer

from masque.cli.app import app


def generate_cmd(
    args: list[str] = typer.Argument(
        ...,
        metavar="[MASK] PROMPT",
        help="The mask (name or ref) and the prompt; with --session, only the prompt. PROMPT - reads stdin.",
    ),
    session: str = typer.Option(
        None,
        "--session",
        help="Generate as this active session's masque (default: $MASQUE_SESSION_ID when no MASK is named).",
    ),
    provider: str = typer.Option(
        None,
        "--provider",
        help="offline or openai (default: openai when OPENAI_API_KEY or OPENAI_BASE_URL is set, else offline).",
    ),
    model: str = typer.Option(None, "--model", help="Model name (default: the mask's default_llm, else [llm] model)."),
    json_out: bool = typer.Option(False, "--json", help="Print the logged generation as JSON instead of streaming."),
) -> None:
    """Run an LLM call with a mask's context, stream the answer and log it in the store.

    Exit codes: 0 answered, 1 the provider failed, 2 usage error, 3 the session is not active,
    4 mask or session not found.
    """
    from masque.errors import UsageError
    from masque.mythatron.generate import generate

    if len(args) > 2:
        raise UsageError(f"expected [MASK] PROMPT, got {len(args)} arguments", hint="quote the prompt")
    ref, prompt = (args[0], args[1]) if len(args) == 2 else (None, args[0])
    if prompt == "-":
        prompt = sys.stdin.read()

    def stream(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    result = generate(
        prompt,
        ref=ref,
        session_id=session,
        provider=provider,
        model=model,
        on_token=None if json_out else stream,
    )
    from masque.cli.output import print_json, print_warning

    for warning in result.warnings:
        print_warning(warning)
    c = result.completion
    if json_out:
        print_json(result.to_json())
        return
    if not c.text.endswith("\n"):
        sys.stdout.write("\n")
    if c.offline:
        sys.stderr.write(
            f"masque: offline provider: answered from {result.masque}'s examples ({c.note}); "
            "set OPENAI_API_KEY or OPENAI_BASE_URL for a real model\n"
        )


app.command("generate")(generate_cmd)

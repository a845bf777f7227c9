"""`mythatron mask new`: write a complete, valid persona to start from.

The scaffold passes `mythatron mask validate` as written: its two starter tests assert what its own
examples say, so they pass on the offline provider and show the shape of a real suite. Names must be
safe slugs (no separators, no `..`, nothing absolute), and an existing file is never replaced without
`force` (the write is exclusive-create; with force it goes through a temp file and an atomic rename).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Any

from masque.errors import UsageError

SLUG_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")  # use with fullmatch: `$` would let "poet\n" through


class Format(str, Enum):
    JSON = "json"
    YAML = "yaml"


@dataclass(frozen=True)
class Scaffold:
    path: Path
    mask_id: str
    format: Format
    overwritten: bool


def check_slug(name: str) -> str:
    if not SLUG_RE.fullmatch(name):
        why = (
            "it contains a path separator or '..'"
            if ("/" in name or "\\" in name or ".." in name)
            else "it contains whitespace or a control character"
            if any(c.isspace() or not c.isprintable() for c in name)
            else "it is absolute"
            if os.path.isabs(name)
            else "use lowercase letters, digits, - and _ (at most 63), starting with a letter or digit"
        )
        raise UsageError(
            f"{name!r} is not a safe mask name: {why}",
            hint="choose a slug such as poet or story-critic; use --dir to write elsewhere",
        )
    return name


def mask_document(name: str, domains: Sequence[str], tones: Sequence[str]) -> dict[str, Any]:
    """The scaffold content for a mask named `name` (a slug)."""
    title = name.replace("-", " ").replace("_", " ").title()
    domain = list(domains) or ["story"]
    tone = list(tones) or ["supportive", "clear"]
    return {
        "$schema": "https://masque.dev/schemas/mask.schema.json",
        "id": f"mask.{name}",
        "version": "0.1.0",
        "name": title,
        "display_name": f"The {title}",
        "domain": domain,
        "tone": tone,
        "skillset": [f"{domain[0]} feedback", "clear explanations"],
        "stage": "draft",
        "prompt": {
            "persona": f"You are {title}, a {' and '.join(tone)} collaborator for {', '.join(domain)} work. "
            "Describe here who the persona is, what it values and how it helps.",
            "constraints": ["Keep answers under 200 words", "Say what works before what to change"],
            "style_guidelines": [f"Sound {tone[0]}", "Prefer concrete suggestions to general advice"],
            "format": "markdown",
            "examples": [
                {
                    "input": "Here is my draft opening. What works and what should I change?",
                    "output": "### What works\nThe opening image is vivid and sets the mood quickly.\n\n"
                    "### Suggestion\nCut the second sentence so the first line lands harder.",
                },
                {
                    "input": "Give me one idea for the next step.",
                    "output": "### Suggestion\nTry ending the scene on a question the reader wants answered.",
                },
            ],
        },
        "default_llm": "gpt-4o-mini",
        "max_context_tokens": 8000,
        "safety_tags": ["family-friendly"],
        "capabilities": {"can_provide_feedback": True, "can_request_revision": False},
        "tests": [
            {
                "name": "Feedback names a strength first",
                "input": "Here is my draft opening. What works?",
                "assertions": [{"contains": "What works"}, {"notIcontains": "terrible"}, {"maxLength": 1200}],
            },
            {
                "name": "Answers in markdown sections",
                "input": "Give me one idea for the next step.",
                "assertions": [{"startsWith": "###"}, {"type": "regex", "value": "(?m)^### Suggestion$"}],
            },
        ],
        "changelog": [{"version": "0.1.0", "date": date.today().isoformat(), "changes": "First version."}],
    }


def masque_document(name: str, domains: Sequence[str], tones: Sequence[str]) -> dict[str, Any]:
    """The same persona in the masque YAML dialect (lens instead of prompt sections)."""
    from masque.masques.dialect import render_lens

    mask = mask_document(name, domains, tones)
    return {
        "name": name,
        "index": 1,
        "version": "0.1.0",
        "ring": "player",
        "stage": "draft",
        "intent": {"allowed": [f"{d} *" for d in mask["domain"]] + ["review *"]},
        "attributes": {"domain": mask["domain"], "tone": mask["tone"], "prompt": mask["prompt"]},
        "lens": render_lens(mask["prompt"]) + "\n",
        "tests": mask["tests"],
    }


def render(doc: dict[str, Any], fmt: Format) -> str:
    if fmt is Format.JSON:
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    import yaml

    return "# Scaffolded by `mythatron mask new`; check it with `mythatron mask validate`.\n" + yaml.safe_dump(
        doc, sort_keys=False, allow_unicode=True, width=100
    )


def new_mask(
    name: str,
    *,
    domains: Sequence[str] = (),
    tones: Sequence[str] = (),
    fmt: str = "json",
    directory: str | Path = ".",
    force: bool = False,
) -> Scaffold:
    """Write DIR/NAME.mask.json (or NAME.masque.yaml); refuses unsafe names and overwrites."""
    check_slug(name)
    try:
        kind = Format(fmt)
    except ValueError:
        raise UsageError(f"--format {fmt!r}: choose json or yaml") from None
    for label in [*domains, *tones]:
        if not label.strip():
            raise UsageError("--domain and --tone values must not be blank")
    base = Path(directory)
    if not base.is_dir():
        raise UsageError(f"--dir {base} is not a directory", hint="create it first")
    doc = mask_document(name, domains, tones) if kind is Format.JSON else masque_document(name, domains, tones)
    suffix = ".mask.json" if kind is Format.JSON else ".masque.yaml"
    target = base / f"{name}{suffix}"
    text = render(doc, kind)
    existed = target.exists() or target.is_symlink()
    if existed and not force:
        raise UsageError(f"{target} already exists; not overwriting it", hint="pass --force to replace it")
    if not existed:
        try:
            with open(target, "x", encoding="utf-8") as fh:  # exclusive: never clobbers a racing writer
                fh.write(text)
        except FileExistsError:
            raise UsageError(f"{target} already exists; not overwriting it", hint="pass --force") from None
        return Scaffold(target, str(doc.get("id", name)), kind, False)
    # --force: write beside it and rename over, so a crash never leaves half a file (and a symlink
    # at the target is replaced, not followed).
    fd, tmp = tempfile.mkstemp(dir=base, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Scaffold(target, str(doc.get("id", name)), kind, True)

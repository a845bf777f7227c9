"""Weighted blending of masks: `blend_profiles(mask_ids, weights)` -> composite instructions.

Section by section: the heaviest persona leads and the others follow in weight order with their
shares; constraints and style guidelines are unioned and de-duplicated (case- and space-insensitive,
heavier masks' wording first); a format conflict is resolved by the summed weight behind each format
(ties go to the heavier mask). Weights must be positive and are normalised to sum to 1.

Tone guardrails: a table of incompatible pairs is checked against every blended mask's tone
descriptors *and* its short name (so "romantic + debugger" works whether written as tones or masks).
The default table is below; `[mythatron] incompatible_tones = [["a", "b"], ...]` in masque.toml
replaces it. A flagged blend needs review: the CLI refuses it (exit 3) unless --allow-flagged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from masque.errors import UsageError
from masque.model import Masque

DEFAULT_INCOMPATIBLE: tuple[tuple[str, str], ...] = (
    ("romantic", "debugger"),
    ("romantic", "clinical"),
    ("whimsical", "clinical"),
    ("playful", "austere"),
    ("harsh", "supportive"),
)


@dataclass(frozen=True)
class Part:
    mask: str  # exact ref
    weight: float  # normalised


@dataclass(frozen=True)
class Flag:
    """One incompatible pair found in a blend."""

    pair: tuple[str, str]
    masks: tuple[str, str]

    def describe(self) -> str:
        return f"{self.pair[0]} ({self.masks[0]}) + {self.pair[1]} ({self.masks[1]})"


@dataclass(frozen=True)
class Blend:
    parts: tuple[Part, ...]
    persona: str
    constraints: tuple[str, ...]
    style_guidelines: tuple[str, ...]
    format: str | None
    tone: tuple[str, ...]
    flags: tuple[Flag, ...]
    instructions: str

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    @property
    def lead(self) -> str:
        return self.parts[0].mask

    def to_dict(self) -> dict[str, Any]:
        return {
            "masks": [{"mask": p.mask, "weight": round(p.weight, 6)} for p in self.parts],
            "lead": self.lead,
            "persona": self.persona,
            "constraints": list(self.constraints),
            "style_guidelines": list(self.style_guidelines),
            "format": self.format,
            "tone": list(self.tone),
            "flagged": self.flagged,
            "flags": [{"pair": list(f.pair), "masks": list(f.masks)} for f in self.flags],
            "instructions": self.instructions,
        }


def incompatible_pairs() -> tuple[tuple[str, str], ...]:
    """The guardrail table: `[mythatron] incompatible_tones` in masque.toml, else the default."""
    from masque import config

    raw = config.section("mythatron").get("incompatible_tones")
    if raw is None:
        return DEFAULT_INCOMPATIBLE
    pairs = []
    for item in raw if isinstance(raw, list) else [raw]:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            raise UsageError(
                f"config [mythatron] incompatible_tones: {item!r} is not a pair of tone names",
                hint='write incompatible_tones = [["romantic", "debugger"], ...]',
            )
        pairs.append((item[0].casefold(), item[1].casefold()))
    return tuple(pairs)


def normalise(weights: Sequence[float]) -> list[float]:
    for w in weights:
        if not w > 0 or w != w or w == float("inf"):
            raise UsageError(f"weight {w:g} must be a positive number", hint="e.g. professor:0.7 critic:0.3")
    total = float(sum(weights))
    return [w / total for w in weights]


def _norm_text(text: str) -> str:
    return " ".join(text.casefold().split()).rstrip(".")


def _union(lists: Sequence[Sequence[str]]) -> tuple[str, ...]:
    seen: set[str] = set()
    out: list[str] = []
    for items in lists:
        for item in items:
            key = _norm_text(item)
            if key and key not in seen:
                seen.add(key)
                out.append(item.strip())
    return tuple(out)


def _labels(masque: Masque) -> set[str]:
    from masque.masques.dialect import slug_of

    tones = {str(t).casefold() for t in masque.attributes.get("tone") or ()}
    return tones | {slug_of(masque.name).casefold()}


def find_flags(masques: Sequence[Masque], pairs: Sequence[tuple[str, str]]) -> tuple[Flag, ...]:
    labels = [(_labels(m), m.ref) for m in masques]
    flags: list[Flag] = []
    for a, b in pairs:
        for i, (la, ra) in enumerate(labels):
            for j, (lb, rb) in enumerate(labels):
                if i != j and a in la and b in lb and not any(f.pair == (a, b) for f in flags):
                    flags.append(Flag((a, b), (ra, rb)))
    return tuple(flags)


def _prompt(masque: Masque) -> Mapping[str, Any]:
    prompt = masque.attributes.get("prompt")
    if isinstance(prompt, Mapping):
        return prompt
    return {"persona": masque.lens}  # a plain masque: its lens is its persona


def blend_masques(
    masques: Sequence[Masque], weights: Sequence[float], pairs: Sequence[tuple[str, str]] | None = None
) -> Blend:
    if not masques:
        raise UsageError("blend needs at least one mask", hint="e.g. mythatron mask blend professor:0.7 critic:0.3")
    if len(masques) != len(weights):
        raise UsageError(f"{len(masques)} masks but {len(weights)} weights; give one weight per mask")
    refs = [m.ref for m in masques]
    if len(set(refs)) != len(refs):
        raise UsageError(f"a mask appears twice in the blend ({', '.join(refs)}); merge its weights")
    shares = normalise(weights)
    # Heaviest first; equal weights keep the order given.
    order = sorted(range(len(masques)), key=lambda i: -shares[i])
    ranked = [(masques[i], shares[i]) for i in order]
    prompts = [_prompt(m) for m, _ in ranked]
    lead_persona = str(prompts[0].get("persona") or "").strip()
    persona_parts = [lead_persona]
    for (m, share), p in zip(ranked[1:], prompts[1:], strict=True):
        text = str(p.get("persona") or "").strip()
        if text:
            persona_parts.append(f"Blend in, at {share:.0%} weight, this voice ({m.name}): {text}")
    persona = "\n\n".join(x for x in persona_parts if x)
    constraints = _union([p.get("constraints") or () for p in prompts])
    style = _union([p.get("style_guidelines") or () for p in prompts])
    votes: dict[str, float] = {}
    first_seen: dict[str, int] = {}
    for rank, ((_, share), p) in enumerate(zip(ranked, prompts, strict=True)):
        fmt = p.get("format")
        if fmt:
            votes[str(fmt)] = votes.get(str(fmt), 0.0) + share
            first_seen.setdefault(str(fmt), rank)
    fmt_choice = max(votes, key=lambda f: (votes[f], -first_seen[f])) if votes else None
    tone = _union([[str(t) for t in m.attributes.get("tone") or ()] for m, _ in ranked])
    flags = find_flags([m for m, _ in ranked], incompatible_pairs() if pairs is None else pairs)
    from masque.masques.dialect import render_lens

    instructions = render_lens(
        {"persona": persona, "constraints": constraints, "style_guidelines": style, "format": fmt_choice}
    )
    parts = tuple(Part(m.ref, share) for m, share in ranked)
    return Blend(parts, persona, constraints, style, fmt_choice, tone, flags, instructions)


def parse_spec(spec: str) -> tuple[str, float]:
    """`professor:0.7` -> ("professor", 0.7); a bare name weighs 1."""
    name, sep, weight = spec.rpartition(":")
    if not sep:
        return spec, 1.0
    try:
        return name, float(weight)
    except ValueError:
        raise UsageError(f"{spec!r}: the weight after ':' must be a number, e.g. {name}:0.5") from None


def blend_profiles(mask_ids: Sequence[str], weights: Sequence[float] | None = None) -> Blend:
    """Seed 000's helper: resolve masks by name or ref and blend them (equal weights when None)."""
    from masque.masques.catalog import all_masks, lookup
    from masque.masques.validate import resolve_file

    weights = list(weights) if weights is not None else [1.0] * len(mask_ids)
    if len(mask_ids) != len(weights):
        raise UsageError(f"{len(mask_ids)} masks but {len(weights)} weights; give one weight per mask")
    normalise(weights)  # refuse bad weights before touching any file
    masks = all_masks()
    masques = [resolve_file(lookup(mid, masks).path)[0] for mid in mask_ids]
    return blend_masques(masques, weights)

"""Masks on the search path with their *effective* rollout stage (file stage overridden by the store).

Masks are ordinary masques to the registry (`masque.masques.registry`: MASQUE_PATH, ./personas, the user's
dir); this module adds what MythaTron needs on top: bare mask names (`professor` finds
`mask.professor`, then a masque named `professor`), and stages recorded by `mythatron mask promote`
/ `retire` in the store's `mask_stages` table. A bare name resolves to the newest version whose
effective stage is live; an exact version resolves whatever its stage, retired included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from masque.errors import NotFound
from masque.masques.registry import recorded_stages
from masque.model import Masque, Ref, Stage

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class Mask:
    """A loaded mask (or masque) and the stage in force for it."""

    masque: Masque
    path: Path
    sha256: str
    stage: Stage

    @property
    def ref(self) -> str:
        return self.masque.ref


def candidate_keys(name: str) -> list[str]:
    """Registry keys a user-typed name may mean, in preference order."""
    from masque.masques.registry import name_key

    key = name_key(name.replace("/", "."))
    return [key] if key.startswith("mask.") else [f"mask.{key}", key]


def all_masks(stages: dict[tuple[str, str], Stage] | None = None) -> list[Mask]:
    """Every valid, non-shadowed mask/masque on the search path, with effective stages."""
    from masque.masques.registry import available, name_key

    stages = recorded_stages() if stages is None else stages
    out = []
    for entry in available():
        if not entry.active or entry.masque is None or entry.sha256 is None:
            continue
        m = entry.masque
        stage = stages.get((name_key(m.name), m.version), m.stage)
        out.append(Mask(m, entry.path, entry.sha256, stage))
    return out


def _newest(masks: Iterable[Mask]) -> Mask | None:
    from masque.masques.registry import version_key

    return max(masks, key=lambda m: version_key(m.masque.version), default=None)


def lookup(text: str, masks: list[Mask] | None = None, *, any_stage: bool = False) -> Mask:
    """Resolve `professor`, `mask.professor@1.3.0`, `base/professor@1.0.0`; raises NotFound.

    A bare name means the newest live version, or with `any_stage` the newest version that is not
    retired (what `promote` and `retire` act on).
    """
    from masque.masques.registry import name_key

    ref = Ref.parse(text)
    masks = all_masks() if masks is None else masks
    for key in candidate_keys(ref.name):
        mine = [m for m in masks if name_key(m.masque.name) == key]
        if not mine:
            continue
        listing = ", ".join(f"{m.masque.version} ({m.stage.value})" for m in mine)
        if ref.version is not None:
            exact = [m for m in mine if m.masque.version == ref.version]
            if exact:
                return exact[0]
            raise NotFound(
                f"{text}: {key} has no version {ref.version}; available: {listing}",
                hint=f"use one of those versions, e.g. {key}@{mine[-1].masque.version}",
            )
        wanted = (lambda m: m.stage is not Stage.RETIRED) if any_stage else (lambda m: m.stage is Stage.LIVE)
        best = _newest(m for m in mine if wanted(m))
        if best is not None:
            return best
        raise NotFound(
            f"{text}: {key} has no {'unretired' if any_stage else 'live'} version; available: {listing}",
            hint=f"pin a version ({key}@{mine[-1].masque.version}) or promote one to live",
        )
    raise NotFound(
        f"no mask named {ref.name!r} on the search path (looked for {', '.join(candidate_keys(ref.name))})",
        hint="add the directory holding your *.mask.json files to MASQUE_PATH (`masque path` shows the search path)",
    )


def lookup_any(text: str) -> Mask:
    """`lookup` for rollout commands: a bare name means the newest version not retired."""
    return lookup(text, any_stage=True)

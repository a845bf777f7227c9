"""Traits: the flat, dotted facts rules read (`traits.focus.level`), from a masque file and its observations.

- from the file: `masque.name`, `masque.key`, `masque.version`, `masque.ring`, `masque.index`,
  `skills.<name>` (its level; `<name>` is the last part of the skill URI), `attributes.<path>`;
- from observations, oldest first so the newest wins: `<kind>.<path>` for every value in the data
  object, `<kind>.count` the number of observations of that kind, `observations.count` all of them;
- from feedback (observations of kind `feedback`, written by `masque feedback`): for each trait the
  suggestion's type maps to in the mapper's `trait_mappings`, `feedback.<trait>` is the mean score
  (-1..1) and `feedback.<trait>.count` how many judged it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from masque.feedback.observations import Observation
    from masque.model import Masque

MAX_DEPTH = 6


def flatten(prefix: str, value: Any, out: dict[str, Any], depth: int = 0) -> None:
    """`{"a": {"b": 1}}` under `k` -> `k.a.b = 1` (and `k.a = {"b": 1}` too, for exists/contains)."""
    if prefix:
        out[prefix] = value
    if isinstance(value, Mapping) and depth < MAX_DEPTH:
        for key, item in value.items():
            flatten(f"{prefix}.{key}" if prefix else str(key), item, out, depth + 1)


def masque_traits(masque: Masque | None, key: str) -> dict[str, Any]:
    out: dict[str, Any] = {"masque.key": key}
    if masque is None:
        return out
    out.update(
        {
            "masque.name": masque.name,
            "masque.version": masque.version,
            "masque.ring": masque.ring.value,
            "masque.index": masque.index,
        }
    )
    for skill in masque.skills:
        out[f"skills.{skill.uri.rstrip('/').rsplit('/', 1)[-1]}"] = skill.level.value
    if masque.attributes:
        flatten("attributes", dict(masque.attributes), out)
    return out


def observation_traits(found: Iterable[Observation]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    counts: dict[str, int] = {}
    scores: dict[str, list[float]] = {}
    total = 0
    for obs in found:
        total += 1
        counts[obs.kind] = counts.get(obs.kind, 0) + 1
        if obs.kind == "feedback":
            for trait in obs.data.get("traits", ()):
                scores.setdefault(str(trait), []).append(float(obs.data.get("score", 0.0)))
            continue
        flatten(obs.kind, dict(obs.data), out)
    for kind, n in counts.items():
        out[f"{kind}.count"] = n
    for trait, values in scores.items():
        out[f"feedback.{trait}"] = round(sum(values) / len(values), 4)
        out[f"feedback.{trait}.count"] = len(values)
    out["observations.count"] = total
    return out


def traits(masque: Masque | None, key: str, found: Iterable[Observation]) -> dict[str, Any]:
    return {**masque_traits(masque, key), **observation_traits(found)}

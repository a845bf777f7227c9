"""Observations, mappers and feedback (seed 001, PersonaKit): facts about masques, rules that turn them
into suggestions, feedback that tunes the rules, and the derived persona profile. See docs/feedback.md."""

from __future__ import annotations

from masque.lazy import lazy_exports

# The public surface, resolved on first use (importing the package stays free).
__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "observe": "observations",
        "list_observations": "observations",
        "verify": "observations",
        "put": "mappers",
        "list_mappers": "mappers",
        "show": "mappers",
        "versions": "mappers",
        "map_masque": "mapping",
        "give_feedback": "learning",
        "profile": "profiles",
    },
)

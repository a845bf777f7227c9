"""The model's enumerations: trust rings, skill levels, score symbols, rollout stages.

Apart from `masque.model` so that code needing only these (rings above all: every identity check and
every release) does not pay for creating the model's dataclasses at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum


class Ring(str, Enum):
    """Trust rings, innermost first. A lower `rank` means more trust."""

    ADMIN = "admin"
    PLAYER = "player"
    GUEST = "guest"
    OUTSIDER = "outsider"

    @property
    def rank(self) -> int:
        return _RING_ORDER.index(self)

    def outranks(self, other: Ring) -> bool:
        """True when this ring is strictly inside (more trusted than) `other`."""
        return self.rank < other.rank


_RING_ORDER = [Ring.ADMIN, Ring.PLAYER, Ring.GUEST, Ring.OUTSIDER]


class Level(str, Enum):
    """Claimed skill proficiency, weakest first."""

    NOVICE = "novice"
    COMPETENT = "competent"
    PROFICIENT = "proficient"
    EXPERT = "expert"
    MASTER = "master"

    @property
    def rank(self) -> int:
        return list(Level).index(self)


class Score(str, Enum):
    """Contribution symbols from the schema reference."""

    ADDITIVE = "+"
    NEGATIVE = "-"
    DIVIDING = "/"
    MULTIPLICATIVE = "*"
    EXPONENTIAL = "e"


# Default numeric values for aggregation; configurable under [scoring] in masque.toml.
DEFAULT_SCORE_VALUES: Mapping[str, float] = {"-": -1.0, "/": 0.0, "+": 1.0, "*": 2.0, "e": 3.0}


class Stage(str, Enum):
    """Rollout stages (seed 000): draft -> beta -> live; retired is a soft delete."""

    DRAFT = "draft"
    BETA = "beta"
    LIVE = "live"
    RETIRED = "retired"

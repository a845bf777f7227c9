"""The collaboration bus: a team's members post proposals, critiques, revisions, approvals, outputs and
context deltas; Masque surfaces disagreeing reviews as conflicts, which an arbiter or a person resolves
(seed 000 §5, docs/bus.md).

Modules (the package imports none of them until a name of `__all__` below is first used):
  model     BusEvent values and their rows (the one writer of mask_events and bus_subscriptions)
  contract  the interaction contract: capabilities, what answers what, conflicts, subscription rule
  access    who is calling and as whom: the team rule every verb applies
  wiring    subscriptions: wire_team (from masque files), subscribe, subscriptions
  reading   read and watch
  ops       the verbs in one place: post and resolve, and the others re-exported
"""

from __future__ import annotations

from masque.lazy import lazy_exports

# The public surface, resolved on first use (importing the package stays free).
__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "post": "ops",
        "resolve": "ops",
        "read": "ops",
        "watch": "ops",
        "subscribe": "ops",
        "subscriptions": "ops",
        "wire_team": "ops",
        "BusEvent": "ops",
        "Wiring": "ops",
    },
)

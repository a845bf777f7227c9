"""The collaboration bus: a team's members post proposals, critiques, revisions, approvals, outputs and
context deltas; Masque surfaces disagreeing reviews as conflicts, which an arbiter or a person resolves
(seed 000 §5, docs/bus.md).

Modules (import them by name; this package imports nothing):
  model     BusEvent values and their rows (the one writer of mask_events and bus_subscriptions)
  contract  the interaction contract: capabilities, what answers what, conflicts, subscription rule
  ops       the verbs: post, resolve, read, watch, subscribe, subscriptions, wire_team
"""

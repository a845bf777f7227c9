"""The collaboration bus: a team's members post proposals, critiques, revisions, approvals, outputs and
context deltas; Masque surfaces disagreeing reviews as conflicts, which an arbiter or a person resolves
(seed 000 §5, docs/bus.md).

Modules (import them by name; this package imports nothing):
  model     BusEvent values and their rows (the one writer of mask_events and bus_subscriptions)
  contract  the interaction contract: capabilities, what answers what, conflicts, subscription rule
  access    who is calling and as whom: the team rule every verb applies
  wiring    subscriptions: wire_team (from masque files), subscribe, subscriptions
  reading   read and watch
  ops       the verbs in one place: post and resolve, and the others re-exported
"""

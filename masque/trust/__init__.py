"""Trust: who is acting and what they may do.

Modules (import them by name; this package imports nothing):
  rings        actors, the four rings, keys, approvals, and `resolve_acting`, the one identity check
               every verb calls; ring moves and disapprovals say whose sessions must end, and
               `masque.sessions.actors` ends them in the same transaction
  actors       actors as stored: find/get, who sees whom, `check_qualified` (the lowest module here)
  credentials  the credentials broker: mint, verify, renew and revoke session tokens (only hashes stored)
  accessors    credential verbs by accessor for the acting actor: lookup, revoke
Layer: above the store, below the masque file (which asks rings about pins and stages).
"""

"""Trust: who is acting and what they may do.

Modules (import them by name; this package imports nothing):
  rings        actors, the four rings, keys, approvals, and `resolve_acting`, the one identity check
               every verb calls; ring moves and disapprovals say whose sessions must end, and
               `masque.sessions.actors` ends them in the same transaction
  credentials  the credentials broker: mint, verify, renew and revoke session tokens (only hashes stored)
Layer: above the store, below the masque file (which asks rings about pins and stages).
"""

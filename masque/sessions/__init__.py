"""Sessions: wearing a masque, from assume to release.

Modules (import them by name; this package imports nothing):
  lifecycle  `assume` (decide, mint, write session + events in one transaction) and re-exports of the rest
  end        release, revoke (with a grace period) and the ends that cascade down a session chain
  model      the Session / Wearable values and loading them from rows
  code       code-defined masques (`Masque`, `ModelMasque`, MASQUE_CODE_MASQUES), re-exported by masque.api
  events     session-shaped events over the one event writer (`masque.store.events`)
  queries    list, show, whoami, the stale sweep
  actors     ring moves and disapprovals that end an actor's live sessions
  runner     `masque exec`: run a command wearing a masque
"""

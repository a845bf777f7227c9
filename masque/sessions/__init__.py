"""Sessions: wearing a masque, from assume to release.

Modules (the package imports none of them until a name of `__all__` below is first used):
  lifecycle  `assume` (decide, mint, write session + events in one transaction) and re-exports of the rest
  end        release, revoke (with a grace period) and the ends that cascade down a session chain
  model      the Session value and loading it from rows
  wearable   what a masque gives a session (`Wearable`), whichever way it was defined
  code       code-defined masques (`Masque`, `ModelMasque`, MASQUE_CODE_MASQUES), re-exported by masque.api
  events     session-shaped events over the one event writer (`masque.store.events`)
  queries    list, show, whoami, the stale sweep
  actors     ring moves and disapprovals that end an actor's live sessions
  runner     `masque exec`: run a command wearing a masque
"""

from __future__ import annotations

from masque.lazy import lazy_exports

# The public surface, resolved on first use (importing the package stays free).
__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "assume": "lifecycle",
        "release": "end",
        "revoke": "end",
        "abandon": "end",
        "record_score": "end",
        "may_end": "end",
        "Session": "model",
        "Wearable": "wearable",
        "Ended": "model",
        "load": "model",
        "render_prompt": "model",
        "list_sessions": "queries",
        "show": "queries",
        "whoami": "queries",
        "find_stale": "queries",
        "sweep_stale": "queries",
        "run": "runner",
        "Masque": "code",
        "ModelMasque": "code",
        "load_code_masque": "code",
    },
)

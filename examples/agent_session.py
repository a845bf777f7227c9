"""An agent's session from Python: don a masque, use its lens and memory, doff it with a score.

    MASQUE_PATH=personas python examples/agent_session.py

Also shows seed 004's masque-as-a-program: a code-defined `Homelab` worn the same way.
"""

from __future__ import annotations

import masque
from masque import memory
from masque.errors import Refused
from masque.model import Access, Ring
from masque.trust.rings import Selection


class Homelab(masque.Masque):
    """Seed 004's example, as code. Loading code masques is opt-in: here we pass an instance."""

    name, version, ring_required = "Homelab-Code", "2.3.0", Ring.PLAYER
    intent_allowed = ("deploy *", "debug *", "investigate *")
    intent_denied = ("delete *", "destroy *")

    def knowledge(self) -> list[str]:
        return ["mcp://homelab/inventory", "mcp://homelab/runbooks"]

    def access(self) -> Access:
        return Access(vault_role="homelab-operator", ttl="session")

    def lens(self) -> str:
        return "You're operating Chris's homelab. Prefer stability over novelty. When uncertain, ask."


def main() -> None:
    decision = masque.check("codesmith", "rush the release")
    print(f"check: allowed={decision.allowed} ({decision.message})")

    with masque.assume("codesmith", intent="implement the parser") as session:
        print(f"wearing {session.masque}@{session.version} as {session.actor}; token {session.token[:8]}…")
        print(session.system_prompt.splitlines()[0])
        # The token proves the session, so the memory is tagged with it (a bare session id proves nothing).
        memory.add("The parser is a Pratt loop over the token stream.", selection=Selection(token=session.token))
        best = memory.find("how does the parser work", "codesmith", k=1).hits[0]
        print(f"memory: {best.memory.text}")
    # Leaving the block released the session; its credential is dead now.
    print(f"token valid after release: {masque.verify(session.token).valid}")

    worn = masque.assume(Homelab(), intent="deploy the monitoring stack")
    masque.release(worn, score="+", notes="monitoring deployed, dashboards green")
    print(f"code masque {worn.masque} worn and released with a score")

    try:
        masque.assume(Homelab(), intent="destroy the NAS")
    except Refused as refusal:
        print(f"refused ({refusal.reason}): {refusal}")


if __name__ == "__main__":
    main()

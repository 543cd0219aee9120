"""What a message carries that proves who wrote it. Pure.

From: is the author (RFC 5322 §3.6.2), and anyone can write it. A message proves
its author only by
1. answering mail we sent that person: In-Reply-To/References carry a Message-ID
   we signed for this ticket and reader (`signing.py`) that has not expired, or
2. our own mail boundary's Authentication-Results: DMARC (or aligned DKIM/SPF)
   passed for the author's domain (`mail/authres.py`).
Agents need a proof for anything they do by mail (`pipeline/agent.py`); customers
need one for a command (`#close`), never for adding text (`pipeline/apply.py`).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .mail.authres import Check, proves
from .signing import TEAM, Reader, Signer


@dataclass(frozen=True)
class Proof:
    ids: tuple[str, ...]  # In-Reply-To + References of the message
    checks: tuple[Check, ...]  # what our boundary checked (empty when untrusted)
    signer: Signer
    now: dt.datetime
    strict: bool = False  # strict DMARC alignment

    def _authenticated(self, address: str) -> str | None:
        method = proves(list(self.checks), address, self.strict)
        return f"Authentication-Results {method}=pass" if method else None

    def for_agent(self, ticket_ids: tuple[int, ...], agent_id: int, address: str
                  ) -> str | None:
        """How the message proves it is agent `agent_id`'s (From `address`), or None.
        A signature names one agent (or the team address of the department) and one
        of `ticket_ids` (the ticket, and those merged into it): one sent to another
        agent, or about another ticket, proves nothing here."""
        if any(self.signer.replies_to(list(self.ids), ticket_id, reader, self.now)
               for ticket_id in ticket_ids for reader in (agent_id, TEAM)):
            return "signed notification"
        return self._authenticated(address)

    def for_customer(self, ticket_ids: tuple[int, ...], contact_id: int, address: str
                     ) -> str | None:
        """How the message proves it is customer `contact_id`'s (From `address`), or None."""
        if any(self.signer.replies_to(list(self.ids), ticket_id, contact_id, self.now,
                                      Reader.CUSTOMER) for ticket_id in ticket_ids):
            return "signed reply"
        return self._authenticated(address)

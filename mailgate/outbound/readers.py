"""One mail per reader: the requester and the Cc participants, or the agents.

Each mail about a ticket carries a Message-ID signed for its one reader
(`signing.py`): a customer's reply that carries it proves its writer is that
customer (`pipeline/apply.py`), an agent's proves it answers our mail (`pipeline/agent.py`).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import Settings
from ..models import Agent, Contact, Message, Participant, Ticket
from ..signing import TEAM, Reader, signer_for
from .contexts import department_sender, locale_for, reader_context, ticket_context
from .outbox import AUTO_REPLIED, Mail, Queued, queue, queue_sms
from .reflect import safe_name
from .thread_headers import agent_thread_headers, thread_headers


def to_customer(session: Session, settings: Settings, ticket: Ticket, kind: str,
                context: dict, now: dt.datetime, cc: bool = False,
                answering: Message | None = None, network: str | None = None) -> list[Queued]:
    """Mail to the requester (and with `cc` to each Cc participant), each continuing
    that reader's side of the thread (`answering`: the message being answered, when
    the caller holds it). SMS to the requester."""
    requester = ticket.requester
    readers = [requester] + (_cc_participants(session, ticket) if cc else [])
    rows = [to_reader(session, settings, ticket, reader, kind, context, now, network=network,
                      threading=thread_headers(session, ticket, reader, answering))
            for reader in dict.fromkeys(readers)]
    rows.append(queue_sms(session, ticket, kind,
                          {**context, "recipient": {"name": requester.name,
                                                    "email": requester.email,
                                                    "role": "customer"}},
                          locale_for(settings, requester, ticket), now))
    return [r for r in rows if r is not None]


def _cc_participants(session: Session, ticket: Ticket) -> list[Contact]:
    return list(session.scalars(
        select(Contact).join(Participant).where(Participant.ticket_id == ticket.id,
                                                Participant.role == "cc")
        .order_by(Contact.id)))


def to_reader(session: Session, settings: Settings, ticket: Ticket, reader: Contact,
              kind: str, context: dict, now: dt.datetime, *, network: str | None = None,
              threading: tuple[str | None, str | None] = (None, None)) -> Queued | None:
    """One mail to one customer. Automatic mail greets them only by a name that reads
    as a person's (`reflect.safe_name`). `threading`: (In-Reply-To, References)."""
    name = safe_name(reader.name) if kind in AUTO_REPLIED else reader.name
    in_reply_to, references = threading
    return queue(session, settings, Mail(
        kind=kind, recipients=[reader.email], locale=locale_for(settings, reader, ticket),
        context={**context, **reader_context(settings, ticket, reader, now),
                 "recipient": {"name": name, "email": reader.email, "role": "customer"}},
        sender=department_sender(settings, ticket), ticket=ticket,
        message_id=signer_for(settings).message_id(ticket.id, reader.id, Reader.CUSTOMER, now),
        in_reply_to=in_reply_to, references=references, rate_network=network), now)


def agent_recipients(ticket: Ticket, only_assignee: bool = False) -> list[str]:
    if only_assignee and ticket.assignee is not None and ticket.assignee.active:
        return [ticket.assignee.email]
    if ticket.department.team_address:
        return [ticket.department.team_address]
    return sorted(a.email for a in ticket.department.agents if a.active)


def to_agents(session: Session, settings: Settings, ticket: Ticket, kind: str,
              context: dict, now: dt.datetime, only_assignee: bool = False,
              first: bool = False) -> list[Queued]:
    """Mail to the assignee (`only_assignee`, when there is an active one), else to the
    department's team address, else to each of its active agents. `first`: the
    ticket is new in this transaction, so no earlier mail about it to thread on."""
    agent_ids = {a.email: a.id for a in ticket.department.agents}
    if ticket.assignee is not None:
        agent_ids[ticket.assignee.email] = ticket.assignee.id
    rows = [_to_agent_address(session, settings, ticket, kind, context, now,
                              address=address, agent_id=agent_ids.get(address, TEAM),
                              first=first)
            for address in agent_recipients(ticket, only_assignee)]
    return [r for r in rows if r is not None]


def to_agent(session: Session, settings: Settings, ticket: Ticket, agent: Agent, kind: str,
             extra: dict, now: dt.datetime) -> Queued | None:
    """Mail about `ticket` to one agent. Its Message-ID is signed like every
    notification, so answering it is a verified reply (pipeline/agent.py)."""
    context = {**ticket_context(session, settings, ticket), **extra}
    return _to_agent_address(session, settings, ticket, kind, context, now,
                             address=agent.email, agent_id=agent.id, name=agent.name)


def _to_agent_address(session: Session, settings: Settings, ticket: Ticket, kind: str,
                      context: dict, now: dt.datetime, *, address: str, agent_id: int,
                      name: str = "", first: bool = False) -> Queued | None:
    """`agent_id`: whose reply the Message-ID proves (`signing.TEAM` for a team address).
    It threads on the earlier mail about the ticket to `address` (`agent_thread_headers`)."""
    in_reply_to, references = (None, None) if first else \
        agent_thread_headers(session, ticket, address, agent_id)
    return queue(session, settings, Mail(
        kind=kind, recipients=[address], locale=locale_for(settings, None, ticket),
        context={**context, "recipient": {"name": name, "email": address, "role": "agent"}},
        sender=department_sender(settings, ticket), ticket=ticket,
        message_id=signer_for(settings).message_id(ticket.id, agent_id, now=now),
        in_reply_to=in_reply_to, references=references), now)

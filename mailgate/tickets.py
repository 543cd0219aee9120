"""Ticket queries and changes inside a caller's session. Nothing here commits.

Used by the pipeline's steps, the agents' #commands, the command line and the
scheduled jobs, so that a status change is recorded the same way whoever makes it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session, selectinload

from .mail.headers import split_plus
from .models import (
    Address,
    Agent,
    Contact,
    Department,
    Message,
    Outbox,
    Participant,
    Ticket,
    TicketEvent,
    utcnow,
)
from .mail.threads import TicketView
from .mail.tokens import FIRST_SEQUENCE, format_token, is_valid_number


class NotFound(LookupError):
    pass


class MergeRefused(ValueError):
    """A merge that cannot be done: into itself, from a merged ticket, …; says why."""


# -- lookups ------------------------------------------------------------------

# The pipeline's look-ups are built once, with bind parameters: building a statement
# and its cache key cost more CPU than running it (benchmarks/pipeline_profile.py).
DIRECTORY = select(Department, Address.address).outerjoin(
    Address, (Address.department_id == Department.id)
    & Address.address.in_(bindparam("addresses", expanding=True)))
CONTACT_BY_EMAIL = select(Contact).where(Contact.email == bindparam("email"))
AGENT_BY_EMAIL = select(Agent).where(Agent.email == bindparam("email"))
OUTBOX_TICKETS = select(Outbox.message_id, Outbox.ticket_id).where(
    Outbox.message_id.in_(bindparam("ids", expanding=True)), Outbox.ticket_id.is_not(None))
MESSAGE_TICKETS = select(Message.message_id, Message.ticket_id).where(
    Message.message_id.in_(bindparam("ids", expanding=True)))
PARTICIPANT_EMAILS = select(Contact.email).join(Participant).where(
    Participant.ticket_id == bindparam("ticket_id"))


def department_by_key(session: Session, key: str) -> Department:
    dept = session.scalar(select(Department).where(Department.key == key))
    if dept is None:
        raise NotFound(f"no department {key!r}")
    return dept


def address_map(session: Session, addresses: set[str]) -> dict[str, str]:
    """address -> department key, for those of `addresses` that are routed."""
    if not addresses:
        return {}
    rows = session.execute(
        select(Address.address, Department.key).join(Department)
        .where(Address.address.in_(sorted(addresses))))
    return dict(rows.all())


@dataclass(frozen=True)
class Directory:
    """What routing and threading need to know about departments, read in one query."""

    routes: dict[str, str]  # address -> department key, for the addresses asked about
    departments: dict[str, Department]  # key -> row, every department (held: see below)
    prefixes: frozenset[str]  # token prefixes of every department

    @property
    def department_ids(self) -> dict[str, int]:
        return {key: d.id for key, d in self.departments.items()}

    def is_own(self, address: str | None, configured: tuple[str, ...]) -> bool:
        if not address:
            return False
        base = split_plus(address)[0]
        return bool({address, base} & (set(configured) | set(self.routes)))


def directory(session: Session, addresses: set[str]) -> Directory:
    wanted = sorted(addresses) or [""]
    # whole Department rows, held for the unit of work: later uses of `ticket.department`
    # find them in the session instead of asking the database again
    rows = session.execute(DIRECTORY, {"addresses": wanted}).all()
    return Directory(routes={address: d.key for d, address in rows if address},
                     departments={d.key: d for d, _ in rows},
                     prefixes=frozenset(d.prefix for d, _ in rows if d.prefix))


def ticket_by_number(session: Session, number: str, options=(),
                     follow_merged: bool = True) -> Ticket | None:
    """The ticket `number` names; with `follow_merged`, for a merged ticket the one it
    went into (so its token keeps threading)."""
    if not is_valid_number(number) or int(number[:-1]) <= FIRST_SEQUENCE:
        return None
    ticket = session.get(Ticket, int(number[:-1]) - FIRST_SEQUENCE, options=options)
    return final(session, ticket) if follow_merged else ticket


def final(session: Session, ticket: Ticket | None) -> Ticket | None:
    """The ticket `ticket` was merged into, to the end of the chain; itself if not merged."""
    seen = set()
    while ticket is not None and ticket.merged_into_id is not None and ticket.id not in seen:
        seen.add(ticket.id)
        ticket = session.get(Ticket, ticket.merged_into_id)
    return ticket


def merged_ids(session: Session, ticket: Ticket) -> tuple[int, ...]:
    """`ticket`'s id and those of every ticket merged into it, directly or through a
    chain: mail we signed about any of them answers this ticket now (proof.py)."""
    ids, frontier = [ticket.id], [ticket.id]
    while frontier:
        frontier = [i for i in session.scalars(select(Ticket.id).where(
            Ticket.merged_into_id.in_(frontier))) if i not in ids]
        ids.extend(frontier)
    return tuple(ids)


def get_ticket(session: Session, number: str) -> Ticket:
    """The ticket with its messages, attachments and events loaded; NotFound if none.
    A merged ticket is itself (closed, with its `merged` event), not the one it went into."""
    ticket = ticket_by_number(session, number, follow_merged=False, options=[
        selectinload(Ticket.messages).selectinload(Message.attachments),
        selectinload(Ticket.events), selectinload(Ticket.department),
        selectinload(Ticket.requester)])
    if ticket is None:
        raise NotFound(f"no ticket {number}")
    return ticket


def ticket_by_message_ids(session: Session, ids: list[str]) -> tuple[Ticket | None, str]:
    """The ticket holding one of `ids` (the most recent reference wins; a merged ticket's
    ids name the ticket it went into) and which id it was."""
    if not ids:
        return None, ""
    found = dict(session.execute(OUTBOX_TICKETS, {"ids": ids}).all())
    found.update(session.execute(MESSAGE_TICKETS, {"ids": ids}).all())
    for mid in reversed(ids):
        if mid in found:
            return final(session, session.get(Ticket, found[mid])), mid
    return None, ""


def participant_emails(session: Session, ticket: Ticket) -> frozenset[str]:
    return frozenset(session.scalars(PARTICIPANT_EMAILS, {"ticket_id": ticket.id}))


def view(session: Session, ticket: Ticket | None) -> TicketView | None:
    if ticket is None:
        return None
    return TicketView(ticket.id, ticket.number, ticket.status,
                      participant_emails(session, ticket), ticket.closed_at)


def token_for(ticket: Ticket, default_prefix: str) -> str:
    return format_token(ticket.department.prefix or default_prefix, ticket.number)


def agent_by_email(session: Session, email: str | None) -> Agent | None:
    if not email:
        return None
    return session.scalar(AGENT_BY_EMAIL, {"email": email})


# -- changes ------------------------------------------------------------------

def contact_for(session: Session, email: str, name: str = "") -> Contact:
    """The contact with `email`, added (not yet flushed) when new."""
    contact = session.scalar(CONTACT_BY_EMAIL, {"email": email})
    if contact is None:
        contact = Contact(email=email, name=name, created_at=utcnow())
        session.add(contact)
    elif name and not contact.name:
        contact.name = name
    return contact


def add_participant(session: Session, ticket: Ticket, contact: Contact, role: str) -> bool:
    """Add `contact` to the ticket's participants; False if already there."""
    if ticket.id is None or contact.id is None:  # not stored yet: look at what is pending
        if any(p.contact is contact for p in ticket.participants):
            return False
    elif session.scalar(select(Participant.id).where(Participant.ticket_id == ticket.id,
                                                     Participant.contact_id == contact.id)):
        return False
    session.add(Participant(ticket=ticket, contact=contact, role=role))
    return True


def record_event(session: Session, ticket: Ticket, kind: str, actor: str = "",
                 old: str | None = None, new: str | None = None,
                 detail: str | None = None) -> TicketEvent:
    event = TicketEvent(ticket=ticket, kind=kind, actor=actor, old_value=old,
                        new_value=new, detail=detail, created_at=utcnow())
    session.add(event)
    return event


def create_ticket(session: Session, department_id: int, requester: Contact, subject: str,
                  linked: Ticket | None = None, now: dt.datetime | None = None) -> Ticket:
    """A new ticket (its number is known once the session flushes)."""
    now = now or utcnow()
    ticket = Ticket(department=session.get(Department, department_id), requester=requester,
                    subject=subject, status="new", priority="normal", created_at=now,
                    updated_at=now, linked_ticket_id=linked.id if linked else None)
    session.add(ticket)
    add_participant(session, ticket, requester, "requester")
    record_event(session, ticket, "created", requester.email, new="new")
    if linked is not None:
        session.flush()  # the linking events name the new number
        record_event(session, ticket, "linked", requester.email, new=linked.number,
                     detail=f"follows up #{linked.number}")
        record_event(session, linked, "linked", requester.email, new=ticket.number,
                     detail=f"continued in #{ticket.number}")
    return ticket


def set_status(session: Session, ticket: Ticket, status: str, actor: str,
               detail: str | None = None, now: dt.datetime | None = None) -> bool:
    """Change the status, keeping resolved/closed times; False when unchanged. A merged
    ticket stays closed."""
    if status == ticket.status or ticket.merged_into_id is not None:
        return False
    now = now or utcnow()
    old = ticket.status
    ticket.status = status
    ticket.updated_at = now
    if status == "resolved":
        ticket.resolved_at = now
    if status == "closed":
        ticket.closed_at = now
        ticket.resolved_at = ticket.resolved_at or now
    if old in ("resolved", "closed") and status not in ("resolved", "closed"):
        ticket.resolved_at = None
        ticket.closed_at = None
    kind = "reopened" if old in ("resolved", "closed") and status == "open" else "status"
    record_event(session, ticket, kind, actor, old, status, detail)
    return True


def set_priority(session: Session, ticket: Ticket, priority: str, actor: str) -> bool:
    if priority == ticket.priority:
        return False
    record_event(session, ticket, "priority", actor, ticket.priority, priority)
    ticket.priority = priority
    ticket.updated_at = utcnow()
    return True


def set_department(session: Session, ticket: Ticket, department: Department,
                   actor: str) -> bool:
    if department.id == ticket.department_id:
        return False
    record_event(session, ticket, "department", actor, ticket.department.key, department.key)
    ticket.department = department
    ticket.updated_at = utcnow()
    return True


def merge(session: Session, source: Ticket, target: Ticket, actor: str,
          now: dt.datetime | None = None) -> Ticket:
    """Move `source`'s messages (attachments with them), participants and events into
    `target` (or the ticket it was merged into), record `merged` on both and close
    `source` for good. Returns the ticket merged into; MergeRefused says why not.
    The caller recomputes the target's deadlines (`sla.refresh`) and tells the customers."""
    now = now or utcnow()
    target = final(session, target)
    if source.merged_into_id is not None:
        raise MergeRefused(f"#{source.number} is already merged into "
                           f"#{final(session, source).number}")
    if target.id == source.id:
        raise MergeRefused(f"#{source.number} cannot be merged into itself")
    session.flush()  # what the caller added to `source` (an agent's reply) moves too
    session.execute(update(Message).where(Message.ticket_id == source.id)
                    .values(ticket_id=target.id))
    session.execute(update(TicketEvent).where(TicketEvent.ticket_id == source.id)
                    .values(ticket_id=target.id))
    _move_participants(session, source, target)
    session.expire(source, ["messages", "events", "participants"])
    session.expire(target, ["messages", "events", "participants"])
    _join_waiting(source, target)
    set_status(session, source, "closed", actor, f"merged into #{target.number}", now)
    source.merged_into_id = target.id
    record_event(session, source, "merged", actor, new=target.number,
                 detail=f"merged into #{target.number}")
    record_event(session, target, "merged", actor, old=source.number,
                 detail=f"#{source.number} merged into this ticket")
    target.updated_at = now
    return target


def _move_participants(session: Session, source: Ticket, target: Ticket) -> None:
    """`source`'s participants join `target` in Cc (its requester stays the requester);
    one already on `target` is not added twice."""
    there = select(Participant.contact_id).where(Participant.ticket_id == target.id)
    session.execute(delete(Participant).where(Participant.ticket_id == source.id,
                                              Participant.contact_id.in_(there)))
    session.execute(update(Participant).where(Participant.ticket_id == source.id)
                    .values(ticket_id=target.id, role="cc"))


def _join_waiting(source: Ticket, target: Ticket) -> None:
    """A customer waiting for an answer on `source` waits on `target` from then on."""
    waiting = [t for t in (source.next_response_start, target.next_response_start) if t]
    if waiting and target.first_response_at is not None:
        target.next_response_start = min(waiting)

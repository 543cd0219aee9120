"""Plain-value views of tickets for JSON output and templates (no lazy ORM objects leak)."""
from __future__ import annotations


from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from .models import Contact, Participant, Ticket, TicketEvent, iso, utcnow
from . import sla
from .tickets import token_for


def ticket_summary(ticket: Ticket, default_prefix: str) -> dict:
    return {
        "number": ticket.number,
        "token": token_for(ticket, default_prefix),
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "category": ticket.category,
        "product": ticket.product,
        "tags": list(ticket.tags or ()),
        "department": ticket.department.key,
        "requester": ticket.requester.email,
        "assignee": ticket.assignee.email if ticket.assignee else None,
        "linked_ticket": _linked_number(ticket),
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "first_response_at": iso(ticket.first_response_at),
        "resolved_at": iso(ticket.resolved_at),
        "closed_at": iso(ticket.closed_at),
        "first_response_due": iso(ticket.first_response_due),
        "next_response_due": iso(ticket.next_response_due),
        "resolution_due": iso(ticket.resolution_due),
        "overdue": sla.overdue(ticket, utcnow()),
    }


def _linked_number(ticket: Ticket) -> str | None:
    if ticket.linked_ticket_id is None:
        return None
    linked = object_session(ticket).get(Ticket, ticket.linked_ticket_id)
    return linked.number if linked else None


def event_view(event: TicketEvent) -> dict:
    return {"kind": event.kind, "actor": event.actor, "from": event.old_value,
            "to": event.new_value, "detail": event.detail, "at": iso(event.created_at)}


def ticket_detail(session: Session, ticket: Ticket, default_prefix: str) -> dict:
    data = ticket_summary(ticket, default_prefix)
    data["participants"] = [
        {"email": email, "role": role} for email, role in session.execute(
            select(Contact.email, Participant.role).join(Participant)
            .where(Participant.ticket_id == ticket.id).order_by(Participant.id))]
    data["messages"] = [{
        "id": m.id, "direction": m.direction, "kind": m.kind, "author": m.author_email,
        "author_name": m.author_name, "message_id": m.message_id,
        "in_reply_to": m.in_reply_to, "subject": m.subject, "automatic": m.automatic,
        "received_at": iso(m.received_at), "inbound_id": m.inbound_id,
        "text": m.text_body, "html": m.html_body,
        "attachments": [{
            "filename": a.filename, "stored_name": a.stored_name,
            "content_type": a.content_type, "sniffed_type": a.sniffed_type, "size": a.size,
            "sha256": a.sha256, "content_id": a.content_id, "inline": a.inline,
        } for a in m.attachments],
    } for m in ticket.messages]
    data["events"] = [event_view(e) for e in ticket.events]
    return data

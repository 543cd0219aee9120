"""A fresh status link by mail, asked for from the page of a link that expired.

Only an authentic link (signed by a key accepted now, expired or not) names a
contact; the mail goes to that contact's address on file, through the outbox like
every mail, as an automatic reply counted by the same hourly caps
(`outbound/limits.py`). Nothing the form says is an address.
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session

from ..config import Settings
from ..gateway import Gateway
from ..models import Attachment, Ticket
from ..outbound.contexts import ticket_context
from ..outbound.limits import over_rate_limit
from ..outbound.readers import to_reader
from ..signing import signer_for
from . import data
from .links import Link, LinkState, Scope, list_url, read

log = logging.getLogger("mailgate.web")
KIND = "status_link"


def send_fresh_link(gw: Gateway, token: str, now: dt.datetime) -> bool:
    """Queue the mail for the link `token` names; False when it names nobody or the
    contact had their share of automatic replies this hour."""
    state, link = read(signer_for(gw.settings), token, None, now)
    if state is LinkState.INVALID:
        return False
    with gw.db.unit_of_work() as session:
        queued = _queue(session, gw.settings, link, now)
    log.info("fresh status link %s", "queued" if queued else "not sent",
             extra={"fields": {"contact": link.contact, "scope": str(link.scope)}})
    return queued


def _queue(session: Session, settings: Settings, link: Link, now: dt.datetime) -> bool:
    who = data.contact(session, link.contact)
    ticket = _ticket_of(session, link)
    if who is None or ticket is None or over_rate_limit(session, settings, who.email, now):
        return False
    context = {**ticket_context(session, settings, ticket),
               "list_url": list_url(settings, who.id, now)}
    return to_reader(session, settings, ticket, who, KIND, context, now) is not None


def _ticket_of(session: Session, link: Link) -> Ticket | None:
    """The ticket the fresh mail is about: the link's own, its file's, or (a list link)
    the contact's latest."""
    if link.scope is Scope.TICKET:
        return data.visible_ticket(session, link.subject, link.contact)
    if link.scope is Scope.FILE:
        attachment = data.visible_attachment(session, link.subject, link.contact)
        return attachment.message.ticket if attachment is not None else None
    return data.latest_ticket(session, link.contact)

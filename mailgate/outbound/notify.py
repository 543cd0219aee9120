"""What mail a ticket event causes, queued in the caller's transaction, never sent here.

A ticket change and the mail it causes commit together: a ticket never exists
without its acknowledgement queued, and a rolled-back change sends nothing. The
sender job (`sender.py`) renders and delivers later. Contexts are plain values
(`contexts.py`); one mail goes to each reader (`readers.py`); automatic replies
are capped (`limits.py`).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import Settings
from ..mail.attachments import accepted_formats, refused_views
from ..models import Agent, Contact, Message, Participant, Ticket
from ..tickets import token_for
from .contexts import attachable, message_context, ticket_context
from .limits import over_rate_limit
from .outbox import Queued, suppressed
from .readers import to_agent, to_agents, to_customer, to_reader
from .reflect import reflected, safe_text
from .thread_headers import thread_headers

# Callers outside outbound/ (the pipeline, agent mail, jobs, the CLI) reach these
# as `notify.<name>` too.
from .contexts import department_sender, department_sender_for, locale_for  # noqa: F401
from .limits import network_of  # noqa: F401
from .outbox import queue_mail  # noqa: F401
from .readers import agent_recipients  # noqa: F401


def after_new_ticket(session: Session, settings: Settings, ticket: Ticket, message: Message,
                     may_autorespond: bool, refused: list[tuple[str, str]],
                     now: dt.datetime, network: str | None = None,
                     understood: list[dict] = (), no_ack: str = "") -> list[str]:
    """Acknowledgement (+ SMS) and rejection notice to the requester, notification to agents.
    `network`: the client network the mail came from (automatic-reply caps);
    `understood`: the fields the customer set, shown in the acknowledgement; `no_ack`:
    why none goes out (an admin's rule), or "". Returns trace lines."""
    notes = []
    suppressed(session, [ticket.requester.email] + agent_recipients(ticket))  # asked once
    base = ticket_context(session, settings, ticket)
    limited = over_rate_limit(session, settings, ticket.requester.email, now, network) \
        if may_autorespond and not no_ack else None
    if may_autorespond and no_ack:
        notes.append(f"notify: no acknowledgement, {no_ack}")
    elif may_autorespond and not limited:
        # the sender may be forged: repeat nothing of theirs but a cut, defanged subject
        # and name, so an acknowledgement can't carry someone's text to a victim
        safe = reflected(base)
        to_customer(session, settings, ticket, "ack",
                    {**safe, "understood": list(understood), "message": {"attachments": [
                        {"filename": safe_text(a.filename), "size": a.size}
                        for a in message.attachments]}},
                    now, answering=message, network=network)
        notes.append("notify: acknowledgement queued")
        if refused:
            _rejection(session, settings, ticket, safe, refused, now, network, message)
            notes.append("notify: rejection notice queued")
    elif may_autorespond:
        notes.append(f"notify: no acknowledgement, {limited}")
    else:
        notes.append("notify: automatic mail, no acknowledgement")
    rows = to_agents(session, settings, ticket, "new_ticket",
                     _for_agents(settings, base, message, refused), now, first=True)
    notes.append(f"notify: {len(rows)} agent notification(s) queued")
    return notes


def after_customer_reply(session: Session, settings: Settings, ticket: Ticket,
                         message: Message, may_autorespond: bool,
                         refused: list[tuple[str, str]], now: dt.datetime,
                         network: str | None = None, refused_command: str = "") -> list[str]:
    """Notify the agents; tell the customer about refused files, and about a command
    (`refused_command`, e.g. "#close") not run because nothing proved the sender."""
    base = ticket_context(session, settings, ticket)
    context = _for_agents(settings, base, message, refused)
    if refused_command:
        context["message"]["unverified"] = refused_command
    rows = to_agents(session, settings, ticket, "customer_reply", context, now,
                     only_assignee=True)
    notes = [f"notify: {len(rows)} agent notification(s) queued"]
    if not (refused or refused_command) or not may_autorespond:
        return notes
    author = message.author_email
    limited = over_rate_limit(session, settings, author, now, network)
    if limited:
        notes.append(f"notify: no notice to the customer, {limited}")
        return notes
    if refused:
        _rejection(session, settings, ticket, reflected(base), refused, now, network, message)
        notes.append("notify: rejection notice queued")
    if refused_command:
        _command_refused(session, settings, ticket, base, author, refused_command, now,
                         network)
        notes.append(f"notify: {author} told that {refused_command} was not run")
    return notes


def status_changed(session: Session, settings: Settings, ticket: Ticket, old: str, new: str,
                   reason: str = "", now: dt.datetime | None = None,
                   answering: Message | None = None) -> list[Queued]:
    """Status mail to the requester when the change is one the admin made customer-visible
    (`answering`: the customer's message that caused it, when the caller holds it)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    shown = "reopened" if old in ("resolved", "closed") and new == "open" else new
    if shown not in settings.outbound.notify_statuses:
        return []
    context = {**ticket_context(session, settings, ticket),
               "status": {"old": old, "new": shown, "reason": reason or ""}}
    return to_customer(session, settings, ticket, "status_change", context, now,
                       answering=answering)


def merged(session: Session, settings: Settings, source: Ticket, target: Ticket,
           now: dt.datetime) -> list[Queued]:
    """`source` went into `target`: one mail to each of their requesters (one only when
    the same customer wrote both), about `target` and continuing that reader's thread."""
    context = {**ticket_context(session, settings, target),
               "merged": {"number": source.number, "subject": source.subject,
                          "token": token_for(source, settings.threading.prefix)}}
    rows = [to_reader(session, settings, target, reader, "merged", context, now,
                      threading=thread_headers(session, target, reader))
            for reader in dict.fromkeys([target.requester, source.requester])]
    return [r for r in rows if r is not None]


def held_for_review(session: Session, settings: Settings, ticket: Ticket, agent: Agent,
                    quarantine_id: int, now: dt.datetime) -> Queued | None:
    """To the agent whose From was on mail held as unverified (pipeline/quarantine.py, tell_agent_held)."""
    if over_rate_limit(session, settings, agent.email, now):
        return None
    return to_agent(session, settings, ticket, agent, "held",
                    {"quarantine_id": quarantine_id}, now)


def agent_reply(session: Session, settings: Settings, ticket: Ticket, message: Message,
                agent: Agent, now: dt.datetime, status: dict | None = None) -> list[Queued]:
    """Relay an agent's answer to the requester and the Cc participants; `status`: the
    status change its commands made, told in the answer itself."""
    context = {**ticket_context(session, settings, ticket),
               "message": message_context(message),
               "agent": {"name": agent.name, "email": agent.email}}
    if status:
        context["status"] = status
    return to_customer(session, settings, ticket, "agent_reply", context, now, cc=True)


def _for_agents(settings: Settings, base: dict, message: Message,
                refused: list[tuple[str, str]]) -> dict:
    """What the agents' notification of `message` shows: the whole message, the
    files refused, and the files attached (up to `attach_limit`) or only listed."""
    files, big = attachable(message, settings.outbound.attach_limit)
    return {**base, "message": {**message_context(message), "refused": refused_views(refused)},
            "files": files, "big_attachments": big}


def _rejection(session, settings, ticket, base, refused, now, network=None,
               answering=None) -> None:
    context = {**base, "refused": [{"filename": safe_text(f), "reason": r} for f, r in refused],
               "reason": "", "limit_bytes": settings.limits.max_attachment_size,
               "accepted": accepted_formats(settings.limits)}
    to_customer(session, settings, ticket, "rejection", context, now, network=network,
                answering=answering)


def _command_refused(session, settings, ticket, base, author, command, now, network) -> None:
    """A short notice to the participant whose command we did not run (to them only;
    a stranger's command is just text, and they get nothing)."""
    reader = session.scalar(select(Contact).join(Participant).where(
        Contact.email == author, Participant.ticket_id == ticket.id))
    if reader is not None:
        to_reader(session, settings, ticket, reader, "command_refused",
                  {**reflected(base), "command": command}, now, network=network)

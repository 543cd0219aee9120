"""`mailgate outbox list|retry|send` and `mailgate template render`."""
from __future__ import annotations

import sys

from sqlalchemy import select

from .. import tickets as ops
from ..models import Message, Outbox, Ticket, iso, utcnow
from ..outbound import notify
from ..outbound.contexts import attachable, message_context, reader_context
from ..outbound.render import Templates
from ..outbound.samples import SAMPLES
from ..outbound.sender import OutboxSender
from .common import (EX_DATAERR, EX_USAGE, CommandError, gateway, print_json, print_table,
                     session_of)


def register(sub) -> None:
    out = sub.add_parser("outbox", help="outgoing mail and SMS").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = out.add_parser("list", help="messages waiting or failed (sent ones with --all)")
    p.add_argument("--failed", action="store_true", help="only failed or bounced")
    p.add_argument("--all", action="store_true", help="include sent messages")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=outbox_list)
    p = out.add_parser("retry", help="queue failed messages again")
    p.add_argument("id", type=int, nargs="?")
    p.add_argument("--all", action="store_true", help="every failed message")
    p.set_defaults(handler=outbox_retry)
    p = out.add_parser("send", help="deliver what is due now (the daemon does this itself)")
    p.set_defaults(handler=outbox_send)

    tpl = sub.add_parser("template", help="mail templates").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = tpl.add_parser("render", help="preview a template for a ticket")
    p.add_argument("name")
    p.add_argument("--ticket", help="ticket number (default: sample data)")
    p.add_argument("--locale", help="default: the ticket's requester, department or install")
    p.add_argument("--html", action="store_true", help="print the HTML part instead of text")
    p.set_defaults(handler=template_render)


def row_view(row: Outbox) -> dict:
    return {"id": row.id, "ticket": row.ticket.number if row.ticket else None,
            "channel": row.channel, "kind": row.kind, "locale": row.locale,
            "recipients": row.recipients, "message_id": row.message_id, "status": row.status,
            "attempts": row.attempts, "next_attempt_at": iso(row.next_attempt_at),
            "last_error": row.last_error, "created_at": iso(row.created_at),
            "sent_at": iso(row.sent_at)}


def outbox_list(settings, args) -> None:
    query = select(Outbox).order_by(Outbox.id.desc()).limit(args.limit)
    if args.failed:
        query = query.where(Outbox.status.in_(("failed", "bounced")))
    elif not args.all:
        query = query.where(Outbox.status.in_(("pending", "sending", "failed", "bounced")))
    with session_of(settings) as session:
        rows = [row_view(r) for r in session.scalars(query)]
    if args.json:
        print_json(rows)
        return
    print_table([[r["id"], r["status"], r["channel"], r["kind"], r["ticket"],
                  ",".join(r["recipients"])[:40], r["attempts"], (r["last_error"] or "")[:50]]
                 for r in rows],
                ["ID", "STATUS", "CHANNEL", "KIND", "TICKET", "TO", "TRIES", "ERROR"])


def outbox_retry(settings, args) -> None:
    if args.id is None and not args.all:
        raise CommandError("give an ID or --all", EX_USAGE)
    with session_of(settings) as session:
        query = select(Outbox).where(Outbox.status.in_(("failed", "bounced")))
        if not args.all:
            query = select(Outbox).where(Outbox.id == args.id)
        rows = list(session.scalars(query))
        if not rows:
            raise CommandError(f"no outbox message {args.id}", EX_DATAERR)
        for row in rows:
            row.status, row.attempts, row.last_error = "pending", 0, None
            row.next_attempt_at = notify.dt.datetime.now(notify.dt.timezone.utc)
            print(f"outbox {row.id}: queued again")


def outbox_send(settings, args) -> None:
    with gateway(settings, parse_workers=0) as gw:
        print(f"{OutboxSender(gw).run_once(limit=10_000)} handled")


def template_render(settings, args) -> None:
    templates = Templates(settings)
    kind = args.name.removeprefix("sms/")
    if args.ticket:
        with session_of(settings) as session:
            ticket = ops.get_ticket(session, args.ticket)
            context, sampled = ticket_preview(session, settings, kind, ticket)
            locale = args.locale or notify.locale_for(
                settings, ticket.requester if context["recipient"]["role"] == "customer"
                else None, ticket)
        if sampled:
            print(f"(sample values, not this ticket's: {', '.join(sampled)})", file=sys.stderr)
    else:
        context = SAMPLES.get(kind, SAMPLES["_default"])
        locale = args.locale or settings.outbound.default_locale
    if args.name.startswith("sms/"):
        print(templates.render_sms(kind, locale, context))
        return
    rendered = templates.render(args.name, locale, context)
    print(f"Subject: {rendered.subject}\n")
    sys.stdout.write(rendered.html if args.html and rendered.html else rendered.text)


# The message each kind of mail is about: the one that opened the ticket, the latest
# agent answer, or the latest customer message.
_ABOUT_FIRST, _ABOUT_ANSWER = {"ack", "new_ticket"}, {"agent_reply"}


def _message_about(kind: str, ticket: Ticket) -> Message | None:
    messages = list(ticket.messages)
    if kind in _ABOUT_FIRST:
        return messages[0] if messages else None
    wanted = "agent_reply" if kind in _ABOUT_ANSWER else "customer_reply"
    return next((m for m in reversed(messages) if m.kind == wanted), None)


def ticket_preview(session, settings, kind: str, ticket: Ticket) -> tuple[dict, list[str]]:
    """The context mail `kind` about `ticket` gets, from the ticket itself (its values,
    its requester or agent as the reader, its message, its last status change); sample
    values only for what the event that sends it would bring (a deadline, a list of
    commands…) or the ticket lacks (no agent answer yet), returned by name."""
    sample = SAMPLES.get(kind, SAMPLES["_default"])
    real = notify.ticket_context(session, settings, ticket)
    role = sample.get("recipient", {}).get("role", "customer")
    if role == "customer":
        reader = {"name": ticket.requester.name, "email": ticket.requester.email}
        real.update(reader_context(settings, ticket, ticket.requester, utcnow()))
        real["understood"] = []  # what a new ticket's mail set is known only as it is read
    else:
        addresses = notify.agent_recipients(ticket, only_assignee=True)
        reader = {"name": "", "email": addresses[0] if addresses else ""}
    real["recipient"] = {**reader, "role": role}
    message = _message_about(kind, ticket)
    if message is not None and "message" in sample:
        real["message"] = {**message_context(message), "refused": []}
        real["files"], real["big_attachments"] = attachable(
            message, settings.outbound.attach_limit)
        if "agent" in sample:
            real["agent"] = {"name": message.author_name, "email": message.author_email}
    change = next((e for e in reversed(ticket.events) if e.kind in ("status", "reopened")),
                  None)
    if "status" in sample and change is not None:
        real["status"] = {"old": change.old_value, "reason": change.detail or "",
                          "new": "reopened" if change.kind == "reopened" else ticket.status}
    return {**sample, **real}, sorted(set(sample) - set(real))

"""`mailgate outbox list|retry|send` and `mailgate template render`."""
from __future__ import annotations

import sys

from sqlalchemy import select

from .. import tickets as ops
from ..models import Outbox, iso
from ..outbound import notify
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
    if args.ticket:
        with session_of(settings) as session:
            ticket = ops.get_ticket(session, args.ticket)
            context = {**SAMPLES.get(args.name, SAMPLES["_default"]),
                       **notify.ticket_context(session, settings, ticket)}
            last = ticket.messages[-1] if ticket.messages else None
            if last is not None:
                context["message"] = notify.message_context(last)
            locale = args.locale or notify.locale_for(settings, ticket.requester, ticket)
    else:
        context = SAMPLES.get(args.name, SAMPLES["_default"])
        locale = args.locale or settings.outbound.default_locale
    if args.name.startswith("sms/"):
        print(templates.render_sms(args.name[4:], locale, context))
        return
    rendered = templates.render(args.name, locale, context)
    print(f"Subject: {rendered.subject}\n")
    sys.stdout.write(rendered.html if args.html and rendered.html else rendered.text)

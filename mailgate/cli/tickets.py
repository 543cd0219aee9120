"""`mailgate ticket …` and `mailgate message explain`."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from .. import sla
from .. import tickets as ops
from ..outbound import notify
from ..status_labels import status_label
from ..vocabulary import PRIORITIES, STATUSES
from ..models import Contact, Department, Inbound, Ticket
from ..views import ticket_detail, ticket_summary
from .common import (EX_DATAERR, EX_USAGE, CommandError, gateway, minutes, print_json,
                     print_table, session_of)


def register(sub) -> None:
    ticket = sub.add_parser("ticket", help="tickets").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = ticket.add_parser("list", help="list tickets, newest first")
    p.add_argument("--status", action="append", choices=STATUSES)
    p.add_argument("--department")
    p.add_argument("--since", help="created on or after DATE (YYYY-MM-DD or ISO 8601)")
    p.add_argument("--requester")
    p.add_argument("--overdue", action="store_true", help="only tickets past a deadline")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=ticket_list)
    p = ticket.add_parser("show", help="a ticket with its messages, attachments and events")
    p.add_argument("number")
    p.add_argument("--full", action="store_true", help="each message as it came, quoted "
                   "history included (parsed again from the raw store)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=ticket_show)
    p = ticket.add_parser("set", help="change status, priority or department")
    p.add_argument("number")
    p.add_argument("--status", choices=STATUSES)
    p.add_argument("--priority", choices=PRIORITIES)
    p.add_argument("--department")
    p.add_argument("--reason", help="a one-line reason, recorded with the change")
    p.set_defaults(handler=ticket_set)
    p = ticket.add_parser("merge", help="move a ticket's messages, participants and events "
                          "into another ticket and close it; both requesters are told")
    p.add_argument("source", metavar="FROM")
    p.add_argument("target", metavar="INTO")
    p.set_defaults(handler=ticket_merge)

    message = sub.add_parser("message", help="inbound messages").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = message.add_parser("explain", help="why an inbound message ended as it did")
    p.add_argument("id", type=int, help="inbound id (printed by ingest --json, ticket show)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=message_explain)


def parse_since(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"--since: not a date: {value!r}", EX_DATAERR) from error
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def ticket_list(settings, args) -> None:
    query = select(Ticket).order_by(Ticket.id.desc()).limit(args.limit)
    if args.status:
        query = query.where(Ticket.status.in_(args.status))
    if args.department:
        query = query.join(Department).where(Department.key == args.department)
    if args.since:
        query = query.where(Ticket.created_at >= parse_since(args.since))
    if args.requester:
        query = query.join(Contact, Ticket.requester_id == Contact.id).where(
            Contact.email == args.requester.lower())
    if args.overdue:
        now = ops.utcnow()
        query = query.where((Ticket.first_response_due <= now) | (Ticket.next_response_due <= now)
                            | (Ticket.resolution_due <= now))
    prefix = settings.threading.prefix
    with session_of(settings) as session:
        rows = [ticket_summary(t, prefix) for t in session.scalars(query)]
    if args.json:
        print_json(rows)
        return
    # STATUS as [statuses] names it in the default locale (--json keeps the fixed names)
    locale = settings.outbound.default_locale
    print_table([[r["number"], status_label(settings, r["status"], locale, r["department"]),
                  r["priority"], r["department"], r["requester"],
                  minutes(r["created_at"]), _next_due(r), r["subject"][:60]] for r in rows],
                ["NUMBER", "STATUS", "PRIORITY", "DEPARTMENT", "REQUESTER", "CREATED", "DUE",
                 "SUBJECT"])


def _next_due(row: dict) -> str:
    dues = [row[k] for k in ("first_response_due", "next_response_due", "resolution_due")
            if row[k]]
    return (minutes(min(dues)) + (" OVERDUE" if row["overdue"] else "")) if dues else ""


def ticket_show(settings, args) -> None:
    with session_of(settings) as session:
        data = ticket_detail(session, ops.get_ticket(session, args.number),
                             settings.threading.prefix)
        if not args.json:
            refused = _refused_by_message(session, data)
    if args.full:
        _with_originals(settings, data)
    if args.json:
        print_json(data)
        return
    print(f"{data['token']} {data['subject']}")
    for key in ("status", "priority", "category", "product", "department", "requester", "assignee",
                "linked_ticket", "created_at", "updated_at", "first_response_at",
                "resolved_at", "closed_at"):
        if data[key]:
            print(f"  {key}: {data[key]}")
    if data["tags"]:
        print(f"  tags: {', '.join(data['tags'])}")
    print(f"  participants: {', '.join(p['email'] for p in data['participants'])}")
    for m in data["messages"]:
        print(f"\n--- message {m['id']} {m['direction']} {m['kind']} from {m['author']} "
              f"at {m['received_at']} (inbound {m['inbound_id']})")
        text = (m["text"] or "").strip()
        print(text if args.full else text[:2000])
        for a in m["attachments"]:
            print(f"  [attachment] {a['filename']} {a['sniffed_type']} {a['size']} bytes "
                  f"-> {a['stored_name']}")
        for e in refused.get(m["id"], []):
            print(f"  [refused] {e['to']} ({e['from'] or 'type unknown'}): {e['detail']}")
    if data["events"]:
        print("\nevents:")
        for e in data["events"]:
            parts = (minutes(e["at"]), e["kind"], _change(e), e["actor"], e["detail"])
            print("  " + " ".join(part for part in parts if part))


def _with_originals(settings, data: dict) -> None:
    """Each message's text as it came (quotes, signature and all), parsed again from
    the raw store; a note where the raw bytes were not kept ([storage] keep_raw)."""
    ids = [m["inbound_id"] for m in data["messages"] if m["inbound_id"]]
    with gateway(settings, parse_workers=0) as gw:
        with gw.db.unit_of_work() as session:
            digests = dict(session.execute(select(Inbound.id, Inbound.sha256)
                                           .where(Inbound.id.in_(ids))).all())
        for m in data["messages"]:
            digest = digests.get(m["inbound_id"])
            if digest is None or not gw.storage.raw.exists(digest):
                m["text"] = f"(the original was not kept; as stored:)\n{m['text'] or ''}"
            else:
                m["text"] = gw.parser.parse(gw.storage.raw.get(digest)).text


def _change(event: dict) -> str:
    """An event's change in words: "new -> open", "as new" (created), or the value."""
    old, new = event["from"], event["to"]
    if old and new:
        return f"{old} -> {new}"
    if event["kind"] == "created":
        return f"as {new}"
    return new or old or ""


def _refused_by_message(session, data: dict) -> dict[int, list[dict]]:
    """The attachment_refused events of each message: its inbound trace names them."""
    events = [e for e in data["events"] if e["kind"] == "attachment_refused"]
    ids = {m["inbound_id"]: m["id"] for m in data["messages"] if m["inbound_id"]}
    found: dict[int, list[dict]] = {}
    for inbound_id, trace in session.execute(
            select(Inbound.id, Inbound.trace).where(Inbound.id.in_(ids))):
        for line in trace or []:
            event = next((e for e in events if line == f"attachment refused: {e['to']}: "
                          f"{e['detail']}"), None)
            if event is not None:
                events.remove(event)
                found.setdefault(ids[inbound_id], []).append(event)
    return found


def ticket_set(settings, args) -> None:
    if not (args.status or args.priority or args.department):
        raise CommandError("nothing to set: give --status, --priority or --department",
                           EX_USAGE)
    actor = "cli"
    with session_of(settings) as session:
        ticket = ops.get_ticket(session, args.number)
        changed = []
        old = ticket.status
        if args.status and ops.set_status(session, ticket, args.status, actor, args.reason):
            changed.append(f"status {args.status}")
            if notify.status_changed(session, settings, ticket, old, args.status,
                                     args.reason or ""):
                changed.append("customer notified")
        if args.priority and ops.set_priority(session, ticket, args.priority, actor):
            changed.append(f"priority {args.priority}")
        if args.department:
            dept = ops.department_by_key(session, args.department)
            if ops.set_department(session, ticket, dept, actor):
                changed.append(f"department {dept.key}")
        sla.refresh(settings, ticket, ops.utcnow())
        print(f"#{ticket.number}: " + (", ".join(changed) if changed else "unchanged"))


def ticket_merge(settings, args) -> None:
    now = ops.utcnow()
    with session_of(settings) as session:
        source = ops.get_ticket(session, args.source)
        target = ops.get_ticket(session, args.target)
        try:
            target = ops.merge(session, source, target, "cli", now)
        except ops.MergeRefused as refused:
            raise CommandError(str(refused), EX_DATAERR) from refused
        for ticket in (source, target):
            sla.refresh(settings, ticket, now)
        told = notify.merged(session, settings, source, target, now)
        print(f"#{source.number} merged into #{target.number}, "
              f"{len(told)} requester(s) told")


def message_explain(settings, args) -> None:
    with session_of(settings) as session:
        record = session.get(Inbound, args.id)
        if record is None:
            raise CommandError(f"no inbound message {args.id}", EX_DATAERR)
        ticket = session.get(Ticket, record.ticket_id) if record.ticket_id else None
        data = {"id": record.id, "received_at": record.received_at.isoformat(),
                "source": record.source, "message_id": record.message_id,
                "sha256": record.sha256, "envelope_from": record.envelope_from,
                "envelope_to": record.envelope_to, "size": record.size,
                "outcome": record.outcome, "ticket": ticket.number if ticket else None,
                "trace": record.trace}
    if args.json:
        print_json(data)
        return
    print(f"inbound {data['id']} via {data['source']} at {data['received_at']}: "
          f"{data['outcome']}" + (f" #{data['ticket']}" if data["ticket"] else ""))
    print(f"  Message-ID: {data['message_id'] or '(none)'}  sha256: {data['sha256'][:16]}…")
    if data["envelope_to"] or data["envelope_from"] is not None:
        print(f"  envelope: from <{data['envelope_from'] or ''}> to {data['envelope_to']}")
    for line in data["trace"]:
        print(f"  {line}")

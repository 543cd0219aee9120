"""`mailgate quarantine list|show|retry|discard`."""
from __future__ import annotations

import email.parser
import email.policy
import sys

from ..errors import Rejection
from ..models import Quarantine, iso
from ..pipeline import quarantine as q, retry_quarantined
from .common import (EX_DATAERR, EX_OK, EX_USAGE, CommandError, gateway, minutes,
                     print_json, print_table, session_of)


def register(sub) -> None:
    quar = sub.add_parser("quarantine", help="messages that could not be processed") \
        .add_subparsers(dest="action", required=True, metavar="ACTION")
    p = quar.add_parser("list", help="entries waiting for an admin")
    p.add_argument("--all", action="store_true", help="include resolved entries")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=quarantine_list)
    p = quar.add_parser("show", help="an entry with the message's headers")
    p.add_argument("id", type=int)
    p.add_argument("--raw", action="store_true",
                   help="print the raw message (byte for byte when redirected; on a "
                        "terminal without its control characters)")
    p.set_defaults(handler=quarantine_show)
    p = quar.add_parser("retry", help="run entries through the pipeline again")
    p.add_argument("id", type=int, nargs="?")
    p.add_argument("--all", action="store_true",
                   help="every unresolved entry but spam (release spam one ID at a time)")
    p.add_argument("--as", dest="vouched", choices=("agent", "customer"), default="",
                   help="for mail held as unverified: you vouch that the agent sent it, "
                        "or it is to be treated as a customer's")
    p.set_defaults(handler=quarantine_retry)
    p = quar.add_parser("discard", help="give up on an entry: resolved with your reason, left "
                                        "out of the list; its raw bytes stay")
    p.add_argument("id", type=int)
    p.add_argument("--reason", required=True, help="why, e.g. \"no From, spam\"")
    p.set_defaults(handler=quarantine_discard)


def entry_view(entry: Quarantine) -> dict:
    return {"id": entry.id, "created_at": iso(entry.created_at), "source": entry.source,
            "error_class": entry.error_class, "error": entry.error, "attempts": entry.attempts,
            "size": entry.size, "sha256": entry.sha256, "envelope_from": entry.envelope_from,
            "envelope_to": entry.envelope_to, "last_attempt_at": iso(entry.last_attempt_at),
            "resolved_at": iso(entry.resolved_at), "resolution": entry.resolution}


def quarantine_list(settings, args) -> None:
    with session_of(settings) as session:
        rows = [entry_view(e) for e in q.entries(session, include_resolved=args.all)]
    if args.json:
        print_json(rows)
        return
    print_table([[r["id"], minutes(r["created_at"]), r["source"], r["error_class"], r["attempts"],
                  r["resolution"] or "", r["error"][:70]] for r in rows],
                ["ID", "CREATED", "SOURCE", "CLASS", "TRIES", "RESOLVED", "ERROR"])


# What an empty field of an entry means, in `quarantine show`.
_MEANING_OF_NONE = {"envelope_from": "unknown (not given by the transport)",
                    "resolved_at": "not resolved", "resolution": "waiting for an admin"}


def quarantine_show(settings, args) -> None:
    with gateway(settings, parse_workers=0) as gw:
        with gw.db.unit_of_work() as session:
            entry = session.get(Quarantine, args.id)
            if entry is None:
                raise CommandError(f"no quarantine entry {args.id}", EX_DATAERR)
            view = entry_view(entry)
        raw = gw.storage.raw.get(view["sha256"])
    if args.raw:
        if sys.stdout.isatty():
            print(raw.decode("utf-8", "surrogateescape"), end="")
        else:
            sys.stdout.flush()
            sys.stdout.buffer.write(raw)
        return
    for key, value in view.items():
        print(f"{key}: {_MEANING_OF_NONE.get(key, '') if value is None else value}")
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(
        raw[:65536])
    print("\nheaders:")
    for name in ("From", "To", "Cc", "Subject", "Date", "Message-ID", "Content-Type"):
        if headers.get(name):
            print(f"  {name}: {str(headers.get(name))[:200]}")


def quarantine_retry(settings, args) -> int:
    if args.id is None and not args.all:
        raise CommandError("give an ID or --all", EX_USAGE)
    if args.vouched and args.all:
        raise CommandError("--as is for one entry at a time, not --all", EX_USAGE)
    with gateway(settings) as gw:
        if args.all:
            with gw.db.unit_of_work() as session:
                # held spam is released one entry at a time, after a look: never in bulk
                ids = [e.id for e in q.entries(session) if e.error_class != Rejection.SPAM]
        else:
            ids = [args.id]
        still = 0
        for entry_id in ids:
            try:
                result = retry_quarantined(gw, entry_id, args.vouched)
            except ValueError as error:
                raise CommandError(str(error), EX_DATAERR) from error
            still += result.outcome == "quarantined"
            print(f"quarantine {entry_id}: {result.outcome}"
                  + (f" #{result.ticket}" if result.ticket else "")
                  + (f" ({result.reason})" if result.reason else ""))
    return EX_DATAERR if still else EX_OK  # still quarantined: the input is not usable yet


def quarantine_discard(settings, args) -> None:
    with session_of(settings) as session:
        try:
            entry = q.discard(session, args.id, args.reason)
        except ValueError as error:
            raise CommandError(str(error), EX_DATAERR) from error
        print(f"quarantine {entry.id}: {entry.resolution}")

"""The one path every inbound message takes, whatever brought it (pipe, SMTP, LMTP,
IMAP, an admin's retry):

    raw bytes -> keep raw -> precheck -> parse (bounded) -> one transaction over STEPS

Each step is a module with `step(ctx) -> Result | None`; the first to return a
Result ends the path (record, the last step, always does). `ingest()` returns once
the outcome is durable: committed, or the raw message kept in quarantine. It
raises TemporaryFailure only when nothing could be stored (database unreachable,
disk full): the caller answers "try again".
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from sqlalchemy import exc

from ..errors import MessageRejected, Rejection, TemporaryFailure
from ..gateway import Gateway
from ..mail.parse import ParsedMessage
from ..mail.precheck import precheck
from ..models import Inbound
from ..storage import sha256_hex
from ..vocabulary import Outcome, Source
from . import (agent, apply, author, dedup, deadlines, guard, notify, quarantine, record,
               reports, route, rules, thread, verp)
from . import my_tickets
from .context import Context
from .envelope import Envelope, Result

STEPS = (
    dedup,      # seen before: nothing changes again
    verp,       # to our tagged bounce address: marks what we sent as bounced
    guard,      # automatic mail, lists, loops
    reports,    # bounces and read receipts about our mail: an event
    author,     # From, the requester, and what proves them
    my_tickets,  # "#tickets": the customer's list, never a ticket
    route,      # the department, by the address it was sent to
    rules,      # the admin's [[rules]]: spam/ignore end here; department, fields for apply
    thread,     # the ticket it continues, if any
    agent,      # a proven agent's answer or #new
    apply,      # the ticket made or continued, the message and attachments stored
    deadlines,  # response and resolution due times
    notify,     # acknowledgement, agent notification, status mail: outbox rows
    record,     # the outcome on the inbound row
)

log = logging.getLogger("mailgate.pipeline")


def ingest(gw: Gateway, raw: bytes, envelope: Envelope,
           on_parsed: Callable[[], None] | None = None) -> Result:
    """The whole path for one message. `on_parsed` is told when parsing is done
    (a bounded worker reports it, so that its overseer knows what a stall was)."""
    started = time.monotonic()
    digest = sha256_hex(raw)
    try:
        if gw.settings.storage.keep_raw:
            gw.storage.raw.put(raw, digest)
        precheck(raw, gw.settings.limits)
        parsed = gw.parser.parse(raw)
        if on_parsed is not None:
            on_parsed()
        result = _in_one_transaction(gw, parsed, raw, digest, envelope)
    except TemporaryFailure:
        raise
    except OSError as error:  # raw store or attachment store: disk full, permissions
        raise TemporaryFailure(f"storage: {error}") from error
    except MessageRejected as error:
        result = quarantine.keep(gw, raw, digest, envelope, error.kind, error.reason)
        result.unusable = error.kind == Rejection.UNUSABLE
        if error.kind == Rejection.UNVERIFIED and error.about and \
                envelope.source != Source.RETRY:
            result.queued = quarantine.tell_agent_held(gw, *error.about,
                                                       result.quarantine_id)
    except Exception as error:
        log.exception("pipeline failed on %s message %s", envelope.source, digest[:12])
        result = quarantine.keep(gw, raw, digest, envelope, Rejection.BUG,
                                 f"{error.__class__.__name__}: {error}")
    result.seconds = time.monotonic() - started
    return result


def _in_one_transaction(gw: Gateway, parsed: ParsedMessage, raw: bytes, digest: str,
                        envelope: Envelope) -> Result:
    # A unique-key race (the same message or the same new contact committed by
    # another worker meanwhile) is settled by running the unit of work again.
    for attempt in range(3):
        try:
            with gw.db.unit_of_work() as session:
                session.autoflush = False  # one flush at the end: a few statements
                now = gw.now()
                row = Inbound(message_id=parsed.message_id, sha256=digest,
                              source=envelope.source, envelope_from=envelope.mail_from,
                              envelope_to=list(envelope.rcpt_to), size=len(raw),
                              outcome=Outcome.NEW.value, received_at=now, trace=[])
                ctx = Context(session, gw, parsed, raw, digest, envelope, now, row)
                ctx.trace.extend(f"parse: {note}" for note in parsed.notes)  # charset repairs
                return run_steps(ctx)
        except exc.IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def run_steps(ctx: Context) -> Result:
    for module in STEPS:
        result = module.step(ctx)
        if result is not None:
            return result
    raise AssertionError("the record step ends every path")

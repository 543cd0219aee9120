"""The one path every inbound message takes, whatever brought it (pipe, SMTP, LMTP, IMAP).

    raw bytes -> precheck -> parse (bounded worker) -> [one transaction:
        dedup -> guard -> route -> thread -> apply -> record] -> commit

`ingest()` returns a `Result` once the outcome is durable: committed, or the raw
message kept in quarantine. It raises TemporaryFailure only when nothing could
be stored (database unreachable, disk full): the caller answers "try again".
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import exc, select
from sqlalchemy.orm import Session

from . import quarantine, tickets
from .apply import apply, requester_address
from .errors import MessageRejected, TemporaryFailure
from .gateway import Gateway
from .inbound import guard, route
from .inbound.parse import ParsedMessage
from .inbound.precheck import header_block, precheck
from .models import Inbound, Quarantine, utcnow
from .storage import sha256_hex
from .threading import resolve
from .threading.token import find_tokens

log = logging.getLogger("mailgate.pipeline")


@dataclass(frozen=True)
class Envelope:
    source: str  # pipe | smtp | lmtp | imap | retry
    mail_from: str | None = None  # None: unknown; "": null reverse-path
    rcpt_to: tuple[str, ...] = ()
    mailbox_default: str = ""  # department of the IMAP mailbox it came from


@dataclass
class Result:
    outcome: str  # new | appended | duplicate | ignored | bounce | quarantined
    ticket: str | None = None  # ticket number
    inbound_id: int | None = None
    quarantine_id: int | None = None
    reason: str = ""
    trace: list[str] = field(default_factory=list)
    seconds: float = 0.0
    unusable: bool = False  # not mail at all (exit status 65 for the pipe)


def dedup_key(msg: ParsedMessage, raw: bytes) -> str:
    """The identity of a message across transports and redeliveries.

    The Message-ID together with sender, date and subject: the same message seen
    twice carries all four unchanged, while a broken mailer that stamps every
    message with one constant Message-ID still gets each of them through. Without
    a Message-ID the body bytes stand in for it.
    """
    basis = "\0".join([msg.message_id or "", msg.from_addr or "", msg.date, msg.subject])
    if msg.message_id:
        return "m:" + sha256_hex(basis.encode("utf-8", "replace"))
    body = raw[len(header_block(raw)):]
    return "c:" + sha256_hex(basis.encode("utf-8", "replace") + b"\0" + body)


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
        result = _process_with_retry(gw, parsed, raw, digest, envelope)
    except TemporaryFailure:
        raise
    except OSError as error:  # raw store or attachment store: disk full, permissions
        raise TemporaryFailure(f"storage: {error}") from error
    except MessageRejected as error:
        result = quarantine.keep(gw, raw, digest, envelope, error.kind, error.reason)
        result.unusable = error.kind == "unusable"
    except Exception as error:
        log.exception("pipeline failed on %s message %s", envelope.source, digest[:12])
        result = quarantine.keep(gw, raw, digest, envelope, "bug",
                                 f"{error.__class__.__name__}: {error}")
    result.seconds = time.monotonic() - started
    return result


def _process_with_retry(gw: Gateway, parsed: ParsedMessage, raw: bytes, digest: str,
                        envelope: Envelope) -> Result:
    # A unique-key race (the same message or the same new contact committed by
    # another worker meanwhile) is settled by running the unit of work again.
    for attempt in range(3):
        try:
            with gw.db.unit_of_work() as session:
                return process(session, gw, parsed, raw, digest, envelope)
        except exc.IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def process(session: Session, gw: Gateway, msg: ParsedMessage, raw: bytes, digest: str,
            envelope: Envelope) -> Result:
    """Dedup, guard, route, thread and apply one parsed message inside `session`."""
    session.autoflush = False  # one flush at the end: the rows go out in a few statements
    settings = gw.settings
    now = gw.now()
    trace: list[str] = []
    record = Inbound(message_id=msg.message_id, sha256=digest, source=envelope.source,
                     envelope_from=envelope.mail_from, envelope_to=list(envelope.rcpt_to),
                     size=len(raw), outcome="new", received_at=now, trace=[])
    session.add(record)

    def finish(outcome: str, ticket=None, reason: str = "") -> Result:
        record.outcome = outcome
        record.ticket = ticket
        record.trace = list(trace)
        session.flush()
        return Result(outcome, ticket.number if ticket is not None else None, record.id,
                      reason=reason, trace=list(trace))

    # dedup
    key = dedup_key(msg, raw)
    earlier = session.scalar(select(Inbound).where(Inbound.dedup_key == key))
    if earlier is not None:
        trace.append(f"dedup: same {'Message-ID' if key[0] == 'm' else 'content'} as "
                     f"inbound #{earlier.id} ({earlier.outcome})")
        ticket = session.get(tickets.Ticket, earlier.ticket_id) if earlier.ticket_id else None
        return finish("duplicate", ticket)
    record.dedup_key = key

    # guard
    cands = route.candidates(msg, list(envelope.rcpt_to))
    lookups = route.lookup_keys(cands)
    if msg.from_addr:
        lookups |= route.lookup_keys([(msg.from_addr, "from")])
    known = tickets.directory(session, lookups)
    own = set(settings.gateway.own_addresses)
    if known.is_own(msg.from_addr, settings.gateway.own_addresses):
        own.add(msg.from_addr)
    verdict = guard.judge(msg, envelope.mail_from, own, settings.gateway.instance,
                          settings.limits.max_received)
    trace.append(f"guard: {verdict.category}" +
                 (f" ({'; '.join(verdict.reasons)})" if verdict.reasons else ""))
    if verdict.category == "loop":
        return finish("ignored", reason="mail loop")
    if verdict.category in ("bounce", "mdn"):
        return _record_report(session, msg, verdict.category, trace, finish)

    sender = requester_address(msg, verdict.no_autorespond)
    if sender is None:
        raise MessageRejected("no usable From address", "unusable")

    # route
    routed = route.route(cands, known.routes, settings.routing.catch_all,
                         envelope.mailbox_default)
    if routed and routed.department not in known.department_ids:
        raise MessageRejected(f"department {routed.department!r} does not exist", "route")
    trace.append(f"route: {routed.address or '-'} ({routed.via}) -> {routed.department}"
                 + (f", +tag {routed.tag}" if routed.tag else "") if routed
                 else f"route: none of {[a for a, _ in cands]} is a department address")

    # thread
    decision = thread(session, msg, sender, settings, known.prefixes, now, trace)
    trace.append(f"thread: {decision.action} — {decision.reason}")

    if decision.action in ("new", "new_linked") and not verdict.may_open_ticket:
        return finish("ignored", reason=f"{verdict.category} does not open tickets")
    if decision.action in ("new", "new_linked") and routed is None and decision.ticket is None:
        raise MessageRejected(f"no department for recipients {[a for a, _ in cands]}", "route")

    # apply
    applied = apply(session, gw.storage, settings, msg, decision,
                    known.department_ids[routed.department] if routed else None, sender,
                    automatic=not verdict.may_open_ticket,
                    own_addresses=own | set(known.routes), inbound=record, now=now)
    for name, reason in applied.refused:
        trace.append(f"attachment refused: {name}: {reason}")
    return finish("new" if applied.created else "appended", applied.ticket)


def thread(session: Session, msg: ParsedMessage, sender: str, settings, prefixes, now, trace
           ) -> resolve.Decision:
    """Look up the tickets the token and the headers point at, then decide."""
    token_ticket = None
    for number, valid in find_tokens(msg.subject, {settings.threading.prefix, *prefixes}):
        if not valid:
            trace.append(f"thread: token #{number} has a wrong check digit; ignored")
            continue
        token_ticket = tickets.ticket_by_number(session, number)
        if token_ticket is not None:
            break
        trace.append(f"thread: token #{number} names no ticket; ignored")
    header_ticket, rule = None, ""
    if token_ticket is None and msg.in_reply_to:
        header_ticket, _ = tickets.ticket_by_message_ids(session, msg.in_reply_to)
        rule = "In-Reply-To"
    if token_ticket is None and header_ticket is None and msg.references:
        header_ticket, _ = tickets.ticket_by_message_ids(session, msg.references)
        rule = "References"
    return resolve.decide(tickets.view(session, token_ticket),
                          tickets.view(session, header_ticket), rule, sender, now,
                          settings.threading)


def _record_report(session, msg: ParsedMessage, category: str, trace: list[str], finish
                   ) -> Result:
    """A bounce or read receipt about a message of ours becomes an event on its ticket."""
    original = msg.report.original_message_id if msg.report else msg.mdn_original_id
    ticket, _ = tickets.ticket_by_message_ids(session, [original] if original else [])
    if ticket is None:
        trace.append(f"{category}: not about a message of ours")
        return finish("ignored", reason=f"{category} not matched")
    if category == "bounce":
        report = msg.report
        detail = (f"{report.action} {report.status} for {', '.join(report.recipients)}: "
                  f"{report.diagnostic}" if report else msg.subject)
        tickets.record_event(session, ticket, "bounce", msg.from_addr or "", detail=detail)
    else:
        tickets.record_event(session, ticket, "read_receipt", msg.from_addr or "")
    trace.append(f"{category}: recorded on #{ticket.number} (about {original})")
    return finish("bounce" if category == "bounce" else "ignored", ticket)


def retry_quarantined(gw: Gateway, entry_id: int) -> Result:
    """Run a quarantined message through the pipeline again; resolve the entry if it passes."""
    with gw.db.unit_of_work() as session:
        entry = session.get(Quarantine, entry_id)
        if entry is None:
            raise tickets.NotFound(f"no quarantine entry {entry_id}")
        if entry.resolved_at is not None:
            raise ValueError(f"quarantine entry {entry_id} is already resolved")
        envelope = Envelope("retry", entry.envelope_from, tuple(entry.envelope_to or ()))
        sha = entry.sha256
    raw = gw.storage.raw.get(sha)
    result = ingest(gw, raw, envelope)
    with gw.db.unit_of_work() as session:
        entry = session.get(Quarantine, entry_id)
        entry.last_attempt_at = utcnow()
        if result.outcome != "quarantined":
            entry.resolved_at = utcnow()
            entry.resolution = f"retried: {result.outcome}" + (
                f" #{result.ticket}" if result.ticket else "")
    return result

"""The one path every inbound message takes, whatever brought it (pipe, SMTP, LMTP, IMAP).

    raw bytes -> precheck -> parse (bounded worker) -> [one transaction:
        dedup -> guard -> route -> thread -> apply -> record] -> commit

`ingest()` returns a `Result` once the outcome is durable: committed, or the raw
message kept in quarantine. It raises TemporaryFailure only when nothing could
be stored (database unreachable, disk full): the caller answers "try again".
"""
from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Callable

from sqlalchemy import exc, select
from sqlalchemy.orm import Session

from . import agent_mail, quarantine, sla, tickets
from .apply import apply, requester_address
from .errors import MessageRejected, TemporaryFailure
from .gateway import Gateway
from .mail import authres, guard, route
from .mail.headers import normalize_address
from .mail.commands import split_commands
from .mail.parse import ParsedMessage
from .mail.quotes import strip_quoted
from .mail.precheck import header_block, precheck
from .models import Inbound, Outbox, Quarantine, utcnow
from .outbound import bounces, notify
from .proof import Proof
from .signing import signer_for
from .storage import sha256_hex
from .mail import threads as resolve
from .mail.tokens import find_tokens

log = logging.getLogger("mailgate.pipeline")


@dataclass(frozen=True)
class Envelope:
    source: str  # pipe | smtp | lmtp | imap | retry
    mail_from: str | None = None  # None: unknown; "": null reverse-path
    rcpt_to: tuple[str, ...] = ()
    mailbox_default: str = ""  # department of the IMAP mailbox it came from
    # only an admin's `quarantine retry --as` sets this, never a transport: "agent"
    # (the agent From is genuine) or "customer" (treat it as a customer's mail)
    vouched: str = ""
    peer: str = ""  # SMTP/LMTP client address
    retried_from: str = ""  # a retried message: the source it first came from


def boundary(raw: bytes, envelope: Envelope, settings) -> authres.Boundary:
    """What our own mail boundary recorded in the headers (authres.py), if anything
    of it can be believed. Mail that reached our SMTP/LMTP port from a client that
    is not a trusted relay has no boundary in front of it: its client is the peer,
    and none of its headers counts. The pipe and IMAP sit behind the MTA that wrote
    them. A retried message is believed as far as its first transport was."""
    source = envelope.retried_from or envelope.source
    security = settings.security
    if source in ("smtp", "lmtp"):
        if not _trusted_relay(envelope.peer, settings.smtp.trusted_relays):
            return authres.Boundary(client=envelope.peer)
    elif source not in ("pipe", "imap"):
        return authres.Boundary()
    if not security.trusted_authserv_ids and not security.internal_hosts:
        return authres.Boundary()
    headers = BytesHeaderParser(policy=compat32).parsebytes(header_block(raw)).items()
    if source in ("smtp", "lmtp"):
        headers = headers[1:]  # the Received: line mailgate's own SMTP server added
    return authres.read_boundary(headers, security.trusted_authserv_ids,
                                 security.internal_hosts)


def _trusted_relay(peer: str, networks: tuple[str, ...]) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)


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
    queued: bool = False  # outgoing mail or SMS was queued: wake the sender


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
        if error.kind == "unverified" and error.about and envelope.source != "retry":
            result.queued = _tell_agent_held(gw, *error.about, result.quarantine_id)
    except Exception as error:
        log.exception("pipeline failed on %s message %s", envelope.source, digest[:12])
        result = quarantine.keep(gw, raw, digest, envelope, "bug",
                                 f"{error.__class__.__name__}: {error}")
    result.seconds = time.monotonic() - started
    return result


def _tell_agent_held(gw: Gateway, number: str, address: str, quarantine_id: int) -> bool:
    """Tell the agent whose address was on mail we held: if they wrote it, it did not
    reach the customer; if not, someone used their address. At most
    `ack_limit_per_hour` such notices per agent; the message stays held either way."""
    try:
        with gw.db.unit_of_work() as session:
            ticket = tickets.ticket_by_number(session, number)
            agent = tickets.agent_by_email(session, address)
            if ticket is None or agent is None:
                return False
            return notify.held_for_review(session, gw.settings, ticket, agent, quarantine_id,
                                          gw.now()) is not None
    except Exception:  # the message is safe in quarantine; the notice is a courtesy
        log.exception("could not queue the held-mail notice for %s", address)
        return False


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
        queued = any(isinstance(row, Outbox) for row in session.new)
        session.flush()
        return Result(outcome, ticket.number if ticket is not None else None, record.id,
                      reason=reason, trace=list(trace), queued=queued)

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
    verp = bounces.read_verp(settings, signer_for(settings), list(envelope.rcpt_to)
                             + msg.delivered_to + msg.to, now)
    if verp is not None:
        return _record_verp(session, msg, raw, verp, settings, trace, finish)
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

    # the author is From, whoever Reply-To names: Reply-To only says where a new
    # contact wants answers, never whose ticket this may join or who gives commands
    author = msg.from_addr
    if author is None:
        raise MessageRejected("no usable From address", "unusable")
    if msg.sender_note:  # From was odd: how the author's address was found (senders.py)
        trace.append(f"sender: {msg.sender_note}")
    requester = requester_address(msg, verdict.no_autorespond)
    seen = boundary(raw, envelope, settings)
    # Authentication-Results speak for the From domain only, not for an address
    # recovered from Sender, Return-Path or Reply-To
    proof = Proof(tuple(msg.in_reply_to + msg.references),
                  seen.checks if msg.sender_via == "from" else (), signer_for(settings),
                  now, settings.security.dmarc_alignment == "strict")
    may_autorespond = verdict.may_autorespond
    if may_autorespond and settings.outbound.ack_requires_auth and \
            authres.dmarc_failed(list(seen.checks), author):
        may_autorespond = False
        trace.append(f"authentication: DMARC failed for {author}; no automatic reply")

    # route
    routed = route.route(cands, known.routes, settings.routing.catch_all,
                         envelope.mailbox_default)
    if routed and routed.department not in known.department_ids:
        raise MessageRejected(f"department {routed.department!r} does not exist", "route")
    trace.append(f"route: {routed.address or '-'} ({routed.via}) -> {routed.department}"
                 + (f", +tag {routed.tag}" if routed.tag else "") if routed
                 else f"route: none of {[a for a, _ in cands]} is a department address")

    # thread
    # `looked_at` keeps the ticket rows threading read referenced for the rest of the
    # unit of work: the session holds rows weakly, and later gets then find them there
    decision, looked_at = thread(session, msg, author, settings, known.prefixes, now, trace)
    trace.append(f"thread: {decision.action} — {decision.reason}")

    # agents: From alone proves nothing (agent_mail.py)
    automatic = not verdict.may_open_ticket
    if not automatic and envelope.vouched != "customer":
        handled = _from_agent(session, gw, msg, decision, routed, known, record, now, trace,
                              proof, vouched=envelope.vouched == "agent")
        if handled is not None:
            sla.refresh(settings, handled.ticket, now)
            trace.extend(handled.notes)
            return finish("appended" if decision.ticket else "new", handled.ticket)

    if decision.action in ("new", "new_linked") and not verdict.may_open_ticket:
        return finish("ignored", reason=f"{verdict.category} does not open tickets")
    if decision.action in ("new", "new_linked") and routed is None and decision.ticket is None:
        raise MessageRejected(f"no department for recipients {[a for a, _ in cands]}", "route")

    # apply
    applied = apply(session, gw.storage, settings, msg, decision,
                    known.department_ids[routed.department] if routed else None, author,
                    automatic=automatic, own_addresses=own | set(known.routes), inbound=record,
                    now=now, requester=requester, proof=proof)
    if not msg.sender_verified:
        tickets.record_event(session, applied.ticket, "sender_unverified", author,
                             detail=f"sender not verified: {msg.sender_note}"[:2000])
    for name, reason in applied.refused:
        trace.append(f"attachment refused: {name}: {reason}")
    trace.extend(applied.notes)

    # notify (queued in this same transaction)
    if not automatic:
        trace.extend(notify_inbound(session, settings, applied, may_autorespond, now,
                                    notify.network_of(seen.client)))
    return finish("new" if applied.created else "appended", applied.ticket)


def _from_agent(session, gw, msg, decision, routed, known, record, now, trace,
                proof: Proof, vouched: bool = False):
    """The agent path, when From is an agent of the department and a proof holds
    (or an admin vouched for it when releasing it from quarantine).

    Returns None for everyone else. An unproven agent From on a ticket where that
    address is no participant is held in quarantine for an admin to look at.
    """
    ticket = session.get(tickets.Ticket, decision.ticket.id) if decision.ticket else None
    department_id = ticket.department_id if ticket else (
        known.department_ids.get(routed.department) if routed else None)
    agent = agent_mail.agent_of(session, msg.from_addr, department_id) if department_id else None
    if agent is None:
        return None
    how = "an admin (quarantine retry --as agent)" if vouched else \
        proof.for_agent(ticket.id if ticket else None, agent.id, agent.email)
    if how is None:
        log.warning("mail with agent From %s but no proof", agent.email,
                    extra={"fields": {"ticket": ticket.number if ticket else None}})
        trace.append(f"agent: From is agent {agent.email} but nothing proves it")
        if ticket is not None and msg.from_addr not in decision.ticket.participants:
            raise MessageRejected(f"From: {agent.email} (an agent) without a signed reference "
                                  "or trusted authentication; held for review", "unverified",
                                  about=(ticket.number, agent.email))
        return None
    trace.append(f"agent: {agent.email} verified by {how}")
    if ticket is not None:
        return agent_mail.handle_reply(session, gw.storage, gw.settings, msg, ticket, agent,
                                       record, now)
    commands, _ = split_commands(strip_quoted(msg.text))
    new = next((c for c in commands if c.name == "new" and not c.error), None)
    if new is None:
        return None  # an agent writing to a department without #new: an ordinary ticket
    return agent_mail.new_ticket_for_customer(
        session, gw.storage, gw.settings, msg, agent, normalize_address(new.arg),
        department_id, record, now)


def notify_inbound(session: Session, settings, applied, may_autorespond: bool, now,
                   network: str | None) -> list[str]:
    if not applied.created:
        sla.customer_waiting(applied.ticket, now)
    sla.refresh(settings, applied.ticket, now)  # the acknowledgement states the due time
    session.flush()  # the new ticket's number and relations are needed for the mail
    if applied.created:
        return notify.after_new_ticket(session, settings, applied.ticket, applied.message,
                                       may_autorespond, applied.refused, now, network)
    notes = notify.after_customer_reply(session, settings, applied.ticket, applied.message,
                                        may_autorespond, applied.refused, now, network,
                                        applied.refused_command)
    if applied.status_change:
        old, new = applied.status_change
        if notify.status_changed(session, settings, applied.ticket, old, new, now=now):
            notes.append(f"notify: status mail ({old} -> {new}) queued")
    return notes


def thread(session: Session, msg: ParsedMessage, sender: str, settings, prefixes, now, trace
           ) -> tuple[resolve.Decision, tuple]:
    """Look up the tickets the token and the headers point at, then decide.
    Returns the decision and the ticket rows looked at."""
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
    decision = resolve.decide(tickets.view(session, token_ticket),
                              tickets.view(session, header_ticket), rule, sender, now,
                              settings.threading)
    return decision, (token_ticket, header_ticket)


def _record_report(session, msg: ParsedMessage, category: str, trace: list[str],
                   finish) -> Result:
    """A bounce or read receipt that names a message of ours, not sent to our tagged
    bounce address: an event on its ticket, nothing more. Anyone can write such a
    report and quote a Message-ID they saw, so it never suppresses an address."""
    original = msg.report.original_message_id if msg.report else msg.mdn_original_id
    sent = session.scalar(select(Outbox).where(Outbox.message_id == original)) \
        if original else None
    ticket = session.get(tickets.Ticket, sent.ticket_id) if sent and sent.ticket_id else None
    if ticket is None:
        ticket, _ = tickets.ticket_by_message_ids(session, [original] if original else [])
    if ticket is None:
        trace.append(f"{category}: not about a message of ours")
        return finish("ignored", reason=f"{category} not matched")
    if category == "bounce":
        tickets.record_event(session, ticket, "bounce", msg.from_addr or "",
                             detail=f"unverified: {_bounce_detail(msg)}"[:2000])
    else:
        tickets.record_event(session, ticket, "read_receipt", msg.from_addr or "")
    trace.append(f"{category}: recorded on #{ticket.number} (about {original})"
                 + ("; not to our tagged bounce address, so no suppression"
                    if category == "bounce" else ""))
    return finish("bounce" if category == "bounce" else "ignored", ticket)


def _bounce_detail(msg: ParsedMessage) -> str:
    report = msg.report
    if report is None:
        return msg.subject
    return (f"{report.action} {report.status} for {', '.join(report.recipients)}: "
            f"{report.diagnostic}").strip()


def _record_verp(session, msg: ParsedMessage, raw: bytes, verp: bounces.Verp, settings,
                 trace, finish) -> Result:
    """Mail to our VERP bounce address: a bounce or an automatic reply, never a ticket."""
    if verp.outbox_id is None:
        trace.append(f"bounce: to {verp.address}, whose tag is missing or wrong; ignored")
        return finish("ignored", reason="bounce address without a valid tag")
    sent = session.get(Outbox, verp.outbox_id)
    if sent is None:
        trace.append(f"bounce: to our bounce address, outbox {verp.outbox_id} unknown")
        return finish("ignored", reason="bounce for unknown outbox id")
    if msg.report is None and msg.content_type != "multipart/report" and \
            guard.BOUNCE_LOCALPARTS.isdisjoint({(msg.from_addr or "").split("@")[0]}):
        trace.append(f"verp: automatic reply to outbox {verp.outbox_id}, not a bounce")
        return finish("ignored", reason="reply to our bounce address")
    detail = _bounce_detail(msg)
    sent.status, sent.last_error = "bounced", detail[:2000]
    ticket = session.get(tickets.Ticket, sent.ticket_id) if sent.ticket_id else None
    if ticket is not None:
        tickets.record_event(session, ticket, "bounce", msg.from_addr or "", new=sent.kind,
                             detail=f"outbox {sent.id}: {detail}"[:2000])
    if bounces.is_hard(raw, msg.report):
        for address in sent.recipients:  # what we sent to, never what the report names
            row = bounces.count_hard_bounce(session, settings, address, detail)
            trace.append(f"bounce: hard bounce {row.hard_bounces} for {address}"
                         + (" (now suppressed)" if row.suppressed else ""))
    trace.append(f"bounce: outbox {sent.id} ({sent.kind})"
                 + (f" on #{ticket.number}" if ticket else ""))
    return finish("bounce", ticket)


def retry_quarantined(gw: Gateway, entry_id: int, vouched: str = "") -> Result:
    """Run a quarantined message through the pipeline again; resolve the entry if it passes.
    `vouched` ("agent" or "customer") is an admin's word on mail held as `unverified`."""
    with gw.db.unit_of_work() as session:
        entry = session.get(Quarantine, entry_id)
        if entry is None:
            raise tickets.NotFound(f"no quarantine entry {entry_id}")
        if entry.resolved_at is not None:
            raise ValueError(f"quarantine entry {entry_id} is already resolved")
        if vouched and entry.error_class != "unverified":
            raise ValueError(f"quarantine entry {entry_id} is {entry.error_class}, not "
                             "unverified: --as is only for mail held as an unproven agent's")
        envelope = Envelope("retry", entry.envelope_from, tuple(entry.envelope_to or ()),
                            entry.mailbox_default or "", vouched=vouched,
                            retried_from=entry.source)
        sha = entry.sha256
    raw = gw.storage.raw.get(sha)
    result = ingest(gw, raw, envelope)
    with gw.db.unit_of_work() as session:
        entry = session.get(Quarantine, entry_id)
        entry.last_attempt_at = utcnow()
        if result.outcome != "quarantined":
            entry.resolved_at = utcnow()
            entry.resolution = f"retried: {result.outcome}" + (
                f" #{result.ticket}" if result.ticket else "") + (
                f" (as {vouched}, vouched by an admin)" if vouched else "")
    return result

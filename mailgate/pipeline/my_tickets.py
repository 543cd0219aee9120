"""My tickets: a customer asks for their list by mail (`#tickets`, `my tickets`,
`تیکت‌های من`, `ჩემი ბილეთები` in the subject or first line, with filters:
`mail/ticket_query.py`). No ticket is opened: the answer is queued
(`outbound/ticket_list.py`) and the request recorded on the inbound row
(`Outcome.TICKET_LIST`, shown by `message explain`).

Runs after author, so the proof is known: the list goes to From only, never to
Reply-To; with a proof (a Message-ID we signed for this contact, or our
boundary's Authentication-Results) it shows subjects, without one no text
anyone wrote. Automatic mail is never answered; the automatic-reply caps apply.
"""
from __future__ import annotations

from ..localdates import language
from ..mail import route, ticket_query
from ..models import Contact, Department
from ..outbound import notify, ticket_list
from ..service import ALWAYS_UTC
from ..signing import SIGNED, Reader, mail_host
from ..status_labels import status_words
from ..vocabulary import Outcome
from .context import Context
from .envelope import Result


def step(ctx: Context) -> Result | None:
    msg, settings, session = ctx.msg, ctx.settings, ctx.session
    words = settings.customers.list_words
    if ctx.automatic or not ticket_query.asks(msg.subject, msg.text, words):
        return None
    contact = ticket_list.contact_by_address(session, ctx.author)
    categories = ticket_list.categories_of(session, contact) if contact else frozenset()
    query = ticket_query.find_request(msg.subject, msg.text, words, status_words(settings),
                                      categories)
    if query is None:
        return None
    ctx.trace.append(f"tickets: {ctx.author} asks for their tickets, {query.describe()}")
    how = _proof(ctx, contact)
    ctx.trace.append(f"tickets: proven by {how}, subjects shown" if how else
                     "tickets: nothing proves the sender; no subjects, to From only")
    if not ctx.may_autorespond:
        ctx.trace.append("tickets: no list, automatic replies are not allowed for this mail")
        return ctx.finish(Outcome.TICKET_LIST, reason="list request, not answered")
    network = notify.network_of(ctx.boundary.client)
    limited = notify.over_rate_limit(session, settings, ctx.author, ctx.now, network)
    if limited:
        ctx.trace.append(f"tickets: no list, {limited}")
        return ctx.finish(Outcome.TICKET_LIST, reason="list request, not answered")
    _answer(ctx, contact, query, bool(how), network)
    return ctx.finish(Outcome.TICKET_LIST, reason="list request answered")


def _proof(ctx: Context, contact: Contact | None) -> str | None:
    """How the request proves it is `contact`'s: a Message-ID we signed for them about
    any ticket (or about their list, ticket 0), or our boundary's checks of From."""
    if contact is None:
        return None
    for message_id in ctx.proof.ids:
        match = SIGNED.match(message_id)
        if match and match.group(1) == Reader.CUSTOMER.value and \
                int(match.group(3)) == contact.id:
            how = ctx.proof.for_customer((int(match.group(2)),), contact.id, ctx.author)
            if how:
                return how
    return ctx.proof.for_customer((), contact.id, ctx.author)


def _answer(ctx: Context, contact: Contact | None, query: ticket_query.TicketQuery,
            verified: bool, network: str | None) -> None:
    settings, session = ctx.settings, ctx.session
    limit = settings.customers.list_limit
    found, total = ticket_list.tickets_of(session, contact, query, limit) if contact \
        else ([], 0)
    department = _department(ctx)
    context = ticket_list.list_context(settings, found, total, query, verified,
                                       ctx.msg.from_name, _timezone(ctx, department),
                                       department.name if department else "")
    sender = notify.department_sender_for(settings, department) if department \
        else (settings.outbound.from_address or f"mailgate@{mail_host(settings)}", "")
    row = ticket_list.queue_list(session, settings, address=ctx.author, contact=contact,
                                 locale=_locale(ctx, contact, query, department),
                                 sender=sender, context=context, now=ctx.now,
                                 answering=ctx.msg.message_id, network=network)
    ctx.trace.append(f"tickets: list of {len(found)} of {total} queued to {ctx.author}"
                     if row is not None else f"tickets: {ctx.author} is suppressed, no list")


def _department(ctx: Context) -> Department | None:
    """The department the request was written to: whose address the list comes from."""
    routed = route.route(ctx.candidates, ctx.known.routes, ctx.settings.routing.catch_all,
                         ctx.envelope.mailbox_default)
    return ctx.known.departments.get(routed.department) if routed else None


def _locale(ctx: Context, contact: Contact | None, query: ticket_query.TicketQuery,
            department: Department | None) -> str:
    """The language the request was written in (its word: "تیکت‌های من" asks in
    Persian), else the contact's, else the department's."""
    if query.language:
        return query.language
    if contact is not None and contact.locale:
        return language(contact.locale)
    return language(department.locale if department is not None and department.locale
                    else ctx.settings.outbound.default_locale)


def _timezone(ctx: Context, department: Department | None) -> str:
    policy = ctx.settings.service.policy(department.key if department else None)
    return policy.timezone if policy.calendar != ALWAYS_UTC else ctx.settings.outbound.timezone

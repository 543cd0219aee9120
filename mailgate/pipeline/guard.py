"""Guard: what kind of mail this is (a person's, an automatic reply, a notification, a
list, a bounce, a loop, spam), judged by `mail/guard.py` against our own addresses
and the headers our own boundary wrote (`author.boundary`, read here once for the
steps after). A loop ends here; spam is kept in quarantine (`Rejection.SPAM`) until
an admin's retry releases it. The departments and addresses the message names are
read once, for the steps after."""
from __future__ import annotations

from sqlalchemy import select

from ..errors import MessageRejected, Rejection
from ..mail import guard, route
from ..models import Quarantine
from ..tickets import directory
from ..vocabulary import Outcome, Source
from .author import boundary
from .context import Context
from .envelope import Result


def step(ctx: Context) -> Result | None:
    msg, settings = ctx.msg, ctx.settings
    ctx.candidates = route.candidates(msg, list(ctx.envelope.rcpt_to))
    lookups = route.lookup_keys(ctx.candidates)
    if msg.from_addr:
        lookups |= route.lookup_keys([(msg.from_addr, "from")])
    ctx.known = directory(ctx.session, lookups)
    ctx.own = set(settings.gateway.own_addresses)
    if ctx.known.is_own(msg.from_addr, settings.gateway.own_addresses):
        ctx.own.add(msg.from_addr)
    ctx.boundary = boundary(ctx.raw, ctx.envelope, settings)
    released = _released_spam(ctx)
    verdict = guard.judge(msg, ctx.envelope.mail_from, ctx.own, settings.gateway.instance,
                          settings.limits.max_received, ctx.boundary.headers,
                          None if released else settings.spam)
    ctx.verdict = verdict
    ctx.trace.append(f"guard: {verdict.category}" +
                     (f" ({'; '.join(verdict.reasons)})" if verdict.reasons else ""))
    if released:
        ctx.trace.append("spam: released by an admin, the spam filter's verdict not read")
    if verdict.category == guard.Category.LOOP:
        return ctx.finish(Outcome.IGNORED, reason="mail loop")
    if verdict.category == guard.Category.SPAM:
        raise MessageRejected(f"flagged as spam by our filter: {'; '.join(verdict.reasons)}",
                              Rejection.SPAM)
    return None


def _released_spam(ctx: Context) -> bool:
    """Is this an admin's retry of the message held as spam (their release of it)?"""
    if ctx.envelope.source != Source.RETRY:
        return False
    held = ctx.session.scalar(select(Quarantine.error_class).where(
        Quarantine.sha256 == ctx.digest, Quarantine.resolved_at.is_(None)))
    return held == Rejection.SPAM

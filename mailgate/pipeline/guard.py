"""Guard: what kind of mail this is (a person's, an automatic reply, a list, a
bounce, a loop), judged by `mail/guard.py` against our own addresses. A loop ends
here; the departments and addresses the message names are read once, for the
steps after."""
from __future__ import annotations

from ..mail import guard, route
from ..tickets import directory
from ..vocabulary import Outcome
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
    verdict = guard.judge(msg, ctx.envelope.mail_from, ctx.own, settings.gateway.instance,
                          settings.limits.max_received)
    ctx.verdict = verdict
    ctx.trace.append(f"guard: {verdict.category}" +
                     (f" ({'; '.join(verdict.reasons)})" if verdict.reasons else ""))
    if verdict.category == guard.Category.LOOP:
        return ctx.finish(Outcome.IGNORED, reason="mail loop")
    return None

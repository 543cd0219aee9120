"""Route: which department the message is for, by the address it was sent to
(`mail/route.py`): envelope recipient, Delivered-To, To, Cc, then the mailbox's
default or the catch-all. No department is not yet an error: a reply threads to
its ticket wherever it was sent."""
from __future__ import annotations

from ..errors import MessageRejected, Rejection
from ..mail import route
from .context import Context
from .envelope import Result


def step(ctx: Context) -> Result | None:
    routed = route.route(ctx.candidates, ctx.known.routes, ctx.settings.routing.catch_all,
                         ctx.envelope.mailbox_default)
    if routed and routed.department not in ctx.known.departments:
        raise MessageRejected(f"department {routed.department!r} does not exist",
                              Rejection.ROUTE)
    ctx.route = routed
    ctx.trace.append(
        f"route: {routed.address or '-'} ({routed.via}) -> {routed.department}"
        + (f", +tag {routed.tag}" if routed.tag else "") if routed
        else f"route: none of {[a for a, _ in ctx.candidates]} is a department address")
    return None

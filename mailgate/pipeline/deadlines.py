"""Deadlines: a customer's message starts or moves the ticket's response and
resolution due times, in the department's working time (`sla.py`). A ticket that
automatic mail opened gets its due times like any other; automatic mail on an
existing ticket moves nothing."""
from __future__ import annotations

from .. import sla
from .context import Context
from .envelope import Result


def step(ctx: Context) -> Result | None:
    if ctx.quiet:
        return None
    if not ctx.applied.created:
        sla.customer_waiting(ctx.ticket, ctx.now)
    sla.refresh(ctx.settings, ctx.ticket, ctx.now)  # the acknowledgement states the due time
    return None

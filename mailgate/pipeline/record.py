"""Record: the last step — the message opened a ticket or joined one; say which on
its inbound row, with the decision trace."""
from __future__ import annotations

from ..vocabulary import Outcome
from .context import Context
from .envelope import Result


def step(ctx: Context) -> Result:
    return ctx.finish(Outcome.NEW if ctx.applied.created else Outcome.APPENDED, ctx.ticket)

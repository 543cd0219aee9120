"""Notify: the mail this message causes — the customer's acknowledgement, the
agents' notification, a status mail — queued as outbox rows in this same
transaction (`outbound/notify.py`), so they go out if and only if it commits.
Automatic mail is answered by nobody: a ticket it opened is announced to the
agents only, and on an existing ticket it tells nobody.

A new ticket is flushed first: its mail needs its id (the number, signed
Message-IDs, status links). A reply's ticket has one. What is queued threads on
the message in hand, whose row is written when the path ends (`write.py`)."""
from __future__ import annotations

from ..outbound import notify
from .context import Context
from .envelope import Result


def step(ctx: Context) -> Result | None:
    if ctx.quiet:
        return None
    applied, session, settings, now = ctx.applied, ctx.session, ctx.settings, ctx.now
    network = notify.network_of(ctx.boundary.client)
    if applied.created:
        session.flush()  # the new ticket's id: its number, signed ids, status links
        ruling = ctx.ruling
        no_ack = f"rule {ruling.by['acknowledge']!r}" if ruling and not ruling.acknowledge else ""
        ctx.trace.extend(notify.after_new_ticket(
            session, settings, applied.ticket, applied.message, ctx.may_autorespond,
            applied.refused, now, network, ctx.understood, no_ack))
        return None
    ctx.trace.extend(notify.after_customer_reply(
        session, settings, applied.ticket, applied.message, ctx.may_autorespond,
        applied.refused, now, network, applied.refused_command))
    if applied.status_change:
        old, new = applied.status_change
        if notify.status_changed(session, settings, applied.ticket, old, new, now=now,
                                 answering=applied.message):
            ctx.trace.append(f"notify: status mail ({old} -> {new}) queued")
    return None

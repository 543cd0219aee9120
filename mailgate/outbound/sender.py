"""The outbox sender: claim due rows, render, deliver, record — with retries.

A row is claimed in a short transaction (status `sending`, with `SELECT … FOR
UPDATE SKIP LOCKED` on PostgreSQL, so several daemons never take the same row),
delivered outside any transaction, then marked in another short one. A daemon
that dies between delivery and mark leaves the row `sending`; after the lease
it is delivered again — the same bytes with the same Message-ID, which is the
most SMTP allows. Temporary failures retry with exponential backoff; permanent
ones stop, are recorded on the ticket and count as hard bounces.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import or_, select, update

from .. import tickets
from ..gateway import Gateway
from ..models import Outbox, Ticket
from . import bounces
from .compose import build_email
from .render import Templates
from .sms import SmsPermanentError, SmsTemporaryError, fit, make_backend
from .transport import DeliveryPermanent, DeliveryTemporary, make_transport

log = logging.getLogger("mailgate.outbox")
LEASE = dt.timedelta(minutes=10)
CLAIM_BATCH = 10  # rows claimed in one transaction; delivered and recorded one by one
MAX_BACKOFF = 6 * 3600.0


@dataclass
class Claimed:
    id: int
    ticket_id: int | None
    channel: str
    kind: str
    locale: str
    recipients: list
    sender: str
    sender_name: str
    context: dict
    message_id: str | None
    in_reply_to: str | None
    references: str | None
    auto_submitted: str | None
    attempts: int
    raw: bytes | None


def verp_address(bounce_address: str, outbox_id: int) -> str:
    local, _, domain = bounce_address.partition("@")
    return f"{local}+o{outbox_id}@{domain}"


class OutboxSender:
    def __init__(self, gw: Gateway, templates: Templates | None = None, transport=None,
                 sms_backend=None):
        self.gw = gw
        self.templates = templates or Templates(gw.settings)
        hostname = gw.settings.outbound.hostname or gw.settings.gateway.hostname
        self.transport = transport or make_transport(gw.settings, hostname)
        self.sms = sms_backend or make_backend(gw.settings.sms)

    def run_once(self, limit: int = 100) -> int:
        """Deliver what is due now; returns how many rows were handled."""
        handled = 0
        while handled < limit:
            claimed_at = self.gw.now()
            rows = self._claim(min(CLAIM_BATCH, limit - handled))
            if not rows:
                break
            for row in rows:
                if self.gw.now() - claimed_at > LEASE / 2:  # a slow relay: leave the rest
                    self._release(row)                     # to the next run, never to a
                    continue                               # second sender's reclaim
                self._deliver(row)
                handled += 1
        return handled

    # -- claim ----------------------------------------------------------------
    def _claim(self, count: int) -> list[Claimed]:
        """Mark up to `count` due rows as ours (`sending`, leased until LEASE is over)."""
        now = self.gw.now()
        with self.gw.db.unit_of_work() as session:
            query = select(Outbox).where(or_(
                (Outbox.status == "pending") & (Outbox.next_attempt_at <= now),
                (Outbox.status == "sending") & (Outbox.claimed_at < now - LEASE),
            )).order_by(Outbox.next_attempt_at, Outbox.id).limit(count)
            if self.gw.db.is_postgresql:
                query = query.with_for_update(skip_locked=True)
            claimed = []
            for row in session.scalars(query):
                row.status, row.claimed_at, row.attempts = "sending", now, row.attempts + 1
                claimed.append(Claimed(
                    row.id, row.ticket_id, row.channel, row.kind, row.locale,
                    list(row.recipients), row.sender, row.sender_name, dict(row.context),
                    row.message_id, row.in_reply_to, row.references, row.auto_submitted,
                    row.attempts, row.raw))
            return claimed

    def _release(self, row: Claimed) -> None:
        with self.gw.db.unit_of_work() as session:
            stored = session.get(Outbox, row.id)
            stored.status, stored.attempts = "pending", row.attempts - 1

    # -- deliver --------------------------------------------------------------
    def _deliver(self, row: Claimed) -> None:
        try:
            if row.channel == "sms":
                provider_id = self._send_sms(row)
                self._mark_sent(row, None, f"provider id {provider_id}" if provider_id else None)
                return
            raw = row.raw or self._render_email(row)
            settings = self.gw.settings.outbound
            envelope_from = verp_address(settings.bounce_address, row.id) \
                if settings.bounce_address else row.sender
            refused = self.transport.send(envelope_from, row.recipients, raw, str(row.id))
            self._mark_sent(row, raw, f"refused: {', '.join(refused)}" if refused else None)
            for address in refused:
                self._hard_failure(row, address, "refused by the relay")
        except (DeliveryTemporary, SmsTemporaryError) as error:
            self._retry(row, str(error))
        except (DeliveryPermanent, SmsPermanentError) as error:
            self._fail(row, str(error), getattr(error, "recipients", None) or row.recipients)
        except Exception as error:  # a template or data problem: keep the row for an admin
            log.exception("outbox %d could not be prepared", row.id)
            self._fail(row, f"{error.__class__.__name__}: {error}", [], bounce=False)

    def _render_email(self, row: Claimed) -> bytes:
        rendered = self.templates.render(row.kind, row.locale, row.context)
        return build_email(
            sender=row.sender, sender_name=row.sender_name, recipients=row.recipients,
            rendered=rendered, message_id=row.message_id, in_reply_to=row.in_reply_to,
            references=row.references, auto_submitted=row.auto_submitted,
            loop_marker=self.gw.settings.gateway.instance,
            files=row.context.get("files", []), read_file=self.gw.storage.attachments.get,
            extra_headers={"X-Mailgate-Ticket": row.context["ticket"]["number"]}
            if "ticket" in row.context else None)

    def _send_sms(self, row: Claimed) -> str:
        text = fit(self.templates.render_sms(row.kind, row.locale, row.context),
                   self.gw.settings.sms.max_segments)
        return self.sms.send(row.recipients[0], text)

    # -- record ---------------------------------------------------------------
    def _mark_sent(self, row: Claimed, raw: bytes | None, note: str | None) -> None:
        values = {"status": "sent", "sent_at": self.gw.now(), "last_error": note}
        if raw is not None:
            values["raw"] = raw
        with self.gw.db.unit_of_work() as session:  # no need to load the row to mark it
            session.execute(update(Outbox).where(Outbox.id == row.id).values(**values))
        log.info("sent %s %s", row.channel, row.kind, extra={"fields": {
            "outbox": row.id, "to": ",".join(row.recipients), "attempt": row.attempts}})

    def _retry(self, row: Claimed, error: str) -> None:
        settings = self.gw.settings.outbound
        with self.gw.db.unit_of_work() as session:
            stored = session.get(Outbox, row.id)
            stored.last_error = error[:2000]
            if row.attempts >= settings.max_attempts:
                stored.status = "failed"
                self._event(session, stored, f"gave up after {row.attempts} attempts: {error}")
            else:
                delay = min(MAX_BACKOFF, settings.retry_base * 2 ** (row.attempts - 1))
                stored.status = "pending"
                stored.next_attempt_at = self.gw.now() + dt.timedelta(seconds=delay)
        log.warning("outbox %d: temporary failure, attempt %d: %s", row.id, row.attempts, error)

    def _fail(self, row: Claimed, error: str, bounced: list[str], bounce: bool = True) -> None:
        with self.gw.db.unit_of_work() as session:
            stored = session.get(Outbox, row.id)
            stored.status, stored.last_error = "failed", error[:2000]
            self._event(session, stored, error)
            if bounce and row.channel == "email":
                for address in bounced:
                    bounces.count_hard_bounce(session, self.gw.settings, address, error)
        log.error("outbox %d failed permanently: %s", row.id, error)

    def _hard_failure(self, row: Claimed, address: str, reason: str) -> None:
        with self.gw.db.unit_of_work() as session:
            bounces.count_hard_bounce(session, self.gw.settings, address, reason)

    @staticmethod
    def _event(session, stored: Outbox, detail: str) -> None:
        if stored.ticket_id is not None:
            ticket = session.get(Ticket, stored.ticket_id)
            tickets.record_event(session, ticket, "delivery_failed", "mailgate",
                                 new=stored.kind, detail=f"outbox {stored.id}: {detail}"[:2000])

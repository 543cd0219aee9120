"""One delivery attempt of a claimed row: prepare the bytes, deliver, journal.

Preparing renders the templates and attaches the files; a problem there is
Temporary when a file cannot be read now and Unsendable when a template or the
data is wrong (kept for an admin). Delivery goes through the worker's link to
the transport, or to the SMS backend; both answer with an outcome
(`outcomes.py`). A delivery is journalled (`journal.py`) before the database
hears of it: the file transport at its point of no return, the relay here,
after its 250.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Callable

from ..gateway import Gateway
from ..signing import signer_for
from . import bounces
from .claims import Claimed
from .compose import Headers, build_email
from .journal import DeliveryJournal, Entry, stem
from .outcomes import Delivered, Outcome, Outgoing, Temporary, Unfinished, Unsendable
from .refusals import refused
from .render import Templates
from .sms import deliver as deliver_sms
from .sms import fit

log = logging.getLogger("mailgate.outbox")


class Link:
    """A worker's transport link, opened on first use and closed when idle."""

    def __init__(self, transport):
        self.transport = transport
        self.link = None

    def get(self):
        if self.link is None:
            self.link = self.transport.open()
        return self.link

    def close(self) -> None:
        link, self.link = self.link, None
        if link is not None:
            with contextlib.suppress(Exception):
                link.close()


class Journalling:
    """What one attempt writes to the journal: a copy of the bytes before they leave,
    the entry at the point of no return (called as the transport's `Journal`), and
    what the transport takes back. When the disk refuses to take an entry back while
    the transport's staged file is still there, the entry stands: its replay finishes
    the delivery and records it (`Unfinished`), so it is neither lost nor sent twice."""

    def __init__(self, journal: DeliveryJournal, row: Claimed):
        self.journal = journal
        self.row = row
        self.name = stem(row.id, row.claimer, row.attempts)
        self.sha256: str | None = None
        self.entry: Path | None = None  # the entry, while it says delivered
        self.stands = False

    def keep(self, raw: bytes) -> None:
        self.sha256 = self.journal.keep(self.name, raw)

    def __call__(self, delivered: Delivered) -> Callable[[], None]:
        row = self.row
        self.entry = self.journal.write(Entry(
            row.id, row.claimer, row.attempts, delivered.refused, delivered.remark,
            str(delivered.staged) if delivered.staged else None, self.sha256))
        self.journal.writing.cleared()
        return lambda: self._take_back(delivered)

    def _take_back(self, delivered: Delivered) -> None:
        """The transport could not finish after all."""
        entry, self.entry = self.entry, None
        if entry is None or self.journal.take_back(entry):
            return
        if delivered.staged is not None and delivered.staged.exists():
            self.entry, self.stands = entry, True
        else:  # nothing left to finish: the entry must not be replayed (removed later)
            self.journal.discard(entry)

    def done(self, outcome: Outcome) -> Outcome:
        """The outcome to record; the copy goes unless an entry needs it."""
        if self.stands:
            return Unfinished(outcome.reason if isinstance(outcome, Temporary) else
                              "the transport could not finish")
        if self.entry is None and self.sha256 is not None:
            self.journal.discard(self.journal.copy(self.name))
        return outcome


class Delivery:
    def __init__(self, gw: Gateway, templates: Templates, sms, journal: DeliveryJournal):
        self.gw = gw
        self.templates = templates
        self.sms = sms
        self.journal = journal

    def attempt(self, row: Claimed, link: Link) -> tuple[Outcome, bytes | None, Path | None]:
        """Prepare, deliver and journal; (outcome, bytes as sent, journal entry or None)."""
        hand = Journalling(self.journal, row)
        if row.channel == "sms":
            outcome, raw = self._text(row), None
        else:
            outcome, raw = self._mail(row, link, hand)
        if isinstance(outcome, Delivered) and not outcome.journalled:
            try:
                hand(outcome)
            except OSError as error:  # delivered all the same: record it straight away
                if refused(error):
                    self.journal.writing.note(error)
                else:
                    log.error("outbox %d: delivered, but the journal failed: %s", row.id, error)
        return hand.done(outcome), raw, hand.entry

    def _text(self, row: Claimed) -> Outcome:
        text = self._prepare(lambda: fit(
            self.templates.render_sms(row.kind, row.locale, row.context),
            self.gw.settings.sms.max_segments), row)
        if not isinstance(text, str):
            return text
        return deliver_sms(self.sms, row.recipients[0], text)

    def _mail(self, row: Claimed, link: Link,
              hand: Journalling) -> tuple[Outcome, bytes | None]:
        raw = row.raw or self._prepare(lambda: self._render_email(row), row)
        if not isinstance(raw, bytes):
            return raw, None
        if row.raw is None:  # the row holds the bytes once recorded; until then, the journal
            hand.keep(raw)
        outgoing = Outgoing(str(row.id), self._envelope_from(row), row.recipients, raw)
        return link.get().send(outgoing, hand), raw

    def _prepare(self, build, row: Claimed):
        try:
            return build()
        except OSError as error:  # a template or attachment file we cannot read now
            return Temporary(f"cannot prepare: {error}")
        except Exception as error:  # a template or data problem: keep the row for an admin
            log.exception("outbox %d could not be prepared", row.id)
            return Unsendable(f"{error.__class__.__name__}: {error}")

    def _envelope_from(self, row: Claimed) -> str:
        settings = self.gw.settings.outbound
        if not settings.bounce_address:
            return row.sender
        return bounces.verp_address(signer_for(self.gw.settings), settings.bounce_address,
                                    row.id)

    def _render_email(self, row: Claimed) -> bytes:
        rendered = self.templates.render(row.kind, row.locale, row.context)
        headers = Headers(
            sender=row.sender, sender_name=row.sender_name, recipients=row.recipients,
            message_id=row.message_id, in_reply_to=row.in_reply_to,
            references=row.references, auto_submitted=row.auto_submitted,
            loop_marker=self.gw.settings.gateway.instance,
            extra={"X-Mailgate-Ticket": row.context["ticket"]["number"]}
            if "ticket" in row.context else {})
        return build_email(headers, rendered, row.context.get("files", []),
                           self.gw.storage.attachments.get)

"""How outgoing mail leaves: a folder of .eml files (the default) or an SMTP relay.

`transport.open()` gives a link for one worker of the sender (the relay's
connection is reused from message to message); `link.send(outgoing, journal)`
answers with an outcome (`outcomes.py`), never with an exception for a
delivery problem: any OS or network error is Temporary, and only a relay's 5xx
to MAIL, RCPT or DATA is Permanent (RFC 5321 4.2.1). Trouble before the
transaction (connect, TLS, AUTH) is ours or the relay's, never the message's.

`journal(delivered)` records a delivery durably. The file transport calls it
at its point of no return, after the file is written and synced and before the
rename that delivers it, so a restart finishes the rename instead of writing
the mail again. A relay's point of no return is its 250 to DATA: the caller
journals what `send` returns.
"""
from __future__ import annotations

import logging
import smtplib
import ssl
from pathlib import Path
from typing import Callable

from ..config import OutboundSettings
from ..storage import Staged, finish_staged, fsync_dir, make_private_dirs, remove_orphans
from .outcomes import Delivered, Outcome, Outgoing, Permanent, Temporary

log = logging.getLogger("mailgate.outbox")
# records a delivery durably; returns what takes the record back
Journal = Callable[[Delivered], Callable[[], None]]


class FileTransport:
    """Writes `<dir>/<outbox id>.eml` atomically, with the envelope as X-Envelope headers.
    Idempotent: a second attempt for the same row replaces the same file."""

    def __init__(self, folder: Path, fsync: bool = True):
        self.folder = Path(folder)
        self.fsync = fsync

    def open(self) -> "FileTransport":
        return self

    def close(self) -> None:
        pass

    def target(self, name: str) -> Path:
        return self.folder / f"{name}.eml"

    def send(self, out: Outgoing, journal: Journal) -> Outcome:
        envelope = (f"X-Envelope-From: <{out.envelope_from}>\r\n"
                    f"X-Envelope-To: {', '.join(f'<{r}>' for r in out.recipients)}\r\n"
                    ).encode()
        try:
            make_private_dirs(self.folder)
            staged = Staged(self.folder, envelope + out.raw, self.fsync)
        except OSError as error:
            return Temporary(f"cannot write {self.folder}: {error}")
        delivered = Delivered(staged=staged.path, journalled=True)
        try:
            undo = journal(delivered)
        except OSError as error:
            staged.abort()
            return Temporary(f"cannot journal the delivery: {error}")
        try:
            staged.rename(self.target(out.name))
        except OSError as error:
            staged.abort()
            undo()
            return Temporary(f"cannot write {self.folder}: {error}")
        if self.fsync:
            try:
                fsync_dir(self.folder)
            except OSError as error:  # the mail is there; only its durability is in doubt
                log.warning("outbox %s: cannot sync %s: %s", out.name, self.folder, error)
        return delivered

    def finish(self, staged: Path, name: str) -> bool:
        """Complete a delivery a killed process journalled but did not rename."""
        return finish_staged(staged, self.target(name), self.fsync)

    def remove_orphans(self) -> int:
        return remove_orphans(self.folder, recursive=False)


class SmtpTransport:
    def __init__(self, settings: OutboundSettings, hostname: str = "localhost"):
        self.settings = settings
        self.hostname = hostname or None  # None: smtplib says EHLO with the machine's FQDN

    def open(self) -> "SmtpLink":
        return SmtpLink(self)

    def connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context() if s.relay_security != "none" else None
        if s.relay_security == "tls":
            client = smtplib.SMTP_SSL(s.relay_host, s.relay_port or 465, self.hostname,
                                      timeout=s.relay_timeout, context=context)
        else:
            client = smtplib.SMTP(s.relay_host, s.relay_port or (587 if s.relay_security ==
                                                                  "starttls" else 25),
                                  self.hostname, timeout=s.relay_timeout)
        try:
            client.ehlo_or_helo_if_needed()  # refused here: about us, not the message
            if s.relay_security == "starttls":
                client.starttls(context=context)  # raises when the relay cannot: never clear
            if s.relay_user:
                client.login(s.relay_user, s.relay_password)
        except BaseException:
            client.close()
            raise
        return client

    def remove_orphans(self) -> int:
        return 0


class SmtpLink:
    """One relay connection, kept open from message to message (RSET between)."""

    def __init__(self, transport: SmtpTransport):
        self.transport = transport
        self.client: smtplib.SMTP | None = None

    def send(self, out: Outgoing, journal: Journal) -> Outcome:
        try:
            client = self._ready()
        except (smtplib.SMTPException, OSError, ValueError) as error:
            # connecting, TLS, AUTH: nothing about this message was refused
            return Temporary(f"relay: {error.__class__.__name__}: {error}")
        try:
            refused = client.sendmail(out.envelope_from, out.recipients, out.raw)
        except smtplib.SMTPRecipientsRefused as error:
            self.close()
            codes = {r: c for r, (c, _) in error.recipients.items()}
            if all(500 <= c < 600 for c in codes.values()):
                return Permanent(f"recipients refused: {error.recipients}", tuple(codes))
            return Temporary(f"recipients refused: {error.recipients}")
        except smtplib.SMTPResponseException as error:  # MAIL FROM or DATA answered
            self.close()
            text = f"{error.smtp_code} {error.smtp_error!r}"
            if 500 <= error.smtp_code < 600:
                return Permanent(text, tuple(out.recipients))
            return Temporary(text)
        except (smtplib.SMTPException, OSError) as error:  # lost connection, timeout, TLS
            self.close()
            return Temporary(f"{error.__class__.__name__}: {error}")
        # accepted for some: the others are returned, to be recorded as hard failures
        return Delivered(refused=tuple(r for r, (code, _) in refused.items()
                                       if 500 <= code < 600))

    def _ready(self) -> smtplib.SMTP:
        if self.client is not None:
            try:
                if self.client.rset()[0] == 250:
                    return self.client
            except (smtplib.SMTPException, OSError):
                pass
            self.close()  # dropped while idle: a fresh connection, nothing was sent
        self.client = self.transport.connect()
        return self.client

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()


def make_transport(settings, hostname: str):
    if settings.outbound.transport == "smtp":
        return SmtpTransport(settings.outbound, hostname)
    return FileTransport(settings.outbox_dir, fsync=settings.storage.fsync)

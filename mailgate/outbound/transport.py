"""How outgoing mail leaves: a folder of .eml files (the default) or an SMTP relay.

Both take the envelope sender, the recipients and the finished bytes. Failures
are classified for the sender job: DeliveryTemporary (4xx, connection trouble:
retry later) and DeliveryPermanent (5xx: stop, record, count as a hard bounce).
"""
from __future__ import annotations

import contextlib
import os
import smtplib
import socket
import ssl
import tempfile
from pathlib import Path

from ..config import OutboundSettings


class DeliveryTemporary(Exception):
    pass


class DeliveryPermanent(Exception):
    def __init__(self, message: str, recipients: list[str] = ()):
        super().__init__(message)
        self.recipients = list(recipients)


class FileTransport:
    """Writes `<dir>/<outbox id>.eml` atomically, with the envelope as X-Envelope headers."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def send(self, envelope_from: str, recipients: list[str], raw: bytes, name: str
             ) -> list[str]:
        self.folder.mkdir(parents=True, exist_ok=True)
        envelope = (f"X-Envelope-From: <{envelope_from}>\r\n"
                    f"X-Envelope-To: {', '.join(f'<{r}>' for r in recipients)}\r\n").encode()
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(envelope + raw)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.folder / f"{name}.eml")
        except OSError as error:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise DeliveryTemporary(f"cannot write {self.folder}: {error}") from error
        return []


class SmtpTransport:
    def __init__(self, settings: OutboundSettings, hostname: str = "localhost"):
        self.settings = settings
        self.hostname = hostname

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context()
        if s.relay_security == "tls":
            client = smtplib.SMTP_SSL(s.relay_host, s.relay_port or 465, self.hostname,
                                      timeout=s.relay_timeout, context=context)
        else:
            client = smtplib.SMTP(s.relay_host, s.relay_port or (587 if s.relay_security ==
                                                                  "starttls" else 25),
                                  self.hostname, timeout=s.relay_timeout)
            if s.relay_security == "starttls":
                client.starttls(context=context)  # raises when the relay cannot: never clear
        if s.relay_user:
            client.login(s.relay_user, s.relay_password)
        return client

    def send(self, envelope_from: str, recipients: list[str], raw: bytes, name: str
             ) -> list[str]:
        """Deliver; returns the recipients refused permanently while others were accepted."""
        try:
            with self._connect() as client:
                refused = client.sendmail(envelope_from, recipients, raw)
        except smtplib.SMTPRecipientsRefused as error:
            codes = {r: c for r, (c, _) in error.recipients.items()}
            if all(500 <= c < 600 for c in codes.values()):
                raise DeliveryPermanent(f"recipients refused: {error.recipients}",
                                        list(codes)) from error
            raise DeliveryTemporary(f"recipients refused: {error.recipients}") from error
        except smtplib.SMTPResponseException as error:
            text = f"{error.smtp_code} {error.smtp_error!r}"
            if 500 <= error.smtp_code < 600:
                raise DeliveryPermanent(text, recipients) from error
            raise DeliveryTemporary(text) from error
        except (smtplib.SMTPException, OSError, socket.timeout, ssl.SSLError) as error:
            raise DeliveryTemporary(f"{error.__class__.__name__}: {error}") from error
        # accepted for some: the others are returned, to be recorded as hard failures
        return [r for r, (code, _) in refused.items() if 500 <= code < 600]


def make_transport(settings, hostname: str):
    if settings.outbound.transport == "smtp":
        return SmtpTransport(settings.outbound, hostname)
    return FileTransport(settings.outbox_dir)

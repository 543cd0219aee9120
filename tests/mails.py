"""Build raw test messages the way a mail client would."""
from __future__ import annotations

import email.utils
from email.message import EmailMessage
from email.policy import SMTP

_counter = 0


def make_mail(sender: str = "Customer <customer@example.org>", to: str = "support@example.com",
              subject: str = "Printer on fire", body: str = "It is on fire.\n",
              message_id: str | None = None, html: str | None = None,
              attachments: list[tuple[str, str, bytes]] = (), **headers) -> bytes:
    """`headers` use underscores for dashes: in_reply_to="<x@y>", cc="b@x"."""
    global _counter
    _counter += 1
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = message_id or f"<test-{_counter}-{id(msg)}@client.example.org>"
    for name, value in headers.items():
        msg[name.replace("_", "-").title().replace("Id", "ID")] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    # long Message-IDs stay literal, as real mail clients write them
    return msg.as_bytes(policy=SMTP.clone(max_line_length=998))

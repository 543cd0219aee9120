"""What a report message says: a delivery status notification (DSN, RFC 3464) and the
message it is about, or the message a read receipt (MDN, RFC 8098) is about. Pure."""
from __future__ import annotations

import email
import email.message

from .headers import first_message_id, normalize_address, one_line
from .parsed import DeliveryReport


def delivery_report(msg: email.message.Message) -> DeliveryReport | None:
    """The recipients, action and status a DSN reports, and the Message-ID of the
    message it returns; None when it names neither."""
    original_id, recipients, action, status, diagnostic = None, [], "", "", ""
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            for block in part.get_payload() or []:
                if not isinstance(block, email.message.Message):
                    continue
                final = block.get("Final-Recipient") or block.get("Original-Recipient")
                if final:
                    addr = normalize_address(str(final).split(";")[-1])
                    if addr:
                        recipients.append(addr)
                action = action or one_line(block.get("Action", ""), 20).lower()
                status = status or one_line(block.get("Status", ""), 20)
                diagnostic = diagnostic or one_line(block.get("Diagnostic-Code", ""), 300)
        elif kind in ("message/rfc822", "text/rfc822-headers") and original_id is None:
            original_id = _original_message_id(part)
    if not (recipients or original_id):
        return None
    return DeliveryReport(original_id, recipients, action or "failed", status, diagnostic)


def _original_message_id(part: email.message.Message) -> str | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], email.message.Message):
        return first_message_id(payload[0].get("Message-ID"))
    if isinstance(payload, email.message.Message):
        return first_message_id(payload.get("Message-ID"))
    raw = part.get_payload(decode=True) or b""
    inner = email.message_from_bytes(raw)
    return first_message_id(inner.get("Message-ID"))


def mdn_original_id(msg: email.message.Message) -> str | None:
    """The Original-Message-ID a read receipt names."""
    for part in msg.walk():
        if part.get_content_type() == "message/disposition-notification":
            for block in part.get_payload() or []:
                if isinstance(block, email.message.Message) and block.get("Original-Message-ID"):
                    return first_message_id(block.get("Original-Message-ID"))
    return None

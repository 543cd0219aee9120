"""Store: the message itself and its accepted attachments, for the apply and agent
steps. Attachment bytes go to the blob store before the transaction that names
them commits; refused attachments become events on the ticket. The message's row
is written when its path ends, after its inbound row (`write.py`)."""
from __future__ import annotations

from ..mail.attachments import Refused, screen
from ..models import Attachment, Contact, Message, Ticket
from ..tickets import record_event
from .context import Context


def store_message(ctx: Context, ticket: Ticket, kind: str, author: Contact | None = None,
                  text: str | None = None) -> tuple[Message, list[Refused]]:
    """The inbound message as a row of `ticket` (its text, or `text` when the caller
    cut it), with its attachments, to be written by `Context.finish`; returns the row
    and what was refused."""
    msg = ctx.msg
    message = Message(
        direction="in", kind=kind,
        author_email=author.email if author else (msg.from_addr or ""),
        author_name=msg.from_name, message_id=msg.message_id,
        in_reply_to=msg.in_reply_to[0] if msg.in_reply_to else None,
        references=" ".join(msg.references) or None, subject=msg.subject,
        text_body=msg.text if text is None else text, html_body=msg.html,
        automatic=ctx.automatic, received_at=ctx.now, attachments=[])
    ctx.stored.append((message, ticket))
    accepted, refused = screen(msg.attachments, ctx.settings.limits)
    store = ctx.gw.storage.attachments
    for att in accepted:
        digest = store.put(att.data, att.sha256)
        message.attachments.append(Attachment(
            filename=att.filename, stored_name=store.relative_path(digest),
            content_type=att.content_type, sniffed_type=att.sniffed_type, size=att.size,
            sha256=digest, content_id=att.content_id, inline=att.inline))
    notes = []
    for att, reason in refused:
        notes.append(Refused.of(att, reason))  # unpacks as (filename, reason)
        record_event(ctx.session, ticket, "attachment_refused", message.author_email,
                     old=notes[-1].facts()[:200], new=att.filename, detail=reason)
    return message, notes

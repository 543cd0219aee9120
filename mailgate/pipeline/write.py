"""Write: the message's own rows — its inbound row and, when it was stored on a
ticket, its message row and attachments — each by one INSERT when its path ends
(`Context.finish`), after the session's flush has written the ticket.

Until then they are values: `Inbound` and `Message` objects never added to the
session, which the steps fill in and read (notify reads the message as it reads a
stored one). The unit of work's bookkeeping for them cost more than their
statements (benchmarks/pipeline_profile.py), and written last, the inbound row
goes in once with its outcome and trace, the message row after it with its id.
"""
from __future__ import annotations

from sqlalchemy import bindparam, insert
from sqlalchemy.orm import Session

from ..models import Attachment, Inbound, Message, Ticket
from ..tickets import final


# every column but the id, written from the object's attribute of that name
COLUMNS = {model: [c.key for c in model.__table__.columns if c.key != "id"]
           for model in (Inbound, Message, Attachment)}


def _insert(model, returning: bool):
    """INSERT of `COLUMNS[model]` as bind parameters: built once."""
    table = model.__table__
    statement = insert(table).values({key: bindparam(key) for key in COLUMNS[model]})
    return statement.returning(table.c.id) if returning else statement


INSERT_INBOUND = _insert(Inbound, returning=True)
INSERT_MESSAGE = _insert(Message, returning=True)
INSERT_ATTACHMENTS = _insert(Attachment, returning=False)


def _values(row, **given) -> dict:
    return {**{key: getattr(row, key) for key in COLUMNS[type(row)]}, **given}


def inbound(session: Session, record: Inbound, ticket: Ticket | None) -> int:
    """Insert the inbound row, naming `ticket` (which has its id); returns its id."""
    record.ticket_id = ticket.id if ticket is not None else None
    record.id = session.execute(INSERT_INBOUND, _values(record)).scalar_one()
    return record.id


def messages(session: Session, stored: list[tuple[Message, Ticket]], inbound_id: int) -> None:
    """Insert each stored message on its ticket — on the one it went into, if a command
    of the message merged it (`tickets.final`) — with its attachments."""
    for message, ticket in stored:
        message.ticket_id = final(session, ticket).id
        message.inbound_id = inbound_id
        message.id = session.execute(INSERT_MESSAGE, _values(message)).scalar_one()
        if message.attachments:
            session.execute(INSERT_ATTACHMENTS, [_values(att, message_id=message.id)
                                                 for att in message.attachments])

"""The data model: one schema for SQLite and PostgreSQL.

Times are stored as UTC and always come back timezone-aware (`base.py`).
Schema changes go through Alembic (mailgate/migrations); `tests/test_schema.py`
checks that the migrations produce exactly these tables.
"""
from .base import Base, iso, NAMING, UTCDateTime, utcnow
from .people import Address, Agent, agent_departments, Contact, Department
from .tickets import Attachment, Message, Participant, Ticket, TicketEvent
from .records import ImapState, Inbound, JobRun, Outbox, Quarantine, SlaAlert, Suppression

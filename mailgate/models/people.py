"""Departments and their addresses, agents, and the contacts who write to them."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Column, ForeignKey, String, Table, Text, select
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from .base import Base, utcnow


agent_departments = Table(
    "agent_departments",
    Base.metadata,
    Column("agent_id", ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("department_id", ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True),
)


class Department(Base):
    __tablename__ = "departments"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str | None] = mapped_column(String(16))
    locale: Mapped[str | None] = mapped_column(String(16))
    team_address: Mapped[str | None] = mapped_column(String(320))  # instead of each agent
    promise: Mapped[str | None] = mapped_column(Text)  # response promise in acknowledgements
    sms_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    addresses: Mapped[list[Address]] = relationship(back_populates="department")
    agents: Mapped[list[Agent]] = relationship(secondary=agent_departments,
                                               back_populates="departments")


class Address(Base):
    """An address that routes to a department; stored lower-case."""

    __tablename__ = "addresses"
    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"),
                                               index=True)
    department: Mapped[Department] = relationship(back_populates="addresses")


# The address mail about a department comes from (outbound/contexts.py): its first,
# loaded with the department, so that a message's mail asks the database nothing more.
Department.first_address = column_property(
    select(Address.address).where(Address.department_id == Department.id)
    .order_by(Address.id).limit(1).correlate_except(Address).scalar_subquery())


class Agent(Base):
    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    departments: Mapped[list[Department]] = relationship(secondary=agent_departments,
                                                         back_populates="agents")


class Contact(Base):
    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164
    locale: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

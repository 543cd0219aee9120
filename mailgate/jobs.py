"""Scheduled jobs: deadline warnings and escalations, customer reminders and auto-close,
daily digests. Each takes `now`, so tests drive them with a controllable clock.

Run once per cluster, not once per daemon: a pass holds a cluster lock, and what
it sends is recorded in the same transaction as a row with a unique key
(`sla_alerts`: ticket, deadline kind, stage, due time; `job_runs`: job, period) —
so each warning, escalation, reminder, auto-close and digest happens once, even
when two daemons race. The jobs look at state, not at missed ticks: a job that
was due while every daemon was down runs once on start.
"""
from __future__ import annotations

import datetime as dt
import logging
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import exc, select
from sqlalchemy.orm import Session

from . import sla, tickets
from .gateway import Gateway
from .locks import cluster_lock
from .localdates import language
from .models import Department, JobRun, SlaAlert, Ticket
from .outbound import notify
from .service import Policy

log = logging.getLogger("mailgate.jobs")
OPEN_STATUSES = ("new", "open", "in_progress", "answered")


def _once(session: Session, row) -> bool:
    """Insert `row` (a SlaAlert or JobRun); False if it was done already.

    Looked up first, so that the passes every minute do not each end in a unique
    violation (an ERROR line in PostgreSQL's log per done alert); the unique key
    still settles a race between two daemons."""
    if _done(session, row):
        return False
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
        return True
    except exc.IntegrityError:
        return False


def _mail(session, settings, ticket, kind, recipients, extra, now) -> None:
    context = {**notify.ticket_context(session, settings, ticket), **extra}
    locale = notify.locale_for(settings, None, ticket)
    notify.queue_mail(session, settings, ticket, kind, recipients,
                      {**context, "recipient": {"name": "", "email": recipients[0],
                                                "role": "agent"}},
                      locale, notify.department_sender(settings, ticket), now=now)


def _done(session: Session, row) -> bool:
    if isinstance(row, JobRun):
        return session.get(JobRun, (row.job, row.period)) is not None
    return session.scalar(select(SlaAlert.id).where(
        SlaAlert.ticket_id == row.ticket_id, SlaAlert.kind == row.kind,
        SlaAlert.stage == row.stage, SlaAlert.due_at == row.due_at)) is not None


@contextmanager
def _job_pass(gw: Gateway, name: str) -> Iterator[Session | None]:
    """One pass of job `name`: its cluster lock and one unit of work; None when
    another daemon holds the lock."""
    with cluster_lock(gw.db, f"job:{name}") as held:
        if not held:
            yield None
            return
        with gw.db.unit_of_work() as session:
            yield session


# -- deadlines --------------------------------------------------------------------

def check_deadlines(gw: Gateway, now: dt.datetime) -> int:
    """Warn before a deadline, escalate once it is missed; each once per deadline."""
    done = 0
    with _job_pass(gw, "deadlines") as session:
        if session is None:  # another daemon runs it
            return 0
        open_tickets = session.scalars(select(Ticket).where(
            Ticket.status.in_(OPEN_STATUSES),
            (Ticket.first_response_due.is_not(None)) | (Ticket.next_response_due.is_not(None))
            | (Ticket.resolution_due.is_not(None))))
        for ticket in open_tickets:
            policy = sla.policy_for(gw.settings, ticket)
            for kind, due in sla.deadlines(ticket).items():
                done += _deadline(session, gw.settings, policy, ticket, kind, due, now)
    return done


def _deadline(session, settings, policy: Policy, ticket, kind, due, now) -> int:
    deadline = {"kind": kind, "due_at": due.isoformat()}
    if now >= due:
        if not _once(session, SlaAlert(ticket_id=ticket.id, kind=kind, stage="escalation",
                                       due_at=due, created_at=now)):
            return 0
        tickets.record_event(session, ticket, "sla_breach", "mailgate", new=kind,
                             detail=f"{kind} was due {due.isoformat()}")
        contacts = list(policy.escalation_contacts) or notify.agent_recipients(ticket)
        assignee = {"name": ticket.assignee.name, "email": ticket.assignee.email} \
            if ticket.assignee else None
        for address in contacts:
            _mail(session, settings, ticket, "escalation", [address],
                  {"deadline": deadline, "assignee": assignee}, now)
        return 1
    warn_from = policy.calendar.subtract_working(due, dt.timedelta(hours=policy.warn_before))
    if now < warn_from:
        return 0
    if not _once(session, SlaAlert(ticket_id=ticket.id, kind=kind, stage="warning",
                                   due_at=due, created_at=now)):
        return 0
    for address in notify.agent_recipients(ticket, only_assignee=True):
        _mail(session, settings, ticket, "sla_warning", [address], {"deadline": deadline}, now)
    return 1


# -- waiting on the customer ---------------------------------------------------------

def working_days_after(policy: Policy, start: dt.datetime, days: int) -> dt.datetime:
    """The same local time `days` working days (days with working hours) after `start`."""
    calendar = policy.calendar
    local = start.astimezone(calendar.zone)
    day, counted = local.date(), 0
    while counted < days:
        day += dt.timedelta(days=1)
        if calendar.always or calendar.intervals_on(day):
            counted += 1
    return dt.datetime.combine(day, local.time(), calendar.zone).astimezone(dt.timezone.utc)


def remind_and_close(gw: Gateway, now: dt.datetime) -> int:
    """Remind customers we wait on; close tickets that waited too long, with notice."""
    done = 0
    with _job_pass(gw, "waiting") as session:
        if session is None:  # another daemon runs it
            return 0
        waiting = session.scalars(select(Ticket).where(
            Ticket.status == sla.WAITING_ON_CUSTOMER, Ticket.paused_since.is_not(None)))
        for ticket in waiting:
            done += _waiting(session, gw.settings, ticket, now)
    return done


def _waiting(session, settings, ticket: Ticket, now: dt.datetime) -> int:
    policy = sla.policy_for(settings, ticket)
    since = ticket.paused_since
    waited_days = (now - since).days
    if waited_days >= policy.close_after_days:
        if not _once(session, SlaAlert(ticket_id=ticket.id, kind="waiting", stage="closed",
                                       due_at=since, created_at=now)):
            return 0
        old = ticket.status
        tickets.set_status(session, ticket, policy.auto_close_status, "mailgate", now=now,
                           detail=f"no answer for {waited_days} days")
        sla.refresh(settings, ticket, now)
        notify.to_customer(session, settings, ticket, "auto_closed", {
            **notify.ticket_context(session, settings, ticket), "waiting_days": waited_days,
            "reopen_days": settings.threading.reopen_days}, now)
        log.info("auto-closed #%s after %d days (%s -> %s)", ticket.number, waited_days, old,
                 ticket.status)
        return 1
    if now >= working_days_after(policy, since, policy.reminder_after_days):
        if not _once(session, SlaAlert(ticket_id=ticket.id, kind="waiting", stage="reminder",
                                       due_at=since, created_at=now)):
            return 0
        notify.to_customer(session, settings, ticket, "reminder", {
            **notify.ticket_context(session, settings, ticket),
            "waiting_days": policy.reminder_after_days,
            "close_after_days": max(0, policy.close_after_days - waited_days)}, now)
        return 1
    return 0


# -- digests ----------------------------------------------------------------------

def send_digests(gw: Gateway, now: dt.datetime) -> int:
    """Each department's agents get one digest a day, at its digest time (or on start,
    if that time passed while no daemon ran)."""
    sent = 0
    with _job_pass(gw, "digest") as session:
        if session is None:  # another daemon runs it
            return 0
        for dept in session.scalars(select(Department)):
            policy = gw.settings.service.policy(dept.key)
            if not policy.digest_time:
                continue
            local = now.astimezone(policy.calendar.zone)
            if local.time() < dt.time.fromisoformat(policy.digest_time):
                continue
            if not _once(session, JobRun(job=f"digest:{dept.key}",
                                         period=local.date().isoformat(), ran_at=now)):
                continue
            sent += _digest(session, gw.settings, dept, policy, now)
    return sent


def working_age(policy: Policy, since: dt.datetime, now: dt.datetime) -> tuple[int, int]:
    """Age in working time: (whole working hours, working days begun since `since`'s day)."""
    calendar = policy.calendar
    hours = int(calendar.working_between(since, now).total_seconds() // 3600)
    day, today = since.astimezone(calendar.zone).date(), now.astimezone(calendar.zone).date()
    days = 0
    while day < today:
        day += dt.timedelta(days=1)
        days += bool(calendar.always or calendar.intervals_on(day))
    return hours, days


def _digest(session, settings, dept: Department, policy: Policy, now: dt.datetime) -> int:
    rows = list(session.scalars(select(Ticket).where(
        Ticket.department_id == dept.id, Ticket.status.in_(OPEN_STATUSES))))
    rows.sort(key=lambda t: (not sla.overdue(t, now), t.created_at))
    items = []
    for t in rows:
        hours, days = working_age(policy, t.created_at, now)
        dues = sla.deadlines(t)
        items.append({"number": t.number, "token": tickets.token_for(t, settings.threading.prefix),
                      "subject": t.subject, "status": t.status, "priority": t.priority,
                      "age_hours": hours, "age_days": days, "overdue": sla.overdue(t, now),
                      "due_at": min(dues.values()).isoformat() if dues else None})
    agents = sorted((a for a in dept.agents if a.active), key=lambda a: a.email)
    recipients = [(a.name, a.email) for a in agents] or (
        [("", dept.team_address)] if dept.team_address else [])
    address = notify.department_sender_for(settings, dept)
    for name, email in recipients:
        context = {"department": {"key": dept.key, "name": dept.name, "address": address[0],
                                  "promise": dept.promise or ""},
                   "agent": {"name": name, "email": email},
                   "recipient": {"name": name, "email": email, "role": "agent"},
                   "tickets": items, "total": len(items),
                   "overdue_count": sum(1 for i in items if i["overdue"]),
                   "close_word": "#close", "timezone": policy.timezone}
        notify.queue_mail(session, settings, None, "digest", [email], context,
                          language(dept.locale or settings.outbound.default_locale),
                          address, now=now)
    return len(recipients)


def run_all(gw: Gateway, now: dt.datetime | None = None) -> int:
    now = now or gw.now()
    return check_deadlines(gw, now) + remind_and_close(gw, now) + send_digests(gw, now)


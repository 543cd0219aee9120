"""Service hours: deadlines on tickets, jobs with a controllable clock, the CLI."""
from __future__ import annotations

import datetime as dt
import json
import threading
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from mailgate import jobs
from mailgate import tickets as ops
from mailgate.cli import main
from mailgate.config import ConfigError, load_settings
from mailgate.gateway import Gateway
from mailgate.models import Outbox, SlaAlert
from mailgate.pipeline import Envelope, ingest
from tests.mails import make_mail

TEHRAN = ZoneInfo("Asia/Tehran")
PIPE = Envelope("pipe")

SERVICE = """
[service]
first_response = { normal = 8, urgent = 2 }
next_response = { normal = 8 }
resolution = { normal = 32 }
warn_before = 1
escalation_contacts = ["lead@example.com"]
reminder_after_days = 2
close_after_days = 7
digest_time = "08:00"
[service.calendar]
timezone = "Asia/Tehran"
days = ["sat", "sun", "mon", "tue", "wed"]
hours = ["07:30-15:30"]
holidays = ["2026-11-24"]
[service.departments.billing]
first_response = { normal = 4 }
[service.departments.billing.calendar]
timezone = "Asia/Tbilisi"
days = ["mon", "tue", "wed", "thu", "fri"]
hours = ["09:00-13:00", "14:00-18:00"]
"""


@pytest.fixture
def service_settings(settings, tmp_path):
    path = tmp_path / "service.toml"
    path.write_text(SERVICE)
    loaded = load_settings(path, env={})
    return settings.replace(service=loaded.service)


class Clock:
    def __init__(self, moment):
        self.now = moment

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    # Thursday 2026-11-19 16:30 in Tehran
    return Clock(dt.datetime(2026, 11, 19, 16, 30, tzinfo=TEHRAN).astimezone(dt.timezone.utc))


@pytest.fixture
def sgw(service_settings, parser_pool, clock, departments):
    gateway = Gateway(service_settings, parser=parser_pool, clock=clock)
    yield gateway
    gateway.close()


def ticket(gw, number):
    with gw.db.unit_of_work() as session:
        t = ops.get_ticket(session, number)
        t.department
        return t


def local(value):
    return value.astimezone(TEHRAN).replace(tzinfo=None)


def test_service_config_problems_are_reported_with_keys(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[service]\nfirst_response = { normal = -1, soon = 3 }\nwarn = 1\n'
                    'auto_close_status = "deleted"\n[service.calendar]\ntimezone = "Mars/Base"\n'
                    'days = ["sat"]\nhours = ["09:00-17:00"]\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    keys = {k for k, _ in info.value.problems}
    assert {"service.first_response.normal", "service.first_response.soon", "service.warn",
            "service.auto_close_status"} <= keys
    assert any(k.startswith("service.calendar") for k in keys)


def test_deadline_in_a_saturday_to_wednesday_week(sgw, clock):
    """The issue's example: Thursday 16:30, an 8-working-hour target, Saturday–Wednesday
    working days (07:30–15:30): due Saturday 15:30 local."""
    result = ingest(sgw, make_mail(), PIPE)
    t = ticket(sgw, result.ticket)
    assert local(t.first_response_due) == dt.datetime(2026, 11, 21, 15, 30)
    assert t.first_response_due.astimezone(TEHRAN).isoformat() == "2026-11-21T15:30:00+03:30"
    assert local(t.resolution_due) == dt.datetime(2026, 11, 25, 15, 30)  # Tuesday a holiday


def test_acknowledgement_states_the_due_time_in_the_customers_calendar(sgw, clock):
    import email
    import email.policy

    from mailgate.models import Contact
    from mailgate.outbound.sender import OutboxSender

    with sgw.db.unit_of_work() as session:
        session.add(Contact(email="customer@example.org", locale="fa"))
    ingest(sgw, make_mail(), PIPE)
    OutboxSender(sgw).run_once()
    msgs = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in (sgw.settings.storage.dir / "outbox").glob("*.eml")]
    ack = next(m for m in msgs if "customer@example.org" in str(m["To"]))
    body = ack.get_body(("plain",)).get_content()
    assert "۳۰ آبان ۱۴۰۵" in body and "۱۵:۳۰" in body  # Saturday 21 Nov 2026, 15:30


def test_department_calendar_and_priority_change_recompute(sgw, clock):
    result = ingest(sgw, make_mail(to="billing@example.com"), PIPE)
    t = ticket(sgw, result.ticket)
    # Thursday 16:30 Tehran is 17:00 in Tbilisi; 4 working hours: 17:00-18:00, Fri 09:00-12:00
    assert t.first_response_due.astimezone(ZoneInfo("Asia/Tbilisi")).replace(tzinfo=None) == \
        dt.datetime(2026, 11, 20, 12, 0)
    with sgw.db.unit_of_work() as session:
        t = ops.get_ticket(session, result.ticket)
        ops.set_priority(session, t, "urgent", "cli")
        from mailgate import sla

        sla.refresh(sgw.settings, t, clock.now)
    # billing overrides only the normal target; urgent comes from the default: 2 hours
    t = ticket(sgw, result.ticket)
    assert t.first_response_due.astimezone(ZoneInfo("Asia/Tbilisi")).replace(tzinfo=None) == \
        dt.datetime(2026, 11, 20, 10, 0)


def test_waiting_on_the_customer_pauses_the_resolution_clock(sgw, clock):
    from mailgate import sla

    result = ingest(sgw, make_mail(), PIPE)
    due_before = ticket(sgw, result.ticket).resolution_due
    clock.now = dt.datetime(2026, 11, 21, 10, 0, tzinfo=TEHRAN).astimezone(dt.timezone.utc)
    with sgw.db.unit_of_work() as session:
        t = ops.get_ticket(session, result.ticket)
        sla.agent_answered(t, clock.now)
        ops.set_status(session, t, "answered", "agent", now=clock.now)
        sla.refresh(sgw.settings, t, clock.now)
        assert t.resolution_due is None and t.first_response_due is None
    # the customer answers two working hours later (Saturday 12:00)
    clock.now = dt.datetime(2026, 11, 21, 12, 0, tzinfo=TEHRAN).astimezone(dt.timezone.utc)
    ingest(sgw, make_mail(subject=f"Re: [MG#{result.ticket}]"), PIPE)
    t = ticket(sgw, result.ticket)
    assert t.status == "open"
    calendar = sgw.settings.service.calendar  # the installation's own policy
    assert calendar.working_between(due_before, t.resolution_due) == dt.timedelta(hours=2)
    assert local(t.resolution_due) == dt.datetime(2026, 11, 28, 9, 30)  # Wed 15:30 + 2 h
    assert local(t.next_response_due) == dt.datetime(2026, 11, 22, 12, 0)  # 8 working hours


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=TEHRAN).astimezone(dt.timezone.utc)


def sent(gw, kind: str) -> list[Outbox]:
    with gw.db.unit_of_work() as session:
        return list(session.scalars(select(Outbox).where(Outbox.kind == kind)))


def test_warning_then_one_escalation_per_deadline(sgw, clock):
    ingest(sgw, make_mail(), PIPE)  # first response due Saturday 15:30
    assert jobs.check_deadlines(sgw, at(21, 13, 0)) == 0
    assert jobs.check_deadlines(sgw, at(21, 14, 45)) == 1  # within warn_before (1 h)
    assert jobs.check_deadlines(sgw, at(21, 15, 0)) == 0
    assert [r.recipients for r in sent(sgw, "sla_warning")] == [["agent@example.com"]]
    assert jobs.check_deadlines(sgw, at(21, 15, 31)) == 1
    for minute in range(32, 40):
        assert jobs.check_deadlines(sgw, at(21, 15, minute)) == 0
    [escalation] = sent(sgw, "escalation")
    assert escalation.recipients == ["lead@example.com"]
    assert escalation.context["deadline"]["kind"] == "first_response"


def test_reminder_then_auto_close_once_with_notice(sgw, clock):
    from mailgate import sla

    result = ingest(sgw, make_mail(), PIPE)
    clock.now = at(21, 9)
    with sgw.db.unit_of_work() as session:
        t = ops.get_ticket(session, result.ticket)
        sla.agent_answered(t, clock.now)
        ops.set_status(session, t, "answered", "agent", now=clock.now)
        sla.refresh(sgw.settings, t, clock.now)
    assert jobs.remind_and_close(sgw, at(22, 10)) == 0  # one working day
    assert jobs.remind_and_close(sgw, at(23, 9)) == 1  # two working days: reminder
    assert jobs.remind_and_close(sgw, at(25, 9)) == 0
    assert len(sent(sgw, "reminder")) == 1
    assert jobs.remind_and_close(sgw, at(28, 9)) == 1  # seven days: closed with notice
    assert jobs.remind_and_close(sgw, at(29, 9)) == 0
    assert ticket(sgw, result.ticket).status == "resolved"
    assert len(sent(sgw, "auto_closed")) == 1


def test_digest_once_a_day_and_on_start_when_missed(sgw, clock):
    ingest(sgw, make_mail(), PIPE)
    assert jobs.send_digests(sgw, at(21, 7)) == 0  # before 08:00 Tehran
    assert jobs.send_digests(sgw, at(21, 8, 1)) == 1  # support's agent (billing has none)
    assert jobs.send_digests(sgw, at(21, 17)) == 0
    # every daemon was down on Sunday morning: the first run afterwards sends one
    assert jobs.send_digests(sgw, at(22, 23, 50)) == 1
    [first, second] = sent(sgw, "digest")
    assert first.context["total"] == 1 and first.recipients == ["agent@example.com"]
    # age in working time: Thursday 16:30 → Saturday 08:01 is 31 working minutes, and
    # Saturday is the first working day begun; by Sunday night two full days (16 hours)
    [item] = first.context["tickets"]
    assert (item["age_hours"], item["age_days"]) == (0, 1)
    [item] = second.context["tickets"]
    assert (item["age_hours"], item["age_days"]) == (16, 2)


def test_repeated_passes_raise_no_database_errors(sgw, clock):
    """Done alerts and digests are looked up, not re-inserted into a unique violation
    every minute (each would be an ERROR line in PostgreSQL's log)."""
    from sqlalchemy import event

    from mailgate import sla

    errors = []
    event.listen(sgw.db.engine, "handle_error", lambda context: errors.append(context))
    waiting = ingest(sgw, make_mail(sender="w@example.org", subject="waiting"), PIPE)
    ingest(sgw, make_mail(), PIPE)
    with sgw.db.unit_of_work() as session:
        t = ops.get_ticket(session, waiting.ticket)
        sla.agent_answered(t, at(20, 9))
        ops.set_status(session, t, "answered", "agent", now=at(20, 9))
        sla.refresh(sgw.settings, t, at(20, 9))
    assert jobs.run_all(sgw, at(25, 9)) >= 3  # escalations, a reminder, a digest
    for minute in range(1, 6):
        assert jobs.run_all(sgw, at(25, 9, minute)) == 0
    assert errors == []


def test_two_schedulers_on_one_postgresql_escalate_once(pg_url, tmp_path, service_settings,
                                                        parser_pool, clock):
    from mailgate.models import Address, Agent, Department
    from tests.conftest import _truncate_all

    settings = service_settings.replace(database={"url": pg_url})
    gateways = [Gateway(settings, parser=parser_pool, clock=clock) for _ in range(2)]
    _truncate_all(gateways[0].db)
    with gateways[0].db.unit_of_work() as session:
        support = Department(key="support", name="Support")
        session.add(Address(address="support@example.com", department=support))
        session.add(Agent(email="agent@example.com", departments=[support]))
    for i in range(10):
        ingest(gateways[0], make_mail(sender=f"c{i}@example.org"), PIPE)
    barrier = threading.Barrier(2)

    def run(gw):
        barrier.wait()
        for minute in range(31, 36):
            jobs.check_deadlines(gw, at(21, 15, minute))

    threads = [threading.Thread(target=run, args=(g,)) for g in gateways]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with gateways[0].db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.kind == "escalation")) == 10
        assert session.scalar(select(func.count()).select_from(SlaAlert).where(
            SlaAlert.stage == "escalation")) == 10
    for g in gateways:
        g.close()


@pytest.fixture
def cli(db_url, tmp_path, capfd):
    config = tmp_path / "mailgate.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[storage]\ndir = "{tmp_path / "var"}"\n'
                      'fsync = false\n' + SERVICE)

    def run(*args):
        capfd.readouterr()
        code = main(["--config", str(config), *args])
        out, err = capfd.readouterr()
        return code, out, err

    run("department", "add", "support")
    run("department", "add", "billing")
    return run


@pytest.mark.parametrize("department,start,hours,expected", [
    ("support", "2026-11-19T16:30:00", 8, "2026-11-21T15:30:00+03:30"),
    ("support", "2026-11-23T15:00:00+03:30", 1, "2026-11-25T08:00:00+03:30"),  # holiday
    ("billing", "2026-11-20T12:30:00", 2, "2026-11-20T15:30:00+04:00"),  # split day
    ("billing", "2026-11-20T17:30:00+04:00", 1, "2026-11-23T09:30:00+04:00"),  # weekend
])
def test_calendar_due_command(cli, department, start, hours, expected):
    code, out, _ = cli("calendar", "due", department, "--start", start, "--hours", str(hours))
    assert (code, out.strip()) == (0, expected)


def test_calendar_due_errors(cli):
    assert cli("calendar", "due", "nosuch", "--start", "2026-11-20T10:00", "--hours", "1")[0] \
        == 65
    assert cli("calendar", "due", "support", "--start", "soon", "--hours", "1")[0] == 64


def test_ticket_list_overdue_and_deadline_fields(cli, tmp_path):
    cli("address", "add", "support@example.com", "--department", "support")
    (tmp_path / "m.eml").write_bytes(make_mail())
    cli("ingest", str(tmp_path / "m.eml"))
    [row] = json.loads(cli("ticket", "list", "--json")[1])
    assert row["first_response_due"] and row["resolution_due"] and row["overdue"] is False
    assert row["next_response_due"] is None
    assert json.loads(cli("ticket", "list", "--overdue", "--json")[1]) == []
    from mailgate.config import load_settings as load
    from mailgate.db import Database
    from mailgate.models import Ticket

    settings = load(tmp_path / "mailgate.toml", env={})
    database = Database(settings.database_url)
    with database.unit_of_work() as session:
        t = session.scalar(select(Ticket))
        t.first_response_due = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
    database.dispose()
    [late] = json.loads(cli("ticket", "list", "--overdue", "--json")[1])
    assert late["number"] == row["number"] and late["overdue"] is True
    assert "OVERDUE" in cli("ticket", "list")[1]


def test_a_priority_change_to_one_without_a_target_keeps_its_deadlines(cli, tmp_path):
    """The issue's case: resolution has a target for normal only; `--priority urgent` used
    to leave resolution_due = None. Now urgent takes the next lower priority's target."""
    cli("address", "add", "support@example.com", "--department", "support")
    (tmp_path / "m.eml").write_bytes(make_mail())
    cli("ingest", str(tmp_path / "m.eml"))
    [row] = json.loads(cli("ticket", "list", "--json")[1])
    assert cli("ticket", "set", row["number"], "--priority", "urgent")[0] == 0
    shown = json.loads(cli("ticket", "show", row["number"], "--json")[1])
    # resolution: normal's 32 working hours; next response: normal's; first: urgent's own 2
    assert shown["resolution_due"] == row["resolution_due"]
    assert shown["first_response_due"] < row["first_response_due"]
    assert cli("ticket", "set", row["number"], "--priority", "low")[0] == 0
    shown = json.loads(cli("ticket", "show", row["number"], "--json")[1])
    assert shown["resolution_due"] is None  # nothing lower than low, no default


@pytest.mark.parametrize("targets, priority, hours", [
    ("{ normal = 72 }", "urgent", 72),
    ("{ normal = 72, high = 10 }", "urgent", 10),
    ("{ normal = 72, high = 10 }", "high", 10),
    ("{ normal = 72 }", "low", None),
    ("{ normal = 72, default = 120 }", "low", 120),
    ("{ default = 120 }", "urgent", 120),
    ("{ low = 100, urgent = 4 }", "high", 100),
    ("{}", "normal", None),
])
def test_a_missing_target_falls_back_to_a_lower_priority_then_default(tmp_path, targets,
                                                                    priority, hours):
    path = tmp_path / "service.toml"
    path.write_text(f"[service]\nresolution = {targets}\n")
    target = load_settings(path, env={}).service.target("resolution", priority)
    assert target == (None if hours is None else dt.timedelta(hours=hours))


def test_priorities_without_targets_are_named_once_per_policy(tmp_path):
    path = tmp_path / "service.toml"
    path.write_text(SERVICE + "[service.departments.sales]\nresolution = { default = 40 }\n"
                    "[service.departments.billing.next_response]\nhigh = 3\n")
    warnings = dict(load_settings(path, env={}).service.target_warnings())
    assert warnings["service.resolution.urgent"] == \
        "no target: urgent tickets get normal's (32 working hours)"
    assert warnings["service.resolution.low"] == \
        "no target: low tickets get no resolution deadline"
    assert warnings["service.departments.billing.next_response.urgent"] == \
        "no target: urgent tickets get high's (3 working hours)"
    # billing sets its own normal first-response target: its high falls back to that one
    assert warnings["service.departments.billing.first_response.high"] == \
        "no target: high tickets get normal's (4 working hours)"
    assert "service.departments.billing.resolution.urgent" not in warnings  # inherited
    assert not [k for k in warnings if k.startswith("service.departments.sales")]


def test_a_departments_calendar_dates_its_mail_and_outbound_timezone_the_rest(tmp_path):
    """README's rule for `[outbound] timezone`: the zone of dates in mail about a department
    without a service calendar; a calendar's zone (its own or [service.calendar]) wins."""
    from types import SimpleNamespace

    from mailgate.outbound.contexts import timezone_for

    def zone(text: str, department: str) -> str:
        path = tmp_path / "zones.toml"
        path.write_text('[outbound]\ntimezone = "Europe/Berlin"\n' + text)
        ticket = SimpleNamespace(department=SimpleNamespace(key=department))
        return timezone_for(load_settings(path, env={}), ticket)

    assert zone("", "support") == "Europe/Berlin"
    assert zone(SERVICE, "support") == "Asia/Tehran"
    assert zone(SERVICE, "billing") == "Asia/Tbilisi"
    only_billing = ('[service.departments.billing.calendar]\ntimezone = "Asia/Tbilisi"\n'
                    "always = true\n")
    assert (zone(only_billing, "support"), zone(only_billing, "billing")) == \
        ("Europe/Berlin", "Asia/Tbilisi")

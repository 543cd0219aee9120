"""Statuses and promises as the portals name them (issue 12, section 5): status labels
per locale in one place, used by every template, SMS and `ticket list`; the
response promise in working time; due times with their time zone in every
locale; and the status mail never before the answer that caused it."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from mailgate import tickets as ops
from mailgate.config import ConfigError, load_settings
from mailgate.localdates import format_due
from mailgate.models import Outbox
from mailgate.outbound import notify
from mailgate.outbound.render import Templates
from mailgate.outbound.samples import SAMPLES
from mailgate.pipeline import ingest
from mailgate.status_labels import status_label, status_labels, status_words
from tests.mails import make_mail
from tests.test_agents import (AGENT, CUSTOMER, agent_reply, agw, open_ticket,  # noqa: F401
                               relay, send, strict, text_of)
from tests.test_cli import mailgate  # noqa: F401  (the fixture: commands in-process)
from tests.test_trust import PIPE

PORTAL = """
[statuses.en]
in_progress = "In review"
resolved = "Finished"
[statuses.fa]
in_progress = "در حال بررسی"
resolved = "پایان یافته"
[statuses.departments.billing.ka]
resolved = "დასრულებულია"
"""


@pytest.fixture
def portal(tmp_path):
    path = tmp_path / "mailgate.toml"
    path.write_text(PORTAL, encoding="utf-8")
    return load_settings(path, env={})


def test_one_line_each_per_locale_and_department(portal):
    assert status_label(portal, "in_progress", "en") == "In review"
    assert status_label(portal, "resolved", "fa_IR") == "پایان یافته"
    assert status_label(portal, "closed", "fa") == "بسته‌شده"  # not configured: built in
    assert status_label(portal, "resolved", "ka") == "გადაწყვეტილია"
    assert status_label(portal, "resolved", "ka", department="billing") == "დასრულებულია"
    assert status_label(portal, "resolved", "de") == "Finished"  # unsupported locale: en
    assert status_label(portal, "on_hold", "en") == "on_hold"  # unknown: as it is
    # every label reads back as its status: "#tickets پایان یافته" filters by it
    words = status_words(portal)
    assert words["پایان یافته"] == words["Finished"] == words["დასრულებულია"] == "resolved"


@pytest.mark.parametrize("toml,key,message", [
    ('[statuses.fr]\nopen = "Ouvert"', "statuses.fr", "unknown locale"),
    ('[statuses.en]\ndone = "Done"', "statuses.en.done", "unknown status"),
    ('[statuses.en]\nopen = ""', "statuses.en.open", "non-empty"),
    ('[statuses.en]\nopen = 3', "statuses.en.open", "string"),
    ('[statuses]\nen = "Open"', "statuses.en", "must be a table"),
    ('[statuses.departments.x]\nen = 1', "statuses.departments.x.en", "must be a table"),
])
def test_a_wrong_label_is_named_with_its_key(tmp_path, toml, key, message):
    path = tmp_path / "bad.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_settings(path, env={})
    assert any(k == key and message in m for k, m in error.value.problems), \
        error.value.problems


@pytest.mark.parametrize("locale,label", [("en", "Finished"), ("fa", "پایان یافته")])
def test_every_template_and_sms_uses_the_configured_label(portal, locale, label):
    templates = Templates(portal)
    context = {**SAMPLES["status_change"], "status": {"old": "open", "new": "resolved",
                                                       "reason": ""}}
    mail = templates.render("status_change", locale, context)
    assert label in mail.subject and label in mail.text and label in mail.html
    assert label.lower() in templates.render_sms("status_change", locale, context).lower()
    for name in ("customer_reply", "sla_warning", "escalation", "digest"):
        sample = SAMPLES[name]
        shown = {**sample, "ticket": {**sample["ticket"], "status": "in_progress"}} \
            if "ticket" in sample else {**sample, "tickets": [
                {**t, "status": "in_progress"} for t in sample["tickets"]]}
        expected = status_labels(portal, locale)["in_progress"]
        assert expected in templates.render(name, locale, shown).text, name


def test_ticket_list_uses_the_labels(agw, relay, tmp_path, capsys):  # noqa: F811
    from tests.test_agents import admin  # noqa: F401  (the fixture's helper, by name)

    number, _ = open_ticket(agw, relay)
    with agw.db.unit_of_work() as session:
        ops.get_ticket(session, number).status = "in_progress"
    config = tmp_path / "labels.toml"
    config.write_text(f'[database]\nurl = "{agw.settings.database.url}"\n'
                      f'[storage]\ndir = "{agw.settings.storage.dir}"\n' + PORTAL,
                      encoding="utf-8")
    from mailgate.cli import main

    assert main(["--config", str(config), "ticket", "list"]) in (0, None)
    assert "In review" in capsys.readouterr().out


# -- promises ---------------------------------------------------------------------------

@pytest.mark.parametrize("locale", ["en", "fa", "ka"])
def test_due_times_carry_their_time_zone_in_every_locale(locale):
    moment = dt.datetime(2026, 11, 14, 12, tzinfo=dt.timezone.utc)
    assert format_due(moment, locale, "Asia/Tehran").endswith("(Asia/Tehran)")
    templates = Templates(load_settings(None, env={}))
    for name in ("ack", "new_ticket", "sla_warning", "escalation", "digest"):
        zone = f"({SAMPLES[name]['timezone']})"
        rendered = templates.render(name, locale, SAMPLES[name])
        assert zone in rendered.text and zone in rendered.html, (name, locale)


@pytest.mark.parametrize("locale,promise,resolution", [
    ("en", "within 8 working hours, by", "resolve it within 72\nworking hours"),
    ("fa", "حداکثر ظرف ۸ ساعت کاری، یعنی تا", "حداکثر ظرف ۷۲ ساعت کاری آن را حل کنیم"),
    ("ka", "გიპასუხებთ 8 სამუშაო საათში", "72 სამუშაო საათში"),
])
def test_the_promise_is_in_working_time_with_the_resolution_target(locale, promise,
                                                                   resolution):
    text = Templates(load_settings(None, env={})).render("ack", locale, SAMPLES["ack"]).text
    assert promise in text and resolution in text


def test_the_promise_comes_from_the_departments_targets(agw, relay):  # noqa: F811
    agw.settings = agw.settings.replace(service=agw.settings.service.__class__(
        first_response=agw.settings.service.first_response.__class__(normal=24),
        resolution=agw.settings.service.resolution.__class__(normal=72),
        calendar=_tehran()))
    open_ticket(agw, relay)
    ack = text_of(relay.to(CUSTOMER)[-1].raw)
    assert "within 24 working hours, by" in ack and "(Asia/Tehran)" in ack
    assert "resolve it within 72" in ack


def _tehran():
    from mailgate.service import work_calendar

    return work_calendar({"timezone": "Asia/Tehran", "days": ["sat", "sun", "mon", "tue",
                                                              "wed"],
                          "hours": ["09:00-17:00"]})


# -- the status mail never before the answer ----------------------------------------------

@pytest.mark.parametrize("commands", ["#status resolved", "#close"])
def test_an_answer_and_its_status_change_are_one_mail(agw, relay, commands):  # noqa: F811
    number, notification = open_ticket(agw, relay)
    before = len(relay.to(CUSTOMER))
    ingest(agw, agent_reply(notification, f"{commands}\nFixed: the toner was empty."), PIPE)
    send(agw)
    mails = relay.to(CUSTOMER)[before:]
    assert len(mails) == 1
    text = text_of(mails[0].raw)
    assert "Fixed: the toner was empty." in text
    assert ("Your ticket is now: Resolved" if "resolved" in commands else
            "Your ticket is now: Closed") in text
    with agw.db.unit_of_work() as session:
        kinds = session.scalars(select(Outbox.kind).where(Outbox.ticket_id.is_not(None))
                                .order_by(Outbox.id)).all()
        assert "status_change" not in kinds
        assert ops.get_ticket(session, number).status in ("resolved", "closed")


def test_a_status_change_without_an_answer_is_its_own_mail(agw, relay):  # noqa: F811
    _, notification = open_ticket(agw, relay)
    before = len(relay.to(CUSTOMER))
    ingest(agw, agent_reply(notification, "#status resolved\n"), PIPE)
    send(agw)
    mails = relay.to(CUSTOMER)[before:]
    assert [strict(m.raw)["Subject"].split()[1] for m in mails] == ["Resolved:"]


def test_a_later_status_mail_waits_for_an_answer_still_unsent(agw, relay):  # noqa: F811
    """With several workers, or an answer the relay refused for now, the status mail
    queued after it must not overtake it."""
    number, notification = open_ticket(agw, relay)
    before = len(relay.to(CUSTOMER))
    ingest(agw, agent_reply(notification, "Here is the answer."), PIPE)
    with agw.db.unit_of_work() as session:
        answer = session.scalar(select(Outbox).where(Outbox.kind == "agent_reply"))
        answer.next_attempt_at = agw.now() + dt.timedelta(minutes=5)  # a retry, later
        t = ops.get_ticket(session, number)
        ops.set_status(session, t, "resolved", "admin")
        notify.status_changed(session, agw.settings, t, "answered", "resolved", now=agw.now())
    send(agw)
    assert relay.to(CUSTOMER)[before:] == []  # the status mail waits for the answer
    with agw.db.unit_of_work() as session:
        answer = session.scalar(select(Outbox).where(Outbox.kind == "agent_reply"))
        answer.next_attempt_at = agw.now()
    send(agw)
    subjects = [strict(m.raw)["Subject"] for m in relay.to(CUSTOMER)[before:]]
    assert len(subjects) == 2 and subjects[0].startswith("Re:") and "Resolved" in subjects[1]


def test_check_names_a_department_the_database_does_not_have(mailgate):  # noqa: F811
    from tests.test_check import checked

    mailgate("department", "add", "billing")
    lines = checked(mailgate, '[statuses.departments.biling.fa]\nresolved = "پایان یافته"\n')
    assert 'statuses.departments.biling: no department "biling" in the database; did you ' \
           'mean "billing"?' in lines

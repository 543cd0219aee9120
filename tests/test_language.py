"""A contact without a locale is answered in the language their mail is written in."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from mailgate.mail.language import guess_locale
from mailgate.models import Contact, Outbox
from mailgate.pipeline import Envelope, ingest
from tests.mails import make_mail

PIPE = Envelope("pipe")


@pytest.mark.parametrize("subject,text,expected", [
    ("چاپگر کار نمی‌کند", "سلام، چاپگر طبقه دوم کار نمی‌کند.", "fa"),
    ("Printer", "سلام، فاکتور این ماه دو بار از کارت من کسر شد. لطفاً بررسی کنید.", "fa"),
    ("პრინტერი არ მუშაობს", "გამარჯობა, მეორე სართულზე პრინტერი არ მუშაობს.", "ka"),
    ("Printer on fire", "Hello, the printer on the second floor is on fire.", None),
    # Arabic, not Persian: we have no Arabic templates, so no guess
    ("طابعة", "مرحبا، الطابعة لا تعمل في الطابق الثاني يا صديقي", None),
    ("Re: [MG#100014]", "ok", None),  # too little to say
    ("Invoice", "Hello, my invoice is wrong.\nسلام", None),  # mostly Latin
    ("", "", None),
])
def test_guess_locale(subject, text, expected):
    assert guess_locale(subject, text) == expected


def contact(gw, email):
    with gw.db.unit_of_work() as session:
        return session.scalar(select(Contact).where(Contact.email == email))


def ack(gw):
    with gw.db.unit_of_work() as session:
        return session.scalar(select(Outbox).where(Outbox.kind == "ack"))


@pytest.mark.parametrize("subject,body,locale", [
    ("چاپگر کار نمی‌کند", "سلام، چاپگر طبقه دوم کار نمی‌کند.\n", "fa"),
    ("პრინტერი არ მუშაობს", "გამარჯობა, მეორე სართულზე პრინტერი არ მუშაობს.\n", "ka"),
    ("Printer on fire", "Hello, the printer on the second floor is on fire.\n", None),
])
def test_a_new_contact_gets_the_locale_of_their_mail(gw, departments, subject, body, locale):
    ingest(gw, make_mail(sender="new@example.ir", subject=subject, body=body), PIPE)
    assert contact(gw, "new@example.ir").locale == locale
    assert ack(gw).locale == (locale or "en")


def test_a_locale_set_by_an_admin_is_kept(gw, departments):
    with gw.db.unit_of_work() as session:
        session.add(Contact(email="known@example.ir", name="", locale="en"))
    ingest(gw, make_mail(sender="known@example.ir", subject="چاپگر کار نمی‌کند",
                         body="سلام، چاپگر طبقه دوم کار نمی‌کند.\n"), PIPE)
    assert contact(gw, "known@example.ir").locale == "en"
    assert ack(gw).locale == "en"


def test_automatic_mail_sets_no_locale(gw, departments):
    """An out-of-office reply in Persian, appended to the contact's ticket, does not
    decide the language they are answered in."""
    first = ingest(gw, make_mail(sender="away@example.ir", subject="Printer",
                                 body="Hello, the printer is broken again today.\n"), PIPE)
    assert contact(gw, "away@example.ir").locale is None
    result = ingest(gw, make_mail(sender="away@example.ir",
                                  subject=f"پاسخ خودکار: Re: [MG#{first.ticket}] Printer",
                                  body="سلام، تا هفته بعد در سفر هستم و به ایمیل‌ها پاسخ نمی‌دهم.\n",
                                  auto_submitted="auto-replied"), PIPE)
    assert (result.outcome, result.ticket) == ("appended", first.ticket)
    assert contact(gw, "away@example.ir").locale is None

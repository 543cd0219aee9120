"""Mail and SMS templates: every message renders in every locale with its sample context.

The built-in templates are discovered from templates/en, so a new message is
checked as soon as its English files exist, and a missing translation fails.
"""
from __future__ import annotations

import copy
import logging
import re
from html.parser import HTMLParser

import pytest

from mailgate.config import Settings
from mailgate.mail.quotes import strip_quoted
from mailgate.outbound import render
from mailgate.outbound.render import BUILTIN, Templates
from mailgate.outbound.samples import SAMPLES

LOCALES = ("en", "fa", "ka")
MAIL = sorted(p.stem for p in (BUILTIN / "en").glob("*.txt") if not p.name.startswith("_"))
SMS = sorted(p.stem for p in (BUILTIN / "en" / "sms").glob("*.txt"))
SEPARATORS = {
    "en": "##- Please type your reply above this line -##",
    "fa": "##- لطفاً پاسخ خود را بالای این خط بنویسید -##",
    "ka": "##- გთხოვთ, პასუხი ამ ხაზის ზემოთ დაწეროთ -##",
}
RAW_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
HTML_IN_TEXT = re.compile(r"</?(?:p|div|br|strong|ul|li|table|tr|td|span|code|html)\b", re.I)
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
REMOTE = re.compile(r"^\s*(?:https?:)?//", re.I)


def sample(name: str, **changes) -> dict:
    context = copy.deepcopy(SAMPLES.get(name, SAMPLES["_default"]))
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            context[section][field] = value
        else:
            context[section] = value
    return context


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates(Settings())


class Page(HTMLParser):
    """The tags of a document, with nesting errors and remote loads noted."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.problems: list[str] = []
        self.doctype = ""
        self.feed(html)
        self.close()
        self.problems += [f"<{tag}> never closed" for tag in self.stack]

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        for name in ("src", "href", "background", "poster", "data", "srcset"):
            if attrs.get(name) and REMOTE.match(attrs[name]):
                self.problems.append(f"<{tag} {name}={attrs[name]!r}> loads a remote resource")
        if "url(" in (attrs.get("style") or ""):
            self.problems.append(f"<{tag}> style loads a resource")
        if tag in ("script", "link", "iframe", "object"):
            self.problems.append(f"<{tag}> is not allowed in our mail")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def first(self, tag: str) -> dict:
        return next(attrs for name, attrs in self.tags if name == tag)


# -- every message, every locale -------------------------------------------------

@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", MAIL)
def test_mail_renders_with_its_sample(templates, name, locale):
    rendered = templates.render(name, locale, sample(name))

    assert rendered.subject and "\n" not in rendered.subject and "\r" not in rendered.subject
    if name not in ("digest", "my_tickets"):  # about many tickets, not one
        token = SAMPLES.get(name, SAMPLES["_default"])["ticket"]["token"]
        assert token in rendered.subject
    first_line = rendered.text.split("\n", 1)[0]
    assert first_line == SEPARATORS[locale]
    assert not HTML_IN_TEXT.search(rendered.text)
    for part in (rendered.subject, rendered.text, rendered.html or ""):
        assert not RAW_ISO.search(part), "a date must go through when() or day()"
        assert "None" not in part


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", MAIL)
def test_html_is_a_small_self_contained_document(templates, name, locale):
    html = templates.render(name, locale, sample(name)).html
    assert html is not None, f"{locale}/{name}.html is missing"
    page = Page(html)

    assert page.problems == []
    assert page.doctype.lower() == "doctype html"
    direction = "rtl" if locale == "fa" else "ltr"
    assert page.first("html") == {"lang": locale, "dir": direction}
    assert page.first("body")["dir"] == direction
    assert page.first("meta") == {"charset": "utf-8"}
    assert f">{SEPARATORS[locale]}</p>" in html


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", MAIL)
def test_a_reply_above_the_separator_keeps_only_the_new_text(templates, name, locale):
    text = templates.render(name, locale, sample(name)).text
    quoted = "\n".join("> " + line for line in text.splitlines())
    reply = f"Thanks, that helps.\n\nOn Sat, 14 Nov 2026 at 10:00, Support wrote:\n{quoted}\n"
    assert strip_quoted(reply) == "Thanks, that helps."


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", SMS)
def test_sms_is_short_and_names_the_ticket(templates, name, locale):
    text = templates.render_sms(name, locale, sample(name))
    number = SAMPLES[name]["ticket"]["number"]
    if locale == "fa":
        number = number.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    assert number in text and "\n" not in text
    # GSM-7 allows 160 characters in one SMS; Persian and Georgian need UCS-2, 70.
    assert len(text) <= (160 if locale == "en" else 70), text


def test_every_locale_has_every_file_of_en():
    def files(locale):
        folder = BUILTIN / locale
        return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}

    english = files("en")
    assert {f"{name}.{ext}" for name in MAIL for ext in ("subject", "txt", "html")} <= english
    for locale in LOCALES:
        assert files(locale) == english, locale


def test_samples_cover_every_template():
    assert set(MAIL) | set(SMS) <= set(SAMPLES)


def test_check_finds_no_problem(templates):
    assert templates.locales() == list(LOCALES)
    assert templates.check(SAMPLES) == []


# -- dates and the promise in the acknowledgement ---------------------------------

def test_persian_ack_promises_a_solar_hijri_date_in_persian_digits(templates):
    context = sample("ack", ticket__due_at="2026-11-14T12:00:00+00:00", timezone="Asia/Tehran")
    rendered = templates.render("ack", "fa", context)
    assert "۲۳ آبان ۱۴۰۵" in rendered.text and "۲۳ آبان ۱۴۰۵" in rendered.html
    assert "۱۰۰۰۱۷" in rendered.text  # the ticket number in Persian digits in the body
    assert "[MG#100017]" in rendered.subject  # ... but the token stays ASCII


@pytest.mark.parametrize("locale", LOCALES)
def test_ack_without_due_date_shows_the_department_promise(templates, locale):
    promise = SAMPLES["ack"]["department"]["promise"]
    rendered = templates.render("ack", locale, sample("ack", ticket__due_at=None))
    assert promise in rendered.text and promise in rendered.html

    silent = templates.render("ack", locale, sample("ack", ticket__due_at=None,
                                                   department__promise=""))
    assert promise not in silent.text
    assert "\n\n\n" not in silent.text


# -- customer text cannot change the mail ----------------------------------------

@pytest.mark.parametrize("locale", LOCALES)
def test_a_subject_is_text_not_a_template(templates, locale):
    rendered = templates.render("ack", locale, sample("ack", ticket__subject="{{7*7}} {% if 1 %}"))
    assert "{{7*7}} {% if 1 %}" in rendered.subject
    assert "49" not in rendered.subject


@pytest.mark.parametrize("name", ["ack", "agent_reply", "status_change", "new_ticket"])
def test_a_line_break_in_the_subject_cannot_add_a_header(templates, name):
    rendered = templates.render(name, "en", sample(name, ticket__subject="Hi\r\nBcc: x@y"))
    assert "\r" not in rendered.subject and "\n" not in rendered.subject
    assert rendered.subject.endswith("Hi Bcc: x@y")


@pytest.mark.parametrize("locale", LOCALES)
def test_a_very_long_subject_is_cut_but_keeps_the_token(templates, locale):
    rendered = templates.render("ack", locale, sample("ack", ticket__subject="x" * 2000))
    assert len(rendered.subject) <= 900 and "\n" not in rendered.subject
    assert "[MG#100017]" in rendered.subject


def test_html_escapes_customer_text_and_text_keeps_it(templates):
    context = sample("new_ticket", ticket__subject="<script>alert(1)</script> Fish & Chips")
    context["message"]["text"] = "<img src=http://evil.example/x.png> & more"
    rendered = templates.render("new_ticket", "en", context)
    assert "<script" not in rendered.html and "<img" not in rendered.html
    assert "&lt;img src=http://evil.example/x.png&gt; &amp; more" in rendered.html
    assert Page(rendered.html).problems == []
    assert "<img src=http://evil.example/x.png> & more" in rendered.text
    assert "Fish & Chips" in rendered.subject


# -- branches the samples do not take --------------------------------------------

@pytest.mark.parametrize("locale", ["fa", "ka"])
@pytest.mark.parametrize("status", ["new", "open", "in_progress", "answered", "resolved",
                                    "closed", "reopened"])
def test_status_names_are_translated(templates, locale, status):
    context = sample("status_change", status={"old": "resolved", "new": status, "reason": ""})
    rendered = templates.render("status_change", locale, context)
    assert status not in rendered.subject + rendered.text + rendered.html


@pytest.mark.parametrize("locale", LOCALES)
def test_other_branches_render(templates, locale):
    cases = [
        ("rejection", sample("rejection", refused=[], reason="the message is larger than 25 MB")),
        ("rejection", sample("rejection", refused=SAMPLES["rejection"]["refused"][:1])),
        ("escalation", sample("escalation", assignee=None)),
        ("escalation", sample("escalation", assignee={"name": "", "email": "a@example.com"})),
        ("digest", sample("digest", tickets=[], total=0, overdue_count=0,
                          agent={"name": "", "email": "team@example.com"})),
        ("command_result", sample("command_result", applied=[])),
        ("agent_reply", sample("agent_reply", agent={"name": "", "email": "a@example.com"})),
        ("new_ticket", sample("new_ticket", requester={"name": "", "email": "a@example.com"},
                              big_attachments=[], ticket__category=None, ticket__due_at=None)),
        ("reminder", sample("reminder", waiting_days=1, close_after_days=1)),
        ("ack", sample("ack", recipient={"name": "", "email": "a@example.com",
                                         "role": "customer"})),
    ]
    cases[-1][1]["message"].update(text="", attachments=[])
    for name, context in cases:
        rendered = templates.render(name, locale, context)
        assert rendered.text.startswith(SEPARATORS[locale] + "\n")
        assert Page(rendered.html).problems == []
        assert "None" not in rendered.text


# -- admin overrides and the English fallback ------------------------------------

def test_an_override_in_templates_dir_wins(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "ack.subject").write_text("Got it {{ ticket.token }}\n")
    templates = Templates(Settings().replace(outbound={"templates_dir": str(tmp_path)}))

    assert templates.render("ack", "en", sample("ack")).subject == "Got it [MG#100017]"
    assert templates.render("ack", "fa", sample("ack")).subject.startswith("Re: [MG#100017]")
    assert templates.check(SAMPLES) == []


def test_an_edited_override_is_read_by_the_next_templates(tmp_path):
    """Templates read a file once (the daemon makes new ones on SIGHUP): an edit takes
    effect at the reload, never halfway through the templates already in use."""
    (tmp_path / "en").mkdir()
    subject = tmp_path / "en" / "ack.subject"
    subject.write_text("Got it {{ ticket.token }}\n")
    settings = Settings().replace(outbound={"templates_dir": str(tmp_path)})
    running = Templates(settings)
    assert running.render("ack", "en", sample("ack")).subject == "Got it [MG#100017]"

    subject.write_text("Received {{ ticket.token }}\n")
    assert running.render("ack", "en", sample("ack")).subject == "Got it [MG#100017]"
    assert Templates(settings).render("ack", "en", sample("ack")).subject == \
        "Received [MG#100017]"


def test_layouts_and_parts_are_not_messages(templates):
    assert templates.names() == MAIL
    assert {"ack", "new_ticket", "digest"} <= set(MAIL)
    assert not [name for name in MAIL + templates.names(sms=True) if name.startswith("_")]
    for locale in LOCALES:
        for part in ("_layout.html", "_layout.txt", "_parts.html", "_parts.txt"):
            assert (BUILTIN / locale / part).is_file(), f"{locale}/{part}"


def test_an_override_of_one_message_uses_the_builtin_layout(tmp_path):
    (tmp_path / "fa").mkdir()
    (tmp_path / "fa" / "ack.html").write_text(
        '{% extends "fa/_layout.html" %}\n'
        '{% from "fa/_parts.html" import file_list with context %}\n'
        "{% block body %}\n"
        "<p>درخواست {{ digits(ticket.number) }} ثبت شد.</p>\n"
        "{{ file_list(message.attachments) }}\n"
        "{% endblock %}\n")
    templates = Templates(Settings().replace(outbound={"templates_dir": str(tmp_path)}))
    builtin = Templates(Settings()).render("ack", "fa", sample("ack"))

    rendered = templates.render("ack", "fa", sample("ack"))

    page = Page(rendered.html)
    assert page.problems == [] and page.doctype.lower() == "doctype html"
    assert page.first("html") == {"lang": "fa", "dir": "rtl"}
    assert f">{SEPARATORS['fa']}</p>\n<p>درخواست ۱۰۰۰۱۷ ثبت شد.</p>\n<ul" in rendered.html
    assert "رسید-بانک.pdf (۱۸۰ KB)</li>" in rendered.html
    assert rendered.html.endswith("</ul>\n</div>\n</body>\n</html>\n")
    assert rendered.html.split("##-")[0] == builtin.html.split("##-")[0]  # the built-in head
    assert (rendered.subject, rendered.text) == (builtin.subject, builtin.text)
    assert templates.render("ack", "en", sample("ack")).html == \
        Templates(Settings()).render("ack", "en", sample("ack")).html
    assert templates.check(SAMPLES) == []


def test_an_override_of_a_layout_frames_every_message_of_its_locale(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "_layout.txt").write_text(
        "##- Please type your reply above this line -##\n\n"
        "{% block body %}{% endblock %}\n-- \nExample Ltd, 1 Main Street\n")
    templates = Templates(Settings().replace(outbound={"templates_dir": str(tmp_path)}))

    for name in MAIL:
        text = templates.render(name, "en", sample(name)).text
        assert text.startswith(SEPARATORS["en"] + "\n\n")
        assert text.endswith("\n-- \nExample Ltd, 1 Main Street\n")
    assert "Example Ltd" not in templates.render("ack", "fa", sample("ack")).text
    assert templates.check(SAMPLES) == []


@pytest.mark.parametrize("locale", LOCALES)
def test_names_from_the_shared_parts_are_escaped_in_html(templates, locale):
    context = sample("escalation", requester={"name": "<b>Eve</b>", "email": "eve@example.com"},
                     assignee={"name": "<i>Al</i>", "email": "al@example.com"})
    rendered = templates.render("escalation", locale, context)
    assert "<b>" not in rendered.html and "<i>" not in rendered.html
    assert "&lt;b&gt;Eve&lt;/b&gt;" in rendered.html and "&lt;i&gt;Al&lt;/i&gt;" in rendered.html
    assert "<b>Eve</b>" in rendered.text


def test_an_unknown_locale_reads_as_english(tmp_path):
    (tmp_path / "xx").mkdir()
    templates = Templates(Settings().replace(outbound={"templates_dir": str(tmp_path)}))

    assert "xx" in templates.locales()
    rendered = templates.render("ack", "xx", sample("ack"))
    assert rendered.text.startswith(SEPARATORS["en"])
    assert templates.check(SAMPLES) == []


def test_a_missing_translation_falls_back_to_english_with_a_warning(tmp_path, monkeypatch,
                                                                    caplog):
    builtin = tmp_path / "builtin"
    for relative in ("en/ack.subject", "en/ack.txt", "en/ack.html", "en/_layout.txt",
                     "en/_layout.html", "en/_parts.txt", "en/_parts.html", "fa/ack.subject"):
        (builtin / relative).parent.mkdir(parents=True, exist_ok=True)
        (builtin / relative).write_text((BUILTIN / relative).read_text())
    monkeypatch.setattr(render, "BUILTIN", builtin)
    templates = Templates(Settings())

    with caplog.at_level(logging.WARNING, logger="mailgate.templates"):
        rendered = templates.render("ack", "fa", sample("ack"))

    assert rendered.text.startswith(SEPARATORS["en"])
    assert "ack.txt missing for locale fa" in caplog.text
    assert "ack.subject missing" not in caplog.text

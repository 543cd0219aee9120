"""`mailgate department add|set|show|import`: every setting of a department without SQL."""
from __future__ import annotations

import json

import pytest

from mailgate.cli.department_settings import line_of
from tests.mails import make_mail
from tests.test_cli import mailgate  # noqa: F401  (the fixture: commands in-process)

EX_USAGE, EX_DATAERR = 64, 65


def test_set_reaches_every_setting_and_show_prints_them(mailgate):
    mailgate("department", "add", "billing")
    out = mailgate("department", "set", "billing", "--sms", "on", "--promise", "Within a day.",
                   "--team-address", "Team@Example.com", "--locale", "fa", "--prefix", "BILL",
                   "--name", "Billing").text
    assert out.strip() == ("department billing: name Billing, prefix BILL, locale fa, sms on, "
                           "promise Within a day., team_address team@example.com")
    assert json.loads(mailgate("department", "show", "billing", "--json").text) == {
        "key": "billing", "name": "Billing", "prefix": "BILL", "locale": "fa", "sms": True,
        "promise": "Within a day.", "team_address": "team@example.com", "addresses": [],
        "agents": []}
    shown = mailgate("department", "show", "billing").text
    assert "sms:          on\n" in shown and "promise:      Within a day.\n" in shown
    # "" gives a setting back to its default; show says what applies then
    mailgate("department", "set", "billing", "--promise", "", "--team-address", "",
             "--prefix", "", "--sms", "off")
    shown = json.loads(mailgate("department", "show", "billing", "--json").text)
    assert (shown["promise"], shown["team_address"], shown["prefix"], shown["sms"]) == \
        (None, None, None, False)
    text = mailgate("department", "show", "billing").text
    assert "prefix:       MG ([threading] prefix)\n" in text
    assert "team_address: each agent\n" in text


@pytest.mark.parametrize("args, code, message", [
    (["nosuch", "--sms", "on"], EX_DATAERR, "no department 'nosuch'"),
    (["billing"], EX_USAGE, "nothing to set"),
    (["billing", "--locale", "de"], EX_DATAERR, '--locale: no templates for "de"'),
    (["billing", "--prefix", "B-1"], EX_DATAERR, "--prefix: must be ASCII letters and digits"),
    (["billing", "--team-address", "team"], EX_DATAERR,
     '--team-address: not an email address: "team"'),
    (["billing", "--name", ""], EX_DATAERR, "--name: must not be empty"),
])
def test_set_refuses_what_would_not_work(mailgate, args, code, message):
    mailgate("department", "add", "billing")
    ran = mailgate("department", "set", *args, expect=code)
    assert message in ran.stderr.decode()


def test_show_of_an_unknown_department(mailgate):
    assert b"no department 'x'" in mailgate("department", "show", "x", expect=EX_DATAERR).stderr


def test_sms_promise_and_team_address_from_an_import_reach_the_mail(mailgate):
    """What used to need SQL: SMS switched on, a promise and a team address, by import."""
    mapping = mailgate.tmp_path / "departments.toml"
    mapping.write_text('[[department]]\nkey = "support"\nsms = true\n'
                       'promise = "We answer within the hour."\n'
                       'team_address = "team@example.com"\n'
                       'addresses = ["support@example.com"]\nagents = ["ann@example.com"]\n')
    assert mailgate("department", "import", str(mapping)).text.strip() == \
        "department support: 1 addresses, 1 agents"
    mailgate("contact", "add", "customer@example.org", "--phone", "+98 912 345 6789")
    (mailgate.tmp_path / "m.eml").write_bytes(make_mail())
    mailgate("ingest", str(mailgate.tmp_path / "m.eml"))
    rows = json.loads(mailgate("outbox", "list", "--json").text)
    assert {(r["channel"], r["kind"], tuple(r["recipients"])) for r in rows} == {
        ("email", "ack", ("customer@example.org",)), ("sms", "ack", ("+989123456789",)),
        ("email", "new_ticket", ("team@example.com",))}
    mailgate("outbox", "send")
    acks = [p.read_text() for p in (mailgate.tmp_path / "var" / "outbox").glob("*.eml")
            if "To: customer@example.org" in p.read_text()]
    assert len(acks) == 1 and "We answer within the hour." in acks[0]


def test_import_sets_only_the_keys_it_gives(mailgate):
    mailgate("department", "add", "sales", "--locale", "ka", "--name", "Sales")
    mailgate("department", "set", "sales", "--promise", "Soon.")
    mapping = mailgate.tmp_path / "departments.toml"
    mapping.write_text('[[department]]\nkey = "sales"\nsms = true\n')
    mailgate("department", "import", str(mapping))
    shown = json.loads(mailgate("department", "show", "sales", "--json").text)
    assert (shown["name"], shown["locale"], shown["promise"], shown["sms"]) == \
        ("Sales", "ka", "Soon.", True)


BAD = """\
# departments
[[department]]
key = "support"
addresess = ["support@example.com"]

[[department]]
key = "sales"
sms = "yes"
team_address = "nope"
agents = ["ok@example.com", "bad address"]

[[department]]
key = "sales"

[departmnt]
x = 1
"""


def test_import_names_every_unknown_key_and_wrong_value_with_its_line(mailgate):
    mapping = mailgate.tmp_path / "departments.toml"
    mapping.write_text(BAD)
    ran = mailgate("department", "import", str(mapping), expect=EX_DATAERR)
    assert ran.stderr.decode().splitlines()[1:] == [
        f"{mapping}:4: department[0].addresess: unknown key; did you mean 'addresses'?",
        f'{mapping}:8: department[1].sms: expected true or false, got "yes"',
        f"{mapping}:13: department[2].key: \"sales\" again (department[1])",
        f"{mapping}:15: departmnt: unknown section; did you mean 'department'?"]
    # nothing imported: not even the departments without problems
    assert json.loads(mailgate("department", "list", "--json").text) == []
    mapping.write_text(BAD.split("[[department]]\nkey = \"sales\"\n\n")[0]
                       .replace("addresess", "addresses").replace('sms = "yes"', "sms = true"))
    ran = mailgate("department", "import", str(mapping), expect=EX_DATAERR)
    assert ran.stderr.decode().splitlines()[1:] == [
        f'{mapping}:9: department[1].team_address: not an email address: "nope"',
        f'{mapping}:10: department[1].agents: not an email address: "bad address"']


@pytest.mark.parametrize("text, problem", [
    ('[[department]]\nkey = "a"\npromise = 3\n',
     "department[0].promise: expected a string, got 3"),
    ('[[department]]\nname = "A"\n', "department[0].key: is required"),
    ('[department]\nkey = "a"\n', "department: must be an array of tables: [[department]]"),
    ("# nothing here\n", "department: no [[department]] tables"),
    ('[[department]]\nkey = "a"\nlocale = "de"\n',
     'department[0].locale: no templates for "de": mail would be in English; use en, fa or ka'),
])
def test_import_problems(mailgate, text, problem):
    mapping = mailgate.tmp_path / "departments.toml"
    mapping.write_text(text)
    ran = mailgate("department", "import", str(mapping), expect=EX_DATAERR)
    assert problem in ran.stderr.decode()


@pytest.mark.parametrize("where, line", [
    ("department[1].agents", 7),
    ("department[1]", 5),
    ("department[1].name", 5),  # not written: the table's header
    ("department[0].key", 2),
    ("department[2].key", None),
    ("extra", 9),
    ("other", 11),
    ("missing", None),
])
def test_line_of_a_key_found_in_the_text(where, line):
    text = ('[[department]]\nkey = "a"\n"agents" = []\n\n[[department]]\n  key = "b"\n'
            'agents=["x@example.com"]\n\n[[ extra ]]\n\n[other]\n')
    assert line_of(text, where) == line

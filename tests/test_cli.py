"""The command line as admins and MTAs use it: real subprocesses, real databases."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mailgate.cli import main
from tests.mails import make_mail


class Ran:
    def __init__(self, returncode: int, stdout: bytes, stderr: bytes):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr
        self.text = stdout.decode()


@pytest.fixture
def mailgate(db_url, tmp_path, capfdbinary):
    """Run a mailgate command: in-process (fast), or as a subprocess when it reads stdin."""
    config = tmp_path / "mailgate.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[storage]\ndir = "{tmp_path / "var"}"\n'
                      'fsync = false\n')

    def run(*args: str, stdin: bytes | None = None, expect: int | None = 0) -> Ran:
        argv = ["--config", str(config), *args]
        if stdin is None:
            capfdbinary.readouterr()
            code = main(argv)
            out, err = capfdbinary.readouterr()
            ran = Ran(code, out, err)
        else:
            proc = subprocess.run([sys.executable, "-m", "mailgate", *argv], input=stdin,
                                  capture_output=True, timeout=60,
                                  env={**os.environ, "MAILGATE_CONFIG": ""})
            ran = Ran(proc.returncode, proc.stdout, proc.stderr)
        if expect is not None:
            assert ran.returncode == expect, ran.stderr.decode() + ran.text
        return ran

    run.config = config
    run.tmp_path = tmp_path
    return run


def test_admin_setup_ingest_and_show(mailgate):
    mailgate("department", "add", "support", "--name", "Support")
    mailgate("department", "add", "billing", "--name", "پرداخت", "--prefix", "BILL",
             "--locale", "fa")
    mailgate("address", "add", "Support@Example.com", "--department", "support")
    mailgate("address", "add", "billing@example.com", "--department", "billing")
    mailgate("agent", "add", "agent@example.com", "--department", "support", "--name", "Ann")
    mailgate("contact", "add", "ali@example.ir", "--phone", "+98 912 345 6789", "--locale", "fa")
    depts = json.loads(mailgate("department", "list", "--json").text)
    assert depts[1] == {"key": "support", "name": "Support", "prefix": None, "locale": None,
                        "addresses": ["support@example.com"], "agents": ["agent@example.com"]}
    contacts = json.loads(mailgate("contact", "list", "--json").text)
    assert contacts[0]["phone"] == "+989123456789"

    out = mailgate("ingest", stdin=make_mail(sender="Ali <ali@example.ir>",
                                             to="billing@example.com", subject="صورتحساب"))
    assert out.text.startswith("stdin: new #")
    number = out.text.split("#")[1].split()[0]
    shown = json.loads(mailgate("ticket", "show", number, "--json").text)
    assert shown["token"] == f"[BILL#{number}]"
    assert (shown["subject"], shown["department"], shown["requester"], shown["status"]) == \
        ("صورتحساب", "billing", "ali@example.ir", "new")
    assert shown["messages"][0]["text"] == "It is on fire.\n"
    assert [e["kind"] for e in shown["events"]] == ["created"]

    listed = json.loads(mailgate("ticket", "list", "--json", "--department", "billing").text)
    assert [t["number"] for t in listed] == [number]
    assert json.loads(mailgate("ticket", "list", "--json", "--status", "closed").text) == []
    assert mailgate("ticket", "set", number, "--status", "in_progress", "--priority",
                    "urgent").text.strip() == f"#{number}: status in_progress, priority urgent"
    shown = json.loads(mailgate("ticket", "show", number, "--json").text)
    assert (shown["status"], shown["priority"]) == ("in_progress", "urgent")

    explain = json.loads(mailgate("message", "explain", str(shown["messages"][0]["inbound_id"]),
                                  "--json").text)
    assert explain["outcome"] == "new"
    assert any(line.startswith("route: billing@example.com (to) -> billing")
               for line in explain["trace"])
    assert "thread: new" in mailgate("message", "explain",
                                     str(explain["id"])).text


def test_department_import_file(mailgate):
    mapping = mailgate.tmp_path / "departments.toml"
    mapping.write_text('[[department]]\nkey = "sales"\nname = "Sales"\nlocale = "ka"\n'
                       'addresses = ["sales@example.com", "Deals@Example.com"]\n'
                       'agents = ["nino@example.ge"]\n')
    mailgate("department", "import", str(mapping))
    [dept] = json.loads(mailgate("department", "list", "--json").text)
    assert dept["addresses"] == ["deals@example.com", "sales@example.com"]
    assert dept["agents"] == ["nino@example.ge"] and dept["locale"] == "ka"


def test_exit_statuses_for_an_mta_pipe(mailgate):
    mailgate("department", "add", "support")
    mailgate("address", "add", "support@example.com", "--department", "support")
    raw = make_mail()
    assert "new" in mailgate("ingest", stdin=raw).text
    assert "duplicate" in mailgate("ingest", stdin=raw).text
    unusable = mailgate("ingest", stdin=b"just some text, no headers\n", expect=65)
    assert "quarantined" in unusable.text
    assert mailgate("ingest", stdin=b"", expect=65).returncode == 65
    bad = mailgate("address", "add", "not-an-address", "--department", "support", expect=65)
    assert "not an email address" in bad.stderr.decode()


def test_quarantine_list_show_retry(mailgate):
    mailgate("department", "add", "support")
    out = json.loads(mailgate("ingest", "--json", stdin=make_mail(to="sales@example.com")).text)
    assert out[0]["outcome"] == "quarantined"
    [entry] = json.loads(mailgate("quarantine", "list", "--json").text)
    assert entry["error_class"] == "route" and "sales@example.com" in entry["error"]
    assert "Subject: Printer on fire" in mailgate("quarantine", "show", str(entry["id"])).text
    assert mailgate("quarantine", "show", str(entry["id"]), "--raw").stdout.startswith(b"From:")
    assert "quarantined" in mailgate("quarantine", "retry", str(entry["id"]), expect=65).text
    # vouching is for one entry held as an unproven agent's, not for this one
    assert b"--all" in mailgate("quarantine", "retry", "--all", "--as", "agent", expect=64).stderr
    assert b"not unverified" in mailgate("quarantine", "retry", str(entry["id"]), "--as",
                                         "customer", expect=65).stderr
    assert json.loads(mailgate("quarantine", "list", "--json").text)[0]["attempts"] == 2
    mailgate("address", "add", "sales@example.com", "--department", "support")
    assert ": new #" in mailgate("quarantine", "retry", "--all").text
    assert json.loads(mailgate("quarantine", "list", "--json").text) == []
    assert len(json.loads(mailgate("quarantine", "list", "--all", "--json").text)) == 1


def test_mbox_and_maildir_input(mailgate):
    import mailbox

    mailgate("department", "add", "support")
    mailgate("address", "add", "support@example.com", "--department", "support")
    box = mailbox.mbox(mailgate.tmp_path / "in.mbox")
    for i in range(3):
        box.add(make_mail(subject=f"mbox {i}"))
    box.flush()
    maildir = mailbox.Maildir(mailgate.tmp_path / "Maildir")
    for i in range(2):
        maildir.add(make_mail(subject=f"maildir {i}"))
    out = json.loads(mailgate("ingest", "--json", str(mailgate.tmp_path / "in.mbox"),
                              str(mailgate.tmp_path / "Maildir")).text)
    assert [r["outcome"] for r in out] == ["new"] * 5


def test_check_reports_problems_with_keys(mailgate, tmp_path):
    assert "ok" in mailgate("check").text
    bad = tmp_path / "bad.toml"
    bad.write_text('[limits]\nmax_parts = "x"\n[database]\npassword_env = "NOPE_NOT_SET"\n')
    proc = subprocess.run([sys.executable, "-m", "mailgate", "--config", str(bad), "check"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 78
    assert 'limits.max_parts: expected an integer, got "x"' in proc.stdout
    assert "database.password_env: environment variable NOPE_NOT_SET is not set" in proc.stdout


def test_check_refuses_a_short_secret_file(mailgate, tmp_path):
    assert "ok" in mailgate("check").text  # made on first use: 64 hex characters
    assert len((tmp_path / "var" / "secret.key").read_text()) == 64
    (tmp_path / "var" / "secret.key").write_text("guessable\n")
    ran = mailgate("check", expect=78)
    assert "security.secret" in ran.text and "at least 32 bytes" in ran.text


def test_database_unreachable_is_a_temporary_failure(tmp_path):
    config = tmp_path / "down.toml"
    config.write_text('[database]\nurl = "postgresql+psycopg2://postgres@127.0.0.1:1/x"\n'
                      f'[storage]\ndir = "{tmp_path}"\n')
    proc = subprocess.run([sys.executable, "-m", "mailgate", "--config", str(config), "ingest"],
                          input=make_mail(), capture_output=True, timeout=60)
    assert proc.returncode == 75, proc.stderr
    assert b"temporary failure" in proc.stderr


def test_out_of_date_schema_is_refused(tmp_path):
    from sqlalchemy import create_engine, text

    db = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('0000old')"))
        conn.execute(text("CREATE TABLE tickets (id INTEGER)"))
    config = tmp_path / "old.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{db}"\n[storage]\ndir = "{tmp_path}"\n')
    proc = subprocess.run([sys.executable, "-m", "mailgate", "--config", str(config),
                           "ticket", "list"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 78
    assert "run `mailgate db upgrade`" in proc.stderr


@pytest.mark.parametrize("locales, default, region", [
    (("fa",), "", "IR"),
    (("ka-GE",), "", "GE"),
    (("fa_AF",), "", "AF"),
    (("en",), "", None),
    (("en", "fa"), "", "IR"),  # an English-writing contact of a Persian department
    ((None, None), "DE", "DE"),
    (("en",), "DE", "DE"),
])
def test_the_region_a_local_phone_number_is_read_in(locales, default, region):
    from mailgate.phones import region_of

    assert region_of(*locales, default=default) == region


def test_a_local_phone_number_is_read_in_the_contacts_or_departments_region(mailgate):
    refused = mailgate("contact", "add", "ali@example.ir", "--phone", "0912 345 6789",
                       expect=65).stderr.decode()
    assert "a local number needs a region" in refused
    assert mailgate("contact", "add", "ali@example.ir", "--phone", "0912 345 6789", "--locale",
                    "fa").text.strip() == "contact ali@example.ir +989123456789"
    assert mailgate("contact", "add", "nino@example.ge", "--locale", "ka", "--phone",
                    "555 12 34 56").text.strip() == "contact nino@example.ge +995555123456"
    # no locale of their own: the department of their latest ticket says where they are
    mailgate("department", "add", "billing", "--locale", "fa")
    mailgate("address", "add", "billing@example.com", "--department", "billing")
    (mailgate.tmp_path / "m.eml").write_bytes(make_mail(to="billing@example.com"))
    mailgate("ingest", str(mailgate.tmp_path / "m.eml"))
    assert mailgate("contact", "add", "customer@example.org", "--phone",
                    "0935 111 2233").text.strip() == "contact customer@example.org +989351112233"
    # else [sms] default_region
    with open(mailgate.config, "a") as config:
        config.write('[sms]\ndefault_region = "GE"\n')
    assert mailgate("contact", "add", "x@example.org", "--phone", "555 12 34 56").text.strip() \
        == "contact x@example.org +995555123456"
    assert "read in region GE" in mailgate("contact", "add", "y@example.org", "--phone",
                                           "0912 345 6789", expect=65).stderr.decode()


def test_ticket_show_and_list_say_what_empty_values_mean_and_carry_the_zone(mailgate):
    mailgate("department", "add", "support")
    mailgate("address", "add", "support@example.com", "--department", "support")
    (mailgate.tmp_path / "m.eml").write_bytes(make_mail())
    number = json.loads(mailgate("ingest", "--json", str(mailgate.tmp_path / "m.eml")).text)[0][
        "ticket"]
    mailgate("ticket", "set", number, "--status", "open", "--reason", "looked at it")
    shown = mailgate("ticket", "show", number).text
    assert "None" not in shown
    events = shown.split("\nevents:\n")[1].splitlines()
    assert events[0].endswith("+00:00 created as new customer@example.org")
    assert events[1].endswith("+00:00 status new -> open cli looked at it")
    [row] = mailgate("ticket", "list").text.splitlines()[1:]
    assert row.split()[6].endswith("+00:00")  # CREATED: date, time to the minute and zone


def test_a_commands_log_lines_and_its_parser_workers_carry_level_logger_and_fields(mailgate):
    """A process that sets up no logging prints a warning bare (Python's last resort),
    or not at all; the command and the parser workers it starts set it up."""
    from tests.tnef_sample import winmail_dat

    mailgate("department", "add", "support")
    mailgate("address", "add", "support@example.com", "--department", "support")
    mailgate("agent", "add", "agent@example.com", "--department", "support")
    (mailgate.tmp_path / "m.eml").write_bytes(make_mail())
    number = json.loads(mailgate("ingest", "--json", str(mailgate.tmp_path / "m.eml")).text)[0][
        "ticket"]
    forged = mailgate("ingest", stdin=make_mail(sender="agent@example.com",
                                                subject=f"Re: [MG#{number}] Printer"))
    assert "quarantined" in forged.text
    assert f"WARNING mailgate.pipeline: mail with agent From agent@example.com but no proof " \
           f"ticket={number}" in forged.stderr.decode().splitlines()
    tnef = bytearray(winmail_dat())
    tnef[-1] ^= 0xFF  # a wrong checksum: tnefparse warns, in the parser worker
    parsed = mailgate("ingest", stdin=make_mail(attachments=[
        ("winmail.dat", "application/ms-tnef", bytes(tnef))]))
    assert any(line.startswith("WARNING tnefparse: Checksum: ")
               for line in parsed.stderr.decode().splitlines()), parsed.stderr

"""`mailgate check` catches what run time would, and says it with the key."""
from __future__ import annotations

import pytest

from tests.test_cli import mailgate  # noqa: F401  (the fixture: commands in-process)

EX_CONFIG = 78
BAD_PEM = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"


def checked(mailgate, settings: str, expect: int = EX_CONFIG) -> list[str]:
    """The lines `check` prints with `settings` added to the test's configuration."""
    with open(mailgate.config, "a") as config:
        config.write(settings.replace("TMP", str(mailgate.tmp_path)))
    return mailgate("check", expect=expect).text.splitlines()


@pytest.mark.parametrize("settings, line", [
    # the three
    ('[service.departments.servcie.calendar]\ntimezone = "UTC"\nalways = true\n',
     'service.departments.servcie: no department "servcie" in the database; '
     'did you mean "service"?'),
    ('[outbound]\ntimezone = "Mars/Olympus"\n',
     "outbound.timezone: unknown timezone 'Mars/Olympus'"),
    ('[outbound]\ndefault_locale = "de"\n',
     'outbound.default_locale: no templates for "de": mail would be in English; '
     "use en, fa or ka"),
    # departments named in settings
    ('[routing]\ncatch_all = "sales"\n',
     'routing.catch_all: no department "sales" in the database; there are billing, service'),
    ('[[imap]]\nname = "a"\nhost = "h"\nuser = "u"\npassword = "p"\ndepartment = "biling"\n',
     'imap[0].department: no department "biling" in the database; did you mean "billing"?'),
    # files
    ('[service.calendar]\ntimezone = "UTC"\ndays = ["mon"]\nhours = ["09:00-17:00"]\n'
     'holidays_file = "TMP/nope.txt"\n',
     "service.calendar.holidays_file: cannot read 'TMP/nope.txt': [Errno 2] No such file or "
     "directory: 'TMP/nope.txt'"),
    ('[smtp]\ntls_cert = "TMP/bad.pem"\ntls_key = "TMP/bad.pem"\n',
     "smtp.tls_cert: cannot load TMP/bad.pem with tls_key TMP/bad.pem: [SSL] PEM lib"),
    ('[[imap]]\nname = "a"\nhost = "h"\nuser = "u"\npassword = "p"\nca_file = "TMP/bad.pem"\n',
     "imap[0].ca_file: cannot load TMP/bad.pem: "),
    ('[outbound]\ntemplates_dir = "TMP/my-templates"\n',
     "outbound.templates_dir: no such folder: TMP/my-templates"),
    ('[outbound]\ndir = "TMP/bad.pem/outbox"\n',
     "outbound.dir: TMP/bad.pem/outbox is not writable: Not a directory"),
    # values that load but would not work
    ('[sms]\ndefault_region = "UK"\n',
     'sms.default_region: not a region libphonenumber knows: "UK" (the United Kingdom is "GB")'),
    ('[service]\nescalation_contacts = ["billing@example.com"]\n',
     "service.escalation_contacts: billing@example.com routes to department billing: mail to "
     "it would come back in as mail to a department"),
])
def test_check_names_what_run_time_would_trip_on(mailgate, settings, line):
    mailgate("department", "add", "service")
    mailgate("department", "add", "billing")
    mailgate("address", "add", "billing@example.com", "--department", "billing")
    (mailgate.tmp_path / "bad.pem").write_text(BAD_PEM)
    lines = checked(mailgate, settings)
    expected = line.replace("TMP", str(mailgate.tmp_path))
    assert [text for text in lines if text.startswith(expected)], lines


def test_database_rows_are_checked_too(mailgate, db_url):
    """A department locale written before `department set` refused it; a team address of
    ours; an escalation to an agent who left; contacts in a language we cannot write."""
    from sqlalchemy import create_engine, text

    mailgate("department", "add", "billing")
    mailgate("address", "add", "billing@example.com", "--department", "billing")
    mailgate("department", "add", "support")
    mailgate("department", "set", "support", "--team-address", "billing@example.com")
    mailgate("agent", "add", "gone@example.com", "--department", "support")
    mailgate("agent", "deactivate", "gone@example.com")
    mailgate("contact", "add", "hans@example.de", "--locale", "de")
    engine = create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE departments SET locale = 'de' WHERE key = 'billing'"))
    engine.dispose()
    lines = checked(mailgate, '[service]\nescalation_contacts = ["gone@example.com"]\n')
    assert lines == [
        "warning: service.escalation_contacts: gone@example.com is a deactivated agent",
        'warning: contacts.locale: no templates for "de": mail would be in English; '
        "use en, fa or ka",
        'department:billing.locale: no templates for "de": mail would be in English; '
        "use en, fa or ka",
        "department:support.team_address: billing@example.com routes to department billing: "
        "mail to it would come back in as mail to a department"]


def test_warnings_are_printed_but_do_not_fail(mailgate):
    lines = checked(mailgate, '[outbound]\ntimezone = "Europe/Berlin"\n'
                    '[service]\nresolution = { normal = 72 }\n'
                    '[service.calendar]\ntimezone = "Asia/Tehran"\nalways = true\n', expect=0)
    assert lines == [
        "warning: service.resolution.low: no target: low tickets get no resolution deadline",
        "warning: service.resolution.high: no target: high tickets get normal's "
        "(72 working hours)",
        "warning: service.resolution.urgent: no target: urgent tickets get normal's "
        "(72 working hours)",
        "warning: outbound.timezone: unused: mail is dated in the zone of its department's "
        "service calendar (Asia/Tehran)",
        f"configuration {mailgate.config}: ok (4 warning(s))"]


def test_db_status_on_a_schema_behind_the_code_is_a_configuration_problem(tmp_path):
    """sysexits: EX_CONFIG (78), as every other command answers an old schema."""
    from mailgate.cli import main

    config = tmp_path / "mailgate.toml"
    config.write_text(f'[storage]\ndir = "{tmp_path / "var"}"\nfsync = false\n')
    assert main(["--config", str(config), "db", "status"]) == EX_CONFIG  # an empty database
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert main(["--config", str(config), "db", "status"]) == 0

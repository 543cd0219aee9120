"""Configuration: defaults, one TOML file, secrets from env or files, problems with keys."""
import datetime as dt
import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from mailgate.config import ConfigError, Settings, load_settings
from mailgate.errors import TemporaryFailure
from mailgate.gateway import Gateway


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "mailgate.toml"
    path.write_text(text)
    return path


def test_defaults_need_no_file():
    settings = load_settings(None, env={})
    assert settings.database_url == "sqlite:///var/mailgate.db"
    assert settings.storage.dir == Path("./var")
    assert settings.limits.max_attachment_size == 10 * 1024 * 1024
    assert "application/pdf" in settings.limits.allowed_types


def test_file_from_environment_variable(tmp_path):
    path = write(tmp_path, '[storage]\ndir = "/srv/mailgate"\n[threading]\nprefix = "HD"\n')
    settings = load_settings(None, env={"MAILGATE_CONFIG": str(path)})
    assert settings.storage.dir == Path("/srv/mailgate")
    assert settings.threading.prefix == "HD"
    assert settings.database_url == "sqlite:////srv/mailgate/mailgate.db"


def test_database_password_from_env_and_file(tmp_path):
    path = write(tmp_path, '[database]\nurl = "postgresql://mg@db.internal/mailgate"\n'
                 'password_env = "MG_DB_PASSWORD"\n')
    settings = load_settings(path, env={"MG_DB_PASSWORD": "s3cr/et"})
    assert settings.database_url == "postgresql://mg:s3cr%2Fet@db.internal/mailgate"
    secret = tmp_path / "dbpass"
    secret.write_text("from-file\n")
    path = write(tmp_path, '[database]\nurl = "postgresql://mg@db/m"\n'
                 f'password_file = "{secret}"\n')
    assert load_settings(path, env={}).database_url == "postgresql://mg:from-file@db/m"


def test_whole_url_from_env(tmp_path):
    path = write(tmp_path, '[database]\nurl_env = "DATABASE_URL"\n')
    settings = load_settings(path, env={"DATABASE_URL": "postgresql://x@y/z"})
    assert settings.database_url == "postgresql://x@y/z"


def test_every_problem_is_reported_with_its_key(tmp_path):
    path = write(tmp_path, '[database]\npassword_env = "MISSING"\n'
                 '[limits]\nmax_parts = "many"\nmax_depth = -1\nbogus = 1\n'
                 '[threading]\nforeign_sender = "drop"\nprefix = "M G"\n'
                 '[nosuch]\nx = 1\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    keys = {key for key, _ in info.value.problems}
    assert keys == {"database.password_env", "limits.max_parts", "limits.max_depth",
                    "limits.bogus", "threading.foreign_sender", "threading.prefix", "nosuch"}


def test_unreadable_or_invalid_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigError, match="mailgate.toml"):
        load_settings(write(tmp_path, "[storage\n"), env={})


def test_replace_for_tests():
    settings = Settings().replace(limits={"max_depth": 5})
    assert settings.limits.max_depth == 5 and settings.limits.max_parts == 500


def problems_of(tmp_path, text: str, env: dict | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), env=env or {})
    return info.value.problems


def test_unknown_keys_name_the_likely_key_or_the_few_there_are(tmp_path):
    assert problems_of(tmp_path, '[limits]\nmax_dept = 3\n[log]\nfmt = "json"\n'
                       '[limit]\nx = 1\n') == [
        ("limit", "unknown section; did you mean 'limits'?"),
        ("limits.max_dept", "unknown key; did you mean 'max_depth'?"),
        ("log.fmt", "unknown key; did you mean 'format'?")]
    assert problems_of(tmp_path, "[service]\nfirst_response = { soon = 3 }\n") == [
        ("service.first_response.soon", "unknown key; one of low, normal, high, urgent, default")]


def test_values_are_checked_by_key_with_what_was_given(tmp_path):
    assert problems_of(tmp_path, "[limits]\nmax_message_size = 0\n[smtp]\nmax_recipients = 0\n"
                       'listen = ["nowhere"]\n[log]\nlevel = "LOUD"\n') == [
        ("limits.max_message_size", "must be positive, got 0"),
        ("log.level", 'must be one of DEBUG, INFO, WARNING, ERROR; got "LOUD"'),
        ("smtp.listen", 'not host:port: "nowhere"'),
        ("smtp.max_recipients", "must be at least 1, got 0")]


def test_any_text_key_may_come_from_env_or_file_but_not_numbers(tmp_path):
    secret = tmp_path / "relay"
    secret.write_text("pa55\n")
    path = write(tmp_path, f'[outbound]\nrelay_password_file = "{secret}"\n'
                 '[sms]\ntwilio_auth_token_env = "TOKEN"\n')
    settings = load_settings(path, env={"TOKEN": "t0k"})
    assert (settings.outbound.relay_password, settings.sms.twilio_auth_token) == ("pa55", "t0k")
    assert problems_of(tmp_path, '[outbound]\nrelay_password_file = "/nonexistent/x"\n'
                       '[limits]\nmax_parts_env = "N"\n') == [
        ("limits.max_parts_env", "unknown key; did you mean 'max_parts'?"),
        ("outbound.relay_password_file", "cannot read /nonexistent/x: No such file or directory")]


def test_imap_accounts_are_an_array_of_tables_with_required_keys(tmp_path):
    assert problems_of(tmp_path, "[imap]\nhost = 'h'\n") == [
        ("imap", "must be an array of tables: [[imap]]")]
    assert problems_of(tmp_path, '[[imap]]\nname = "a"\nhost = "h"\n'
                       '[[imap]]\nname = "b"\nhost = "h"\nuser = "u"\nauth = "xoauth2"\n') == [
        ("imap[0].user", "is required"),
        ("imap[1].oauth_token_url", "xoauth2 needs oauth_token_url and oauth_client_id")]
    account = '[[imap]]\nname = "a"\nhost = "h"\nuser = "u"\npassword_env = "PW"\n'
    assert problems_of(tmp_path, account * 2, env={"PW": "x"}) == [
        ("imap[1].name", "duplicate account name 'a'")]
    settings = load_settings(write(tmp_path, account), env={"PW": "x"})
    assert settings.imap[0].password == "x" and settings.imap[0].effective_port == 993


def test_departments_inherit_the_service_policy_target_by_target(tmp_path):
    path = write(tmp_path, '[service]\nfirst_response = { normal = 8, urgent = 2 }\n'
                 'warn_before = 1\n[service.calendar]\ntimezone = "Asia/Tehran"\n'
                 'days = ["sat"]\nhours = ["09:00-17:00"]\n'
                 '[service.departments.billing]\nfirst_response = { normal = 4 }\n')
    service = load_settings(path, env={}).service
    billing = service.policy("billing")
    assert billing.target("first_response", "normal") == dt.timedelta(hours=4)
    assert billing.target("first_response", "urgent") == dt.timedelta(hours=2)
    assert billing.target("resolution", "normal") is None
    assert billing.calendar == service.calendar and billing.warn_before == 1
    assert service.policy("unknown") is service and service.calendar.timezone == "Asia/Tehran"
    assert Settings().service.policy(None).calendar.always


def test_settings_survive_pickling_for_the_worker_processes(tmp_path):
    path = write(tmp_path, '[service]\nresolution = { high = 3 }\n[[imap]]\nname = "a"\n'
                 'host = "h"\nuser = "u"\npassword = "p"\n')
    settings = load_settings(path, env={})
    assert pickle.loads(pickle.dumps(settings)) == settings


def test_loading_settings_imports_neither_the_orm_nor_a_validation_library(tmp_path):
    code = ("import sys\nfrom mailgate.config import load_settings\nload_settings(None, {})\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'sqlalchemy', 'pydantic', 'jinja2', 'alembic'}))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert run.stdout.strip() == "[]"


def test_service_durations_are_never_negative(tmp_path):
    """A negative warning time would make the scheduler's deadline job raise."""
    path = write(tmp_path, '[service]\nwarn_before = -1\nclose_after_days = -2\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert {key for key, _ in caught.value.problems} == {"service.warn_before",
                                                         "service.close_after_days"}


@pytest.mark.parametrize("text, problem", [
    ('[service]\nclose_after_days = "7"\n',
     ("service.close_after_days", 'expected an integer, got "7"')),
    ("[limits]\nmax_parts = 7.5\n", ("limits.max_parts", "expected an integer, got 7.5")),
    ("[limits]\nmax_depth = true\n", ("limits.max_depth", "expected an integer, got true")),
    ('[daemon]\nshutdown_timeout = "soon"\n',
     ("daemon.shutdown_timeout", 'expected a number, got "soon"')),
    ('[storage]\nfsync = "yes"\n', ("storage.fsync", 'expected true or false, got "yes"')),
    ("[gateway]\nhostname = 5\n", ("gateway.hostname", "expected a string, got 5")),
    ("[storage]\ndir = { path = 1 }\n", ("storage.dir", "expected a path (a string), got a table")),
    ('[gateway]\nown_addresses = "a@example.com"\n',
     ("gateway.own_addresses", 'expected an array of strings, got "a@example.com"')),
    ('[limits]\nallowed_types = ["text/plain", 1]\n',
     ("limits.allowed_types", 'expected an array of strings, got ["text/plain", 1]')),
    ('[smtp]\nlisten = "127.0.0.1:25"\n',
     ("smtp.listen", 'expected an array of "host:port" strings, got "127.0.0.1:25"')),
    ("[http]\nlisten = 9025\n", ("http.listen", 'expected a "host:port" string, got 9025')),
    ("[smtp]\ntrusted_relays = [10]\n",
     ("smtp.trusted_relays", 'expected an array of "address/prefix" strings, got [10]')),
    ("[outbound]\nbounce_address = false\n",
     ("outbound.bounce_address", "expected an e-mail address string, got false")),
])
def test_type_errors_say_what_was_expected_in_toml_terms(tmp_path, text, problem):
    assert problems_of(tmp_path, text) == [problem]


def test_outbound_workers_default_to_four_and_are_at_least_one(tmp_path):
    assert load_settings(None, env={}).outbound.workers == 4
    assert problems_of(tmp_path, "[outbound]\nworkers = 0\n") == [
        ("outbound.workers", "must be at least 1, got 0")]
    settings = load_settings(write(tmp_path, "[outbound]\nworkers = 8\n"), env={})
    assert settings.outbound.workers == 8


def test_database_timeouts_default_to_todays_values_and_are_checked(tmp_path):
    database = load_settings(None, env={}).database
    assert (database.connect_timeout, database.statement_timeout) == (5, 30)
    assert problems_of(tmp_path, "[database]\nconnect_timeout = 0\nstatement_timeout = -1\n") == [
        ("database.connect_timeout", "must be positive, got 0.0"),
        ("database.statement_timeout", "must be positive, got -1.0")]
    database = load_settings(write(tmp_path, "[database]\nconnect_timeout = 2\n"
                                   "statement_timeout = 0.5\n"), env={}).database
    assert (database.connect_timeout, database.statement_timeout) == (2, 0.5)


def test_the_gateways_database_keeps_the_configured_timeouts(tmp_path, pg_url):
    """[database] connect_timeout bounds connecting (here to a server that never
    answers) and statement_timeout every statement, on the database the gateway builds."""
    def gateway(url: str) -> Gateway:
        return Gateway(load_settings(write(tmp_path, f'[database]\nurl = "{url}"\n'
                                           "connect_timeout = 1\nstatement_timeout = 1\n"
                                           f'[storage]\ndir = "{tmp_path}"\n'), env={}))

    gw = gateway(pg_url)
    try:
        with gw.db.unit_of_work() as session:
            assert session.execute(text("SHOW statement_timeout")).scalar() == "1s"
        started = time.monotonic()
        with pytest.raises(TemporaryFailure), gw.db.unit_of_work() as session:
            session.execute(text("SELECT pg_sleep(10)"))
        assert time.monotonic() - started < 5
    finally:
        gw.close()
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        gw = gateway(f"postgresql+psycopg2://postgres@127.0.0.1:{silent.getsockname()[1]}/x")
        try:
            started = time.monotonic()
            with pytest.raises(TemporaryFailure), gw.db.unit_of_work() as session:
                session.execute(text("SELECT 1"))
            assert time.monotonic() - started < 4  # the default (5 s) would take longer
        finally:
            gw.close()


def test_sms_default_region_is_a_two_letter_code(tmp_path):
    assert load_settings(write(tmp_path, '[sms]\ndefault_region = "IR"\n'),
                         env={}).sms.default_region == "IR"
    assert problems_of(tmp_path, '[sms]\ndefault_region = "Iran"\n') == [
        ("sms.default_region", 'must be a two-letter region code like "IR" or "GE", got "Iran"')]


def test_outbound_timezone_is_checked_when_settings_load(tmp_path):
    assert problems_of(tmp_path, '[outbound]\ntimezone = "Mars/Olympus"\n') == [
        ("outbound.timezone", "unknown timezone 'Mars/Olympus'")]

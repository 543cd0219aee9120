"""`mailgate db upgrade|status` and `mailgate check`."""
from __future__ import annotations

import sys

from ..db import Database
from ..signing import SecretError, load_secret
from . import checks
from .common import EX_CONFIG, EX_OK


def register(sub) -> None:
    dbp = sub.add_parser("db", help="database schema").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = dbp.add_parser("upgrade", help="migrate the schema to this version (back up first)")
    p.set_defaults(handler=upgrade)
    p = dbp.add_parser("status", help="print the schema revision")
    p.set_defaults(handler=status)
    p = sub.add_parser("check", help="validate the configuration and what it points at")
    p.set_defaults(handler=check)


def upgrade(settings, args) -> None:
    database = Database.of(settings)
    try:
        before, head = database.schema_revisions()
        database.upgrade()
        print(f"schema: {before or '(empty)'} -> {head}")
    finally:
        database.dispose()


def status(settings, args) -> int:
    database = Database.of(settings)
    try:
        current, head = database.schema_revisions()
    finally:
        database.dispose()
    print(f"database: {current or '(empty)'}; this mailgate: {head}")
    return EX_OK if current == head else EX_CONFIG  # as any command on an old schema


def report_problems(problems: list[tuple[str, str]], warned: list[tuple[str, str]] = ()) -> int:
    report_warnings(warned)
    for key, problem in problems:
        print(f"{key}: {problem}")
    print(f"{len(problems)} problem(s)", file=sys.stderr)
    return EX_CONFIG


def report_warnings(warned: list[tuple[str, str]]) -> None:
    for key, warning in warned:
        print(f"warning: {key}: {warning}")


def check(settings, args) -> int:
    """Everything run time would stumble on, each with its key; warnings do not fail."""
    problems, session_warnings = database_findings(settings)
    problems += checks.file_problems(settings) + checks.setting_problems(settings)
    try:
        load_secret(settings)  # made on first use when not configured
    except (OSError, SecretError) as error:
        problems.append(("security.secret", str(error)))
    problems += template_problems(settings)
    warned = checks.warnings(settings) + session_warnings
    if problems:
        return report_problems(problems, warned)
    report_warnings(warned)
    print(f"configuration {settings.source}: ok" +
          (f" ({len(warned)} warning(s))" if warned else ""))
    return EX_OK


def database_findings(settings) -> tuple[list, list]:
    """(problems, warnings) of the database: its schema, then what the settings name in it."""
    database = Database.of(settings)
    try:
        try:
            current, head = database.schema_revisions()
        except Exception as error:  # report every kind of connection problem with its key
            return [("database.url", f"cannot connect: {str(error).splitlines()[0]}")], []
        if current != head:
            return [("database.url", f"schema at {current or '(empty)'}, needs {head}: "
                     "run `mailgate db upgrade`")], []
        with database.unit_of_work() as session:
            return (checks.database_problems(settings, session),
                    checks.database_warnings(settings, session))
    finally:
        database.dispose()


def template_problems(settings) -> list[tuple[str, str]]:
    """Every message and SMS template of every locale rendered with sample data; a
    package without its built-in templates (which would leave every reply pending)
    is a problem, not an empty list of templates that all rendered."""
    # imported here: only `check` renders templates, and CLI start-up time matters
    from ..outbound.render import BUILTIN, Templates
    from ..outbound.samples import SAMPLES

    templates = Templates(settings)
    found = {BUILTIN / "en": templates.names(), BUILTIN / "en" / "sms": templates.names(sms=True)}
    missing = [str(folder) for folder, names in found.items() if not names]
    if missing:
        return [("templates", f"built-in templates not found in {', '.join(missing)}: "
                 "reinstall mailgate (a package built without its templates?)")]
    return [(f"templates:{name}", error) for name, error in templates.check(SAMPLES)]

"""What `mailgate check` finds beyond the file itself (which loading settings checks:
types, values, timezones, calendars, holiday files): whether what the settings name
exists and works — departments and agents in the database, templates for every
locale in use, TLS and CA files that load, folders that can be written — and the
warnings about what they leave out (priorities without targets, a setting that
something else always overrides).

Every finding is a (key, message) pair, the key as in the file (`routing.catch_all`)
or, for a database row, `department:KEY.setting`.
"""
from __future__ import annotations

import difflib
import ssl
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import OutboundSettings, Settings
from ..config_keys import toml
from ..models import Address, Agent, Contact, Department
from ..phones import region_problem
from ..service import ALWAYS_UTC
from .department_settings import locale_problem

Finding = tuple[str, str]  # (key, message)


def writable(key: str, folder: Path) -> list[Finding]:
    """`folder` made if missing, and a file written and removed in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        return [(key, f"{folder} is not writable: {error.strerror}")]
    return []


def file_problems(settings: Settings) -> list[Finding]:
    """The files and folders the settings name, loaded as run time would load them."""
    found = writable("storage.dir", settings.storage.dir)
    if settings.outbound.transport == "file":
        found += writable("outbound.dir" if settings.outbound.dir else "storage.dir",
                          settings.outbox_dir)
    smtp = settings.smtp
    if smtp.tls_cert and smtp.tls_key:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                smtp.tls_cert, smtp.tls_key)
        except (OSError, ssl.SSLError) as error:
            found.append(("smtp.tls_cert", f"cannot load {smtp.tls_cert} with tls_key "
                          f"{smtp.tls_key}: {error}"))
    for i, account in enumerate(settings.imap):
        try:
            if account.ca_file:
                ssl.create_default_context(cafile=account.ca_file)
        except (OSError, ssl.SSLError) as error:
            found.append((f"imap[{i}].ca_file", f"cannot load {account.ca_file}: {error}"))
    folder = settings.outbound.templates_dir
    if folder and not Path(folder).is_dir():
        found.append(("outbound.templates_dir", f"no such folder: {folder}"))
    return found


def setting_problems(settings: Settings) -> list[Finding]:
    """Values that load but would not work: a locale without templates, a region
    libphonenumber does not know."""
    return _flagged([("outbound.default_locale", locale_problem(settings.outbound.default_locale)),
                     ("sms.default_region", region_problem(settings.sms.default_region))])


def _flagged(found: list[tuple[str, str | None]]) -> list[Finding]:
    """The pairs that carry a message."""
    return [(key, message) for key, message in found if message]


def database_problems(settings: Settings, session: Session) -> list[Finding]:
    """What the settings name in the database, and the departments' own settings."""
    departments = {d.key: d for d in session.scalars(select(Department))}
    named = [("routing.catch_all", settings.routing.catch_all)]
    named += [(f"imap[{i}].department", a.department) for i, a in enumerate(settings.imap)]
    named += [(f"service.departments.{key}", key) for key, _ in settings.service.departments]
    named += [(f"fields.departments.{key}", key) for key, _ in settings.fields.departments]
    named += [(f"statuses.departments.{key}", key) for key, _ in settings.statuses.departments]
    named += [(f"rules[{i}].department", r.department) for i, r in enumerate(settings.rules)]
    found = [(where, _no_department(key, departments)) for where, key in named
             if key and key not in departments]
    found += _flagged([(f"department:{key}.locale", locale_problem(dept.locale or ""))
                       for key, dept in sorted(departments.items())])
    active = set(session.scalars(select(Agent.email).where(Agent.active.is_(True))))
    found += [(f"rules[{i}].assignee", f"{rule.assignee} is not an active agent")
              for i, rule in enumerate(settings.rules)
              if rule.assignee and rule.assignee.lower() not in active]
    routed = dict(session.execute(select(Address.address, Department.key).join(Department)).all())
    ours = [("service.escalation_contacts", a) for a in settings.service.escalation_contacts]
    ours += [(f"service.departments.{key}.escalation_contacts", a)
             for key, policy in settings.service.departments
             for a in policy.escalation_contacts if a not in settings.service.escalation_contacts]
    ours += [(f"department:{key}.team_address", dept.team_address)
             for key, dept in sorted(departments.items()) if dept.team_address]
    found += [(where, f"{address} routes to department {routed[address]}: mail to it would "
               "come back in as mail to a department") for where, address in ours
              if address in routed]
    return found


def _no_department(key: str, departments: dict) -> str:
    close = difflib.get_close_matches(key, list(departments), n=1)
    hint = f"; did you mean {toml(close[0])}?" if close else (
        f"; there are {', '.join(sorted(departments))}" if departments else
        "; there are none yet (`mailgate department add`)")
    return f"no department {toml(key)} in the database{hint}"


def warnings(settings: Settings) -> list[Finding]:
    """What works, but maybe not as meant."""
    found = list(settings.service.target_warnings())
    if settings.service.calendar != ALWAYS_UTC and \
            settings.outbound.timezone != OutboundSettings.timezone:
        found.append(("outbound.timezone", f"unused: mail is dated in the zone of its "
                      f"department's service calendar ({settings.service.timezone})"))
    return found


def database_warnings(settings: Settings, session: Session) -> list[Finding]:
    """Escalations to agents who left; contacts whose locale has no templates."""
    escalated = set(settings.service.escalation_contacts) | {
        a for _, policy in settings.service.departments for a in policy.escalation_contacts}
    inactive = session.scalars(select(Agent.email).where(Agent.email.in_(escalated),
                                                         Agent.active.is_(False)))
    found = [("service.escalation_contacts", f"{email} is a deactivated agent")
             for email in sorted(inactive)]
    locales = session.scalars(select(Contact.locale).distinct().where(
        Contact.locale.is_not(None)))
    return found + _flagged([("contacts.locale", locale_problem(locale))
                             for locale in sorted(locales)])

"""Departments, their addresses, agents and contacts. Changes apply to the next message."""
from __future__ import annotations

from sqlalchemy import select

from ..mail.headers import normalize_address
from ..models import Address, Agent, Contact, Department, Ticket
from ..phones import normalize_phone, region_of
from ..tickets import department_by_key
from .common import EX_DATAERR, EX_USAGE, CommandError, print_json, print_table, session_of
from .department_settings import COLUMNS, BadFile, changes, read_file


def register(sub) -> None:
    for register_noun in (_departments, _addresses, _agents, _contacts):
        register_noun(sub)


def _departments(sub) -> None:
    dept = sub.add_parser("department", help="departments").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = dept.add_parser("add", help="add or update a department")
    p.add_argument("key")
    p.add_argument("--name")
    p.add_argument("--prefix", help="subject token prefix for this department's tickets")
    p.add_argument("--locale", help="default locale of its mail, e.g. fa, ka, en")
    p.set_defaults(handler=department_add)
    p = dept.add_parser("set", help="change a department's settings (\"\" restores a default)")
    p.add_argument("key")
    p.add_argument("--name")
    p.add_argument("--prefix", help="subject token prefix for this department's tickets")
    p.add_argument("--locale", help="default locale of its mail: en, fa or ka")
    p.add_argument("--sms", choices=("on", "off"), help="SMS to requesters with a phone")
    p.add_argument("--promise", help="response promise in its acknowledgements")
    p.add_argument("--team-address", help="agent mail goes here instead of to each agent")
    p.set_defaults(handler=department_set)
    p = dept.add_parser("show", help="every setting of a department")
    p.add_argument("key")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=department_show)
    p = dept.add_parser("list", help="list departments with their addresses and agents")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=department_list)
    p = dept.add_parser("import", help="add/update departments from a TOML file")
    p.add_argument("file")
    p.set_defaults(handler=department_import)


def _addresses(sub) -> None:
    addr = sub.add_parser("address", help="addresses that route to departments").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = addr.add_parser("add", help="route ADDRESS to a department")
    p.add_argument("address")
    p.add_argument("--department", required=True)
    p.set_defaults(handler=address_add)
    p = addr.add_parser("remove", help="stop routing ADDRESS")
    p.add_argument("address")
    p.set_defaults(handler=address_remove)


def _agents(sub) -> None:
    agent = sub.add_parser("agent", help="agents").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = agent.add_parser("add", help="add an agent or add departments to one")
    p.add_argument("email")
    p.add_argument("--department", action="append", default=[], required=True)
    p.add_argument("--name", default="")
    p.set_defaults(handler=agent_add)
    p = agent.add_parser("deactivate", help="an agent who left: no longer counts as agent")
    p.add_argument("email")
    p.set_defaults(handler=agent_deactivate)
    p = agent.add_parser("list")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=agent_list)


def _contacts(sub) -> None:
    contact = sub.add_parser("contact", help="customers").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = contact.add_parser("add", help="add or update a contact")
    p.add_argument("email")
    p.add_argument("--name")
    p.add_argument("--phone", help="phone number, normalised to E.164")
    p.add_argument("--locale")
    p.set_defaults(handler=contact_add)
    p = contact.add_parser("list")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=contact_list)


def _address(value: str) -> str:
    addr = normalize_address(value)
    if addr is None:
        raise CommandError(f"not an email address: {value!r}", EX_DATAERR)
    return addr


def _department_changes(args) -> dict:
    """The columns a `department add|set` command line sets, checked."""
    given = {name: getattr(args, name, None) for name in COLUMNS}
    given = {name: value for name, value in given.items() if value is not None}
    if "sms" in given:
        given["sms"] = given["sms"] == "on"
    columns, problems = changes(given)
    if problems:
        raise CommandError("; ".join(f"--{name.replace('_', '-')}: {message}"
                                     for name, message in problems), EX_DATAERR)
    return columns


def _upsert_department(session, key: str, columns: dict) -> Department:
    dept = session.scalar(select(Department).where(Department.key == key))
    if dept is None:
        dept = Department(key=key, name=key)
        session.add(dept)
    for column, value in columns.items():
        setattr(dept, column, value)
    session.flush()
    return dept


def _route(session, address: str, dept: Department) -> None:
    row = session.scalar(select(Address).where(Address.address == address))
    if row is None:
        session.add(Address(address=address, department=dept))
    else:
        row.department = dept


def department_add(settings, args) -> None:
    columns = _department_changes(args)
    with session_of(settings) as session:
        dept = _upsert_department(session, args.key, columns)
        print(f"department {dept.key}: {dept.name}")


def department_set(settings, args) -> None:
    columns = _department_changes(args)
    if not columns:
        raise CommandError("nothing to set: give --name, --prefix, --locale, --sms, --promise "
                           "or --team-address", EX_USAGE)
    with session_of(settings) as session:
        dept = department_by_key(session, args.key)
        _upsert_department(session, dept.key, columns)
        print(f"department {dept.key}: " + ", ".join(
            f"{name} {_shown(getattr(dept, column))}" for name, column in COLUMNS.items()
            if column in columns))


def _shown(value) -> str:
    """A department setting as `department set` and `show` print it."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return "(default)" if value is None else str(value)


def _department_row(dept: Department, every: bool = False) -> dict:
    row = {"key": dept.key, "name": dept.name, "prefix": dept.prefix, "locale": dept.locale}
    if every:
        row |= {"sms": bool(dept.sms_enabled), "promise": dept.promise,
                "team_address": dept.team_address}
    return row | {"addresses": sorted(a.address for a in dept.addresses),
                  "agents": sorted(a.email for a in dept.agents if a.active)}


def _department_rows(session) -> list[dict]:
    return [_department_row(dept)
            for dept in session.scalars(select(Department).order_by(Department.key))]


def department_show(settings, args) -> None:
    with session_of(settings) as session:
        row = _department_row(department_by_key(session, args.key), every=True)
    if args.json:
        print_json(row)
        return
    # what applies when the department sets nothing
    defaults = {"prefix": f"{settings.threading.prefix} ([threading] prefix)",
                "locale": f"{settings.outbound.default_locale} ([outbound] default_locale)",
                "promise": "[outbound] response_promise, else the locale's sentence",
                "team_address": "each agent"}
    for name, value in row.items():
        text = ", ".join(value) or "(none)" if isinstance(value, list) else _shown(value)
        print(f"{name + ':':14}{defaults[name] if value is None else text}")


def department_list(settings, args) -> None:
    with session_of(settings) as session:
        rows = _department_rows(session)
    if args.json:
        print_json(rows)
    else:
        print_table([[r["key"], r["name"], r["prefix"], r["locale"], ", ".join(r["addresses"]),
                      ", ".join(r["agents"])] for r in rows],
                    ["KEY", "NAME", "PREFIX", "LOCALE", "ADDRESSES", "AGENTS"])


def department_import(settings, args) -> None:
    try:
        entries = read_file(args.file)
    except BadFile as error:
        raise CommandError(f"{args.file}: nothing imported:\n{error}", EX_DATAERR) from error
    with session_of(settings) as session:
        for entry in entries:
            dept = _upsert_department(session, entry.key, entry.columns)
            for address in entry.addresses:
                _route(session, address, dept)
            for email in entry.agents:
                _add_agent(session, email, [dept], "")
            print(f"department {dept.key}: {len(entry.addresses)} addresses, "
                  f"{len(entry.agents)} agents")


def address_add(settings, args) -> None:
    address = _address(args.address)
    with session_of(settings) as session:
        dept = department_by_key(session, args.department)
        _route(session, address, dept)
        print(f"{address} -> {dept.key}")


def address_remove(settings, args) -> None:
    address = _address(args.address)
    with session_of(settings) as session:
        row = session.scalar(select(Address).where(Address.address == address))
        if row is None:
            raise CommandError(f"{address} is not routed", EX_DATAERR)
        session.delete(row)
        print(f"{address} removed")


def _add_agent(session, email: str, departments: list[Department], name: str) -> Agent:
    agent = session.scalar(select(Agent).where(Agent.email == email))
    if agent is None:
        agent = Agent(email=email, name=name, active=True)
        session.add(agent)
    agent.active = True
    if name:
        agent.name = name
    for dept in departments:
        if dept not in agent.departments:
            agent.departments.append(dept)
    session.flush()
    return agent


def agent_add(settings, args) -> None:
    email = _address(args.email)
    with session_of(settings) as session:
        depts = [department_by_key(session, key) for key in args.department]
        agent = _add_agent(session, email, depts, args.name)
        print(f"agent {agent.email}: {', '.join(d.key for d in agent.departments)}")


def agent_deactivate(settings, args) -> None:
    email = _address(args.email)
    with session_of(settings) as session:
        agent = session.scalar(select(Agent).where(Agent.email == email))
        if agent is None:
            raise CommandError(f"no agent {email}", EX_DATAERR)
        agent.active = False
        print(f"agent {email} deactivated")


def agent_list(settings, args) -> None:
    with session_of(settings) as session:
        rows = [{"email": a.email, "name": a.name, "active": a.active,
                 "departments": sorted(d.key for d in a.departments)}
                for a in session.scalars(select(Agent).order_by(Agent.email))]
    if args.json:
        print_json(rows)
    else:
        print_table([[r["email"], r["name"], "yes" if r["active"] else "no",
                      ", ".join(r["departments"])] for r in rows],
                    ["EMAIL", "NAME", "ACTIVE", "DEPARTMENTS"])


def contact_add(settings, args) -> None:
    email = _address(args.email)
    with session_of(settings) as session:
        contact = session.scalar(select(Contact).where(Contact.email == email))
        phone = args.phone and _phone(session, settings, args.phone, args.locale, contact)
        if contact is None:
            contact = Contact(email=email, name=args.name or "")
            session.add(contact)
        if args.name:
            contact.name = args.name
        if phone:
            contact.phone = phone
        if args.locale:
            contact.locale = args.locale
        print(f"contact {email}" + (f" {phone}" if phone else ""))


def _phone(session, settings, value: str, locale: str | None, contact: Contact | None) -> str:
    """`value` in E.164; a local number is read in the region of the contact's locale,
    else of the department of their latest ticket, else `[sms] default_region`."""
    latest = contact and session.scalar(select(Ticket).where(Ticket.requester_id == contact.id)
                                        .order_by(Ticket.id.desc()).limit(1))
    region = region_of(locale or (contact and contact.locale),
                       latest and latest.department.locale, default=settings.sms.default_region)
    phone = normalize_phone(value, region)
    if phone is None:
        where = f"read in region {region}" if region else (
            "a local number needs a region: --locale, or [sms] default_region")
        raise CommandError(f"not a valid phone number: {value!r} ({where}; the international "
                           "form always works, e.g. +98 912 345 6789)", EX_DATAERR)
    return phone


def contact_list(settings, args) -> None:
    with session_of(settings) as session:
        rows = [{"email": c.email, "name": c.name, "phone": c.phone, "locale": c.locale}
                for c in session.scalars(select(Contact).order_by(Contact.email))]
    if args.json:
        print_json(rows)
    else:
        print_table([[r["email"], r["name"], r["phone"], r["locale"]] for r in rows],
                    ["EMAIL", "NAME", "PHONE", "LOCALE"])

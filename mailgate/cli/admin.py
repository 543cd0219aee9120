"""Departments, their addresses, agents and contacts. Changes apply to the next message."""
from __future__ import annotations

import tomllib

from sqlalchemy import select

from ..mail.headers import normalize_address
from ..models import Address, Agent, Contact, Department
from ..phones import normalize_phone
from ..tickets import department_by_key
from .common import EX_DATAERR, CommandError, print_json, print_table, session_of


def register(sub) -> None:  # one flat argparse block per noun: read as a table, not logic
    dept = sub.add_parser("department", help="departments").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = dept.add_parser("add", help="add or update a department")
    p.add_argument("key")
    p.add_argument("--name")
    p.add_argument("--prefix", help="subject token prefix for this department's tickets")
    p.add_argument("--locale", help="default locale of its mail, e.g. fa, ka, en")
    p.set_defaults(handler=department_add)
    p = dept.add_parser("list", help="list departments with their addresses and agents")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=department_list)
    p = dept.add_parser("import", help="add/update departments from a TOML file")
    p.add_argument("file")
    p.set_defaults(handler=department_import)

    addr = sub.add_parser("address", help="addresses that route to departments").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = addr.add_parser("add", help="route ADDRESS to a department")
    p.add_argument("address")
    p.add_argument("--department", required=True)
    p.set_defaults(handler=address_add)
    p = addr.add_parser("remove", help="stop routing ADDRESS")
    p.add_argument("address")
    p.set_defaults(handler=address_remove)

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


def _upsert_department(session, key: str, name=None, prefix=None, locale=None) -> Department:
    if prefix is not None and not (prefix.isascii() and prefix.isalnum()):
        raise CommandError(f"prefix must be ASCII letters and digits: {prefix!r}", EX_DATAERR)
    dept = session.scalar(select(Department).where(Department.key == key))
    if dept is None:
        dept = Department(key=key, name=name or key)
        session.add(dept)
    elif name:
        dept.name = name
    if prefix is not None:
        dept.prefix = prefix or None
    if locale is not None:
        dept.locale = locale or None
    session.flush()
    return dept


def _route(session, address: str, dept: Department) -> None:
    row = session.scalar(select(Address).where(Address.address == address))
    if row is None:
        session.add(Address(address=address, department=dept))
    else:
        row.department = dept


def department_add(settings, args) -> None:
    with session_of(settings) as session:
        dept = _upsert_department(session, args.key, args.name, args.prefix, args.locale)
        print(f"department {dept.key}: {dept.name}")


def _department_rows(session) -> list[dict]:
    rows = []
    for dept in session.scalars(select(Department).order_by(Department.key)):
        rows.append({"key": dept.key, "name": dept.name, "prefix": dept.prefix,
                     "locale": dept.locale,
                     "addresses": sorted(a.address for a in dept.addresses),
                     "agents": sorted(a.email for a in dept.agents if a.active)})
    return rows


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
        with open(args.file, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise CommandError(f"{args.file}: {error}", EX_DATAERR) from error
    entries = data.get("department", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "key" in e
                                                for e in entries):
        raise CommandError("expected [[department]] tables, each with a key", EX_DATAERR)
    with session_of(settings) as session:
        for entry in entries:
            dept = _upsert_department(session, entry["key"], entry.get("name"),
                                      entry.get("prefix"), entry.get("locale"))
            for address in entry.get("addresses", []):
                _route(session, _address(address), dept)
            for email in entry.get("agents", []):
                _add_agent(session, _address(email), [dept], "")
            print(f"department {dept.key}: {len(entry.get('addresses', []))} addresses, "
                  f"{len(entry.get('agents', []))} agents")


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
    phone = None
    if args.phone:
        phone = normalize_phone(args.phone)
        if phone is None:
            raise CommandError(f"not a valid phone number: {args.phone!r} "
                               "(give it in international form, e.g. +98 912 345 6789)",
                               EX_DATAERR)
    with session_of(settings) as session:
        contact = session.scalar(select(Contact).where(Contact.email == email))
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


def contact_list(settings, args) -> None:
    with session_of(settings) as session:
        rows = [{"email": c.email, "name": c.name, "phone": c.phone, "locale": c.locale}
                for c in session.scalars(select(Contact).order_by(Contact.email))]
    if args.json:
        print_json(rows)
    else:
        print_table([[r["email"], r["name"], r["phone"], r["locale"]] for r in rows],
                    ["EMAIL", "NAME", "PHONE", "LOCALE"])

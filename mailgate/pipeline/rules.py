"""Rules: the admin's `[[rules]]` (`mail/rules.py`) over the routed message, and the
fields the customer asked for (`mail/fields.py`). A rule that says spam or ignore
ends the path here (the message is kept, never a ticket, and `message explain`
names the rule); a rule's department replaces the routed one. What the rules and
the customer set on a new ticket is applied by the apply step (`set_fields`): the
customer's fields only when their department knows the value (else it is kept as
text, an event), the rules' without asking.
"""
from __future__ import annotations

from .. import tickets
from ..mail import fields as customer
from ..mail.headers import normalize_address
from ..mail.route import Route
from ..mail.rules import Ruling, evaluate, facts_of, header_names, read_headers
from ..models import Ticket
from ..vocabulary import Outcome
from .context import Context
from .envelope import Result

FIELDS = ("category", "product", "priority")


def step(ctx: Context) -> Result | None:
    if not ctx.settings.rules:
        ctx.ruling = Ruling()
        return None
    rules = ctx.settings.rules
    facts = facts_of(ctx.msg, recipients(ctx), read_headers(ctx.raw, header_names(rules)))
    ruling = ctx.ruling = evaluate(rules, facts)
    ctx.trace.extend(f"rules: {note}" for note in ruling.notes)
    for rule in (r for name in ruling.fired for r in rules if r.name == name):
        did = rule.actions()
        ctx.trace.append(f"rules: {rule.name!r} fired" + (f": {', '.join(did)}" if did else ""))
    if ruling.action and _from_an_agent(ctx):
        ctx.trace.append(f"rules: {ruling.action} by rule {ruling.by['action']!r} not applied: "
                         f"{ctx.author} is an agent (the agent step decides)")
    elif ruling.action:
        outcome = Outcome.SPAM if ruling.action == "spam" else Outcome.IGNORED
        return ctx.finish(outcome, reason=f"rule {ruling.by['action']!r}: {ruling.action}")
    if ruling.department:
        _reroute(ctx, ruling)
    return None


def _from_an_agent(ctx: Context) -> bool:
    """An agent's answer quotes the customer: a rule's spam or ignore never swallows it
    (an agent From that nothing proves is the agent step's to hold)."""
    agent = tickets.agent_by_email(ctx.session, ctx.author)
    return agent is not None and agent.active


def recipients(ctx: Context) -> list[str]:
    """Every address the message names as a recipient (envelope, Delivered-To, To, Cc)."""
    named = [a for a, _ in ctx.candidates] + ctx.msg.delivered_to + ctx.msg.to + ctx.msg.cc
    return list(dict.fromkeys(filter(None, map(normalize_address, named))))


def _reroute(ctx: Context, ruling: Ruling) -> None:
    rule = ruling.by["department"]
    if ruling.department not in ctx.known.departments:
        ctx.trace.append(f"rules: {rule!r}: no department {ruling.department!r}; "
                         "the routed one stays")
        return
    old = ctx.route
    ctx.route = Route(ruling.department, old.address if old else "", old.tag if old else None,
                      f"rule {rule!r}")
    ctx.trace.append(f"route: {ruling.department} by rule {rule!r}"
                     + (f" (was {old.department})" if old else ""))


def set_fields(ctx: Context, ticket: Ticket) -> None:
    """On a new ticket: what the customer asked for, within what its department knows,
    then what the rules set. Each value set is an event; ctx.understood says what,
    for the acknowledgement."""
    known, unknown = customer_fields(ctx, ticket.department.key)
    for item in unknown:
        ctx.trace.append(f"fields: {item.field} {item.value!r} ({item.source}) is not one "
                         f"department {ticket.department.key} knows; kept as text")
        tickets.record_event(ctx.session, ticket, "field_unknown", ctx.author,
                             new=f"{item.field}: {item.value}"[:200], detail=item.source)
    for name in FIELDS:
        if name in known:
            _set(ctx, ticket, name, known[name].value, known[name].source, known[name].note)
    _apply_ruling(ctx, ticket, ctx.ruling or Ruling())
    ctx.understood = [{"field": name, "value": getattr(ticket, name),
                       "labels": known[name].labels if name in known else {}}
                      for name in FIELDS if name in known and
                      getattr(ticket, name) == known[name].value]


def customer_fields(ctx: Context, department: str
                    ) -> tuple[dict[str, customer.Understood], list[customer.Asked]]:
    """What the customer's new ticket asks for in `department` (plus tag, mail client
    priority, field lines): (what the department knows, by field; what it does not)."""
    settings = ctx.settings.fields.department(department)
    asked = customer.asked_by_tag(ctx.route.tag if ctx.route else None, settings)
    if settings.header_priority:
        asked += customer.asked_in_headers(read_headers(ctx.raw, set(customer.HEADER_PRIORITY)))
    if settings.field_lines and not ctx.automatic:
        asked += customer.asked_in_text(ctx.msg.text)
    return customer.understand(asked, settings)


def _set(ctx: Context, ticket: Ticket, name: str, value: str, source: str,
         note: str = "") -> None:
    actor = source if source.startswith("rule ") else ctx.author
    if name == "priority":
        tickets.set_priority(ctx.session, ticket, value, actor)
    else:
        setattr(ticket, name, value)
        tickets.record_event(ctx.session, ticket, name, actor, new=value[:200], detail=source)
    ctx.trace.append(f"fields: {name} {value} ({source})" + (f"; {note}" if note else ""))


def _apply_ruling(ctx: Context, ticket: Ticket, ruling: Ruling) -> None:
    for name in FIELDS:
        if getattr(ruling, name):
            _set(ctx, ticket, name, getattr(ruling, name), f"rule {ruling.by[name]!r}")
    if ruling.tags:
        ticket.tags = list(ruling.tags)
        tickets.record_event(ctx.session, ticket, "tags", f"rule {ruling.by['tags']!r}",
                             new=", ".join(ruling.tags)[:200])
    if ruling.assignee:
        _assign(ctx, ticket, ruling)
    for address in ruling.cc:
        if address and address != ticket.requester.email:
            tickets.add_participant(ctx.session, ticket,
                                    tickets.contact_for(ctx.session, address), "cc")
            ctx.trace.append(f"fields: Cc {address} (rule {ruling.by['cc']!r})")


def _assign(ctx: Context, ticket: Ticket, ruling: Ruling) -> None:
    rule = ruling.by["assignee"]
    agent = tickets.agent_by_email(ctx.session, normalize_address(ruling.assignee))
    if agent is None or not agent.active:
        ctx.trace.append(f"fields: {ruling.assignee} is not an active agent (rule {rule!r}); "
                         "not assigned")
        return
    ticket.assignee = agent
    tickets.record_event(ctx.session, ticket, "assigned", f"rule {rule!r}", new=agent.email)
    ctx.trace.append(f"fields: assigned to {agent.email} (rule {rule!r})")

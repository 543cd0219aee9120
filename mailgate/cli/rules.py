"""`mailgate rule list` and `mailgate rule test FILE.eml`: the admin's [[rules]] and
the fields customers may set, and what a message would meet, without storing it.

`rule test` runs the pipeline's steps up to threading (`pipeline.runner.STEPS`, the
same code as for real mail) in a transaction that is rolled back, then says which
rules fired, the department, the fields understood and whether an acknowledgement
would go out. Nothing is kept: no raw copy, no inbound row, no ticket, no mail.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

from ..config import Settings
from ..config_rules import Rule
from ..config_keys import toml
from ..errors import MessageRejected, TemporaryFailure
from ..mail.precheck import precheck
from ..mail.headers import normalize_address
from ..models import Inbound
from ..pipeline import Envelope, STEPS
from ..pipeline import thread as thread_step
from ..pipeline.context import Context
from ..pipeline.rules import customer_fields
from ..pipeline.thread import policy
from ..mail.threads import Action
from ..storage import sha256_hex
from ..vocabulary import Source
from .common import EX_NOINPUT, CommandError, gateway, print_json

UP_TO_THREAD = STEPS[:STEPS.index(thread_step) + 1]


def register(sub) -> None:
    rule = sub.add_parser("rule", help="[[rules]] and the fields customers set by mail") \
        .add_subparsers(dest="action", required=True, metavar="ACTION")
    p = rule.add_parser("list", help="the rules in the order they are tried, and the fields "
                                     "each department offers")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=rule_list)
    p = rule.add_parser("test", help="what would happen to a message: rules fired, "
                                     "department, fields, acknowledgement (nothing stored)")
    p.add_argument("file", help="the message (.eml); - for standard input")
    p.add_argument("--to", action="append", default=[], metavar="ADDRESS",
                   help="an envelope recipient, as the MTA would give it (repeatable)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=rule_test)


def rule_view(rule: Rule) -> dict:
    return {"name": rule.name, "match": rule.match, "stop": rule.stop,
            "conditions": {n: _plain(getattr(rule, n)) for n in rule.conditions()},
            "unless": {n: _plain(getattr(rule.unless, n)) for n in rule.unless.conditions()},
            "actions": {n: _plain(getattr(rule, n)) for n in rule.actions()}}


def _plain(value):
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return dict(value)  # header: (name, pattern) pairs
    return list(value) if isinstance(value, tuple) else value


def rule_list(settings: Settings, args) -> None:
    rules = [rule_view(rule) for rule in settings.rules]
    fields = {"[fields]": _fields_view(settings.fields)}
    fields.update({key: _fields_view(dept) for key, dept in settings.fields.departments})
    if args.json:
        print_json({"rules": rules, "fields": fields})
        return
    if not rules:
        print("no [[rules]]")
    for i, rule in enumerate(rules, 1):
        flow = "stop" if rule["stop"] else "go on"
        print(f"{i}. {rule['name']} — {rule['match']} of: "
              + (_listed(rule["conditions"]) or "every message")
              + (f"; unless any of: {_listed(rule['unless'])}" if rule["unless"] else "")
              + f"; then {flow}")
        for name, value in rule["actions"].items():
            print(f"     {name} = {toml(value) if not isinstance(value, dict) else value}")
    for where, view in fields.items():
        print(f"fields {where}: plus tag -> {view['plus_tag']}, field lines "
              f"{'read' if view['field_lines'] else 'ignored'}, mail client priority "
              f"{'read' if view['header_priority'] else 'ignored'}, ceiling "
              f"{view['priority_ceiling']}")
        for name in ("categories", "products"):
            for choice in view[name]:
                labels = " / ".join(v for v in (choice["en"], choice["fa"], choice["ka"]) if v)
                print(f"  {name[:-1] if name == 'products' else 'category'} {choice['key']}"
                      + (f": {labels}" if labels else ""))


def _listed(conditions: dict) -> str:
    return ", ".join(f"{k} {toml(v) if not isinstance(v, dict) else v}"
                     for k, v in conditions.items())


def _fields_view(fields) -> dict:
    return {"plus_tag": fields.plus_tag, "field_lines": fields.field_lines,
            "header_priority": fields.header_priority,
            "priority_ceiling": fields.priority_ceiling,
            "categories": [_choice(c) for c in fields.categories],
            "products": [_choice(c) for c in fields.products]}


def _choice(choice) -> dict:
    return {"key": choice.key, "en": choice.en, "fa": choice.fa, "ka": choice.ka,
            "words": list(choice.words)}


@dataclass
class Verdict:
    """What `rule test` found."""
    outcome: str = ""  # the outcome, when a step before apply ended the path
    reason: str = ""
    fired: list[str] = field(default_factory=list)
    department: str | None = None
    thread: str = ""
    fields: dict = field(default_factory=dict)
    not_understood: list[dict] = field(default_factory=list)
    set_by_rules: dict = field(default_factory=dict)
    acknowledgement: str = ""
    trace: list[str] = field(default_factory=list)


def rule_test(settings: Settings, args) -> None:
    raw = _read(args.file)
    envelope = Envelope(Source.PIPE, rcpt_to=tuple(filter(None, map(normalize_address,
                                                                     args.to))))
    with gateway(settings, parse_workers=0) as gw:
        verdict = dry_run(gw, raw, envelope)
    if args.json:
        print_json(verdict.__dict__)
        return
    _print(verdict)


def _read(name: str) -> bytes:
    try:
        if name == "-":
            return sys.stdin.buffer.read()
        with open(name, "rb") as fh:
            return fh.read()
    except OSError as error:
        raise CommandError(f"cannot read {name}: {error.strerror}", EX_NOINPUT) from error


def dry_run(gw, raw: bytes, envelope: Envelope) -> Verdict:
    """The steps up to threading over `raw`, rolled back: what they decided."""
    verdict = Verdict()
    try:
        precheck(raw, gw.settings.limits)
        parsed = gw.parser.parse(raw)
    except MessageRejected as error:
        return Verdict(outcome="quarantined", reason=f"{error.kind}: {error.reason}")
    session = gw.db.sessions()
    session.autoflush = False
    try:
        ctx = Context(session, gw, parsed, raw, sha256_hex(raw), envelope, gw.now(),
                      Inbound(source=envelope.source, sha256=sha256_hex(raw), size=len(raw),
                              envelope_to=list(envelope.rcpt_to), received_at=gw.now(),
                              outcome="new", trace=[]))
        _steps(ctx, verdict)
    except TemporaryFailure:
        raise
    except MessageRejected as error:
        verdict.outcome, verdict.reason = "quarantined", f"{error.kind}: {error.reason}"
    finally:
        session.rollback()
        session.close()
    return verdict


def _steps(ctx: Context, verdict: Verdict) -> None:
    for module in UP_TO_THREAD:
        result = module.step(ctx)
        if result is not None:
            verdict.outcome, verdict.reason = str(result.outcome), result.reason
            break
    ruling = ctx.ruling
    verdict.trace = list(ctx.trace)
    verdict.fired = list(ruling.fired) if ruling else []
    verdict.department = ctx.route.department if ctx.route else None
    if verdict.outcome or ctx.decision is None:
        return
    verdict.thread = policy(ctx.decision)
    if ctx.decision.action not in (Action.NEW, Action.NEW_LINKED):
        verdict.acknowledgement = "no: not a new ticket"
        return
    department = verdict.department or (ctx.ticket.department.key if ctx.ticket else None)
    if department is None:
        verdict.outcome, verdict.reason = "quarantined", "route: no department for recipients " \
            f"{[a for a, _ in ctx.candidates]}"
        return
    known, unknown = customer_fields(ctx, department)
    verdict.fields = {name: {"value": item.value, "source": item.source, "note": item.note}
                      for name, item in known.items()}
    verdict.not_understood = [item.__dict__ for item in unknown]
    verdict.set_by_rules = {name: _plain(getattr(ruling, name)) for name in ruling.by} \
        if ruling else {}
    verdict.acknowledgement = _acknowledgement(ctx)


def _acknowledgement(ctx: Context) -> str:
    if ctx.ruling and not ctx.ruling.acknowledge:
        return f"no: rule {ctx.ruling.by['acknowledge']!r}"
    if not ctx.may_autorespond:
        return "no: " + ("automatic mail" if ctx.automatic else "the sender may not be answered")
    return "yes (unless the sender's hourly cap of automatic replies is reached)"


def _print(verdict: Verdict) -> None:
    if verdict.outcome:
        print(f"outcome: {verdict.outcome}" + (f" — {verdict.reason}" if verdict.reason else ""))
    print(f"rules fired: {', '.join(verdict.fired) or 'none'}")
    print(f"department: {verdict.department or '(none)'}")
    if verdict.thread:
        print(f"thread: {verdict.thread}")
    for name, item in verdict.fields.items():
        print(f"field {name}: {item['value']} ({item['source']})"
              + (f"; {item['note']}" if item["note"] else ""))
    for item in verdict.not_understood:
        print(f"not understood, kept as text: {item['field']} {item['value']!r} "
              f"({item['source']})")
    for name, value in verdict.set_by_rules.items():
        print(f"rule sets {name}: {toml(value)}")
    if verdict.acknowledgement:
        print(f"acknowledgement: {verdict.acknowledgement}")
    print("trace:")
    for line in verdict.trace:
        print(f"  {line}")

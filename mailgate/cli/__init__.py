"""`mailgate` command line: one sub-module per area, each adding its commands.

Exit statuses follow sysexits.h (`common.EX_*`) so that an MTA pipe transport does
the right thing: 0 ok, 64 usage, 65 unusable input, 66 no input, 70 our bug, 75
temporary failure (retry), 78 configuration.

Only the module of the command being run is imported (most of them pull in the
ORM models and the pipeline, which take longer to import than a command takes to
run): `COMMANDS` names each command's module and line of help, so that
`mailgate --help` imports none of them. Like pip's command table.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from typing import Iterable

MODULES = ("run", "ingest", "admin", "tickets", "quarantine", "outbox", "service", "db",
           "storage", "report", "rules")

# command -> (module that registers it, its line in `mailgate --help`), in the order
# the modules register them. tests/test_package.py checks it against the modules.
COMMANDS = {
    "run": ("run", "run the daemon (SMTP/LMTP listeners, IMAP pollers, jobs)"),
    "ingest": ("ingest", "run messages through the pipeline"),
    "department": ("admin", "departments"),
    "address": ("admin", "addresses that route to departments"),
    "agent": ("admin", "agents"),
    "contact": ("admin", "customers"),
    "ticket": ("tickets", "tickets"),
    "message": ("tickets", "inbound messages"),
    "quarantine": ("quarantine", "messages that could not be processed"),
    "outbox": ("outbox", "outgoing mail and SMS"),
    "template": ("outbox", "mail templates"),
    "calendar": ("service", "service hours"),
    "jobs": ("service", "scheduled jobs"),
    "db": ("db", "database schema"),
    "check": ("db", "validate the configuration and what it points at"),
    "storage": ("storage", "blob storage: copy to S3, check"),
    "report": ("report", "response and resolution times, SLA breaches"),
    "rule": ("rules", "[[rules]] and the fields customers set by mail"),
}


class Parser(argparse.ArgumentParser):
    """Help and usage errors quote the command line: like everything printed, they go
    through `common.printable` (imported only when there is something to remove)."""

    def _print_message(self, message: str, file=None) -> None:
        if message and not message.replace("\n", "").isprintable():
            # every import below this module's top waits until a command needs it:
            # `mailgate --help` must not load the ORM (CLI start-up time)
            from .common import printable

            message = printable(message)
        super()._print_message(message, file)

    def error(self, message: str):
        """A command line that makes no sense exits 64 (`common.EX_USAGE`, sysexits.h)
        like the commands' own usage errors, not argparse's 2."""
        self.print_usage(sys.stderr)
        self.exit(64, f"{self.prog}: error: {message}\n")


class _Unsure(Exception):
    pass


class _Sketch(Parser):
    """The command table as a parser, to find which command a command line names."""

    def error(self, message: str):
        raise _Unsure(message)  # the complete parser says what is wrong


def build_parser(modules: Iterable[str] | None = None,
                 parser_class: type[Parser] = Parser) -> Parser:
    """The parser of every command. Only the commands of `modules` (default: all) can
    run; the others stand in, with their line of help, for `mailgate --help`."""
    loaded = MODULES if modules is None else tuple(modules)
    parser = parser_class(prog="mailgate", description=__doc__.splitlines()[0])
    parser.add_argument("--config", "-c", help="TOML configuration file ($MAILGATE_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in MODULES:
        if name in loaded:
            importlib.import_module(f"{__name__}.{name}").register(sub)
        else:
            for command, (module, line) in COMMANDS.items():
                if module == name:
                    sub.add_parser(command, help=line, add_help=False)
    return parser


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line read by a parser that imported its command's module only."""
    try:
        command = build_parser((), _Sketch).parse_known_args(argv)[0].command
    except _Unsure:  # a usage error, or a command missing from COMMANDS
        return build_parser().parse_args(argv)
    args = build_parser((COMMANDS[command][0],)).parse_args(argv)
    return args if hasattr(args, "handler") else build_parser().parse_args(argv)


EX_CONFIG_OR_BUG = (78, 70, 1)  # sysexits EX_CONFIG, EX_SOFTWARE, and an unexpected error


def main(argv: list[str] | None = None) -> int:
    """Run one command. Everything it writes as text, logs included, goes through
    `common.printable`: mail is the attacker's text, the admin's terminal obeys it."""
    args = parse(argv)
    # imported once the command is known (CLI start-up time; see _print_message)
    from .common import printable_output

    with printable_output():
        code = _run(args)
    # An MTA's pipe bounces the mail on any status but 75 (EX_TEMPFAIL): for `ingest`,
    # a broken configuration, a schema older than the code or a bug of ours is for
    # the admin to fix while the mail waits in the MTA's queue, never the sender's.
    if args.command == "ingest" and code in EX_CONFIG_OR_BUG:
        return 75
    return code


def _run(args: argparse.Namespace) -> int:
    # imported once the command is known (CLI start-up time; see _print_message)
    from ..config import ConfigError, load_settings
    from ..db import SchemaOutOfDate
    from ..errors import TemporaryFailure
    from ..storage import BlobUnavailable, CorruptBlob
    from ..logs import setup_command_logging
    from .common import EX_CONFIG, EX_NOINPUT, EX_OK, EX_SOFTWARE, EX_TEMPFAIL, CommandError

    setup_command_logging()
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        if args.command == "check":
            # imported here, as above: only `check` reports settings problems this way
            from .db import report_problems

            return report_problems(error.problems)
        for key, problem in error.problems:
            print(f"config: {key}: {problem}", file=sys.stderr)
        return EX_CONFIG
    try:
        return args.handler(settings, args) or EX_OK
    except CommandError as error:
        print(f"mailgate: {error}", file=sys.stderr)
        return error.code
    except (TemporaryFailure, BlobUnavailable) as error:
        print(f"mailgate: temporary failure, try again later: {error}", file=sys.stderr)
        return EX_TEMPFAIL
    except (CorruptBlob, FileNotFoundError) as error:  # a stored blob lost or damaged
        print(f"mailgate: {error}", file=sys.stderr)
        return EX_NOINPUT
    except SchemaOutOfDate as error:
        print(f"mailgate: {error}", file=sys.stderr)
        return EX_CONFIG
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `mailgate ticket list | head`
        sys.stderr.close()
        return EX_OK
    except Exception:  # a bug: its traceback may quote mail, so it is printed from here
        traceback.print_exc()
        return EX_SOFTWARE


if __name__ == "__main__":
    sys.exit(main())

"""`mailgate` command line: one sub-module per area, each adding its commands.

Exit statuses follow sysexits.h so that an MTA pipe transport does the right
thing: 0 ok, 65 unusable input, 75 temporary failure (retry), 78 configuration.
"""
from __future__ import annotations

import argparse
import logging
import sys
import traceback

from ..config import ConfigError, load_settings
from ..db import SchemaOutOfDate
from ..errors import TemporaryFailure
from . import admin, db, ingest, outbox, quarantine, run, service, tickets

from .common import EX_CONFIG, EX_OK, EX_TEMPFAIL, CommandError, printable_output

MODULES = (run, ingest, admin, tickets, quarantine, outbox, service, db)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailgate", description=__doc__.splitlines()[0])
    parser.add_argument("--config", "-c", help="TOML configuration file ($MAILGATE_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Everything it writes as text, logs included, goes through
    `common.printable`: mail is the attacker's text, the admin's terminal obeys it."""
    with printable_output():
        return _run(build_parser().parse_args(argv))


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        if args.command == "check":
            return db.report_problems(error.problems)
        for key, problem in error.problems:
            print(f"config: {key}: {problem}", file=sys.stderr)
        return EX_CONFIG
    try:
        return args.handler(settings, args) or EX_OK
    except CommandError as error:
        print(f"mailgate: {error}", file=sys.stderr)
        return error.code
    except TemporaryFailure as error:
        print(f"mailgate: temporary failure, try again later: {error}", file=sys.stderr)
        return EX_TEMPFAIL
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
        return 1


if __name__ == "__main__":
    sys.exit(main())

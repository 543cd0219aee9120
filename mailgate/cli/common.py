"""What every command module shares: exit codes, opening the gateway, printing."""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from typing import Iterator

from ..config import Settings
from ..gateway import Gateway
from ..tickets import NotFound

EX_OK, EX_USAGE, EX_DATAERR, EX_NOINPUT, EX_SOFTWARE, EX_TEMPFAIL, EX_CONFIG = \
    0, 64, 65, 66, 70, 75, 78


class CommandError(Exception):
    """A user-facing error: printed without a traceback, exit status `code`."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


@contextlib.contextmanager
def gateway(settings: Settings, parse_workers: int | None = None) -> Iterator[Gateway]:
    """A Gateway on an up-to-date schema (an empty database is initialised)."""
    if parse_workers is not None:
        settings = settings.replace(limits={"parse_workers": parse_workers})
    gw = Gateway(settings)
    try:
        gw.db.ensure_schema()
        yield gw
    except NotFound as error:
        raise CommandError(str(error), EX_DATAERR) from error
    finally:
        gw.close()


@contextlib.contextmanager
def session_of(settings: Settings) -> Iterator:
    """One unit of work for admin commands (no parser workers started)."""
    with gateway(settings, parse_workers=0) as gw:
        with gw.db.unit_of_work() as session:
            yield session


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def print_json(data) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def print_table(rows: list[list], headers: list[str]) -> None:
    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())

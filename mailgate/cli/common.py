"""What every command module shares: exit codes, opening the gateway, printing."""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import sys
from typing import Iterator, TextIO

from ..config import Settings
from ..gateway import Gateway
from ..tickets import NotFound

# sysexits.h, as README's "Command line" lists them: ok, a command line that makes no
# sense, input that is not usable (a name or number that does not exist, a message
# still quarantined after a retry), no input, our bug, try again later, configuration.
EX_OK, EX_USAGE, EX_DATAERR, EX_NOINPUT, EX_SOFTWARE, EX_TEMPFAIL, EX_CONFIG = \
    0, 64, 65, 66, 70, 75, 78


class CommandError(Exception):
    """A user-facing error: printed without a traceback, exit status `code` (sysexits)."""

    def __init__(self, message: str, code: int = EX_DATAERR):
        super().__init__(message)
        self.code = code


@contextlib.contextmanager
def gateway(settings: Settings, parse_workers: int | None = None) -> Iterator[Gateway]:
    """A Gateway on an up-to-date schema (an empty database is initialised). With
    parse workers (`[limits] parse_workers`, unless `parse_workers` says otherwise),
    parsing runs in bounded worker processes; with 0, in this process."""
    limits = settings.limits
    workers = limits.parse_workers if parse_workers is None else parse_workers
    pool = None
    if workers:
        # imported here: most commands parse nothing, and CLI start-up time matters
        from ..inbound.workers import ParserPool
        pool = ParserPool(workers, limits.parse_timeout, limits.parse_memory,
                          limits.max_depth, limits.max_parts)
    gw = Gateway(settings, parser=pool)
    try:
        gw.db.ensure_schema()
        yield gw
    except NotFound as error:
        raise CommandError(str(error), EX_DATAERR) from error
    finally:
        gw.close()
        if pool is not None:
            pool.close()


@contextlib.contextmanager
def session_of(settings: Settings) -> Iterator:
    """One unit of work for admin commands (no parser workers started)."""
    with gateway(settings, parse_workers=0) as gw:
        with gw.db.unit_of_work() as session:
            yield session


# What a terminal would obey rather than show: C0 controls but tab and newline
# (ESC starts title, clear-screen and clipboard sequences), DEL, C1 controls
# (U+009B is CSI, U+009D OSC), the bidi embeddings, overrides and isolates
# (U+202A-U+202E, U+2066-U+2069) that reorder what is shown, and lone surrogates
# (bytes that were not UTF-8, written back raw by surrogateescape).
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
                       "\ud800-\udfff]")
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` without terminal controls; a byte that was not UTF-8 becomes U+FFFD."""
    if _CONTROLS.search(text) is None:
        return text
    return _CONTROLS.sub(lambda m: "\ufffd" if m.group() >= "\ud800" else "", text)


class PrintableStream:
    """A text stream that writes everything through `printable()`: customer text
    (subjects, bodies, filenames, addresses, headers) reaches a terminal as text."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(printable(text))

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


@contextlib.contextmanager
def printable_output() -> Iterator[None]:
    """sys.stdout and sys.stderr write through `printable()` while a command runs."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = PrintableStream(saved[0]), PrintableStream(saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def print_json(data) -> None:
    """JSON with the terminal controls JSON leaves raw (DEL, C1, bidi) written as
    \\u escapes: nothing is lost for a script, nothing is obeyed by a terminal."""
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False)
    sys.stdout.write(_UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")


def minutes(moment: str | None) -> str:
    """An ISO 8601 time as a table shows it: to the minute, with its zone
    ("2026-11-22 05:45+00:00"); "" for none."""
    if not moment:
        return ""
    return dt.datetime.fromisoformat(moment).isoformat(sep=" ", timespec="minutes")


def print_table(rows: list[list], headers: list[str]) -> None:
    cells = [[printable("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())

"""`mailgate ingest`: the MTA-pipe entry point (like rt-mailgate), also for files and folders."""
from __future__ import annotations

import io
import mailbox
import sys
from pathlib import Path
from typing import BinaryIO, Iterator

from ..errors import TemporaryFailure
from ..mail.headers import normalize_address
from ..mail.precheck import Truncated
from ..pipeline import Envelope, ingest
from .common import EX_DATAERR, EX_NOINPUT, EX_OK, EX_TEMPFAIL, gateway, print_json


def register(sub) -> None:
    p = sub.add_parser("ingest", help="run messages through the pipeline",
                       description="Read one message from stdin, or each FILE (a message, an "
                       "mbox, a Maildir or a folder of messages), and print each outcome.")
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument("--sender", help="envelope sender (Postfix pipe: ${sender})")
    p.add_argument("--recipient", action="append", default=[],
                   help="envelope recipient (Postfix pipe: ${original_recipient}); repeatable")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.set_defaults(handler=run)


KEEP_OF_OVERSIZE = 1024 * 1024  # bytes of an oversize message kept in quarantine
_DRAIN_CHUNK = 1024 * 1024


def read_bounded(stream: BinaryIO, limit: int) -> bytes:
    """At most `limit` bytes of `stream` in memory; a longer message becomes a `Truncated`
    prefix (so it is quarantined as over the limit, and only that much is stored).
    The rest is read and dropped, so that the MTA writing into the pipe sees its
    message taken, and counted, so that the reason tells its real size."""
    data = stream.read(limit + 1)
    if len(data) <= limit:
        return data
    if stream.seekable():  # a file: its size is known without reading it
        size = stream.seek(0, io.SEEK_END)
    else:
        size, buffer = len(data), bytearray(_DRAIN_CHUNK)
        while (count := stream.readinto(buffer)):
            size += count
    return Truncated(data[:min(KEEP_OF_OVERSIZE, limit)], size)


def _read_file(path: Path, limit: int) -> bytes:
    with open(path, "rb") as fh:
        return read_bounded(fh, limit)


def messages(paths: list[str], limit: int) -> Iterator[tuple[str, bytes]]:
    """(label, raw bytes) for stdin, files, mbox files, Maildirs and folders of files.
    A message over `limit` bytes read from stdin or a file is a `Truncated` prefix."""
    if not paths or paths == ["-"]:
        yield "stdin", read_bounded(sys.stdin.buffer, limit)
        return
    for name in paths:
        path = Path(name)
        if path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir():
            box = mailbox.Maildir(path, factory=None, create=False)
            for key in sorted(box.keys()):
                yield f"{name}:{key}", box.get_bytes(key)
        elif path.is_dir():
            for child in sorted(p for p in path.iterdir() if p.is_file()):
                yield str(child), _read_file(child, limit)
        else:
            with open(path, "rb") as fh:
                head = fh.read(5)
            if head == b"From ":
                box = mailbox.mbox(path, factory=None, create=False)
                keys = list(box.keys())
                if len(keys) > 1:
                    for key in keys:
                        yield f"{name}#{key + 1}", box.get_bytes(key)
                    continue
            yield name, _read_file(path, limit)


def run(settings, args) -> int:
    envelope = Envelope(
        "pipe", args.sender if args.sender is not None else None,
        tuple(a for r in args.recipient if (a := normalize_address(r))))
    status, results = EX_OK, []
    with gateway(settings) as gw:
        try:
            for label, raw in messages(args.files, settings.limits.max_message_size):
                try:
                    result = ingest(gw, raw, envelope)
                except TemporaryFailure as error:
                    print(f"{label}: temporary failure: {error}", file=sys.stderr)
                    status = EX_TEMPFAIL
                    continue
                if result.unusable and status == EX_OK:
                    status = EX_DATAERR
                results.append({"input": label, "outcome": result.outcome,
                                "ticket": result.ticket, "inbound_id": result.inbound_id,
                                "quarantine_id": result.quarantine_id, "reason": result.reason})
                if not args.json:
                    print(f"{label}: {result.outcome}"
                          + (f" #{result.ticket}" if result.ticket else "")
                          + (f" ({result.reason})" if result.reason else ""))
        except FileNotFoundError as error:
            print(f"mailgate: {error.filename}: no such file", file=sys.stderr)
            return EX_NOINPUT
    if args.json:
        print_json(results)
    return status

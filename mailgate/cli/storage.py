"""`mailgate storage migrate --to s3|files` and `mailgate storage check`.

Exit statuses: 0 done and nothing wrong; 65 some blobs missing or corrupt (listed);
75 a store or the database could not be reached (run it again: a migration goes on
where it stopped); 78 the bucket is not configured.
"""
from __future__ import annotations

import dataclasses
import sys
import time

from .. import storage_admin
from ..config import Settings
from ..errors import TemporaryFailure
from ..gateway import open_storage
from ..storage import Storage
from .common import EX_CONFIG, EX_DATAERR, EX_OK, CommandError, gateway, print_json, print_table


def register(sub) -> None:
    sp = sub.add_parser("storage", help="blob storage: copy to S3, check").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = sp.add_parser("migrate", help="copy every blob to the other backend (resumable)")
    p.add_argument("--to", required=True, choices=("s3", "files"),
                   help="s3: from [storage] dir to the bucket; files: back")
    p.add_argument("--jobs", type=int, default=8, help="blobs copied at a time (8)")
    p.set_defaults(handler=migrate)
    p = sp.add_parser("check", help="find blobs the database names that are missing or corrupt")
    p.add_argument("--quick", action="store_true",
                   help="only look for missing blobs (no download and hash of each)")
    p.add_argument("--jobs", type=int, default=8, help="blobs read at a time (8)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=check)


class ProgressLine:
    """Progress on stderr: one line rewritten in place on a terminal, else a line
    at every tenth of the way (logs stay short)."""

    def __init__(self, verb: str, stream=None):
        self.verb = verb
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.shown = (None, -1)  # (store, tenth) last written to a log
        self.last = 0.0

    def __call__(self, store: str, done: int, total: int) -> None:
        share = done * 100 // max(total, 1)
        text = f"{self.verb} {store}: {done}/{total} ({share} %)"
        if self.tty:
            if done == total or time.monotonic() - self.last > 0.1:
                self.last = time.monotonic()
                self.stream.write(f"\r{text}" + ("\n" if done == total else ""))
                self.stream.flush()
        elif (store, share // 10) != self.shown:
            self.shown = (store, share // 10)
            print(text, file=self.stream, flush=True)


def backend(settings: Settings, name: str) -> Storage:
    return open_storage(dataclasses.replace(settings.storage, backend=name))


def migrate(settings, args) -> int:
    if not settings.storage.bucket:
        raise CommandError("no bucket: set [storage] bucket (and endpoint_url, region, "
                           "credentials) first; backend may stay \"files\" meanwhile", EX_CONFIG)
    source, target = (backend(settings, "files"), backend(settings, "s3"))
    if args.to == "files":
        source, target = target, source
    try:
        report = storage_admin.migrate(source, target, args.jobs, ProgressLine("copying"))
    except OSError as error:
        raise TemporaryFailure(f"{error} (run it again: it goes on where it stopped)") \
            from error
    print(f"{source.where} -> {target.where}: {report.copied} copied, {report.skipped} "
          f"there already, {len(report.problems)} not copied")
    show_problems(report.problems)
    return EX_DATAERR if report.problems else EX_OK


def check(settings, args) -> int:
    progress = ProgressLine("checking") if not args.quick else (lambda *_: None)
    with gateway(settings, parse_workers=0) as gw:
        try:
            report = storage_admin.check(gw.db, gw.storage, settings.storage.keep_raw,
                                         args.quick, args.jobs, progress)
        except OSError as error:
            raise TemporaryFailure(f"storage: {error}") from error
        where = gw.storage.where
    if args.json:
        print_json({"storage": where, "referenced": report.referenced,
                    "unreferenced": report.unreferenced,
                    "problems": [dataclasses.asdict(p) for p in report.problems]})
    else:
        print(f"{where}: {report.referenced} blobs referenced, {len(report.problems)} "
              f"missing or corrupt, {report.unreferenced} stored but unreferenced")
        show_problems(report.problems)
    return EX_DATAERR if report.problems else EX_OK


def show_problems(problems: list[storage_admin.Problem]) -> None:
    if problems:
        print_table([[p.store, p.sha256, p.problem, p.where] for p in problems],
                    ["STORE", "SHA256", "PROBLEM", "REFERENCED BY"])

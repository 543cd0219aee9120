"""What `mailgate storage migrate` and `mailgate storage check` do, printing aside.

`migrate` copies every blob of one storage to another (files under `[storage] dir`
to the bucket, or back): what the target already holds with the same size is
skipped, so an interrupted run goes on where it stopped; each blob is checked
against its sha256 as it is read, and the object store checks each upload's MD5.
`check` compares what the database references (attachments.sha256, inbound.sha256
while `[storage] keep_raw` is on, quarantine.sha256) with what the storage holds:
missing blobs, and (unless `quick`) blobs whose bytes no longer have their sha256.

Both run `jobs` requests at a time (an object store answers each in milliseconds,
so one at a time would take hours for a large installation) and report progress
through `progress(store, done, total)`.
"""
from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from sqlalchemy import func, select

from .db import Database
from .models import Attachment, Inbound, Quarantine
from .storage import Blobs, CorruptBlob, Storage

Progress = Callable[[str, int, int], None]  # (store, done, total)
BATCH = 256  # blobs handed to the threads at a time: bounds what is queued in memory


@dataclass
class Problem:
    store: str  # raw | attachments
    sha256: str
    problem: str  # missing | corrupt
    where: str  # what references it ("attachments #12 and 3 more"), or the source


@dataclass
class Report:
    copied: int = 0
    skipped: int = 0  # migrate: already in the target
    referenced: int = 0  # check: distinct blobs the database names
    unreferenced: int = 0  # check: stored but named by no row (a rolled-back write)
    problems: list[Problem] = field(default_factory=list)


def in_threads(work: Callable, items: Iterable, jobs: int, store: str, total: int,
               progress: Progress) -> Iterator:
    """`work(item)` for each item, `jobs` at a time; results in order."""
    done = 0
    with ThreadPoolExecutor(max(1, jobs), thread_name_prefix="blobs") as pool:
        for batch in batched(items):
            for result in pool.map(work, batch):
                done += 1
                progress(store, done, total)
                yield result


def batched(items: Iterable) -> Iterator[tuple]:  # itertools.batched is Python 3.12+
    iterator = iter(items)
    while batch := tuple(itertools.islice(iterator, BATCH)):
        yield batch


def migrate(source: Storage, target: Storage, jobs: int, progress: Progress) -> Report:
    report = Report()
    for name, blobs in source.stores().items():
        copy_store(name, blobs, target.stores()[name], jobs, progress, report)
    return report


def copy_store(name: str, source: Blobs, target: Blobs, jobs: int, progress: Progress,
               report: Report) -> None:
    present = dict(target.listing())
    todo = []
    for digest, size in source.listing():
        if present.get(digest) == size:
            report.skipped += 1
        else:
            todo.append(digest)

    def copy(digest: str) -> Problem | None:
        try:
            target.put(source.get(digest), digest)
        except CorruptBlob:
            return Problem(name, digest, "corrupt", "source: not copied")
        except FileNotFoundError:  # removed meanwhile: nothing to copy
            return None
        return None

    for problem in in_threads(copy, todo, jobs, name, len(todo), progress):
        if problem is None:
            report.copied += 1
        else:
            report.problems.append(problem)


def references(db: Database, keep_raw: bool) -> dict[str, dict[str, str]]:
    """{store: {sha256: the rows that name it}} for every blob the database names."""
    tables = [("attachments", Attachment), ("raw", Quarantine)]
    if keep_raw:  # without it, only quarantined messages are kept (and named there)
        tables.append(("raw", Inbound))
    found: dict[str, dict[str, list[str]]] = {"raw": {}, "attachments": {}}
    with db.unit_of_work() as session:
        for store, table in tables:
            query = select(table.sha256, func.min(table.id), func.count()).group_by(
                table.sha256)
            for digest, first, count in session.execute(query):
                more = f" and {count - 1} more" if count > 1 else ""
                found[store].setdefault(digest, []).append(
                    f"{table.__tablename__} #{first}{more}")
    return {store: {digest: ", ".join(rows) for digest, rows in named.items()}
            for store, named in found.items()}


def check(db: Database, storage: Storage, keep_raw: bool, quick: bool, jobs: int,
          progress: Progress) -> Report:
    report = Report()
    for name, named in references(db, keep_raw).items():
        blobs = storage.stores()[name]
        present = {digest for digest, _ in blobs.listing()}
        report.referenced += len(named)
        report.unreferenced += len(present - named.keys())
        report.problems += [Problem(name, digest, "missing", where)
                            for digest, where in sorted(named.items()) if digest not in present]
        if not quick:
            stored = sorted(named.keys() & present)
            report.problems += filter(None, in_threads(
                lambda digest: verify(blobs, name, digest, named[digest]), stored, jobs,
                name, len(stored), progress))
    return report


def verify(blobs: Blobs, name: str, digest: str, where: str) -> Problem | None:
    try:
        blobs.get(digest)
    except CorruptBlob:
        return Problem(name, digest, "corrupt", where)
    except FileNotFoundError:
        return Problem(name, digest, "missing", where)
    return None

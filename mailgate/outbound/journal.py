"""What this host delivered and the database does not know yet.

A delivery is journalled (one small file per delivery under
`<storage>/outbox-journal/`, written atomically and fsynced) before the database
is told; the database is then updated and the entry removed. A process killed,
or a database that fails, in between leaves the entry: the next pass of any
sender on this host (and every daemon start) replays it into the database
instead of delivering the mail again. Replaying is idempotent: it only marks a
row that is still `sending` under the same claim. Beside each entry lie the
bytes as sent (`<entry>.eml`, named in the entry by their sha256), so that a row
recorded from the journal shows what went out, as any other sent row does.

A disk that refuses writes (`refusals.py`) stops no delivery and no record: an
entry that cannot be removed stays (replaying it again changes nothing), is
hidden from this process's replays and is removed later.

Who is alive to record their own entries, and whose rows are a dead sender's,
says `presence.py`.

Several hosts each keep their own journal. A row delivered by host A and
journalled there is only re-claimable by the others after the lease; the file
transport stays idempotent across hosts by writing `<outbox id>.eml`.
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..storage import Staged, fsync_dir, remove_orphans, sha256_hex
from .refusals import Refusals, refused


def stem(ident: int, claimer: str, attempt: int) -> str:
    """The name (without suffix) of the journal files of one delivery attempt."""
    return f"{ident}.{claimer}.{attempt}"


@dataclass(frozen=True)
class Entry:
    """One delivery: outbox `id`, the claim it was made under (`claimer`, `attempt`)."""
    id: int
    claimer: str
    attempt: int
    refused: tuple[str, ...] = ()
    note: str | None = None
    staged: str | None = None  # the file transport's file, if not yet renamed into place
    sha256: str | None = None  # of the bytes as sent, kept beside the entry (`sent_bytes`)
    path: Path | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return stem(self.id, self.claimer, self.attempt)

    @property
    def filename(self) -> str:
        return self.name + ".json"


class DeliveryJournal:
    """The entries, and beside each the bytes as sent (`<stem>.eml`), so that a delivery
    recorded from the journal shows what went out, as any other sent row does. The bytes
    are written before the delivery and not fsynced: the journal's promise (never
    sent twice) rests on the entry alone, and a replay that finds them gone or
    damaged (a power cut) says so on the row.

    What a disk that refuses writes does not let us remove now is listed in memory,
    hidden from `entries`, and removed by `tidy` once the disk takes writes again."""

    def __init__(self, folder: Path, fsync: bool = True):
        self.folder = Path(folder)
        self.fsync = fsync
        self.cleanup = Refusals("remove delivery journal files")
        self.copies = Refusals("keep copies of mail as sent in the delivery journal")
        self.writing = Refusals("journal deliveries (relayed mail is recorded at once)")
        self._leftovers: set[Path] = set()  # files to remove that the disk refused
        self._lock = threading.Lock()

    def keep(self, name: str, raw: bytes) -> str:
        """Keep the bytes about to be delivered as `<name>.eml`; their sha256 (for the
        entry), whether or not the disk took them: a copy never holds up a delivery."""
        try:
            Staged(self.folder, raw, fsync=False).commit(self.copy(name))
            self.copies.cleared()
        except OSError as error:
            self.copies.note(error)
        return sha256_hex(raw)

    def copy(self, name: str) -> Path:
        """The file of the bytes as sent of delivery attempt `name` (`stem`)."""
        return self.folder / f"{name}.eml"

    def sent_bytes(self, entry: Entry) -> bytes | None:
        """The bytes as sent that `entry` vouches for, or None (none kept, or damaged)."""
        if entry.sha256 is None:
            return None
        try:
            raw = self.copy(entry.name).read_bytes()
        except OSError:
            return None
        return raw if sha256_hex(raw) == entry.sha256 else None

    def write(self, entry: Entry) -> Path:
        """Durably record `entry`; returns its file (for `remove`)."""
        data = json.dumps({"id": entry.id, "claimer": entry.claimer, "attempt": entry.attempt,
                           "refused": list(entry.refused), "note": entry.note,
                           "staged": entry.staged, "sha256": entry.sha256}).encode()
        target = self.folder / entry.filename
        Staged(self.folder, data, self.fsync).commit(target)
        return target

    def remove(self, path: Path) -> None:
        """Forget an entry the database now has, and its bytes."""
        self.discard(path.with_suffix(".eml"), path)

    def discard(self, *paths: Path) -> bool:
        """Remove journal files that nothing needs any more; False when the disk refused
        (they are removed later)."""
        removed = [self._unlink(path) for path in paths]
        with self._lock:
            self._leftovers.difference_update(p for p, done in zip(paths, removed) if done)
            self._leftovers.update(p for p, done in zip(paths, removed) if not done)
        if all(removed):
            self._worked()
        return all(removed)

    def take_back(self, path: Path) -> bool:
        """Durably remove the entry of a delivery that did not happen after all; False
        when the disk refused (the entry still says delivered)."""
        if not self._unlink(path, durable=self.fsync):
            return False
        self._worked()
        return True

    def tidy(self) -> None:
        """Try again to remove what the disk refused to remove before."""
        with self._lock:
            waiting = list(self._leftovers)
        if waiting:
            self.discard(*waiting)

    def _unlink(self, path: Path, durable: bool = False) -> bool:
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            if durable:
                fsync_dir(self.folder)
        except OSError as error:
            if not refused(error):
                raise
            self.cleanup.note(error)
            return False
        return True

    def _worked(self) -> None:
        with self._lock:
            done = not self._leftovers
        if done:
            self.cleanup.cleared()

    def entries(self) -> list[Entry]:
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return []
        with self._lock:
            leftovers = {path.name for path in self._leftovers}
        found = []
        for name in names:
            if name.endswith(".json") and not name.startswith(".") and name not in leftovers:
                entry = self._read(self.folder / name)
                if entry is not None:
                    found.append(entry)
        return found

    def unjournalled(self, claimer: str) -> list[Path]:
        """Copies of `claimer`'s mail with no entry beside them: attempts that did not
        deliver, or whose sender died before it journalled one."""
        try:
            names = set(os.listdir(self.folder))
        except FileNotFoundError:
            return []
        return [self.folder / name for name in names
                if name.endswith(".eml") and name.split(".")[1:2] == [claimer]
                and name[:-len(".eml")] + ".json" not in names]

    @staticmethod
    def _read(path: Path) -> Entry | None:
        try:
            value = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None  # replayed meanwhile
        except (OSError, ValueError):
            value = {}  # written atomically, so unreadable only by damage: use the name
        try:
            ident, claimer, attempt = path.name[:-len(".json")].split(".", 2)
            return Entry(int(ident), claimer, int(attempt), tuple(value.get("refused", ())),
                         value.get("note"), value.get("staged"), value.get("sha256"), path)
        except ValueError:
            return None

    def remove_orphans(self) -> int:
        return remove_orphans(self.folder, recursive=False)

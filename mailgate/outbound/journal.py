"""What this host delivered and the database does not know yet, and who is alive to say so.

A delivery is journalled (one small file per delivery under
`<storage>/outbox-journal/`, written atomically and fsynced) before the database
is told; the database is then updated and the entry removed. A process killed,
or a database that fails, in between leaves the entry: the next pass of any
sender on this host (and every daemon start) replays it into the database
instead of delivering the mail again. Replaying is idempotent: it only marks a
row that is still `sending` under the same claim.

Each sender holds an flock on its own presence file (`claimers/<token>.lock`)
for as long as it lives; the kernel drops it when the process dies, even by
`kill -9`. A row claimed under a token whose presence file is here but unlocked
belongs to a dead sender of this host: its journal entries are replayed and the
rest of its rows go back to `pending` at once. A token with no presence file
here is another host's, whose journal we cannot see; only its lease expiring
frees those rows (see `claims.py`).

Several hosts each keep their own journal. A row delivered by host A and
journalled there is only re-claimable by the others after the lease; the file
transport stays idempotent across hosts by writing `<outbox id>.eml`.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..storage import Staged, fsync_dir, make_private_dirs, remove_orphans


@dataclass(frozen=True)
class Entry:
    """One delivery: outbox `id`, the claim it was made under (`claimer`, `attempt`)."""
    id: int
    claimer: str
    attempt: int
    refused: tuple[str, ...] = ()
    note: str | None = None
    staged: str | None = None  # the file transport's file, if not yet renamed into place
    path: Path | None = field(default=None, compare=False)

    @property
    def filename(self) -> str:
        return f"{self.id}.{self.claimer}.{self.attempt}.json"


class DeliveryJournal:
    def __init__(self, folder: Path, fsync: bool = True):
        self.folder = Path(folder)
        self.fsync = fsync

    def write(self, entry: Entry) -> Path:
        """Durably record `entry`; returns its file (for `remove`)."""
        data = json.dumps({"id": entry.id, "claimer": entry.claimer, "attempt": entry.attempt,
                           "refused": list(entry.refused), "note": entry.note,
                           "staged": entry.staged}).encode()
        target = self.folder / entry.filename
        Staged(self.folder, data, self.fsync).commit(target)
        return target

    def remove(self, path: Path, durable: bool = False) -> None:
        """Forget an entry the database now has (`durable`: also when the entry must not
        come back, i.e. the delivery it records was taken back)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        if durable and self.fsync:
            fsync_dir(self.folder)

    def entries(self) -> list[Entry]:
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            if name.endswith(".json") and not name.startswith("."):
                entry = self._read(self.folder / name)
                if entry is not None:
                    found.append(entry)
        return found

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
                         value.get("note"), value.get("staged"), path)
        except ValueError:
            return None

    def remove_orphans(self) -> int:
        return remove_orphans(self.folder, recursive=False)


def new_token() -> str:
    """A claimer token: host, pid and a random part (readable in the outbox table)."""
    host = "".join(c for c in socket.gethostname().split(".")[0] if c.isalnum() or c == "-")
    return f"{host[:24] or 'host'}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class Presence:
    """This sender's flock-held presence file, and the verdict on everybody else's."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.token = new_token()
        self._fd: int | None = None

    def enter(self) -> None:
        make_private_dirs(self.folder)
        path = self.folder / f"{self.token}.lock"
        fresh = path.with_name(path.name + ".new")  # others see it only once it is locked
        fd = os.open(fresh, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.replace(fresh, path)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def leave(self) -> None:
        """Let go; the file stays until another sender has settled our rows."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def others(self) -> tuple[set[str], set[str]]:
        """(tokens of live senders of this host, tokens of dead ones) — ours excluded."""
        live, dead = set(), set()
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return live, dead
        for name in names:
            if not name.endswith(".lock") or name[:-5] == self.token:
                continue
            (live if _held(self.folder / name) else dead).add(name[:-5])
        return live, dead

    def forget(self, token: str) -> None:
        """Remove a dead sender's presence file once its rows are settled."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.folder / f"{token}.lock")


def _held(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except PermissionError:  # another user's sender (an admin's CLI): assume it lives
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    finally:
        os.close(fd)

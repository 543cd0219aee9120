"""Who else on this host is sending, alive or dead: presence files held by flock.

Each sender holds an flock on its own presence file (`claimers/<token>.lock`)
for as long as it lives; the kernel drops it when the process dies, even by
`kill -9`. A row claimed under a token whose presence file is here but unlocked
belongs to a dead sender of this host: its journal entries are replayed
(`journal.py`) and the rest of its rows go back to `pending` at once. A token
with no presence file here is another host's, whose journal we cannot see; only
its lease expiring frees those rows (see `claims.py`).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import uuid
from pathlib import Path

from ..storage import make_private_dirs


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

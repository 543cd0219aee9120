"""Content-addressed files on disk: attachments and raw mail.

A blob's path is derived from its sha256 only (`ab/cd/abcd…`), never from a
name the sender chose, so no filename can escape the store. Writes are atomic
(temporary file, fsync, rename) and identical content is stored once.
Files are written before the transaction that references them commits; a
rolled-back transaction leaves at most an unreferenced blob, never a dangling row.

Folders we create are 0700 and files 0600, whatever the umask: they hold
customers' mail. A temporary file (`.tmp-…`) is locked (flock) by its writer
until it is renamed, so one left behind by a killed process is told apart from
one being written, and removed at start (`remove_orphans`).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path

log = logging.getLogger("mailgate.storage")
TEMP_PREFIX = ".tmp-"
ORPHAN_AGE = 1.0  # seconds: a temporary file younger than this may be between create and lock


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_private_dirs(path: Path) -> None:
    """Create `path` and any missing parents 0700 (existing folders keep their mode)."""
    path = Path(path)
    missing = []
    while not path.exists():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            continue  # made meanwhile by another writer
        os.chmod(folder, 0o700)  # the umask may have taken bits away


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Staged:
    """A temporary file in `folder`, written (and fsynced), locked until `commit` renames
    it into place or `abort` removes it. `path` names it meanwhile."""

    def __init__(self, folder: Path, data: bytes, fsync: bool = True):
        self.folder = Path(folder)
        self.fsync = fsync
        make_private_dirs(self.folder)
        fd, name = tempfile.mkstemp(dir=self.folder, prefix=TEMP_PREFIX)
        self.path = Path(name)
        self._fd: int | None = fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if fsync:
                os.fsync(fd)
        except BaseException:
            self.abort()
            raise

    def commit(self, target: Path) -> None:
        """Rename into `target` and sync the folder; on failure nothing is left behind."""
        try:
            self.rename(target)
        except BaseException:
            self.abort()
            raise
        if self.fsync:
            fsync_dir(Path(target).parent)

    def rename(self, target: Path) -> None:
        """Rename into `target`, the lock held until the file is there. On failure the
        file stays where it was (still locked) for the caller to `abort`."""
        os.replace(self.path, target)
        self._close()

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        self._close()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def finish_staged(staged: Path, target: Path, fsync: bool = True) -> bool:
    """Complete a `Staged.commit` that a killed process left undone: rename `staged` into
    `target` if it is still there. Returns False when there was nothing left to do."""
    try:
        os.replace(staged, target)
    except FileNotFoundError:
        return False
    if fsync:
        fsync_dir(Path(target).parent)
    return True


def remove_orphans(folder: Path, recursive: bool = True) -> int:
    """Remove temporary files in `folder` that no live writer holds; returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    walk = os.walk(folder) if recursive else [(str(folder), [], os.listdir(folder))]
    removed = 0
    for directory, _, names in walk:
        for name in names:
            if name.startswith(TEMP_PREFIX) and _remove_if_orphan(Path(directory, name)):
                removed += 1
    return removed


def _remove_if_orphan(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False  # renamed or removed meanwhile
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(fd)
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False  # its writer is alive
        raise
    try:
        if time.time() - os.fstat(fd).st_mtime < ORPHAN_AGE:
            return False
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
    finally:
        os.close(fd)


class BlobStore:
    def __init__(self, root: Path, suffix: str = "", fsync: bool = True):
        self.root = Path(root)
        self.suffix = suffix
        self.fsync = fsync

    def relative_path(self, digest: str) -> str:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return f"{digest[:2]}/{digest[2:4]}/{digest}{self.suffix}"

    def path(self, digest: str) -> Path:
        return self.root / self.relative_path(digest)

    def put(self, data: bytes, digest: str | None = None) -> str:
        """Store `data`; return its sha256. Idempotent."""
        digest = digest or sha256_hex(data)
        target = self.path(digest)
        if target.exists() and target.stat().st_size == len(data):
            return digest
        Staged(target.parent, data, self.fsync).commit(target)
        return digest

    def get(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def remove_orphans(self) -> int:
        return remove_orphans(self.root)


class Storage:
    """The folders under `[storage] dir`."""

    def __init__(self, root: Path, fsync: bool = True):
        self.root = Path(root)
        self.fsync = fsync
        self.attachments = BlobStore(self.root / "attachments", fsync=fsync)
        self.raw = BlobStore(self.root / "raw", suffix=".eml", fsync=fsync)

    def remove_orphans(self) -> int:
        """Temporary files a killed process left in the blob stores (run at start)."""
        removed = self.attachments.remove_orphans() + self.raw.remove_orphans()
        if removed:
            log.info("removed %d orphan temporary files", removed)
        return removed

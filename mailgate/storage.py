"""The blob stores: raw mail and attachments, content-addressed, on disk or in S3.

A blob's name is derived from its sha256 only (`ab/cd/abcd…`), never from a name
the sender chose, so no filename can escape the store; it is written whole or not
at all, identical content once, and checked against its sha256 when read back.
Blobs are written before the transaction that references them commits; a
rolled-back transaction leaves at most an unreferenced blob, never a dangling row.
The backends: files here, an S3 bucket in `storage_s3` (`gateway.open_storage`
picks one). Every failure of a store is an OSError (`BlobUnavailable`: try again).

On disk, writes are atomic (temporary file, fsync, rename); folders we create are
0700 and files 0600, whatever the umask: they hold customers' mail. A temporary
file (`.tmp-…`) is locked (flock) by its writer until it is renamed, so one left
behind by a killed process is told apart from one being written, and removed at
start (`remove_orphans`). The outbox's file transport and journal use them too.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Iterator

log = logging.getLogger("mailgate.storage")
TEMP_PREFIX = ".tmp-"
DIGEST = re.compile("[0-9a-f]{64}")
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


class BlobUnavailable(OSError):
    """The blob store cannot be reached or refused the request now: a temporary
    failure, like a full disk (callers that treat OSError as "retry later" do)."""


class CorruptBlob(ValueError):
    """A blob read back whose bytes do not have the sha256 it is stored under: lost
    for good unless restored (`mailgate storage check` lists them)."""


class Blobs:
    """Content-addressed blobs: named by the sha256 of their bytes (`ab/cd/abcd…`),
    written whole or not at all, checked against that sha256 when read back. A
    backend supplies, by name: `_write(name, data)`, `_read(name) -> bytes`
    (FileNotFoundError if absent), `_exists(name)`, `_names()` -> (name, size)...,
    and `probe()`, which raises OSError unless the store answers now."""

    def __init__(self, suffix: str = ""):
        self.suffix = suffix

    def relative_path(self, digest: str) -> str:
        if not DIGEST.fullmatch(digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return f"{digest[:2]}/{digest[2:4]}/{digest}{self.suffix}"

    def put(self, data: bytes, digest: str | None = None) -> str:
        """Store `data` (its sha256 is `digest`, if given); return the sha256. Idempotent."""
        digest = digest or sha256_hex(data)
        self._write(self.relative_path(digest), data)
        return digest

    def get(self, digest: str) -> bytes:
        """The bytes stored under `digest`: FileNotFoundError if there are none,
        CorruptBlob if they are not what was stored."""
        data = self._read(self.relative_path(digest))
        if sha256_hex(data) != digest:
            raise CorruptBlob(f"{self.relative_path(digest)}: the stored bytes have sha256 "
                              f"{sha256_hex(data)}")
        return data

    def exists(self, digest: str) -> bool:
        return self._exists(self.relative_path(digest))

    def listing(self) -> Iterator[tuple[str, int]]:
        """(sha256, size) of every blob stored; names that are not blobs are skipped."""
        for name, size in self._names():
            digest = name.rpartition("/")[2].removesuffix(self.suffix)
            if DIGEST.fullmatch(digest) and name == self.relative_path(digest):
                yield digest, size

    def remove_orphans(self) -> int:  # only files leave temporary files behind
        return 0


class BlobStore(Blobs):
    """Blobs as files under `root`, written atomically (`Staged`)."""

    def __init__(self, root: Path, suffix: str = "", fsync: bool = True):
        super().__init__(suffix)
        self.root = Path(root)
        self.fsync = fsync

    def path(self, digest: str) -> Path:
        return self.root / self.relative_path(digest)

    def _write(self, name: str, data: bytes) -> None:
        target = self.root / name
        if target.exists() and target.stat().st_size == len(data):
            return
        Staged(target.parent, data, self.fsync).commit(target)

    def _read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def _exists(self, name: str) -> bool:
        return (self.root / name).exists()

    def _names(self) -> Iterator[tuple[str, int]]:
        for directory, folders, names in os.walk(self.root):
            folders.sort()
            for name in sorted(names):
                path = Path(directory, name)
                with contextlib.suppress(FileNotFoundError):
                    yield path.relative_to(self.root).as_posix(), path.stat().st_size

    def remove_orphans(self) -> int:
        return remove_orphans(self.root)

    def probe(self) -> None:
        """Raise OSError unless the folder is writable (or can be made)."""
        folder = self.root
        while not folder.exists() and folder.parent != folder:
            folder = folder.parent
        if not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
            raise BlobUnavailable(errno.EACCES, "not a writable folder", str(folder))


class Storage:
    """The blob stores every entry point uses: `raw` (inbound mail, kept and
    quarantined, `.eml`) and `attachments`, as files under `[storage] dir` or as
    objects in a bucket (`storage_s3`). `where` names them for messages."""

    def __init__(self, raw: Blobs, attachments: Blobs, where: str):
        self.raw, self.attachments, self.where = raw, attachments, where

    @classmethod
    def files(cls, root: Path, fsync: bool = True) -> "Storage":
        root = Path(root)
        return cls(BlobStore(root / "raw", suffix=".eml", fsync=fsync),
                   BlobStore(root / "attachments", fsync=fsync), str(root))

    def stores(self) -> dict[str, Blobs]:
        return {"raw": self.raw, "attachments": self.attachments}

    def probe(self) -> None:
        """Raise OSError unless the store answers now (for /readyz)."""
        self.raw.probe()

    def remove_orphans(self) -> int:
        """Temporary files a killed process left in the blob stores (run at start)."""
        removed = self.attachments.remove_orphans() + self.raw.remove_orphans()
        if removed:
            log.info("removed %d orphan temporary files", removed)
        return removed

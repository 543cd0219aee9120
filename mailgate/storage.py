"""Content-addressed files on disk: attachments and raw mail.

A blob's path is derived from its sha256 only (`ab/cd/abcd…`), never from a
name the sender chose, so no filename can escape the store. Writes are atomic
(temporary file, fsync, rename) and identical content is stored once.
Files are written before the transaction that references them commits; a
rolled-back transaction leaves at most an unreferenced blob, never a dangling row.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if self.fsync:
            _fsync_dir(target.parent)
        return digest

    def get(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Storage:
    """The folders under `[storage] dir`."""

    def __init__(self, root: Path, fsync: bool = True):
        self.root = Path(root)
        self.attachments = BlobStore(self.root / "attachments", fsync=fsync)
        self.raw = BlobStore(self.root / "raw", suffix=".eml", fsync=fsync)

"""What the daemon's outgoing mail reaches, and the disk its storage lives on.

- `CountingRelay`: an aiosmtpd relay on a fixed loopback port that counts every
  Message-ID it accepted; it can be down (port closed) and slow (a delay before
  its answer to DATA).
- `Pickup`: for the file transport, takes each `.eml` out of the outbox folder as
  soon as it is there (as a pickup service would), so a second delivery of the
  same row is a second file, and counts Message-IDs.
- `TinyDisk`: the storage folder on a small tmpfs that can be filled to ENOSPC and
  made read-only (EROFS). Read-only is a read-only *bind mount* over the folder,
  not `remount,ro` of the tmpfs: the kernel refuses to remount a file system
  read-only while a file on it is open for writing (EBUSY), and the daemon always
  holds some (its presence lock files). New opens through the bind mount get
  EROFS, which is what a disk that went read-only gives a process. The bind is
  made read-only *before* it is attached (open_tree + mount_setattr + move_mount,
  Linux 5.12): `mount --bind` then `remount,bind,ro` fails with EBUSY whenever
  the daemon opened a file for writing through the fresh bind in between, which
  under load it does; that two-step way, retried, is only the fallback.
"""
from __future__ import annotations

import asyncio
import collections
import ctypes
import email.parser
import errno
import os
import subprocess
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller

from tests.servers.relay import free_port

_headers = email.parser.BytesHeaderParser()


def message_id(raw: bytes) -> str:
    return str(_headers.parsebytes(raw).get("Message-ID", "")).strip()


class _Handler:
    def __init__(self, relay: "CountingRelay"):
        self.relay = relay

    async def handle_DATA(self, server, session, envelope):
        if self.relay.delay:
            await asyncio.sleep(self.relay.delay)
        self.relay.record(envelope.original_content)
        return "250 2.0.0 queued"


class CountingRelay:
    def __init__(self):
        self.port = free_port()
        self.delay = 0.0
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    def record(self, raw: bytes) -> None:
        with self.lock:
            self.counts[message_id(raw)] += 1

    def up(self) -> None:
        if self._controller is None:
            self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                          ready_timeout=10)
            self._controller.start()

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def received(self) -> collections.Counter[str]:
        with self.lock:
            return collections.Counter(self.counts)


class Pickup(threading.Thread):
    def __init__(self, folder: Path, into: Path):
        super().__init__(daemon=True, name="pickup")
        self.folder, self.into = Path(folder), Path(into)
        self.into.mkdir(parents=True, exist_ok=True)
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self._taken = 0

    def run(self) -> None:
        while not self.stopped.is_set():
            self.sweep()
            time.sleep(0.01)
        self.sweep()

    def sweep(self) -> None:
        try:
            paths = sorted(self.folder.glob("*.eml"))
        except OSError:
            return
        for path in paths:
            self._taken += 1
            target = self.into / f"{path.stem}.{self._taken}.eml"
            try:
                os.rename(path, target)  # EROFS while read-only: taken later
                raw = target.read_bytes()
            except OSError:
                continue
            with self.lock:
                self.counts[message_id(raw)] += 1

    def received(self) -> collections.Counter[str]:
        with self.lock:
            return collections.Counter(self.counts)

    def stop(self) -> None:
        self.stopped.set()
        self.join(10)


class Unavailable(Exception):
    """A fault that cannot be built on this machine; the reason says why.
    `required`: something CI must have (a package scripts/install-test-deps
    installs), as opposed to a privilege the machine may not grant."""

    def __init__(self, reason: str, required: bool = False):
        super().__init__(reason)
        self.required = required


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise Unavailable(f"`mount {' '.join(args)}` failed: {done.stderr.strip()}")


def _umount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)  # busy: detach


# the new mount API (Linux 5.2 / 5.12); the numbers are the same on every architecture
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC = 1, os.O_CLOEXEC
AT_FDCWD, AT_EMPTY_PATH = -100, 0x1000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _attach_readonly_bind(path: Path) -> None:
    """A read-only bind of `path` over itself, read-only before anyone can use it."""
    libc = ctypes.CDLL(None, use_errno=True)

    def call(number: int, *args) -> int:
        result = libc.syscall(number, *args)
        if result < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        return result

    where = os.fsencode(path)
    fd = call(SYS_OPEN_TREE, AT_FDCWD, where, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
    try:
        attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
        call(SYS_MOUNT_SETATTR, fd, b"", AT_EMPTY_PATH, ctypes.byref(attr),
             ctypes.c_size_t(ctypes.sizeof(attr)))
        call(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, where, MOVE_MOUNT_F_EMPTY_PATH)
    finally:
        os.close(fd)


def bind_readonly(path: Path) -> None:
    """`path` read-only (EROFS) for every process, until `unbind(path)`: a read-only
    bind mount over itself. Unavailable without the privilege to mount."""
    try:
        _attach_readonly_bind(path)
    except OSError as error:  # an older kernel, or no privilege: bind, then remount it
        _mount("--bind", str(path), str(path))
        deadline = time.monotonic() + 5
        while True:
            try:
                _mount("-o", "remount,bind,ro", str(path))
                return
            except Unavailable as busy:
                if time.monotonic() > deadline:
                    _umount(path)
                    raise Unavailable(f"{busy} (and the new mount API: {error})") from error
                time.sleep(0.005)


def unbind(path: Path) -> None:
    _umount(path)


class TinyDisk:
    """`root` becomes a tmpfs of `size`; `storage` (inside it) is the daemon's folder."""

    def __init__(self, root: Path, size: str = "16m"):
        self.root = Path(root)
        self.size = size
        self.storage = self.root / "var"
        self.mounted = False
        self.readonly = False
        self.filler = self.root / "filler"

    def mount(self) -> "TinyDisk":
        self.root.mkdir(parents=True, exist_ok=True)
        _mount("-t", "tmpfs", "-o", f"size={self.size},mode=0755", "tmpfs", str(self.root))
        self.mounted = True
        self.storage.mkdir()
        return self

    def fill(self) -> int:
        """Write a file until the disk says ENOSPC, in smaller and smaller writes so
        that not even a block is left; the bytes written. Unbuffered: a buffered
        file would raise ENOSPC again when it is closed."""
        written = 0
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 20, 1 << 16, 4096, 512, 1):
                block = b"\0" * size
                while True:
                    try:
                        written += os.write(fd, block)
                    except OSError as error:
                        if error.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)
        return written

    def unfill(self) -> None:
        self.filler.unlink(missing_ok=True)

    def make_readonly(self) -> None:
        bind_readonly(self.storage)
        self.readonly = True

    def make_writable(self) -> None:
        if self.readonly:
            unbind(self.storage)
            self.readonly = False

    def unmount(self) -> None:
        self.make_writable()
        if self.mounted:
            _umount(self.root)
            self.mounted = False

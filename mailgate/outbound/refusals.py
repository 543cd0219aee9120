"""A disk that refuses writes (read-only, full, over quota, no permission): which errors
those are, and how the sender says so, once per condition.

Such a disk is an expected, temporary condition, not a bug: what it refused is
tried again later, and the log gets one warning when it starts (no traceback)
and one line when the disk takes writes again, not one error per file.
"""
from __future__ import annotations

import errno
import logging
import threading

log = logging.getLogger("mailgate.outbox")
REFUSALS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM})


def refused(error: OSError) -> bool:
    """Is `error` a disk refusing writes?"""
    return error.errno in REFUSALS


class Refusals:
    """Says once that the disk refuses to let us `what` (per errno), and once that
    it takes writes again."""

    def __init__(self, what: str):
        self.what = what
        self.errno: int | None = None
        self._lock = threading.Lock()

    def note(self, error: OSError) -> None:
        with self._lock:
            if error.errno == self.errno:
                return
            self.errno = error.errno
        log.warning("outbox: cannot %s (%s); trying again later", self.what,
                    error.strerror or error)

    def cleared(self) -> None:
        if self.errno is None:
            return
        with self._lock:
            was, self.errno = self.errno, None
        if was is not None:
            log.info("outbox: can %s again", self.what)

"""How the sender's idle workers wait: until something is queued, a timeout, or the stop.

`wake` lets one idle worker look (a worker that finds work wakes the next), so
a burst of queued mail spreads over the pool without every worker polling.
"""
from __future__ import annotations

import threading


class Wakeups:
    def __init__(self):
        self._cond = threading.Condition()
        self._signal = False
        self.stopping = False

    def wake(self) -> None:
        with self._cond:
            self._signal = True
            self._cond.notify()

    def stop(self) -> None:
        """Every waiting worker returns, and none waits again."""
        with self._cond:
            self.stopping = True
            self._cond.notify_all()

    def idle(self, timeout: float) -> None:
        """Wait up to `timeout` seconds, unless woken since the last wait."""
        with self._cond:
            if not self._signal and not self.stopping:
                self._cond.wait(timeout)
            self._signal = False

"""`InOrder`: messages delivered a few at a time, handed back in the order they came.

The poller may file a message away and remember its UID only once it and every
message before it has been handled. `InOrder` runs up to `limit` deliveries at once
on its own threads and hands back the settled ones from the front of the line, so
a slow message holds back the filing of those after it, not their delivery (up to
`window` messages behind it). The first failure in line order ends the line:
nothing from there on is handed back; `failure` is that error once the deliveries
still running have settled (`rest()`).
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")


class InOrder(Generic[K, V, R]):
    """`ready()` waits for room and returns the (key, result) pairs settled at the
    front of the line, in order; `start(key, value)` then runs `work(key, value)`.
    Leaving the `with` block waits for every delivery still running and hands back
    none of them."""

    def __init__(self, work: Callable[[K, V], R], limit: int, window: int = 0,
                 name: str = "deliver"):
        self._work = work
        self._limit = max(1, limit)
        self._window = max(self._limit, window or 4 * self._limit)
        self._executor = ThreadPoolExecutor(self._limit, thread_name_prefix=name)
        self._line: deque[tuple[K, Future]] = deque()

    def __enter__(self) -> "InOrder[K, V, R]":
        return self

    def __exit__(self, *exc) -> None:
        self._executor.shutdown(wait=True)

    @property
    def failed(self) -> bool:
        """A delivery in the line failed: start no more, take the `rest()`."""
        return any(future.done() and future.exception() for _, future in self._line)

    @property
    def failure(self) -> BaseException | None:
        """After `rest()`: the error of the first message not handed back, if any."""
        return self._line[0][1].exception() if self._line else None

    def ready(self) -> list[tuple[K, R]]:
        """Wait until there is room for one more (fewer than `limit` running and
        `window` in the line) or one has failed; what settled at the front."""
        settled = self._front()
        while not self.failed and (self._running() >= self._limit
                                   or len(self._line) >= self._window):
            wait([f for _, f in self._line if not f.done()], return_when=FIRST_COMPLETED)
            settled += self._front()
        return settled

    def start(self, key: K, value: V) -> None:
        """`work(key, value)` on one of the threads (call `ready()` first)."""
        self._line.append((key, self._executor.submit(self._work, key, value)))

    def rest(self) -> list[tuple[K, R]]:
        """Wait for every delivery still running; what settled at the front."""
        wait([future for _, future in self._line])
        return self._front()

    def _running(self) -> int:
        return sum(not future.done() for _, future in self._line)

    def _front(self) -> list[tuple[K, R]]:
        settled = []
        while self._line and self._line[0][1].done() and not self._line[0][1].exception():
            key, future = self._line.popleft()
            settled.append((key, future.result()))
        return settled

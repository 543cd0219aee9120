"""Worker processes with a time and a memory bound.

One hostile message can make Python's email parser spend seconds and gigabytes;
in a worker with RLIMIT_AS it hits a MemoryError (or dies) instead of the
daemon, and a worker that overruns its time is killed and replaced.

`WorkerPool` is the mechanism: long-lived processes, one request at a time each.
A worker may report progress (stages) before its reply, and every stage has its
own time limit, so the caller knows where a lost worker stopped. Two pools use it:
- `ParserPool`: parse only, for the commands that parse (`mailgate ingest`,
  `quarantine retry`) and tests, which run the rest in-process;
- `delivery.DeliveryPool`: the whole pipeline per message, so that the daemon's
  work spreads over all cores instead of one interpreter lock.
"""
from __future__ import annotations

import logging
import multiprocessing
import pickle
import queue
import resource
import signal
import threading
import time
from typing import Any, Callable

from ..errors import MessageRejected, Rejection
from ..logs import setup_command_logging
from ..mail.parse import ParsedMessage, parse_or_reject

log = logging.getLogger(__name__)
PROGRESS, REPLY = b"P", b"R"


class WorkerLost(Exception):
    """The worker overran its time or died (`died`); `stage` is how far it had reported."""

    def __init__(self, stage: int, reason: str, died: bool = False):
        super().__init__(reason)
        self.stage = stage
        self.reason = reason
        self.died = died


def limit_memory(limit: int) -> None:
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def serve(conn, handle: Callable[[bytes, Callable[[], None]], Any]) -> None:
    """A worker's loop: request bytes in, `handle(request, progress)`, pickled reply out."""
    def progress() -> None:
        conn.send_bytes(PROGRESS)

    while True:
        try:
            request = [conn.recv_bytes()]
        except (EOFError, OSError):
            return
        # `handle` gets the only reference, so that it can let go of a large request
        reply = handle(request.pop(), progress)
        try:
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            data = pickle.dumps(MessageRejected("reply too large to hand back", Rejection.LIMIT))
        conn.send_bytes(REPLY + data)


class _Worker:
    def __init__(self, ctx, target, args):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(child, *args), daemon=True)
        self.process.start()
        child.close()

    def stop(self) -> None:
        self.process.kill()
        self.conn.close()
        self.process.join(timeout=5)

    def how_it_ended(self) -> str:
        code = self.process.exitcode
        if code is not None and code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit status {code}"


class WorkerPool:
    """`call(request, timeouts)` in one of `size` processes running `target(conn, *args)`."""

    def __init__(self, size: int, target: Callable, args: tuple = (),
                 preload: tuple[str, ...] = ()):
        self.size = size
        self._target, self._args = target, args
        self._ctx = multiprocessing.get_context("forkserver")
        if preload:  # imported once by the fork server (if not running yet), not per worker
            self._ctx.set_forkserver_preload(list(preload))
        # the most recently used worker first: its caches and database connections are
        # warm, and a stale connection (after a database restart) fails in one worker only
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._closed = False

    def start(self) -> None:
        """Start every worker now rather than on the first calls."""
        with self._lock:
            while len(self._workers) < self.size and not self._closed:
                worker = _Worker(self._ctx, self._target, self._args)
                self._workers.append(worker)
                self._idle.put(worker)

    def _acquire(self) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if len(self._workers) < self.size:
                worker = _Worker(self._ctx, self._target, self._args)
                self._workers.append(worker)
                return worker
        return self._idle.get()

    def _replace(self, worker: _Worker) -> None:
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
        worker.stop()
        if not self._closed:  # keep the pool full for callers waiting in _acquire
            with self._lock:
                fresh = _Worker(self._ctx, self._target, self._args)
                self._workers.append(fresh)
            self._idle.put(fresh)

    def call(self, request: bytes, timeouts: tuple[float, ...]) -> Any:
        """The worker's reply; `timeouts[i]` bounds the wait after stage i (progress reports)."""
        if self._closed:
            raise RuntimeError("worker pool is closed")
        worker = self._acquire()
        stage = 0
        try:
            worker.conn.send_bytes(request)
            while True:
                limit = timeouts[min(stage, len(timeouts) - 1)]
                if not worker.conn.poll(limit):
                    raise WorkerLost(stage, f"took longer than {limit:g} s")
                frame = worker.conn.recv_bytes()
                if frame == PROGRESS:
                    stage += 1
                    continue
                reply = pickle.loads(frame[1:])
                break
        except WorkerLost:
            self._replace(worker)
            raise
        except (EOFError, OSError) as error:
            self._replace(worker)
            raise WorkerLost(stage, f"worker process died ({worker.how_it_ended()})",
                             died=True) from error
        self._idle.put(worker)
        return reply

    def close(self, wait: float = 0.0) -> None:
        """Stop the workers, after up to `wait` seconds for those busy to finish."""
        self._closed = True
        with self._lock:
            workers = list(self._workers)
            self._workers.clear()
        deadline = time.monotonic() + wait
        returned = 0
        while returned < len(workers) and time.monotonic() < deadline:
            try:
                self._idle.get(timeout=max(0.0, deadline - time.monotonic()))
                returned += 1
            except queue.Empty:
                break
        for worker in workers:
            worker.stop()


# -- parsing --------------------------------------------------------------------

def _parser_main(conn, memory_limit: int, max_depth: int, max_parts: int) -> None:
    setup_command_logging()  # a fresh process: the command's set-up is not inherited
    logging.getLogger("mailparser").setLevel(logging.CRITICAL)
    limit_memory(memory_limit)
    serve(conn, lambda raw, progress: parse_or_reject(raw, max_depth, max_parts))


class ParserPool:
    """`parse(raw)` in one of `size` worker processes; size 0 parses in-process (no bound).
    `mailgate ingest` and `quarantine retry` use it; the daemon's delivery workers are
    the bound themselves and parse in-process (`gateway.InProcessParser`)."""

    def __init__(self, size: int = 2, timeout: float = 20.0, memory_limit: int = 0,
                 max_depth: int = 20, max_parts: int = 500):
        self.size = size
        self.timeout = timeout
        self.max_depth = max_depth
        self.max_parts = max_parts
        self._pool = WorkerPool(size, _parser_main, (memory_limit, max_depth, max_parts)) \
            if size else None

    def parse(self, raw: bytes) -> ParsedMessage:
        if self._pool is None:
            reply = parse_or_reject(raw, self.max_depth, self.max_parts)
        else:
            try:
                reply = self._pool.call(raw, (self.timeout,))
            except WorkerLost as lost:
                raise MessageRejected(f"parsing {lost.reason}", Rejection.LIMIT) from lost
        if isinstance(reply, MessageRejected):
            raise reply
        return reply

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

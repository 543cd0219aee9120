"""The full parse runs in worker processes with a time and a memory bound.

One hostile message can make Python's email parser spend seconds and gigabytes;
in a worker with RLIMIT_AS it hits a MemoryError (or dies) instead of the
daemon, and a parse that overruns its time is killed and the worker replaced.
Both end as MessageRejected, which the pipeline turns into a quarantine entry.
"""
from __future__ import annotations

import logging
import multiprocessing
import pickle
import queue
import resource
import threading

from ..errors import MessageRejected
from .parse import ParsedMessage, parse_message

log = logging.getLogger(__name__)


def _worker_main(conn, memory_limit: int, max_depth: int, max_parts: int) -> None:
    logging.getLogger("mailparser").setLevel(logging.CRITICAL)
    if memory_limit:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    while True:
        try:
            raw = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            reply = ("ok", parse_message(raw, max_depth, max_parts))
        except MessageRejected as exc:
            reply = ("rejected", exc.reason, exc.kind)
        except MemoryError:
            reply = ("rejected", "parsing needed more memory than the limit allows", "limit")
        except RecursionError:
            reply = ("rejected", "MIME nesting too deep to parse", "limit")
        except Exception as exc:  # the parser's bug, reported with the message kept
            reply = ("rejected", f"parser failed: {exc.__class__.__name__}: {exc}"[:500],
                     "parse")
        try:
            conn.send_bytes(pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))
        except MemoryError:
            conn.send_bytes(pickle.dumps(
                ("rejected", "parsed message too large to hand back", "limit")))


class _Worker:
    def __init__(self, ctx, args):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, *args), daemon=True)
        self.process.start()
        child.close()

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        self.conn.close()
        self.process.join(timeout=5)


class ParserPool:
    """`parse(raw)` in one of `size` worker processes; size 0 parses in-process (no bound)."""

    def __init__(self, size: int = 2, timeout: float = 20.0, memory_limit: int = 0,
                 max_depth: int = 20, max_parts: int = 500):
        self.size = size
        self.timeout = timeout
        self.max_depth = max_depth
        self.max_parts = max_parts
        self._args = (memory_limit, max_depth, max_parts)
        self._ctx = multiprocessing.get_context("forkserver")
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._closed = False

    def _spawn(self) -> _Worker:
        worker = _Worker(self._ctx, self._args)
        with self._lock:
            self._workers.append(worker)
        return worker

    def _retire(self, worker: _Worker, kill: bool) -> None:
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
        worker.stop(kill=kill)

    def _acquire(self) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if len(self._workers) < self.size:
                worker = _Worker(self._ctx, self._args)
                self._workers.append(worker)
                return worker
        return self._idle.get()

    def parse(self, raw: bytes) -> ParsedMessage:
        if self.size == 0:
            return parse_message(raw, self.max_depth, self.max_parts)
        if self._closed:
            raise RuntimeError("parser pool is closed")
        worker = self._acquire()
        healthy = False
        try:
            worker.conn.send_bytes(raw)
            if not worker.conn.poll(self.timeout):
                raise MessageRejected(f"parsing took longer than {self.timeout:g} s", "limit")
            reply = pickle.loads(worker.conn.recv_bytes())
            healthy = True
        except (EOFError, OSError, BrokenPipeError) as exc:
            raise MessageRejected(
                f"parser process died ({exc.__class__.__name__}; memory limit?)", "limit") \
                from exc
        finally:
            if healthy:
                self._idle.put(worker)
            else:
                self._retire(worker, kill=True)
                if not self._closed:
                    self._idle.put(self._spawn())
        if reply[0] == "ok":
            return reply[1]
        raise MessageRejected(reply[1], reply[2])

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers = list(self._workers)
            self._workers.clear()
        for worker in workers:
            worker.stop(kill=True)

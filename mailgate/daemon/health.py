"""The daemon's HTTP endpoint: GET /healthz (does the database answer?) and /metrics
(Prometheus text), anything else 404. A small hand-written server on the daemon's
event loop: one request per connection, the head bounded, the database calls
bounded in time and run in two threads of its own, never in the listeners' pool.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

from ..config import split_hostport
from ..db import Database, deadline
from ..errors import TemporaryFailure
from ..metrics import Metrics

# Request line and headers of one HTTP request, in all: /healthz and /metrics need
# a few hundred bytes; more is answered 431 (and one longer line is more).
HTTP_HEAD_LIMIT = 16 * 1024
# /healthz: the database must answer a probe on a connection of its own within this
# many seconds, else 503 (database calls behind /metrics are bounded the same way).
HEALTH_TIMEOUT = 2.0
HTTP_REASONS = {200: "OK", 404: "Not Found", 431: "Request Header Fields Too Large",
                503: "Service Unavailable"}
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
T = TypeVar("T")


class HealthEndpoint:
    def __init__(self, db: Database, metrics: Metrics):
        self.db = db
        self.metrics = metrics
        # /healthz and /metrics never wait for a thread of the SMTP listeners
        self.executor = ThreadPoolExecutor(2, thread_name_prefix="http")
        self._probe: asyncio.Future | None = None

    async def listen(self, address: str) -> asyncio.Server:
        host, port = split_hostport(address)
        return await asyncio.start_server(self.handle, host, port, limit=HTTP_HEAD_LIMIT)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One request, one answer, then the connection is closed."""
        try:
            try:
                request = await asyncio.wait_for(_read_head(reader), 10)
            except HeadTooLarge:
                await _respond(writer, 431, b"request header fields too large\n", "text/plain")
                writer.write_eof()
                await _discard(reader)  # so that closing does not reset the answer away
                return
            path = request[1] if len(request) >= 2 else ""
            await _respond(writer, *await self._answer(path))
        except (asyncio.TimeoutError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    async def _answer(self, path: str) -> tuple[int, bytes, str]:
        """(status, body, content type) for a GET of `path`."""
        if path == "/healthz":
            if await self._healthy():
                return 200, b"ok\n", "text/plain"
            return 503, b"database unreachable\n", "text/plain"
        if path == "/metrics":
            loop = asyncio.get_running_loop()
            return 200, await loop.run_in_executor(self.executor, self.metrics.render), \
                METRICS_TYPE
        return 404, b"not found\n", "text/plain"

    async def _healthy(self) -> bool:
        """Does the database answer within HEALTH_TIMEOUT? Concurrent requests share one
        probe, so a stall costs one connection and one thread, not one per request."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().run_in_executor(
                self.executor, self.db.probe, HEALTH_TIMEOUT)
        try:
            return await asyncio.wait_for(asyncio.shield(self._probe), HEALTH_TIMEOUT + 1)
        except asyncio.TimeoutError:
            return False

    def close(self) -> None:
        self.executor.shutdown(wait=True)


def bounded(read: Callable[[], T], failed: T) -> T:
    """`read()`, a database call behind /metrics, bounded by HEALTH_TIMEOUT; `failed`
    when the database does not answer in time."""
    try:
        with deadline(HEALTH_TIMEOUT):
            return read()
    except TemporaryFailure:
        return failed


class HeadTooLarge(Exception):
    """An HTTP request line and headers longer than HTTP_HEAD_LIMIT."""


async def _read_head(reader: asyncio.StreamReader) -> list[str]:
    """The words of the request line; the header lines are read and dropped."""
    try:  # readline: ValueError for a line longer than the reader's limit
        request = line = await reader.readline()
        size = len(request)
        while line not in (b"\r\n", b"\n", b""):
            line = await reader.readline()
            size += len(line)
            if size > HTTP_HEAD_LIMIT:
                raise HeadTooLarge
    except ValueError as error:
        raise HeadTooLarge from error
    return request.decode("latin-1").split()


async def _respond(writer: asyncio.StreamWriter, status: int, body: bytes, kind: str) -> None:
    writer.write(f"HTTP/1.1 {status} {HTTP_REASONS[status]}\r\nContent-Type: {kind}\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    await writer.drain()


async def _discard(reader: asyncio.StreamReader, limit: int = 1 << 20,
                   seconds: float = 2.0) -> None:
    """Read and drop what the client is still sending (bounded): closing a socket
    with unread input resets the connection, and the client may lose our answer."""
    got = 0
    try:
        async with asyncio.timeout(seconds):
            while got < limit and (chunk := await reader.read(65536)):
                got += len(chunk)
    except (TimeoutError, ConnectionError):
        pass

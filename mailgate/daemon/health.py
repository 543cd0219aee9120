"""The daemon's HTTP endpoint: GET /healthz (alive: does the database answer?),
/readyz (ready for work: the database and the blob storage answer and the listeners
are up; 503 while starting or draining, so a load balancer or probe sends nothing)
and /metrics (Prometheus text, with the service figures per department), anything
else 404. A small hand-written server on the daemon's event loop: one request per
connection, the head bounded, the database and storage calls bounded in time and run
in threads of its own, never in the listeners' pool.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Protocol, TypeVar

from ..config import split_hostport
from ..db import Database
from ..pgbounds import deadline
from ..errors import TemporaryFailure
from ..metrics import Metrics
from ..models import utcnow
from ..reports import Recent, recent
from ..storage import Storage

# Request line and headers of one HTTP request, in all: /healthz and /metrics need
# a few hundred bytes; more is answered 431 (and one longer line is more).
HTTP_HEAD_LIMIT = 16 * 1024
# /healthz: the database must answer a probe on a connection of its own within this
# many seconds, else 503 (database calls behind /metrics are bounded the same way;
# /readyz bounds the storage's probe, a HEAD of the bucket or a look at the folder, so).
HEALTH_TIMEOUT = 2.0
HTTP_REASONS = {200: "OK", 404: "Not Found", 431: "Request Header Fields Too Large",
                503: "Service Unavailable"}
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
T = TypeVar("T")


class Serving(Protocol):
    """What /readyz asks of the listeners: their asyncio servers (none until opened).
    The daemon's listeners also hold the running settings (a reload replaces them),
    whose department policies /metrics reads for the service figures."""
    servers: list


class HealthEndpoint:
    def __init__(self, db: Database, metrics: Metrics, storage: Storage | None = None,
                 listeners: Serving | None = None):
        self.db = db
        self.metrics = metrics
        self.storage = storage
        self.listeners = listeners
        # never a thread of the SMTP listeners; one for each probe (a stalled one holds
        # it, shared by every request meanwhile) and one for /metrics
        self.executor = ThreadPoolExecutor(3, thread_name_prefix="http")
        self._probes: dict[str, asyncio.Future] = {}
        if getattr(listeners, "settings", None) is not None:
            metrics.watch_service(lambda: bounded(self._recent, None))

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
        if path == "/readyz":
            missing = await self._not_ready()
            if not missing:
                return 200, b"ready\n", "text/plain"
            return 503, f"not ready: {', '.join(missing)}\n".encode(), "text/plain"
        if path == "/metrics":
            loop = asyncio.get_running_loop()
            return 200, await loop.run_in_executor(self.executor, self.metrics.render), \
                METRICS_TYPE
        return 404, b"not found\n", "text/plain"

    async def _healthy(self) -> bool:
        """Does the database answer within HEALTH_TIMEOUT?"""
        return await self._probe("database", self.db.probe, HEALTH_TIMEOUT)

    async def _not_ready(self) -> list[str]:
        """What keeps this daemon from taking work now: "listeners" (not open yet, or
        closed by a drain), "database", "storage"; empty when it is ready."""
        servers = self.listeners.servers if self.listeners is not None else []
        missing = [] if servers and all(s.is_serving() for s in servers) else ["listeners"]
        checks = [("database", self._healthy())]
        if self.storage is not None:
            checks.append(("storage", self._probe("storage", self._storage_answers)))
        answers = await asyncio.gather(*(check for _, check in checks))
        return missing + [name for (name, _), ok in zip(checks, answers) if not ok]

    def _storage_answers(self) -> bool:
        try:
            self.storage.probe()
            return True
        except OSError:
            return False

    async def _probe(self, name: str, probe: Callable[..., bool], *args) -> bool:
        """`probe(*args)` in our threads, answered within HEALTH_TIMEOUT (else False).
        Concurrent requests share one probe of each kind, so a stall costs one
        connection and one thread, not one per request."""
        running = self._probes.get(name)
        if running is None or running.done():
            running = self._probes[name] = asyncio.get_running_loop().run_in_executor(
                self.executor, probe, *args)
        try:
            return await asyncio.wait_for(asyncio.shield(running), HEALTH_TIMEOUT + 1)
        except asyncio.TimeoutError:
            return False

    def _recent(self) -> dict[str, Recent]:
        """The service figures per department now (`reports.recent`)."""
        with self.db.unit_of_work() as session:
            return recent(session, self.listeners.settings.service.policy, utcnow())

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

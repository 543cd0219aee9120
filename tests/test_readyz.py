"""/readyz next to /healthz: alive (the database answers) vs ready for work (the
database and the blob storage answer, the listeners are up), 200 or 503, for load
balancers and systemd/Kubernetes probes."""
from __future__ import annotations

import asyncio

from sqlalchemy.engine import make_url

from mailgate.config import Settings
from mailgate.daemon.health import HealthEndpoint
from mailgate.db import Database
from mailgate.metrics import Metrics
from mailgate.storage import Storage
from tests.conftest import _truncate_all
from tests.servers.daemon import DaemonThread
from tests.servers.s3 import own_moto_server  # noqa: F401
from tests.servers.tcpproxy import TcpProxy
from tests.test_lifecycle import get


def daemon_settings(tmp_path, database_url: str, **storage) -> Settings:
    return Settings().replace(
        database={"url": database_url},
        storage={"dir": tmp_path / "var", "fsync": False, **storage},
        smtp={"listen": ("127.0.0.1:0",)}, http={"listen": "127.0.0.1:0"},
        daemon={"delivery_workers": 1})


def test_ready_needs_the_object_store_alive_does_not(tmp_path, own_moto_server):  # noqa: F811
    settings = daemon_settings(
        tmp_path, f"sqlite:///{tmp_path / 'mailgate.db'}", backend="s3",
        bucket=own_moto_server.create_bucket(), endpoint_url=own_moto_server.url,
        access_key_id="test", secret_access_key="test", attempts=1, timeout=1.0)
    with DaemonThread(settings) as daemon:
        base = f"http://127.0.0.1:{daemon.port('http')}"
        assert get(f"{base}/readyz") == (200, b"ready\n")
        own_moto_server.stop()
        assert get(f"{base}/readyz") == (503, b"not ready: storage\n")
        assert get(f"{base}/healthz") == (200, b"ok\n")  # alive: no reason to restart it
        # moto keeps nothing across a restart: the bucket is made again (AWS keeps it)
        own_moto_server.start()
        assert get(f"{base}/readyz") == (503, b"not ready: storage\n")  # 404 NoSuchBucket
        own_moto_server.create_bucket(settings.storage.bucket)
        assert get(f"{base}/readyz") == (200, b"ready\n")


def test_ready_needs_the_database(tmp_path, pg_url):
    database = Database(pg_url)
    _truncate_all(database)
    database.dispose()
    real = make_url(pg_url)
    proxy = TcpProxy(real.host, real.port)
    url = real.set(port=proxy.port).render_as_string(hide_password=False)
    try:
        with DaemonThread(daemon_settings(tmp_path, url)) as daemon:
            base = f"http://127.0.0.1:{daemon.port('http')}"
            assert get(f"{base}/readyz") == (200, b"ready\n")
            proxy.cut()
            assert get(f"{base}/readyz") == (503, b"not ready: database\n")
            assert get(f"{base}/healthz") == (503, b"database unreachable\n")
            proxy.restore()
            assert get(f"{base}/readyz") == (200, b"ready\n")
    finally:
        proxy.close()


class Sockets:
    """The listeners as /readyz sees them: the asyncio servers opened so far."""

    def __init__(self):
        self.servers: list = []


def test_ready_needs_the_listeners_open_and_serving(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'mailgate.db'}")
    listeners = Sockets()
    endpoint = HealthEndpoint(database, Metrics(), Storage.files(tmp_path / "var"), listeners)

    async def ask(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await reader.read()
        writer.close()
        return answer.split(b"\r\n", 1)[0] + b" " + answer.rsplit(b"\r\n\r\n", 1)[1]

    async def scenario() -> list[bytes]:
        http = await endpoint.listen("127.0.0.1:0")
        port = http.sockets[0].getsockname()[1]
        answers = [await ask(port)]  # starting: nothing listens yet
        smtp = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        listeners.servers += [smtp, http]
        answers.append(await ask(port))
        smtp.close()  # a drain closes the listeners first
        answers.append(await ask(port))
        http.close()
        return answers

    try:
        assert asyncio.run(scenario()) == [
            b"HTTP/1.1 503 Service Unavailable not ready: listeners\n",
            b"HTTP/1.1 200 OK ready\n",
            b"HTTP/1.1 503 Service Unavailable not ready: listeners\n"]
    finally:
        endpoint.close()
        database.dispose()

"""A private S3 endpoint for tests: moto's standalone server on a loopback port, and
a proxy in front of it that can fail the way an object store fails.

`MotoServer` runs `moto_server` as a process of its own (like tests/servers/dovecot.py
runs Dovecot) on a free port it keeps across stop/start, so a test can take the
endpoint down and bring it back. moto keeps everything in memory: a restarted server
is empty (its buckets are made again by `create_bucket`).

What moto does not do as AWS does, and tests that rely on it say so: it accepts any
access key and signature (AWS answers 403 InvalidAccessKeyId / SignatureDoesNotMatch);
it never answers 500 or 503 SlowDown by itself, nor is it slow (hence `FaultProxy`);
reads after writes are consistent, as on AWS since 2020 (some S3-compatible stores
on several nodes, e.g. Garage, differ for listings).

moto comes with the test extras (`scripts/setup-venv test`). Without it a test that
needs it fails when $CI is set, and is skipped, saying why, elsewhere.
"""
from __future__ import annotations

import contextlib
import http.client
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

INSTALL_HINT = "moto[server] comes with the test extras: run scripts/setup-venv test"
ERROR_500 = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
             b'<Message>We encountered an internal error. Please try again.</Message></Error>')


def moto_binary() -> str | None:
    beside = Path(sys.executable).with_name("moto_server")
    return str(beside) if beside.exists() else shutil.which("moto_server")


def require_moto() -> str:
    """The moto_server binary; without it: fail in CI, skip (saying why) elsewhere."""
    binary = moto_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail(f"moto_server is not installed: {INSTALL_HINT}", pytrace=False)
        pytest.skip(f"moto_server is not installed: {INSTALL_HINT}")
    return binary


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def answers(host: str, port: int) -> bool:
    try:
        connection = http.client.HTTPConnection(host, port, timeout=1)
        connection.request("GET", "/moto-api/data.json")
        return connection.getresponse().status == 200
    except OSError:
        return False


class MotoServer:
    host = "127.0.0.1"

    def __init__(self, log_path: str | os.PathLike, binary: str | None = None):
        self.binary = binary or require_moto()
        self.log_path = Path(log_path)
        self.port = free_port(self.host)
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> "MotoServer":
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [self.binary, "-H", self.host, "-p", str(self.port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not answers(self.host, self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto_server did not start on port {self.port}:\n"
                                   f"{self.log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Take the endpoint down (everything it held is gone)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def client(self, endpoint: str | None = None):
        # boto3 is imported by the tests that need it, as by mailgate: only for S3
        import boto3

        return boto3.session.Session().client(
            "s3", endpoint_url=endpoint or self.url, region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test")

    def create_bucket(self, name: str | None = None) -> str:
        """A new bucket (valid S3 names: 3-63 characters, lowercase)."""
        name = name or f"mailgate-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


class Quiet(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client that gave up, or moto stopped under a slow request: expected


class FaultProxy:
    """An HTTP proxy in front of `target` (host, port). `mode` says what it does with
    each request: "pass" forwards it, "error" answers 500 InternalError, "slow" waits
    `delay` seconds and then forwards it (the object store finishes a PUT that its
    client gave up on: it exists, unreferenced)."""

    def __init__(self, target: tuple[str, int]):
        self.target, self.mode, self.delay = target, "pass", 0.0
        self.requests = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_request(self) -> None:
                proxy.requests += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.mode == "error":
                    return self.answer(500, {"Content-Type": "application/xml"}, ERROR_500)
                if proxy.mode == "slow":
                    time.sleep(proxy.delay)
                self.answer(*proxy.forward(self.command, self.path, self.headers, body))

            def answer(self, status: int, headers: dict, body: bytes) -> None:
                with contextlib.suppress(OSError):  # the client may have given up
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_request

            def log_message(self, *args) -> None:
                pass

        self.server = Quiet(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.server.serve_forever(poll_interval=0.05)

    def forward(self, method: str, path: str, headers, body: bytes) -> tuple[int, dict, bytes]:
        upstream = http.client.HTTPConnection(*self.target, timeout=30)
        try:
            upstream.request(method, path, body=body or None, headers={
                k: v for k, v in headers.items() if k.lower() != "connection"})
            response = upstream.getresponse()
            data = response.read()
            skip = ("connection", "transfer-encoding", "content-length")
            kept = {k: v for k, v in response.getheaders() if k.lower() not in skip}
            kept["Content-Length"] = response.getheader("Content-Length", str(len(data)))
            return response.status, kept, data
        finally:
            upstream.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def running_moto(folder: str | os.PathLike) -> Iterator[MotoServer]:
    server = MotoServer(Path(folder) / "moto.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory) -> Iterator[MotoServer]:
    """One moto server for the session (tests take a bucket of their own)."""
    with running_moto(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def own_moto_server(tmp_path) -> Iterator[MotoServer]:
    """A moto server of this test's own, to stop and start."""
    with running_moto(tmp_path) as server:
        yield server


@pytest.fixture
def fault_proxy(moto_server) -> Iterator[FaultProxy]:
    proxy = FaultProxy((moto_server.host, moto_server.port))
    yield proxy
    proxy.close()

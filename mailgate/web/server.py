"""uvicorn serving the status pages inside `mailgate run`, in a thread of its own
with its own event loop: a slow page never holds the SMTP listeners' loop, and
uvicorn installs no signal handlers outside the main thread, so the daemon's
SIGTERM/SIGHUP handling stays the daemon's. The socket is bound before the
thread starts, so a port in use stops the start with a clear error."""
from __future__ import annotations

import logging
import socket
import threading
from typing import Callable

import uvicorn

from ..config import split_hostport
from ..gateway import Gateway
from .app import create_app

log = logging.getLogger("mailgate.web")


class WebServer:
    def __init__(self, gw: Gateway, listen: str, wake: Callable[[], None]):
        self.gw = gw
        self.listen = listen
        self.config = uvicorn.Config(create_app(gw, wake), log_config=None, access_log=False,
                                     lifespan="off", server_header=False,
                                     proxy_headers=False, timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(self.config)
        self.socket: socket.socket | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> tuple[str, int]:
        """Bind and serve; returns the bound (host, port)."""
        host, port = split_hostport(self.listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.socket.listen(128)
        self.socket.setblocking(False)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       name="web", daemon=True)
        self.thread.start()
        return self.socket.getsockname()[:2]

    @property
    def started(self) -> bool:
        return self.server.started

    def stop(self, timeout: float) -> None:
        """Stop accepting, finish the requests in hand (up to `timeout` seconds), close."""
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
            if self.thread.is_alive():
                log.warning("status pages did not stop within %.0f s", timeout)
        if self.socket is not None:
            self.socket.close()

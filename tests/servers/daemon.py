"""Run the real Daemon in a background thread (its own event loop) for tests,
or as a real `mailgate run` subprocess when signals and processes matter."""
from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time

from mailgate.daemon import Daemon


class DaemonThread:
    def __init__(self, settings, gateway=None):
        self.daemon = Daemon(settings, gateway=gateway)
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="test-daemon")

    def _run(self) -> None:
        async def main():
            try:
                await self.daemon.start()
            except BaseException as error:  # reported to the starting thread
                self._error = error
                self._started.set()
                raise
            self._started.set()
            await self.daemon.wait()
            await self.daemon.shutdown()
        try:
            asyncio.run(main())
        except BaseException:
            pass

    def start(self) -> "DaemonThread":
        self._thread.start()
        if not self._started.wait(30):
            raise RuntimeError("daemon did not start within 30 s")
        if self._error:
            raise self._error
        return self

    def stop(self) -> None:
        loop = self.daemon._loop
        if loop is not None and self._thread.is_alive():
            loop.call_soon_threadsafe(self.daemon.request_stop)
        self._thread.join(60)

    def port(self, kind: str = "smtp") -> int:
        return self.daemon.listeners.addresses[kind][0][1]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class DaemonProcess:
    """`python -m mailgate --config FILE run` with its log captured."""

    def __init__(self, config_path, env=None):
        self.config_path = str(config_path)
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.log_path = f"{self.config_path}.{id(self)}.log"
        self.ports: dict[str, int] = {}

    def start(self, timeout: float = 30) -> "DaemonProcess":
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "mailgate", "--config",
                                      self.config_path, "run"], stdout=self._log,
                                     stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            match = re.search(r"started smtp=\S+:(\d+)(?:.*http=\S+:(\d+))?", text)
            if match:
                self.ports = {"smtp": int(match.group(1)),
                              "http": int(match.group(2)) if match.group(2) else 0}
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.05)
        raise RuntimeError(f"daemon did not start:\n{self.log()}")

    def log(self) -> str:
        with open(self.log_path, "rb") as fh:
            return fh.read().decode("utf-8", "replace")

    def signal(self, signum) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        self._log.close()
        return code

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self, "_log") and not self._log.closed:
            self._log.close()

"""The Dovecot test server works: real logins, UIDs, IDLE, MOVE, restarts and crashes."""
from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.servers.dovecot import (  # noqa: F401 (dovecot_server is a fixture)
    DovecotError, DovecotServer, dovecot_server, live_processes)

pytestmark = pytest.mark.slow

USER, PASSWORD = "support@example.com", "s3cret"


def message(subject: str) -> bytes:
    return (f"From: alice@example.org\r\nTo: {USER}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}@example.org>\r\n\r\nBody of {subject}.\r\n").encode()


def port_is_closed(server: DovecotServer) -> bool:
    try:
        socket.create_connection((server.host, server.port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
def server(dovecot_server):  # noqa: F811
    dovecot_server.add_user(USER, PASSWORD)
    return dovecot_server


def test_login_capabilities_and_folders(server):
    with server.client(USER, PASSWORD) as imap:
        capabilities = set(imap.capabilities())
        folders = {name for _flags, _sep, name in imap.list_folders()}
    assert {b"IDLE", b"MOVE", b"UIDPLUS"} <= capabilities
    assert {"INBOX", "Archive", "Processed", "Quarantine"} <= folders
    assert server.host == "127.0.0.1" and server.port > 1024


def test_wrong_password_is_refused(server):
    with pytest.raises(IMAPClient.Error):
        with server.client(USER, "wrong"):
            pass


def test_append_gives_uids_and_keeps_bytes_and_flags(server):
    first = server.append(USER, PASSWORD, message("first"))
    second = server.append(USER, PASSWORD, message("second"), flags=[r"\Seen"])
    assert (first, second) == (1, 2)
    assert server.folder_uids(USER, PASSWORD) == [1, 2]
    assert server.fetch_flags(USER, PASSWORD) == {1: frozenset(), 2: frozenset({r"\Seen"})}
    with server.client(USER, PASSWORD) as imap:
        imap.select_folder("INBOX", readonly=True)
        assert imap.fetch([second], ["BODY.PEEK[]"])[second][b"BODY[]"] == message("second")


def test_append_creates_a_missing_folder(server):
    assert server.append(USER, PASSWORD, message("filed"), folder="Support/Billing") == 1
    assert server.folder_uids(USER, PASSWORD, "Support/Billing") == [1]


def test_uidvalidity_and_port_survive_a_restart(server):
    server.append(USER, PASSWORD, message("before restart"))
    validity, port = server.uidvalidity(USER, PASSWORD), server.port
    server.restart()
    assert server.port == port
    assert server.uidvalidity(USER, PASSWORD) == validity
    assert server.folder_uids(USER, PASSWORD) == [1]
    assert server.append(USER, PASSWORD, message("after restart")) == 2


def test_stop_closes_the_port(server):
    pgid = server.pid
    server.stop()
    assert port_is_closed(server)
    assert live_processes(pgid) == []


def test_idle_wakes_up_when_another_connection_appends(server):
    with server.client(USER, PASSWORD) as watcher:
        watcher.select_folder("INBOX")
        watcher.idle()
        appender = threading.Timer(0.3, server.append, (USER, PASSWORD, message("pushed")))
        appender.start()
        started = time.monotonic()
        try:
            responses = watcher.idle_check(timeout=10)
        finally:
            appender.join()
            watcher.idle_done()
        waited = time.monotonic() - started
    assert (1, b"EXISTS") in responses
    assert waited < 5  # woken by the append, not by the idle_check timeout


def test_move_to_another_folder(server):
    uid = server.append(USER, PASSWORD, message("to archive"))
    with server.client(USER, PASSWORD) as imap:
        imap.select_folder("INBOX")
        imap.move([uid], "Archive")
    assert server.folder_uids(USER, PASSWORD, "INBOX") == []
    assert server.folder_uids(USER, PASSWORD, "Archive") == [1]


def test_kill_then_start_keeps_mail_and_lets_clients_reconnect(server):
    server.append(USER, PASSWORD, message("one"))
    server.append(USER, PASSWORD, message("two"), flags=[r"\Flagged"])
    validity, port, pgid = server.uidvalidity(USER, PASSWORD), server.port, server.pid
    with server.client(USER, PASSWORD) as imap:
        imap.select_folder("INBOX")
        server.kill()
        with pytest.raises((OSError, IMAPClient.AbortError)):
            imap.noop()
    assert port_is_closed(server)
    assert live_processes(pgid) == []
    maildir = server.maildir(USER)
    assert len([*(maildir / "new").iterdir(), *(maildir / "cur").iterdir()]) == 2  # on disk

    server.start()
    assert server.port == port
    assert server.uidvalidity(USER, PASSWORD) == validity
    assert server.fetch_flags(USER, PASSWORD) == {1: frozenset(), 2: frozenset({r"\Flagged"})}
    assert server.append(USER, PASSWORD, message("three")) == 3


@pytest.fixture
def reachable_dir():
    """A folder the dovecot user can reach (pytest's tmp_path is closed to others)."""
    path = Path(tempfile.mkdtemp(prefix="mailgate-dovecot-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_broken_config_fails_with_dovecots_own_words(reachable_dir):
    server = DovecotServer(reachable_dir, extra_config="no_such_setting = 1\n")
    with pytest.raises(DovecotError, match="no_such_setting"):
        server.start()
    assert not server.running


def test_an_unreachable_folder_is_explained(tmp_path):
    with pytest.raises(DovecotError, match="not searchable by the dovecot user"):
        DovecotServer(tmp_path).start()


def test_a_missing_binary_points_at_the_install_script(tmp_path):
    server = DovecotServer(tmp_path, binary="/nonexistent/dovecot")
    with pytest.raises(DovecotError, match="scripts/install-test-deps"):
        server.start()

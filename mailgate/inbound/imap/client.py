"""The IMAP side of polling, addressed by UID: log in (TLS that was asked for is never
skipped), fetch the new messages of a folder without marking them read, and file
a message away once the pipeline has kept it."""
from __future__ import annotations

import socket
import ssl
import threading
from typing import Callable, Iterable, Iterator

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from ...config import ImapAccount
from ..oauth import TokenError, TokenSource

QUARANTINE_FLAG = b"$MailgateQuarantined"
CONNECTION_ERRORS = (IMAPClientError, OSError, socket.timeout, ssl.SSLError, TokenError,
                     EOFError)
MAX_BACKOFF = 300.0  # seconds; failed passes and lost IDLE connections wait 2, 4, 8 … this
BATCH_BYTES = 16 * 2**20  # one fetch holds at most [[imap]] batch_size messages and this much


def connect(account: ImapAccount, tokens: TokenSource | None = None) -> IMAPClient:
    """A logged-in client. TLS that was asked for is never silently skipped."""
    context = ssl.create_default_context(cafile=account.ca_file or None)
    client = IMAPClient(account.host, account.effective_port, ssl=account.security == "tls",
                        ssl_context=context if account.security == "tls" else None,
                        timeout=account.timeout)
    try:
        if account.security == "starttls":
            client.starttls(context)  # raises when the server cannot; we do not go on
        if account.auth == "xoauth2":
            client.oauth2_login(account.user, tokens.token())
        else:
            client.login(account.user, account.password)
    except BaseException:
        logout(client)
        raise
    return client


def logout(client: IMAPClient) -> None:
    """Log out; a connection already broken is just dropped."""
    try:
        client.logout()
    except Exception:
        try:
            client.shutdown()
        except Exception:
            pass


def new_messages(client: IMAPClient, account: ImapAccount, last_uid: Callable[[int], int],
                 stopped: threading.Event) -> Iterator[tuple[int, bytes]]:
    """(uid, raw bytes) of each message after `last_uid(uidvalidity)` in the account's
    folder that is not filed away yet (unseen in "seen" mode; never one flagged
    quarantined), in UID order, fetched with BODY.PEEK[] (left unread) in batches of
    at most [[imap]] batch_size messages and BATCH_BYTES (`batches`), one batch in
    memory at a time; messages expunged meanwhile are skipped. Ends early once
    `stopped` is set."""
    info = client.select_folder(account.folder)
    after = last_uid(int(info[b"UIDVALIDITY"]))
    criteria = ["UID", f"{after + 1}:*", "NOT", "DELETED", "UNKEYWORD", QUARANTINE_FLAG]
    if account.after == "seen":
        criteria.append("UNSEEN")
    uids = sorted(uid for uid in client.search(criteria) if uid > after)
    for batch in batches(message_sizes(client, uids), max(1, account.batch_size)):
        fetched = client.fetch(batch, ["BODY.PEEK[]"])
        for uid in batch:
            if stopped.is_set():
                return
            if uid in fetched:
                yield uid, fetched[uid][b"BODY[]"]
        del fetched  # one batch in memory at a time


def message_sizes(client: IMAPClient, uids: list[int],
                  chunk: int = 1000) -> Iterator[tuple[int, int]]:
    """(uid, RFC822.SIZE) of each message still there, asked for `chunk` UIDs at a time
    (a command line stays well within a server's limit, 64 KiB for Dovecot)."""
    for start in range(0, len(uids), chunk):
        part = uids[start:start + chunk]
        fetched = client.fetch(part, ["RFC822.SIZE"])
        yield from ((uid, fetched[uid][b"RFC822.SIZE"]) for uid in part if uid in fetched)


def batches(sizes: Iterable[tuple[int, int]], count: int,
            limit: int = BATCH_BYTES) -> Iterator[list[int]]:
    """The UIDs of (uid, size) pairs in order, in batches of at most `count` messages
    and `limit` bytes (a larger message is a batch of its own)."""
    batch: list[int] = []
    total = 0
    for uid, size in sizes:
        if batch and (len(batch) >= count or total + size > limit):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


def file_away(client: IMAPClient, account: ImapAccount, uid: int, quarantined: bool) -> None:
    """After the pipeline kept the message: quarantined ones to the quarantine folder
    (or flagged), the rest flagged \\Seen or moved to the processed folder."""
    if quarantined:
        if account.quarantine_folder:
            move(client, uid, account.quarantine_folder)
        else:
            client.add_flags([uid], [QUARANTINE_FLAG, b"\\Seen"])
    elif account.after == "move":
        move(client, uid, account.processed_folder)
    else:
        client.add_flags([uid], [b"\\Seen"])


def move(client: IMAPClient, uid: int, folder: str) -> None:
    """MOVE where the server has it, else COPY, delete and expunge (just that UID
    with UIDPLUS)."""
    if not client.folder_exists(folder):
        client.create_folder(folder)
    if client.has_capability("MOVE"):
        client.move([uid], folder)
    else:
        client.copy([uid], folder)
        client.delete_messages([uid])
        if client.has_capability("UIDPLUS"):
            client.uid_expunge([uid])
        else:
            client.expunge()

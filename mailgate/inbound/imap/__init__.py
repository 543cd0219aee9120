"""IMAP: fetch new messages by UID, run each through the pipeline, flag after commit.

Each configured account has one `MailboxPoller` (`poller.py`). The daemon's
scheduler calls `poll()` on an interval and, for servers with IDLE, an IDLE
watcher (`idle.py`) calls it as soon as the server announces new mail. A pass
holds a cluster lock for its account, so with several daemons on one PostgreSQL
only one polls it at a time. It fetches and files messages away on the server
(`client.py`), hands them to the intake, as many at once as it has delivery
workers (`inorder.py`), and files away and remembers them in UID order, each only
once it and all before it are handled (the last UID, in the database: `state.py`).
"""
from .client import connect
from .poller import MailboxPoller

__all__ = ["MailboxPoller", "connect"]

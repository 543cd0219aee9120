"""Where polling stands: the last UID handled per account, in the database
(`ImapState`), so that every daemon of a cluster, and one restarted, goes on from
there. A new UIDVALIDITY or folder starts again from UID 0."""
from __future__ import annotations

import logging

from ...config import ImapAccount
from ...db import Database
from ...models import ImapState, utcnow

log = logging.getLogger("mailgate.imap")


class FolderState:
    def __init__(self, db: Database, account: ImapAccount):
        self.db = db
        self.account = account

    def last_uid(self, uidvalidity: int) -> int:
        """The last UID handled under `uidvalidity` (0: none yet, or a rescan)."""
        account = self.account
        with self.db.unit_of_work() as session:
            state = session.get(ImapState, account.name)
            if state is None:
                session.add(ImapState(account=account.name, folder=account.folder,
                                      uidvalidity=uidvalidity, last_uid=0))
                return 0
            if state.uidvalidity != uidvalidity or state.folder != account.folder:
                log.warning("UIDVALIDITY changed: rescanning the folder", extra={"fields": {
                    "account": account.name, "old": state.uidvalidity, "new": uidvalidity}})
                state.uidvalidity, state.folder, state.last_uid = uidvalidity, account.folder, 0
            return state.last_uid

    def remember(self, uid: int) -> None:
        """`uid` was handled (committed or quarantined, and filed away)."""
        with self.db.unit_of_work() as session:
            state = session.get(ImapState, self.account.name)
            state.last_uid = max(state.last_uid, uid)
            state.updated_at = utcnow()

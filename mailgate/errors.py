"""The failure classes every component raises; callers decide the answer by class.

- TemporaryFailure: ours and passing (database unreachable, disk full). Nothing was
  stored; the sender must retry (SMTP 451, exit 75, IMAP message left unflagged).
- MessageRejected: the message breaks a limit or cannot be parsed. It is kept in
  quarantine with the reason; an admin can retry it after raising the limit.
- Anything else raised inside the pipeline is our bug: logged loudly, message kept
  in quarantine (kind `Rejection.BUG`).
"""
from __future__ import annotations

from enum import StrEnum


class MailgateError(Exception):
    pass


class TemporaryFailure(MailgateError):
    """Retry later; nothing was stored."""


class Rejection(StrEnum):
    """Why a message is kept in quarantine (the stored `error_class`)."""
    LIMIT = "limit"  # it breaks a configured limit
    PARSE = "parse"  # the parser failed on it
    ROUTE = "route"  # no department takes it
    UNUSABLE = "unusable"  # nothing to make a ticket of (no From, empty)
    UNVERIFIED = "unverified"  # an agent's mail without a signed reference
    SPAM = "spam"  # our own spam filter flagged it; an admin's retry releases it
    BUG = "bug"  # our own failure, not the message's


class MessageRejected(MailgateError):
    """The message itself is the problem (a limit, unparseable); `kind` names which."""

    def __init__(self, reason: str, kind: Rejection | str = Rejection.LIMIT, about: tuple = ()):
        super().__init__(reason)
        self.reason = reason
        self.kind = Rejection(kind)
        self.about = about  # unverified: (ticket number, agent address)

    def __reduce__(self):  # keep `kind` when crossing a process boundary
        return (MessageRejected, (self.reason, self.kind, self.about))

"""The failure classes every component raises; callers decide the answer by class.

- TemporaryFailure: ours and passing (database unreachable, disk full). Nothing was
  stored; the sender must retry (SMTP 451, exit 75, IMAP message left unflagged).
- MessageRejected: the message breaks a limit or cannot be parsed. It is kept in
  quarantine with the reason; an admin can retry it after raising the limit.
- Anything else raised inside the pipeline is our bug: logged loudly, message kept
  in quarantine.
"""


class MailgateError(Exception):
    pass


class TemporaryFailure(MailgateError):
    """Retry later; nothing was stored."""


class MessageRejected(MailgateError):
    """The message itself is the problem (a limit, unparseable); `kind` names which."""

    def __init__(self, reason: str, kind: str = "limit", about: tuple = ()):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.about = about  # unverified: (ticket number, agent address)

    def __reduce__(self):  # keep `kind` when crossing a process boundary
        return (MessageRejected, (self.reason, self.kind, self.about))

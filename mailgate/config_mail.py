"""The sections that say how mail is judged: threading (`[threading]`), routing
(`[routing]`, per department), proof of identity (`[security]`) and the spam
verdict (`[spam]`). Declared with `config_keys.key`; `mailgate.config` gathers them."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .config_checks import at_least, one_of
from .config_keys import key

MIN_SECRET_BYTES = 32  # the HMAC key behind signed Message-IDs and VERP tags


def letters_and_digits(value: str) -> str | None:
    if value.isalnum() and value.isascii():
        return None
    return f"must be ASCII letters and digits, got {value!r}"


def long_secret(value: str) -> str | None:
    """A secret long enough for HMAC, or empty (not set)."""
    if value and len(value.encode()) < MIN_SECRET_BYTES:
        return f"too short: at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
    return None


def moment_with_offset(value: str) -> str | None:
    """An ISO 8601 moment with its UTC offset, or empty (not set)."""
    try:
        if not value or dt.datetime.fromisoformat(value).tzinfo is not None:
            return None
    except ValueError:
        pass
    return f"must be an ISO 8601 moment with offset, e.g. 2026-12-31T00:00:00+00:00; got {value!r}"


@dataclass(frozen=True)
class ThreadingSettings:
    prefix: str = key("MG", letters_and_digits)
    foreign_sender: str = key("new_linked", one_of("new_linked", "append"))
    reopen_days: int = key(14)


@dataclass(frozen=True)
class DepartmentRouting:
    """What a department does with mail: `[routing]` for all, `[routing.departments.KEY]`
    for one (its missing keys are those of `[routing]`)."""
    # notifications a program sent on its own (Auto-Submitted: auto-generated, e.g.
    # monitoring, ITSM): "ticket" opens a ticket (never acknowledged, marked
    # automatic), "ignore" only records the message; out-of-office replies never
    # open one
    automatic_mail: str = key("ticket", one_of("ticket", "ignore"))


@dataclass(frozen=True)
class RoutingSettings(DepartmentRouting):
    catch_all: str = key("")  # department key that takes mail for unknown addresses
    departments: tuple[tuple[str, DepartmentRouting], ...] = ()

    def department(self, department_key: str | None) -> DepartmentRouting:
        """The settings of department `department_key`."""
        return next((rules for name, rules in self.departments if name == department_key),
                    self)


@dataclass(frozen=True)
class SecuritySettings:
    # HMAC key for agent notification Message-IDs; default: a random key kept in
    # <storage.dir>/secret.key (created on first use, mode 0600)
    secret: str = key("", long_secret)
    previous_secret: str = key("", long_secret)  # the key before the last rotation ...
    previous_valid_until: str = key("", moment_with_offset)  # ... accepted until this moment
    # Authentication-Results from these MTAs count
    trusted_authserv_ids: tuple[str, ...] = key(())
    # hosts of our own mail boundary (the `by` of their Received: headers); an
    # Authentication-Results header below a Received: by any other host is the
    # sender's own and never counts. Default: the trusted authserv-ids.
    internal_hosts: tuple[str, ...] = key(())
    # relaxed (same organizational domain) | strict
    dmarc_alignment: str = key("relaxed", one_of("relaxed", "strict"))
    proof_max_age_days: int = key(30, at_least(1))  # a signed Message-ID proves its reader this long

    def problems(self):
        if self.previous_secret and not self.previous_valid_until:
            yield "previous_valid_until", "required with previous_secret"


@dataclass(frozen=True)
class SpamSettings:
    """`[spam]`: the verdict of the spam filter at our own boundary. Its headers count
    only where our boundary wrote them: above the first `Received:` by a host outside
    `[security] internal_hosts` (over SMTP/LMTP only from `[smtp] trusted_relays`), as
    for Authentication-Results. Flagged mail is kept in quarantine as `spam`: never a
    ticket, never answered, released by `mailgate quarantine retry`."""
    # false: the filter's headers are ignored and flagged mail is treated like any other
    hold: bool = key(True)
    # a header holding the filter's score as a number (X-Spam-Score, X-Rspamd-Score,
    # X-MS-Exchange-Organization-SCL), besides X-Spam-Flag, X-Spam-Status, X-Spam and
    # X-Spamd-Result, which are always read
    score_header: str = key("")
    # a score at or above this is spam (X-Spam-Status score=, X-Spamd-Result, the
    # score_header); 0: only the filter's own yes/no counts
    threshold: float = key(0.0, at_least(0))

    def problems(self):
        if self.score_header and not self.threshold:
            yield "threshold", "required with score_header"

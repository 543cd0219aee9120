"""Signed, expiring links to a customer's status pages: no account, no password.

A link names what it opens (a ticket's page, the list of a contact's tickets, one
attachment), the contact it was made for and when it stops working, under an HMAC
of the key that signs our Message-IDs (`signing.py`), so a rotation of that key
rotates these too (the previous key works until `previous_valid_until`):

    {scope}{subject}.{contact}.{expires}.{key id}{mac}     e.g. t12.7.6b1f3a00.ab12<32 hex>

`scope` is t (ticket page; subject: ticket id), l (list; subject 0) or f (file;
subject: attachment id); `expires` is a Unix time in hex. A link read back is
`VALID`, `EXPIRED` (authentic but too old: its contact may ask for a fresh one)
or `INVALID` (tampered, foreign, or signed by a key no longer accepted).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum

from ..config import Settings
from ..signing import Signer, key_id, signer_for

TOKEN = re.compile(r"^([tlf])(\d{1,18})\.(\d{1,18})\.([0-9a-f]{8,12})\.([0-9a-f]{4})([0-9a-f]{32})$")
FILE_LINK_LIFE = dt.timedelta(hours=1)  # a file link on a page: made afresh each view


class Scope(StrEnum):
    TICKET = "t"
    LIST = "l"
    FILE = "f"


class LinkState(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"


@dataclass(frozen=True)
class Link:
    scope: Scope
    subject: int  # ticket id, attachment id, or 0 for the list
    contact: int
    expires: int  # Unix time

    @property
    def payload(self) -> str:
        return f"{self.scope.value}{self.subject}.{self.contact}.{self.expires:08x}"


def _mac(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), b"web:" + payload.encode(), hashlib.sha256).hexdigest()[:32]


def sign(signer: Signer, link: Link) -> str:
    return f"{link.payload}.{key_id(signer.secret)}{_mac(signer.secret, link.payload)}"


def read(signer: Signer, token: str, scope: Scope | None, now: dt.datetime
         ) -> tuple[LinkState, Link | None]:
    """What `token` opens, if it is a link (of `scope`, None: any) that we signed with a
    key accepted now."""
    match = TOKEN.match(token or "")
    if not match or scope not in (None, Scope(match.group(1))):
        return LinkState.INVALID, None
    kind, subject, contact, expires, kid, mac = match.groups()
    link = Link(Scope(kind), int(subject), int(contact), int(expires, 16))
    # the keys signing.py accepts now: the current one, the previous until its end
    secret = signer._keys(now).get(kid)
    if secret is None or not hmac.compare_digest(mac, _mac(secret, link.payload)):
        return LinkState.INVALID, None
    if now.timestamp() >= link.expires:
        return LinkState.EXPIRED, link
    return LinkState.VALID, link


def make(settings: Settings, scope: Scope, subject: int, contact: int, now: dt.datetime,
         life: dt.timedelta | None = None) -> str:
    """A token for `contact`, working for `life` (default `[web] link_days`)."""
    life = life or dt.timedelta(days=settings.web.link_days)
    return sign(signer_for(settings), Link(scope, subject, contact, int((now + life).timestamp())))


def derive(settings: Settings, link: Link, scope: Scope, subject: int, now: dt.datetime,
           life: dt.timedelta | None = None) -> str:
    """A token of another `scope` for the contact of `link`, ending when `link` ends
    (or sooner, after `life`): a page never hands out links that outlive it."""
    expires = link.expires if life is None else min(link.expires,
                                                    int((now + life).timestamp()))
    return sign(signer_for(settings), Link(scope, subject, link.contact, expires))


def status_url(settings: Settings, ticket_id: int, contact_id: int, now: dt.datetime) -> str:
    """The ticket's status page for one contact, or "" when `[web] base_url` is not set."""
    if not settings.web.base_url:
        return ""
    return f"{settings.web.root}/ticket/{make(settings, Scope.TICKET, ticket_id, contact_id, now)}"


def list_url(settings: Settings, contact_id: int, now: dt.datetime) -> str:
    """The page listing all of one contact's tickets, or "" without `[web] base_url`."""
    if not settings.web.base_url:
        return ""
    return f"{settings.web.root}/tickets/{make(settings, Scope.LIST, 0, contact_id, now)}"

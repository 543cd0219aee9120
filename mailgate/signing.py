"""Signed Message-IDs: proof that a reply answers mail we sent to one reader.

Every mail we send about a ticket to one reader gets a Message-ID that names the
ticket, the reader and the moment, under an HMAC of the server secret:

    <mg.n.{ticket}.{agent}.{issued}{nonce}.{key id}{signature}@host>     to an agent
    <mg.c.{ticket}.{contact}.{issued}{nonce}.{key id}{signature}@host>   to a customer

(`agent` 0 is a department's team address.) Mail clients carry it back in
In-Reply-To and References, so a reply proves its writer received that mail,
which a forger who merely puts someone's address in From: cannot do. A
signature for another ticket, reader or kind, a tampered one, or one older than
`[security] proof_max_age_days` does not verify. Agent ids (`mg.n.`) are never
put into mail to anyone but that agent (`outbound/notify.py`; a test-suite-wide
guard checks every mail written). The secret can be rotated: the previous one is
accepted until a set moment.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import os
import re
import secrets
import socket
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from .config import MIN_SECRET_BYTES, Settings

SIGNED = re.compile(r"^<mg\.([nc])\.(\d{1,20})\.(\d{1,20})\.([0-9a-f]{8})([0-9a-f]{16})\."
                    r"([0-9a-f]{4})([0-9a-f]{32})@[^<>\s]+>$")
# anything that looks like an agent's signed id, wherever it appears (leak checks)
AGENT_ID = re.compile(r"<mg\.n\.[^<>\s]*>")


def mail_host(settings: Settings) -> str:
    """The right-hand side of our Message-IDs (and of a From address nobody
    configured): `[outbound] hostname`, else `[gateway] hostname`, else the machine's
    name (`machine_name`)."""
    return settings.outbound.hostname or settings.gateway.hostname or machine_name()


@functools.cache
def machine_name() -> str:
    """The machine's FQDN, as `[smtp] hostname` defaults to — unless that is "localhost"
    (the host name listed on 127.0.0.1 after `localhost` in /etc/hosts): then its
    canonical name, else the name it calls itself."""
    candidates = [socket.getfqdn()]
    try:
        candidates.append(socket.getaddrinfo(socket.gethostname(), None,
                                             flags=socket.AI_CANONNAME)[0][3])
    except OSError:  # the host name does not resolve
        pass
    candidates.append(socket.gethostname())
    return next((name for name in candidates
                 if name and name.split(".")[0] not in _LOOPBACK_NAMES), "localhost")


_LOOPBACK_NAMES = {"localhost", "localhost4", "localhost6", "ip6-localhost", "ip6-loopback"}


TEAM = 0  # reader id in the signature of a notification sent to a team address


class Reader(Enum):
    AGENT = "n"
    CUSTOMER = "c"


class SecretError(ValueError):
    """No usable secret: empty, too short or unreadable."""


def key_id(secret: str) -> str:
    return hashlib.sha256(b"kid:" + secret.encode()).hexdigest()[:4]


def _mac(secret: str, reader: Reader, ticket_id: int, reader_id: int, issued: str,
         nonce: str) -> str:
    message = f"{reader.value}:{ticket_id}:{reader_id}:{issued}:{nonce}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def load_secret(settings: Settings) -> str:
    """The configured secret, else one kept in the storage folder (made on first use:
    written to a private temporary file and linked into place, so a reader never
    sees half a key and two daemons starting at once agree on one)."""
    secret = settings.security.secret
    if not secret:
        path = Path(settings.storage.dir) / "secret.key"
        if not path.exists():
            _create_secret(path)
        secret = path.read_text().strip()
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise SecretError(f"the signing secret must be at least {MIN_SECRET_BYTES} bytes")
    return secret


def _create_secret(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".secret.key.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, secrets.token_hex(32).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)  # fails if another process made it first: theirs wins
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


@dataclass(frozen=True)
class Signer:
    secret: str
    host: str
    previous: str = ""
    previous_until: dt.datetime | None = None
    max_age: dt.timedelta = dt.timedelta(days=30)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Signer":
        security = settings.security
        until = security.previous_valid_until
        return cls(load_secret(settings), mail_host(settings),
                   security.previous_secret,
                   dt.datetime.fromisoformat(until) if until else None,
                   dt.timedelta(days=security.proof_max_age_days))

    def message_id(self, ticket_id: int, reader_id: int, reader: Reader = Reader.AGENT,
                   now: dt.datetime | None = None) -> str:
        issued = f"{int((now or dt.datetime.now(dt.timezone.utc)).timestamp()):08x}"[-8:]
        nonce = secrets.token_hex(8)
        return (f"<mg.{reader.value}.{ticket_id}.{reader_id}.{issued}{nonce}."
                f"{key_id(self.secret)}"
                f"{_mac(self.secret, reader, ticket_id, reader_id, issued, nonce)}@{self.host}>")

    def _keys(self, now: dt.datetime) -> dict[str, str]:
        keys = {key_id(self.secret): self.secret}
        if self.previous and self.previous_until and now <= self.previous_until:
            keys.setdefault(key_id(self.previous), self.previous)
        return keys

    def verify(self, message_id: str, ticket_id: int, reader_id: int, now: dt.datetime,
               reader: Reader = Reader.AGENT) -> bool:
        match = SIGNED.match(message_id or "")
        if not match:
            return False
        kind, t, r, issued, nonce, kid, mac = match.groups()
        if (kind, int(t), int(r)) != (reader.value, ticket_id, reader_id):
            return False  # a signature for another ticket or reader
        age = now - dt.datetime.fromtimestamp(int(issued, 16), dt.timezone.utc)
        if not dt.timedelta(hours=-1) <= age <= self.max_age:
            return False  # expired (or from the future)
        secret = self._keys(now).get(kid)
        return secret is not None and hmac.compare_digest(
            mac, _mac(secret, reader, ticket_id, reader_id, issued, nonce))

    def replies_to(self, ids: list[str], ticket_id: int, reader_id: int,
                   now: dt.datetime, reader: Reader = Reader.AGENT) -> bool:
        """Does one of `ids` (In-Reply-To, References) carry a valid signature?"""
        return any(self.verify(i, ticket_id, reader_id, now, reader) for i in ids)

    def tag(self, value: str) -> str:
        """A short keyed tag of `value` (VERP addresses: `outbound/bounces.py`)."""
        return _tag(self.secret, value)

    def tag_matches(self, value: str, tag: str, now: dt.datetime) -> bool:
        return any(hmac.compare_digest(_tag(secret, value), tag)
                   for secret in self._keys(now).values())


def _tag(secret: str, value: str) -> str:
    return hmac.new(secret.encode(), b"tag:" + value.encode(), hashlib.sha256).hexdigest()[:12]


@functools.lru_cache(maxsize=8)
def signer_for(settings: Settings) -> Signer:
    return Signer.from_settings(settings)


def visible_to(message_id: str, contact_id: int) -> bool:
    """May this id appear in mail to customer `contact_id`? Ids we signed for anyone
    else (an agent, another customer) may not: they are someone else's proof."""
    match = SIGNED.match(message_id)
    return match is None or (match.group(1) == Reader.CUSTOMER.value
                             and int(match.group(3)) == contact_id)

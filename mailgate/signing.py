"""Signed Message-IDs for mail we send to agents: proof that a reply answers our mail.

A notification to agent A about ticket T gets the Message-ID
`<mg.n.{T}.{A}.{nonce}.{key id}{signature}@host>`, the signature being an HMAC of
(T, A, nonce) under the server secret. Mail clients carry it back in In-Reply-To
and References, so a reply proves the writer received that notification —
something a forger who merely puts the agent's address in From: cannot do.
A signature for another ticket or agent, or a tampered one, does not verify.
The secret can be rotated: the previous one is accepted until a set moment.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from .config import Settings

SIGNED = re.compile(r"^<mg\.n\.(\d{1,20})\.(\d{1,20})\.([0-9a-f]{8,32})\.([0-9a-f]{4})"
                    r"([0-9a-f]{32})@[^<>\s]+>$")


def key_id(secret: str) -> str:
    return hashlib.sha256(b"kid:" + secret.encode()).hexdigest()[:4]


def _mac(secret: str, ticket_id: int, agent_id: int, nonce: str) -> str:
    message = f"{ticket_id}:{agent_id}:{nonce}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def load_secret(settings: Settings) -> str:
    """The configured secret, else one kept in the storage folder (made on first use)."""
    if settings.security.secret:
        return settings.security.secret
    path = Path(settings.storage.dir) / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


@dataclass(frozen=True)
class Signer:
    secret: str
    host: str
    previous: str = ""
    previous_until: dt.datetime | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Signer":
        until = settings.security.previous_valid_until
        return cls(load_secret(settings), settings.outbound.hostname or settings.gateway.hostname,
                   settings.security.previous_secret,
                   dt.datetime.fromisoformat(until) if until else None)

    def message_id(self, ticket_id: int, agent_id: int) -> str:
        nonce = secrets.token_hex(8)
        return (f"<mg.n.{ticket_id}.{agent_id}.{nonce}.{key_id(self.secret)}"
                f"{_mac(self.secret, ticket_id, agent_id, nonce)}@{self.host}>")

    def _keys(self, now: dt.datetime) -> dict[str, str]:
        keys = {key_id(self.secret): self.secret}
        if self.previous and self.previous_until and now <= self.previous_until:
            keys.setdefault(key_id(self.previous), self.previous)
        return keys

    def verify(self, message_id: str, ticket_id: int, agent_id: int, now: dt.datetime) -> bool:
        match = SIGNED.match(message_id or "")
        if not match:
            return False
        t, a, nonce, kid, mac = match.groups()
        if (int(t), int(a)) != (ticket_id, agent_id):
            return False  # a signature for another ticket or agent
        secret = self._keys(now).get(kid)
        return secret is not None and hmac.compare_digest(
            mac, _mac(secret, ticket_id, agent_id, nonce))

    def replies_to(self, ids: list[str], ticket_id: int, agent_id: int,
                   now: dt.datetime) -> bool:
        """Does one of `ids` (In-Reply-To, References) carry a valid signature?"""
        return any(self.verify(i, ticket_id, agent_id, now) for i in ids)

"""Author: whose message this is, whom a new ticket answers, and what proves it.

The author is From, whoever Reply-To names: Reply-To only says where a new
contact wants answers (a no-reply web form's), never whose ticket this may join
or who gives commands. What proves the author (`proof.py`) is a signed Message-ID
of ours in the references, or the Authentication-Results our own mail boundary
wrote (`mail/authres.py`) — believed only as far as the transport lets us
(`boundary()`, which the guard step reads, for the spam filter's verdict too).
"""
from __future__ import annotations

import ipaddress
from email.parser import BytesHeaderParser
from email.policy import compat32

from ..config import Settings
from ..errors import MessageRejected, Rejection
from ..mail import authres
from ..mail.parse import ParsedMessage
from ..mail.precheck import header_block
from ..proof import Proof
from ..signing import signer_for
from ..vocabulary import Source
from .context import Context
from .envelope import Envelope, Result


def step(ctx: Context) -> Result | None:
    msg, settings = ctx.msg, ctx.settings
    if msg.from_addr is None:
        raise MessageRejected("no usable From address", Rejection.UNUSABLE)
    ctx.author = msg.from_addr
    if msg.sender_note:  # From was odd: how the author's address was found (senders.py)
        ctx.trace.append(f"sender: {msg.sender_note}")
    ctx.requester = requester_address(msg, ctx.verdict.no_autorespond)
    # Authentication-Results speak for the From domain only, not for an address
    # recovered from Sender, Return-Path or Reply-To
    ctx.proof = Proof(tuple(msg.in_reply_to + msg.references),
                      ctx.boundary.checks if msg.sender_via == "from" else (),
                      signer_for(settings), ctx.now,
                      settings.security.dmarc_alignment == "strict")
    ctx.may_autorespond = ctx.verdict.may_autorespond
    if ctx.may_autorespond and settings.outbound.ack_requires_auth and \
            authres.dmarc_failed(list(ctx.boundary.checks), ctx.author):
        ctx.may_autorespond = False
        ctx.trace.append(f"authentication: DMARC failed for {ctx.author}; "
                         "no automatic reply")
    return None


def requester_address(msg: ParsedMessage, noreply: bool) -> str | None:
    """Whom a new ticket answers: From, except that a no-reply sender's Reply-To names
    the person behind it (a web form). Never who the author is (that is From)."""
    if noreply and msg.reply_to:
        return msg.reply_to
    return msg.from_addr


def boundary(raw: bytes, envelope: Envelope, settings: Settings) -> authres.Boundary:
    """What our own mail boundary recorded in the headers (authres.py), if anything
    of it can be believed. Mail that reached our SMTP/LMTP port from a client that
    is not a trusted relay has no boundary in front of it: its client is the peer,
    and none of its headers counts. The pipe and IMAP sit behind the MTA that wrote
    them. A retried message is believed as far as its first transport was."""
    source = envelope.retried_from or envelope.source
    security = settings.security
    if source in (Source.SMTP, Source.LMTP):
        if not _trusted_relay(envelope.peer, settings.smtp.trusted_relays):
            return authres.Boundary(client=envelope.peer)
    elif source not in (Source.PIPE, Source.IMAP):
        return authres.Boundary()
    if not security.trusted_authserv_ids and not security.internal_hosts:
        return authres.Boundary()
    headers = BytesHeaderParser(policy=compat32).parsebytes(header_block(raw)).items()
    if source in (Source.SMTP, Source.LMTP):
        headers = headers[1:]  # the Received: line mailgate's own SMTP server added
    return authres.read_boundary(headers, security.trusted_authserv_ids,
                                 security.internal_hosts)


def _trusted_relay(peer: str, networks: tuple[str, ...]) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)

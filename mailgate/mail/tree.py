"""The MIME tree of a message, within its limits, and its address headers as written.

The stdlib's compat32 parser builds the tree (it stays fast on hostile headers),
fed in chunks, with the large file bodies set aside (`setaside.py`); a tree too deep
or with too many parts is refused here, before anything reads it. mail-parser's
address scanner reads From, To, Cc and Reply-To (structural recovery of odd lists).
A multipart part whose body uses a boundary it does not declare is read again with
the one it uses (`with_boundary_found`, when the body walk meets it).
"""
from __future__ import annotations

import email.feedparser
import email.message
import email.policy
import re
from dataclasses import dataclass

from mailparser.utils import get_addresses

from ..errors import MessageRejected, Rejection
from .charsets import Reader, declared_charset
from .headers import raw_headers
from .setaside import SetAside, set_aside_large_bodies

ADDRESS_HEADERS = ("from", "to", "cc", "reply-to")
FEED_CHUNK = 64 * 1024


@dataclass
class Tree:
    msg: email.message.Message
    set_aside: SetAside
    addresses: dict[str, list[tuple[str, str]]]  # from, to, cc, reply-to: (name, address)
    hint: str | None  # a charset the message declares, for text that has none


def read_tree(raw: bytes, max_parts: int, max_depth: int, reader: Reader) -> Tree:
    """The compat32 tree of `raw` with its address lists; MessageRejected when it is too
    deep or has too many parts."""
    skeleton, set_aside = set_aside_large_bodies(raw, max_parts)
    try:
        msg = _message_from_bytes(skeleton)
    except RecursionError as exc:
        raise MessageRejected("MIME nesting too deep to parse", Rejection.LIMIT) from exc
    depth, parts = _depth_and_parts(msg)
    if depth > max_depth:
        raise MessageRejected(f"MIME nesting depth {depth} exceeds {max_depth}", Rejection.LIMIT)
    if parts > max_parts:
        raise MessageRejected(f"{parts} MIME parts exceed {max_parts}", Rejection.LIMIT)
    hint = declared_charset(msg)
    addresses = {name: _address_list(msg, name, reader, hint) for name in ADDRESS_HEADERS}
    return Tree(msg, set_aside, addresses, hint)


def _message_from_bytes(raw: bytes) -> email.message.Message:
    """The stdlib's compat32 parse, fed in chunks: `email.message_from_bytes` first makes
    the whole message one str and then a StringIO of four bytes a character, which
    took a 24 MB message to eight times its size."""
    parser = email.feedparser.BytesFeedParser(policy=email.policy.compat32)
    for start in range(0, len(raw), FEED_CHUNK):
        parser.feed(raw[start:start + FEED_CHUNK])
    return parser.close()


def _depth_and_parts(msg: email.message.Message) -> tuple[int, int]:
    deepest, count = 0, 0
    stack = [(msg, 1)]
    while stack:
        part, level = stack.pop()
        count += 1
        deepest = max(deepest, level)
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend((p, level + 1) for p in payload if isinstance(p, email.message.Message))
    return deepest, count


def _address_list(msg: email.message.Message, name: str, reader: Reader,
                  hint: str | None) -> list[tuple[str, str]]:
    """(display name as written, address) of the first `name` header, by mail-parser's
    address scanner. Raw 8-bit bytes are read as text first (the scanner would escape
    them); encoded words are decoded later, in the name alone, so that an encoded
    `<` or `,` never splits an address."""
    values = raw_headers(msg, name)
    if not values:
        return []
    value = values[0]
    if not value.isascii():
        value = reader.text(value.encode("utf-8", "surrogateescape"), None, hint)
    pairs = get_addresses(value, decode_names=False)
    return [("" if n == a else n, a) for n, a in pairs if a]


_DELIMITER = re.compile(r"^--([^\s][^\r\n]{0,69}?)[ \t]*\r?$", re.MULTILINE)
_PART_HEADER = re.compile(r"content-[a-z-]+[ \t]*:", re.IGNORECASE)
MAX_FOUND_PARTS = 100


def with_boundary_found(part: email.message.Message) -> email.message.Message | None:
    """A multipart part whose body uses a boundary its header does not declare (or
    none is declared), parsed again with the boundary its first delimiter line shows
    — when that boundary closes the body or the line opens a part (a Content-*
    header follows), and delimits few enough parts."""
    body = part.get_payload()
    if not isinstance(body, str):
        return None
    first = _DELIMITER.search(body)
    if first is None:
        return None
    boundary = first.group(1)
    closing = re.compile("^--" + re.escape(boundary) + r"--[ \t]*\r?$", re.MULTILINE)
    opens_a_part = _PART_HEADER.match(body, first.end() + 1) is not None
    if not (closing.search(body, first.end()) or opens_a_part) or \
            body.count("--" + boundary) > MAX_FOUND_PARTS + 1 or '"' in boundary:
        return None
    head = f'Content-Type: {part.get_content_type()}; boundary="{boundary}"\n\n'
    parser = email.feedparser.FeedParser(policy=email.policy.compat32)
    try:
        parser.feed(head)
        parser.feed(body)
        inner = parser.close()
    except RecursionError:
        return None
    payload = inner.get_payload()
    if not isinstance(payload, list) or any(
            isinstance(p.get_payload(), list) for p in payload):
        return None  # found parts: yes; nested containers from a guess: no
    return inner

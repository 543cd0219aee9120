"""MIME written as bytes: header lines, text parts, attachments and multiparts.

What `compose.py` needs of the stdlib's `EmailMessage` and `policy.SMTP`, at a
tenth of the CPU: CRLF line ends; header lines folded at spaces near 78
characters and never past 998 (Message-IDs stay literal: an encoded id threads
nowhere); text with anything but printable ASCII as RFC 2047 encoded words
(UTF-8, base64), so Persian and Georgian names and subjects arrive intact; text
parts in UTF-8, `8bit` while every line fits in 998 bytes, else base64;
attachments in base64 with an RFC 2231 filename when it is not ASCII. Every
value reaching here is one line already (`compose.header_text`).
"""
from __future__ import annotations

import base64
import email.utils
import re
import secrets

FOLD_AT = 78  # RFC 5322 2.1.1: lines SHOULD be no longer than this
MAX_LINE = 998  # ... and MUST be no longer than this
WORD_BYTES = 42  # UTF-8 bytes per encoded word: "=?utf-8?b?" + 56 + "?=" fits a line
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")  # RFC 2045 token
_PLAIN = re.compile(r"^[\x20-\x7e]*$")


def header_line(name: str, value: str) -> bytes:
    """`Name: value` and CRLF, folded at spaces once a line passes `FOLD_AT`."""
    lines, line, empty = [], f"{name}:", True
    for word in value.split(" "):
        if not empty and len(line) + 1 + len(word) > FOLD_AT:
            lines.append(line)
            line = ""
        line += " " + word
        empty = False
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def text_value(text: str) -> str:
    """`text` as a header value: as it is when it is printable ASCII that no reader
    would decode, else as encoded words."""
    if _PLAIN.match(text) and "=?" not in text:
        return text
    return encoded_words(text)


def encoded_words(text: str) -> str:
    """RFC 2047 encoded words (UTF-8, base64), each of at most `WORD_BYTES` bytes of
    text and never splitting a character; separated by spaces (a decoder drops the
    space between two encoded words, so the text comes back whole)."""
    words, chunk = [], bytearray()
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > WORD_BYTES:
            words.append(bytes(chunk))
            chunk.clear()
        chunk += data
    words.append(bytes(chunk))
    return " ".join(f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words)


def mailbox(name: str, address: str) -> str:
    """`Name <address>`: the name quoted where it needs it, encoded when not ASCII."""
    if not name:
        return address
    if _PLAIN.match(name) and "=?" not in name:
        return email.utils.formataddr((name, address))
    return f"{encoded_words(name)} <{address}>"


def text_part(text: str, subtype: str) -> bytes:
    """A text/`subtype` part in UTF-8 with CRLF line ends."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    if not data.endswith(b"\n"):
        data += b"\n"
    if max(map(len, data.split(b"\n"))) <= MAX_LINE:
        encoding = "7bit" if data.isascii() else "8bit"
        body = data.replace(b"\n", b"\r\n")
    else:
        encoding, body = "base64", _base64(data)
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: {encoding}\r\n\r\n").encode("ascii") + body


def attachment_part(data: bytes, content_type: str | None, filename: str) -> bytes:
    """A file in base64; a content type that is not `token/token` goes as
    application/octet-stream."""
    maintype, _, subtype = (content_type or "").partition("/")
    if not (_TOKEN.match(maintype) and _TOKEN.match(subtype)):
        maintype, subtype = "application", "octet-stream"
    if _PLAIN.match(filename):
        disposition = 'filename="{}"'.format(filename.replace("\\", "\\\\")
                                             .replace('"', '\\"'))
    else:
        disposition = "filename*=" + email.utils.encode_rfc2231(filename, "utf-8")
    return (f"Content-Type: {maintype}/{subtype}\r\nContent-Transfer-Encoding: base64\r\n"
            f"Content-Disposition: attachment; {disposition}\r\n\r\n"
            ).encode("utf-8") + _base64(data)


def multipart(subtype: str, parts: list[bytes]) -> bytes:
    """A multipart/`subtype` of `parts` (each headers, blank line, body), under a
    random boundary that none of them contains."""
    boundary = f"=_mg{secrets.token_hex(12)}"
    while any(boundary.encode("ascii") in part for part in parts):
        boundary = f"=_mg{secrets.token_hex(12)}"
    delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
    return (f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\n").encode("ascii") + delimiter.join(parts) + \
        f"\r\n--{boundary}--\r\n".encode("ascii")


def _base64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")

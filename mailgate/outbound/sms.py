"""Text messages: how long a text is in SMS segments, cutting it to fit, and sending it.

Counting follows GSM 03.38 / 3GPP 23.040. A text whose characters are all in the GSM
7-bit alphabet (basic table, or the extension table at two septets each) goes as
GSM-7: 160 septets in one message, 153 per part when concatenated. Anything else
(Persian, emoji) goes as UCS-2: 70 UTF-16 code units alone, 67 per part. An
extension escape or a surrogate pair is never split across parts, as phones do.

Backends take an E.164 number and the finished text and return the provider's
message id ("" when there is none). Failures are classified for the outbox sender:
SmsTemporaryError (timeouts, connection trouble, HTTP 429 and 5xx, and 401/403 —
our credentials are wrong, not the message: retry until an admin fixes them) and
SmsPermanentError (other HTTP 4xx, a number that is not E.164: stop, record).
"""
from __future__ import annotations

import base64
import http.client
import json
import logging
import re
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from typing import Protocol

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from ..config import SmsSettings
from .outcomes import Delivered, Outcome, Permanent, Temporary

log = logging.getLogger("mailgate.sms")

GSM7, UCS2 = "GSM-7", "UCS-2"
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")  # 0x1B (ESC) left out
_GSM_EXTENSION = frozenset("\f^{}\\[~]|€")  # ESC + one septet each
_SIZES = {GSM7: (160, 153), UCS2: (70, 67)}  # units in a single message, per concatenated part
_TRAILING = " \t\r\n\u200c,;:.-–—،؛"  # dropped before the ellipsis
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


class SmsError(Exception):
    """`status` is the HTTP status and `code` the provider's error code, when known."""

    def __init__(self, message: str, status: int | None = None, code: object = None):
        super().__init__(message)
        self.status = status
        self.code = code


class SmsTemporaryError(SmsError):
    """Not sent; retry later."""


class SmsPermanentError(SmsError):
    """Not sent and retrying will not help."""


# -- counting and cutting (pure) ----------------------------------------------------

def encoding(text: str) -> str:
    return GSM7 if all(c in _GSM_BASIC or c in _GSM_EXTENSION for c in text) else UCS2


def _units(text: str, charset: str) -> list[int]:
    """Per character: septets in GSM-7, UTF-16 code units in UCS-2."""
    if charset == GSM7:
        return [2 if c in _GSM_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def segments(text: str) -> int:
    """Messages the text is sent as; an empty text is still one message."""
    charset = encoding(text)
    single, part = _SIZES[charset]
    units = _units(text, charset)
    if sum(units) <= single:
        return 1
    count, used = 1, 0
    for size in units:  # a character never straddles two parts
        if used + size > part:
            count, used = count + 1, 0
        used += size
    return count


def fit(text: str, max_segments: int) -> str:
    """The text, or its longest clean beginning plus an ellipsis, in `max_segments`."""
    max_segments = max(1, max_segments)
    if segments(text) <= max_segments:
        return text
    fits, too_long = 0, len(text)  # _with_ellipsis(text[:n]) grows with n
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if segments(_with_ellipsis(text[:middle])) <= max_segments:
            fits = middle
        else:
            too_long = middle
    for cut in (_word_cut(text, fits), _safe_cut(text, fits)):
        result = _with_ellipsis(text[:cut])
        if segments(result) <= max_segments:
            return result
    return _with_ellipsis("")


def _with_ellipsis(head: str) -> str:
    """"..." keeps a GSM-7 text GSM-7; "…" would turn it into UCS-2."""
    head = head.rstrip(_TRAILING)
    return head + ("..." if encoding(head) == GSM7 else "…")


def _word_cut(text: str, cut: int) -> int:
    """Back to the last space before `cut`, unless that loses more than half."""
    start = cut
    while start > 0 and not text[start].isspace() and not text[start - 1].isspace():
        start -= 1
    return _safe_cut(text, start if start > cut // 2 else cut)


def _safe_cut(text: str, cut: int) -> int:
    """Back off so a mark, variation selector, skin tone or ZWJ sequence stays whole."""
    while 0 < cut < len(text) and (_attaches(text[cut]) or text[cut - 1] == "\u200d"):
        cut -= 1
    return cut


def _attaches(char: str) -> bool:
    return (unicodedata.category(char) in ("Mn", "Mc", "Me") or char == "\u200d"
            or "\U0001F3FB" <= char <= "\U0001F3FF")


# -- backends -----------------------------------------------------------------------

class SmsBackend(Protocol):
    def send(self, to: str, text: str) -> str:
        """Send to an E.164 number; the provider's message id, or ""."""
        ...


def require_e164(to: str) -> None:
    if not _E164.fullmatch(to):
        raise SmsPermanentError(f"not an E.164 phone number: {to!r}")


class LogBackend:
    """Sends nothing; writes the message to the log (development, tests)."""

    def send(self, to: str, text: str) -> str:
        require_e164(to)
        log.info("sms to=%s segments=%d text=%r", to, segments(text), text)
        return ""


class WebhookBackend:
    """Any HTTP API: method, URL, headers and a Jinja2 body template from the settings."""

    def __init__(self, settings: SmsSettings):
        if urllib.parse.urlsplit(settings.webhook_url).scheme not in ("http", "https"):
            raise ValueError(f"sms webhook_url must be http(s): {settings.webhook_url!r}")
        self.settings = settings
        self.method = settings.webhook_method.upper()
        self.headers = parse_headers(settings.webhook_headers)
        environment = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
        self.body = environment.from_string(settings.webhook_body)

    def send(self, to: str, text: str) -> str:
        require_e164(to)
        headers = {"User-Agent": "mailgate", **self.headers}
        url, data = self.settings.webhook_url, None
        if self.method == "GET":
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"to": to, "text": text})
        else:
            data = self.body.render(to=to, text=text, segments=segments(text),
                                    encoding=encoding(text)).encode("utf-8")
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data, headers, method=self.method)
        status, reply = _exchange(request, self.settings.timeout)
        if not 200 <= status < 300:
            raise _failure("sms webhook", status, reply.decode("utf-8", "replace")[:200])
        return _reply_id(reply)


def parse_headers(lines: tuple[str, ...]) -> dict[str, str]:
    """("X-Key: abc",) -> {"X-Key": "abc"}."""
    headers = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise ValueError(f"sms webhook header is not 'Name: value': {line!r}")
        headers[name.strip()] = value.strip()
    return headers


def _reply_id(reply: bytes) -> str:
    """The "id" of a JSON object reply, else ""."""
    try:
        value = json.loads(reply)
    except ValueError:
        return ""
    return str(value.get("id", "")) if isinstance(value, dict) else ""


class TwilioBackend:
    """Twilio's Programmable Messaging REST API (create a Message resource)."""

    def __init__(self, settings: SmsSettings):
        if not (settings.twilio_account_sid and settings.twilio_auth_token
                and settings.twilio_from):
            raise ValueError("sms twilio needs twilio_account_sid, twilio_auth_token and "
                             "twilio_from")
        self.settings = settings
        sid = urllib.parse.quote(settings.twilio_account_sid, safe="")
        self.url = f"{settings.twilio_base_url.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
        secret = f"{settings.twilio_account_sid}:{settings.twilio_auth_token}".encode()
        self.authorization = "Basic " + base64.b64encode(secret).decode("ascii")

    def send(self, to: str, text: str) -> str:
        require_e164(to)
        sender = self.settings.twilio_from  # a number, or a Messaging Service (MG...)
        fields = {"To": to, "MessagingServiceSid" if sender.startswith("MG") else "From": sender,
                  "Body": text}
        request = urllib.request.Request(
            self.url, urllib.parse.urlencode(fields).encode("ascii"), method="POST", headers={
                "Authorization": self.authorization, "Accept": "application/json",
                "Content-Type": "application/x-www-form-urlencoded", "User-Agent": "mailgate"})
        status, reply = _exchange(request, self.settings.timeout)
        try:
            answer = json.loads(reply)
        except ValueError:
            answer = None
        answer = answer if isinstance(answer, dict) else {}
        if 200 <= status < 300:
            return str(answer.get("sid", ""))
        detail = answer.get("message") or reply.decode("utf-8", "replace")[:200]
        raise _failure("twilio", status, detail, answer.get("code"))


def deliver(backend: SmsBackend, to: str, text: str) -> Outcome:
    """Send, answering with an outcome: any OS or network error is temporary."""
    try:
        provider_id = backend.send(to, text)
    except SmsPermanentError as error:
        return Permanent(str(error), (to,))
    except (SmsTemporaryError, OSError, http.client.HTTPException) as error:
        return Temporary(str(error) or error.__class__.__name__)
    return Delivered(note=f"provider id {provider_id}" if provider_id else None)


def make_backend(settings: SmsSettings) -> SmsBackend:
    if settings.backend == "log":
        return LogBackend()
    if settings.backend == "webhook":
        return WebhookBackend(settings)
    if settings.backend == "twilio":
        return TwilioBackend(settings)
    raise ValueError(f"unknown sms backend {settings.backend!r} (log, webhook, twilio)")


# -- HTTP -----------------------------------------------------------------------------

class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirected POST would silently become a GET without the message: report it."""

    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _exchange(request: urllib.request.Request, timeout: float) -> tuple[int, bytes]:
    """The status and body of whatever HTTP answer comes; no answer at all is temporary."""
    try:
        try:
            response = _OPENER.open(request, timeout=timeout)
        except urllib.error.HTTPError as error:
            response = error
        with response:
            return response.status, response.read()
    except (OSError, http.client.HTTPException) as error:  # URLError, timeouts, resets
        reason = getattr(error, "reason", None) or error
        raise SmsTemporaryError(f"{request.host}: {reason}") from error


def _failure(provider: str, status: int, detail: str, code: object = None) -> SmsError:
    temporary = status in (401, 403, 429) or status >= 500
    kind = SmsTemporaryError if temporary else SmsPermanentError
    error = f", error {code}" if code is not None else ""
    return kind(f"{provider}: HTTP {status}{error}: {detail}", status=status, code=code)

"""SMS: segment counting and cutting (tables), and the backends against a real local
HTTP server that records what it receives and answers what the test asks."""
from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
import unicodedata
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate.config import SmsSettings
from mailgate.outbound.sms import (LogBackend, SmsPermanentError, SmsTemporaryError,
                                   TwilioBackend, WebhookBackend, encoding, fit, make_backend,
                                   segments)

TO = "+989123456789"
PERSIAN = "سلام، درخواست شما با شماره ۱۲۳ ثبت شد."


# -- a provider on 127.0.0.1 -------------------------------------------------------

@dataclass
class Seen:
    method: str
    path: str
    headers: dict  # email.message.Message: lookups ignore case
    body: bytes


class Provider(ThreadingHTTPServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_port}"
        self.requests: list[Seen] = []
        self.status, self.reply, self.extra_headers = 200, b"{}", {}
        self.silent = False  # accept the request, never answer
        self.release = threading.Event()

    def answer(self, status: int, reply: object = None, **headers: str) -> None:
        self.status, self.extra_headers = status, headers
        self.reply = reply if isinstance(reply, bytes) else json.dumps(reply or {}).encode()


class Handler(BaseHTTPRequestHandler):
    server: Provider

    def _record_and_answer(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append(Seen(self.command, self.path, self.headers, body))
        if self.server.silent:
            self.server.release.wait(5)
            return
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.server.reply)))
        for name, value in self.server.extra_headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(self.server.reply)

    do_GET = do_POST = do_PUT = _record_and_answer

    def log_message(self, *args):
        pass


@pytest.fixture
def provider():
    server = Provider()
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def webhook(provider: Provider, **fields) -> WebhookBackend:
    return WebhookBackend(SmsSettings(backend="webhook", webhook_url=provider.url + "/hook",
                                      timeout=2.0, **fields))


def twilio(provider: Provider, **fields) -> TwilioBackend:
    values = dict(backend="twilio", twilio_account_sid="ACxxx", twilio_auth_token="tok3n",
                  twilio_from="+15017122661", twilio_base_url=provider.url, timeout=2.0)
    return TwilioBackend(SmsSettings(**{**values, **fields}))


# -- webhook -------------------------------------------------------------------------

def test_webhook_posts_json_with_custom_headers(provider):
    provider.answer(200, {"id": "msg-42"})
    backend = webhook(provider, webhook_headers=("X-Api-Key: s3cret: with colon",))

    assert backend.send(TO, PERSIAN) == "msg-42"

    [seen] = provider.requests
    assert (seen.method, seen.path) == ("POST", "/hook")
    assert seen.headers["X-Api-Key"] == "s3cret: with colon"
    assert seen.headers["Content-Type"] == "application/json"
    assert json.loads(seen.body.decode("utf-8")) == {"to": TO, "text": PERSIAN}


def test_webhook_template_variables_raw_utf8_and_content_type_override(provider):
    backend = webhook(provider, webhook_method="put",
                      webhook_headers=("content-type: text/plain; charset=utf-8",),
                      webhook_body="{{ to }} {{ segments }} {{ encoding }} {{ text }}")

    assert backend.send(TO, PERSIAN) == ""

    [seen] = provider.requests
    assert seen.method == "PUT"
    assert seen.headers.get_all("Content-Type") == ["text/plain; charset=utf-8"]
    assert seen.body == f"{TO} 1 UCS-2 {PERSIAN}".encode("utf-8")


def test_webhook_get_sends_parameters_in_the_query(provider):
    backend = WebhookBackend(SmsSettings(webhook_url=provider.url + "/send?key=k1",
                                         webhook_method="GET", timeout=2.0))
    backend.send(TO, PERSIAN + " & more")

    [seen] = provider.requests
    path, _, query = seen.path.partition("?")
    assert (seen.method, path, seen.body) == ("GET", "/send", b"")
    assert urllib.parse.parse_qs(query) == {"key": ["k1"], "to": [TO],
                                            "text": [PERSIAN + " & more"]}
    assert "Content-Type" not in seen.headers


@pytest.mark.parametrize("status, error", [
    (500, SmsTemporaryError), (503, SmsTemporaryError), (429, SmsTemporaryError),
    (400, SmsPermanentError), (404, SmsPermanentError), (401, SmsTemporaryError),
])
def test_webhook_classifies_provider_errors(provider, status, error):
    provider.answer(status, b"provider says no")
    with pytest.raises(error, match="provider says no") as caught:
        webhook(provider).send(TO, "hello")
    assert caught.value.status == status


def test_webhook_does_not_follow_a_redirect(provider):
    provider.answer(302, b"", Location=provider.url + "/elsewhere")
    with pytest.raises(SmsPermanentError, match="302"):
        webhook(provider).send(TO, "hello")
    assert [r.path for r in provider.requests] == ["/hook"]


def test_a_provider_that_does_not_answer_in_time_is_temporary(provider):
    provider.silent = True
    backend = WebhookBackend(SmsSettings(webhook_url=provider.url, timeout=0.2))
    started = time.monotonic()
    with pytest.raises(SmsTemporaryError):
        backend.send(TO, "hello")
    assert time.monotonic() - started < 2
    assert len(provider.requests) == 1


def test_a_closed_port_is_temporary():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = WebhookBackend(SmsSettings(webhook_url=f"http://127.0.0.1:{port}/", timeout=1))
    with pytest.raises(SmsTemporaryError):
        backend.send(TO, "hello")


@pytest.mark.parametrize("number", ["09123456789", "+98 912 345 6789", "989123456789",
                                    "+0123456789", "+1234", "", "+98912345678901234"])
@pytest.mark.parametrize("make", [webhook, twilio, lambda provider: LogBackend()])
def test_a_number_not_in_e164_is_refused_without_calling_out(provider, make, number):
    with pytest.raises(SmsPermanentError, match="E.164"):
        make(provider).send(number, "hello")
    assert provider.requests == []


# -- Twilio --------------------------------------------------------------------------

def test_twilio_creates_a_message(provider):
    provider.answer(201, {"sid": "SM1234567890abcdef", "status": "queued"})

    assert twilio(provider).send(TO, PERSIAN) == "SM1234567890abcdef"

    [seen] = provider.requests
    assert (seen.method, seen.path) == ("POST", "/2010-04-01/Accounts/ACxxx/Messages.json")
    assert seen.headers["Authorization"] == "Basic " + base64.b64encode(b"ACxxx:tok3n").decode()
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert urllib.parse.parse_qs(seen.body.decode("ascii"), strict_parsing=True) == {
        "To": [TO], "From": ["+15017122661"], "Body": [PERSIAN]}


def test_twilio_messaging_service_goes_as_messaging_service_sid(provider):
    provider.answer(201, {"sid": "SM1"})
    twilio(provider, twilio_from="MG9752274e9e519418a7406176694466fa").send(TO, "hi")
    fields = urllib.parse.parse_qs(provider.requests[0].body.decode())
    assert fields["MessagingServiceSid"] == ["MG9752274e9e519418a7406176694466fa"]
    assert "From" not in fields


def test_twilio_invalid_number_is_permanent_with_twilio_message(provider):
    provider.answer(400, {"code": 21211, "message": "Invalid 'To' Phone Number",
                          "more_info": "https://www.twilio.com/docs/errors/21211",
                          "status": 400})
    with pytest.raises(SmsPermanentError, match="Invalid 'To' Phone Number") as caught:
        twilio(provider).send(TO, "hello")
    assert (caught.value.status, caught.value.code) == (400, 21211)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_twilio_overload_and_outage_are_temporary(provider, status):
    provider.answer(status, {"code": 20429, "message": "Too Many Requests"})
    with pytest.raises(SmsTemporaryError, match="Too Many Requests"):
        twilio(provider).send(TO, "hello")


def test_make_backend_and_configuration_errors(provider):
    assert isinstance(make_backend(SmsSettings()), LogBackend)
    assert isinstance(make_backend(SmsSettings(backend="webhook", webhook_url=provider.url)),
                      WebhookBackend)
    assert isinstance(make_backend(SmsSettings(backend="twilio", twilio_account_sid="AC1",
                                               twilio_auth_token="t", twilio_from="+1555")),
                      TwilioBackend)
    for bad in [SmsSettings(backend="carrier-pigeon"),
                SmsSettings(backend="webhook"),  # no URL
                SmsSettings(backend="webhook", webhook_url=provider.url,
                            webhook_headers=("no colon here",)),
                SmsSettings(backend="twilio", twilio_account_sid="AC1")]:
        with pytest.raises(ValueError):
            make_backend(bad)


# -- log -----------------------------------------------------------------------------

def test_log_backend_logs_and_returns_no_id(caplog):
    with caplog.at_level(logging.INFO, logger="mailgate.sms"):
        assert LogBackend().send(TO, PERSIAN) == ""
    [record] = caplog.records
    assert record.name == "mailgate.sms"
    assert f"sms to={TO} segments=1 text=" in record.getMessage()
    assert PERSIAN in record.getMessage()


# -- counting ------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("", "GSM-7"), ("Hello, world! @£$¥ ÄÖÑÜ §¿ 0-9\r\n", "GSM-7"),
    ("^{}\\[~]|€", "GSM-7"), ("tab\there", "UCS-2"), ("…", "UCS-2"),
    (PERSIAN, "UCS-2"), ("ok 😀", "UCS-2"), ("\x1b", "UCS-2"),
])
def test_encoding(text, expected):
    assert encoding(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("", 1), ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
    ("a" * 459, 3), ("a" * 460, 4),
    ("€" * 80, 1), ("€" * 81, 2), ("a" * 159 + "{", 2), ("[]" * 76 + "a", 2),
    ("a" * 152 + "{" + "a" * 151, 2),  # the escape moves whole to part two: 152 | 153
    ("a" * 152 + "{" + "a" * 152, 3),  # ... which then overflows
    ("س" * 70, 1), ("س" * 71, 2), ("س" * 134, 2), ("س" * 135, 3),
    ("😀" * 35, 1), ("😀" * 36, 2), ("a" * 69 + "😀", 2), ("a" * 68 + "😀", 1),
    ("س" * 66 + "😀" + "س" * 66, 3),  # a surrogate pair is not split across parts
])
def test_segments(text, expected):
    assert segments(text) == expected


# -- fitting -------------------------------------------------------------------------

ENGLISH = ("Your request #4711 was received. An agent will answer within one working day; "
           "reply to this message to add details. ") * 8
PERSIAN_LONG = "درخواست شما ثبت شد و کارشناسان ما به زودی پاسخ خواهند داد. " * 10


def assert_clean_cut(original: str, result: str, ellipsis: str) -> str:
    assert result.endswith(ellipsis)
    head = result[: -len(ellipsis)]
    assert original.startswith(head) and head
    result.encode("utf-8")  # strict: a lone surrogate would fail here
    return head


@pytest.mark.parametrize("max_segments", [1, 2, 3])
def test_fit_gsm_text_stays_gsm_and_cuts_at_a_word(max_segments):
    result = fit(ENGLISH, max_segments)
    assert segments(result) <= max_segments and encoding(result) == "GSM-7"
    head = assert_clean_cut(ENGLISH, result, "...")
    assert ENGLISH[len(head)] == " "
    assert len(result) > {1: 160, 2: 306, 3: 459}[max_segments] - 20  # not cut short


@pytest.mark.parametrize("max_segments", [1, 2, 3])
def test_fit_persian_text_ends_with_an_ellipsis_at_a_word(max_segments):
    result = fit(PERSIAN_LONG, max_segments)
    assert segments(result) <= max_segments and encoding(result) == "UCS-2"
    head = assert_clean_cut(PERSIAN_LONG, result, "…")
    assert PERSIAN_LONG[len(head)] in " ."


def test_fit_never_splits_a_surrogate_pair_or_an_escape():
    result = fit("😀" * 100, 1)
    assert result == "😀" * 34 + "…" and segments(result) == 1
    result = fit("{" * 200, 1)
    assert result == "{" * 78 + "..." and segments(result) == 1


def test_fit_uses_dots_when_the_kept_part_is_gsm():
    text = "Hello there " * 20 + "سلام"
    result = fit(text, 1)
    assert_clean_cut(text, result, "...")
    assert encoding(result) == "GSM-7" and len(result) > 140


def test_fit_keeps_combining_marks_with_their_letter():
    text = "ضَرَبَ" * 40  # no spaces: a hard cut, but never before a mark
    head = assert_clean_cut(text, fit(text, 1), "…")
    assert unicodedata.category(text[len(head)]) != "Mn"


def test_fit_hard_cuts_one_long_word():
    text = "https://example.com/" + "x" * 400
    result = fit(text, 1)
    assert len(result) == 160 and result.endswith("...")


@pytest.mark.parametrize("text", ["", "Hi", "a" * 160, "س" * 70, "😀" * 35, "a" * 306])
def test_fit_leaves_text_that_fits_unchanged(text):
    assert fit(text, 2) == text


@settings(max_examples=150, deadline=None)
@given(st.text(st.sampled_from(list("ab .€{سل😀\u0301\u200d\n")), max_size=500),
       st.integers(1, 4))
def test_fit_always_fits(text, max_segments):
    result = fit(text, max_segments)
    assert segments(result) <= max_segments
    if result != text:
        head = result.removesuffix("...").removesuffix("…")
        assert text.startswith(head) and result != head

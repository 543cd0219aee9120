"""Hostile messages meet cheap prechecks, then a parser bounded in time and memory."""
import time

import pytest

from mailgate.config import LimitSettings
from mailgate.errors import MessageRejected, Rejection
from mailgate.mail.precheck import precheck
from mailgate.inbound.workers import ParserPool
from tests.mails import make_mail


def encoded_word_header(count: int) -> bytes:
    return (b"From: a@example.org\r\nSubject: x\r\nTo: " +
            b",\r\n ".join(b"=?utf-8?q?a=C3=A9b?= <u%d@x.org>" % i for i in range(count)) +
            b"\r\n\r\nbody\r\n")


def nested(levels: int) -> bytes:
    head = b"From: a@example.org\r\nSubject: deep\r\n"
    body = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
                    for i in range(levels))
    return head + body + b"x\r\n"


def many_parts(count: int) -> bytes:
    parts = b"".join(b"--B\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i
                     for i in range(count))
    return (b"From: a@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=B\r\n\r\n" + parts + b"--B--\r\n")


@pytest.mark.parametrize("raw,limits,message", [
    (b"", LimitSettings(), "empty message"),
    (make_mail(body="x" * 5000), LimitSettings(max_message_size=4000), "exceeds the limit"),
    (encoded_word_header(16000), LimitSettings(max_header_bytes=10**7), "addresses exceed"),
    (encoded_word_header(16000), LimitSettings(max_addresses=10**6), "header block of"),
    (many_parts(50_000), LimitSettings(), "MIME parts exceed"),
])
def test_precheck_refuses_cheaply(raw, limits, message):
    started = time.monotonic()
    with pytest.raises(MessageRejected, match=message):
        precheck(raw, limits)
    assert time.monotonic() - started < 1.0  # byte counting, no parsing


def test_ordinary_mail_passes_precheck():
    precheck(make_mail(cc=", ".join(f"u{i}@x.org" for i in range(100))), LimitSettings())


@pytest.fixture(scope="module")
def tight_pool():
    pool = ParserPool(size=1, timeout=3, memory_limit=400 * 1024 * 1024, max_depth=20,
                      max_parts=500)
    yield pool
    pool.close()


def test_deep_nesting_is_refused_and_the_worker_survives(tight_pool):
    with pytest.raises(MessageRejected, match="nesting"):
        tight_pool.parse(nested(1200))
    with pytest.raises(MessageRejected, match="depth 31 exceeds 20") as caught:
        tight_pool.parse(nested(30))
    assert caught.value.kind is Rejection.LIMIT  # still the member after crossing processes
    assert tight_pool.parse(make_mail(subject="after")).subject == "after"


def test_a_rejection_kind_given_as_its_string_is_the_member():
    assert MessageRejected("no department", "route").kind is Rejection.ROUTE
    assert MessageRejected("over the limit").kind is Rejection.LIMIT


def test_parse_over_time_is_killed_and_worker_replaced(tight_pool):
    # 16,000 encoded-word addresses take seconds in the address parser; the
    # worker is killed at the 0.5 s bound and a fresh one serves the next message
    pool = ParserPool(size=1, timeout=0.5)
    try:
        with pytest.raises(MessageRejected, match="longer than 0.5 s"):
            pool.parse(encoded_word_header(16000))
        pool.timeout = 30  # the fresh worker starts (imports) on a loaded machine too
        assert pool.parse(make_mail(subject="next")).subject == "next"
    finally:
        pool.close()


def test_parse_over_memory_limit_is_refused():
    # A large base64 file body is decoded straight from the raw bytes now (no longer
    # eight times its size in the stdlib's parser), so the 78 MB message meets a
    # bound below what even that needs (raw bytes, received, plus the decoded file).
    pool = ParserPool(size=1, timeout=20, memory_limit=150 * 1024 * 1024)
    line = b"A" * 76 + b"\r\n"
    big = (b"From: a@example.org\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
           b"Content-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64"
           b"\r\n\r\n" + line * 1_000_000 + b"--B--\r\n")  # 78 MB
    try:
        with pytest.raises(MessageRejected, match="memory|died"):
            pool.parse(big)
        assert pool.parse(make_mail(subject="still here")).subject == "still here"
    finally:
        pool.close()


def test_too_many_parts_after_parse():
    pool = ParserPool(size=0, max_parts=50)
    with pytest.raises(MessageRejected, match="MIME parts exceed 50"):
        pool.parse(many_parts(60))

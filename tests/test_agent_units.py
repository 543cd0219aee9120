"""Agent mail building blocks, pure: commands, signatures, Authentication-Results."""
import datetime as dt

import pytest

import os
import stat

from mailgate.config import ConfigError, Settings, load_settings
from mailgate.mail.authres import dmarc_failed, proves, read_boundary
from mailgate.mail.commands import split_commands
from mailgate.signing import Reader, SecretError, Signer, load_secret, visible_to

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("text,commands,body", [
    ("#note\nInternal only.", [("note", "", None)], "Internal only."),
    ("#status resolved\n#priority HIGH\n\nDone, thanks!",
     [("status", "resolved", None), ("priority", "HIGH", None)], "Done, thanks!"),
    ("  #assign me\n#department billing\nHi", [("assign", "me", None),
                                               ("department", "billing", None)], "Hi"),
    ("#cc boss@example.org\n#uncc old@example.org\n#category Hardware / printers\nx",
     [("cc", "boss@example.org", None), ("uncc", "old@example.org", None),
      ("category", "Hardware / printers", None)], "x"),
    ("#status maybe\nx", [("status", "maybe", "unknown status 'maybe'; one of new, open, "
                                                "in_progress, answered, resolved, closed")], "x"),
    ("#priority 7\nx", [("priority", "7", "unknown priority '7'; one of low, normal, high, "
                                           "urgent")], "x"),
    ("#frobnicate\nx", [("frobnicate", "", "unknown command #frobnicate")], "x"),
    ("#assign nobody\nx", [("assign", "nobody", "#assign takes an agent's address or 'me'")],
     "x"),
    ("#cc not-an-address\nx", [("cc", "not-an-address", "#cc takes an email address")], "x"),
    ("Hello\n#status closed", [], "Hello\n#status closed"),
    ("#1 problem is the printer", [], "#1 problem is the printer"),
    ("#close\nThanks, solved.", [("close", "", None)], "Thanks, solved."),
    ("بستن\nممنون", [("close", "", None)], "ممنون"),
    ("#new customer@example.org\nDear customer,", [("new", "customer@example.org", None)],
     "Dear customer,"),
])
def test_split_commands(text, commands, body):
    found, rest = split_commands(text, close_words=("#close", "بستن"))
    assert [(c.name, c.arg, c.error) for c in found] == commands
    assert rest == body


SIGNER = Signer("current-secret-" + "x" * 32, "mg.example.com")
OLD_KEY, NEW_KEY = "old-secret-" + "o" * 32, "new-secret-" + "n" * 32


def test_signature_round_trip_and_binding():
    mid = SIGNER.message_id(ticket_id=7, reader_id=3, now=NOW)
    assert mid.startswith("<mg.n.7.3.") and mid.endswith("@mg.example.com>")
    assert SIGNER.verify(mid, 7, 3, NOW)
    assert not SIGNER.verify(mid, 8, 3, NOW)  # replayed onto another ticket
    assert not SIGNER.verify(mid, 7, 4, NOW)  # another agent
    assert not SIGNER.verify(mid, 7, 3, NOW, Reader.CUSTOMER)  # contact 3 is not agent 3
    assert SIGNER.replies_to(["<x@y>", mid], 7, 3, NOW)


def test_customer_signatures_are_their_own_kind():
    mid = SIGNER.message_id(7, 12, Reader.CUSTOMER, now=NOW)
    assert mid.startswith("<mg.c.7.12.")
    assert SIGNER.verify(mid, 7, 12, NOW, Reader.CUSTOMER)
    assert not SIGNER.verify(mid, 7, 12, NOW)  # never proof of an agent
    assert not SIGNER.verify(mid, 7, 13, NOW, Reader.CUSTOMER)
    assert visible_to(mid, 12) and not visible_to(mid, 13)
    assert not visible_to(SIGNER.message_id(7, 12, now=NOW), 12)  # an agent's id
    assert visible_to("<CAF1234@mail.gmail.com>", 12)


def test_signatures_expire():
    mid = SIGNER.message_id(7, 3, now=NOW)
    assert SIGNER.verify(mid, 7, 3, NOW + dt.timedelta(days=30))
    assert not SIGNER.verify(mid, 7, 3, NOW + dt.timedelta(days=30, seconds=1))
    short = Signer(SIGNER.secret, "mg.example.com", max_age=dt.timedelta(days=2))
    assert not short.verify(mid, 7, 3, NOW + dt.timedelta(days=3))
    assert not SIGNER.verify(mid, 7, 3, NOW - dt.timedelta(hours=2))  # from the future


def test_tampered_signatures_fail():
    mid = SIGNER.message_id(7, 3, now=NOW)
    local = mid[1:].split("@")[0]
    flipped = local[:-1] + ("0" if local[-1] != "0" else "1")
    assert not SIGNER.verify(f"<{flipped}@mg.example.com>", 7, 3, NOW)
    forged_ticket = mid.replace("mg.n.7.", "mg.n.8.")
    assert not SIGNER.verify(forged_ticket, 8, 3, NOW)
    issued = mid.split(".")[4]
    later = mid.replace(issued, f"{int(issued[:8], 16) + 86400 * 60:08x}" + issued[8:])
    assert not SIGNER.verify(later, 7, 3, NOW + dt.timedelta(days=60))  # expiry moved
    other_key = Signer("attacker-guess-" + "a" * 32, "mg.example.com").message_id(7, 3, now=NOW)
    assert not SIGNER.verify(other_key, 7, 3, NOW)


def test_rotated_secret_is_accepted_within_its_grace_period_only():
    old = Signer(OLD_KEY, "mg.example.com")
    mid = old.message_id(7, 3, now=NOW)
    rotated = Signer(NEW_KEY, "mg.example.com", previous=OLD_KEY,
                     previous_until=NOW + dt.timedelta(days=7))
    assert rotated.verify(mid, 7, 3, NOW)
    assert rotated.verify(mid, 7, 3, NOW + dt.timedelta(days=7))
    assert not rotated.verify(mid, 7, 3, NOW + dt.timedelta(days=7, seconds=1))
    assert rotated.verify(rotated.message_id(7, 3, now=NOW), 7, 3, NOW + dt.timedelta(days=30))


def test_short_or_empty_secrets_are_refused(tmp_path):
    settings = Settings().replace(storage={"dir": tmp_path}, security={"secret": "short"})
    with pytest.raises(SecretError):
        load_secret(settings)
    with pytest.raises(ConfigError, match="security.secret"):
        _config(tmp_path, '[security]\nsecret = "short"\n')
    (tmp_path / "secret.key").write_text("\n")
    with pytest.raises(SecretError):
        load_secret(Settings().replace(storage={"dir": tmp_path}))


def test_the_secret_file_is_made_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        secret = load_secret(Settings().replace(storage={"dir": tmp_path / "var"}))
    finally:
        os.umask(old)
    path = tmp_path / "var" / "secret.key"
    assert len(secret) == 64 and path.read_text() == secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]  # no temporary left
    assert load_secret(Settings().replace(storage={"dir": tmp_path / "var"})) == secret


def _config(tmp_path, text):
    path = tmp_path / "mailgate.toml"
    path.write_text(text)
    return load_settings(path, env={})


TRUSTED = ("mx.example.com",)
RECEIVED = ("Received", "from mail.example.com (mail.example.com [203.0.113.7]) by "
                        "mx.example.com (Postfix) with ESMTPS id 4F; Sun, 22 Nov 2026 12:00 +0000")
UPSTREAM = ("Received", "from client (client [198.51.100.9]) by relay.example.net (Postfix)")


def ar(value):
    return ("Authentication-Results", value)


@pytest.mark.parametrize("headers,sender,method", [
    ([ar("mx.example.com; dmarc=pass (p=reject) header.from=example.com"), RECEIVED],
     "ann@example.com", "dmarc"),
    ([ar("mx.example.com; dkim=pass header.d=example.com header.s=s1; spf=fail"), RECEIVED],
     "ann@example.com", "dkim"),
    ([ar("mx.example.com; spf=pass smtp.mailfrom=bounce.example.com")], "ann@example.com",
     "spf"),
    ([ar("mx.example.com; dkim=pass header.d=mail.example.com")], "ann@example.com", "dkim"),
    ([ar("mx.example.com; dmarc=fail header.from=example.com")], "ann@example.com", None),
    ([ar("mx.example.com; dkim=pass header.d=evil.example")], "ann@example.com", None),
    ([ar("mx.example.com; dkim=pass header.d=com")], "ann@example.com", None),
    ([ar("evil.example; dmarc=pass header.from=example.com")], "ann@example.com", None),
    # a public suffix never verifies a domain under it
    ([ar("mx.example.com; dmarc=pass header.from=co.uk")], "alice@corp.co.uk", None),
    ([ar("mx.example.com; dkim=pass header.d=co.uk")], "alice@corp.co.uk", None),
    ([ar("mx.example.com; dmarc=pass header.from=corp.co.uk")], "alice@corp.co.uk", "dmarc"),
    # header.d inside a comment is no property
    ([ar("mx.example.com; dkim=pass (header.d=example.com) header.d=evil.example")],
     "ann@example.com", None),
    # below a Received: by someone else's host, the sender wrote it
    ([RECEIVED, UPSTREAM, ar("mx.example.com; dmarc=pass header.from=example.com")],
     "ann@example.com", None),
    ([ar("mx.example.com; dmarc=none"), RECEIVED, UPSTREAM,
      ar("mx.example.com; dmarc=pass header.from=example.com")], "ann@example.com", None),
    # under the Received: line of the hop where it came in from outside (straight to
    # our MX), the sender wrote it, even with no other Received: below
    ([RECEIVED, ar("mx.example.com; dmarc=pass header.from=example.com")],
     "ann@example.com", None),
    # a content filter reinjecting over loopback is still inside
    ([("Received", "from localhost (localhost [127.0.0.1]) by mx.example.com (Postfix)"),
      ar("mx.example.com; dmarc=pass header.from=example.com"), RECEIVED],
     "ann@example.com", "dmarc"),
    # garbage is no header
    ([ar("mx.example.com; dmarc=pass header.from=example.com; ;; ((")], "ann@example.com",
     None),
    ([], "ann@example.com", None),
])
def test_authentication_results(headers, sender, method):
    assert proves(list(read_boundary(headers, TRUSTED).checks), sender) == method


def test_alignment_relaxed_and_strict():
    checks = list(read_boundary([ar("mx.example.com; dmarc=pass header.from=evil.corp.example")],
                                TRUSTED).checks)
    assert proves(checks, "ann@corp.example") == "dmarc"
    assert proves(checks, "ann@corp.example", strict=True) is None
    assert proves(checks, "ann@evil.corp.example", strict=True) == "dmarc"


def test_internal_hosts_extend_the_boundary():
    relay = ("Received", "from mx.example.com by filter.example.com (amavis)")
    headers = [relay, ar("mx.example.com; dmarc=pass header.from=example.com"), RECEIVED]
    assert read_boundary(headers, TRUSTED).checks == ()  # filter.example.com is not ours
    seen = read_boundary(headers, TRUSTED, ("mx.example.com", "filter.example.com"))
    assert proves(list(seen.checks), "ann@example.com") == "dmarc"
    assert seen.client == "203.0.113.7"


def test_no_trusted_ids_means_no_proof():
    headers = [ar("mx.example.com; dmarc=pass header.from=example.com")]
    assert read_boundary(headers, ()).checks == ()
    assert not dmarc_failed([], "ann@example.com")
    assert dmarc_failed(list(read_boundary(
        [ar("mx.example.com; dmarc=fail header.from=example.com")], TRUSTED).checks),
        "ann@example.com")

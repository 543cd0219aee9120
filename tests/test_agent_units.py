"""Agent mail building blocks, pure: commands, signatures, Authentication-Results."""
import datetime as dt

import pytest

from mailgate.inbound.authres import authenticated
from mailgate.inbound.commands import split_commands
from mailgate.signing import Signer

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


SIGNER = Signer("current-secret", "mg.example.com")


def test_signature_round_trip_and_binding():
    mid = SIGNER.message_id(ticket_id=7, agent_id=3)
    assert mid.startswith("<mg.n.7.3.") and mid.endswith("@mg.example.com>")
    assert SIGNER.verify(mid, 7, 3, NOW)
    assert not SIGNER.verify(mid, 8, 3, NOW)  # replayed onto another ticket
    assert not SIGNER.verify(mid, 7, 4, NOW)  # another agent
    assert SIGNER.replies_to(["<x@y>", mid], 7, 3, NOW)


def test_tampered_signatures_fail():
    mid = SIGNER.message_id(7, 3)
    local = mid[1:].split("@")[0]
    flipped = local[:-1] + ("0" if local[-1] != "0" else "1")
    assert not SIGNER.verify(f"<{flipped}@mg.example.com>", 7, 3, NOW)
    forged_ticket = mid.replace("mg.n.7.", "mg.n.8.")
    assert not SIGNER.verify(forged_ticket, 8, 3, NOW)
    other_key = Signer("attacker-guess", "mg.example.com").message_id(7, 3)
    assert not SIGNER.verify(other_key, 7, 3, NOW)


def test_rotated_secret_is_accepted_within_its_grace_period_only():
    old = Signer("old-secret", "mg.example.com")
    mid = old.message_id(7, 3)
    rotated = Signer("new-secret", "mg.example.com", previous="old-secret",
                     previous_until=NOW + dt.timedelta(days=7))
    assert rotated.verify(mid, 7, 3, NOW)
    assert rotated.verify(mid, 7, 3, NOW + dt.timedelta(days=7))
    assert not rotated.verify(mid, 7, 3, NOW + dt.timedelta(days=7, seconds=1))
    assert rotated.verify(rotated.message_id(7, 3), 7, 3, NOW + dt.timedelta(days=30))


TRUSTED = ("mx.example.com",)


@pytest.mark.parametrize("headers,sender,method", [
    (["mx.example.com; dmarc=pass (p=reject) header.from=example.com"], "ann@example.com",
     "dmarc"),
    (["mx.example.com; dkim=pass header.d=example.com header.s=s1; spf=fail"],
     "ann@example.com", "dkim"),
    (["mx.example.com; spf=pass smtp.mailfrom=bounce.example.com"], "ann@example.com", "spf"),
    (["mx.example.com; dkim=pass header.d=mail.example.com"], "ann@example.com", "dkim"),
    (["mx.example.com; dmarc=fail header.from=example.com"], "ann@example.com", None),
    (["mx.example.com; dkim=pass header.d=evil.example"], "ann@example.com", None),
    (["mx.example.com; dkim=pass header.d=com"], "ann@example.com", None),
    (["evil.example; dmarc=pass header.from=example.com"], "ann@example.com", None),
    # a forged header lower down does not count: only the topmost one is ours
    (["mx.example.com; dmarc=none", "mx.example.com; dmarc=pass header.from=example.com"],
     "ann@example.com", None),
    ([], "ann@example.com", None),
])
def test_authentication_results(headers, sender, method):
    assert authenticated(headers, TRUSTED, sender) == method


def test_no_trusted_ids_means_no_proof():
    assert authenticated(["mx.example.com; dmarc=pass header.from=example.com"], (),
                         "ann@example.com") is None

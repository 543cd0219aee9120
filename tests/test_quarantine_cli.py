"""`mailgate quarantine`: what an admin does with mail that could not be processed."""
from __future__ import annotations

import json

import pytest

from tests.mails import make_mail
from tests.test_cli import mailgate  # noqa: F401  (the fixture: commands in-process)

EX_DATAERR = 65


def quarantined(mailgate, raw: bytes) -> dict:
    """Ingest `raw` from a file (in-process) and return its quarantine entry."""
    path = mailgate.tmp_path / f"in-{len(list(mailgate.tmp_path.glob('in-*')))}.eml"
    path.write_bytes(raw)
    [result] = json.loads(mailgate("ingest", "--json", str(path), expect=None).text)
    assert result["outcome"] == "quarantined"
    entries = json.loads(mailgate("quarantine", "list", "--json").text)
    return next(e for e in entries if e["id"] == result["quarantine_id"])


def test_a_hopeless_entry_is_discarded_with_a_reason_and_its_bytes_kept(mailgate):
    mailgate("department", "add", "support")
    mailgate("address", "add", "support@example.com", "--department", "support")
    no_from = make_mail().replace(b"From: Customer <customer@example.org>\r\n", b"")
    entry = quarantined(mailgate, no_from)
    assert entry["error_class"] == "unusable"
    shown = mailgate("quarantine", "show", str(entry["id"])).text
    assert "resolved_at: not resolved" in shown and "None" not in shown

    out = mailgate("quarantine", "discard", str(entry["id"]), "--reason", "no From, spam")
    assert out.text.strip() == f"quarantine {entry['id']}: discarded: no From, spam"
    assert json.loads(mailgate("quarantine", "list", "--json").text) == []
    [listed] = json.loads(mailgate("quarantine", "list", "--all", "--json").text)
    assert listed["resolution"] == "discarded: no From, spam" and listed["resolved_at"]
    assert "discarded: no From, spam" in mailgate("quarantine", "list", "--all").text
    # the raw bytes stay in the raw store
    assert mailgate("quarantine", "show", str(entry["id"]), "--raw").stdout == no_from
    assert "resolved_at: not resolved" not in mailgate("quarantine", "show",
                                                       str(entry["id"])).text
    # a resolved entry is neither discarded again nor retried; nor is one that never was
    again = mailgate("quarantine", "discard", str(entry["id"]), "--reason", "x",
                     expect=EX_DATAERR)
    assert b"already resolved (discarded: no From, spam)" in again.stderr
    assert b"already resolved" in mailgate("quarantine", "retry", str(entry["id"]),
                                           expect=EX_DATAERR).stderr
    assert b"no quarantine entry 99" in mailgate("quarantine", "discard", "99", "--reason",
                                                 "x", expect=EX_DATAERR).stderr


def test_discard_wants_a_reason(mailgate):
    mailgate("department", "add", "support")
    entry = quarantined(mailgate, make_mail(to="sales@example.com"))
    assert b"give a reason" in mailgate("quarantine", "discard", str(entry["id"]), "--reason",
                                        "  ", expect=EX_DATAERR).stderr
    with pytest.raises(SystemExit) as exited:  # --reason is required
        mailgate("quarantine", "discard", str(entry["id"]))
    assert exited.value.code == 64  # EX_USAGE, as README says; not argparse's 2
    assert len(json.loads(mailgate("quarantine", "list", "--json").text)) == 1


def test_retry_exit_statuses_are_sysexits(mailgate):
    mailgate("department", "add", "support")
    entry = quarantined(mailgate, make_mail(to="sales@example.com"))
    still = mailgate("quarantine", "retry", str(entry["id"]), expect=EX_DATAERR)
    assert f"quarantine {entry['id']}: quarantined" in still.text
    assert mailgate("quarantine", "retry", "--all", expect=EX_DATAERR).returncode == 65
    assert b"give an ID or --all" in mailgate("quarantine", "retry", expect=64).stderr
    mailgate("address", "add", "sales@example.com", "--department", "support")
    assert ": new #" in mailgate("quarantine", "retry", "--all", expect=0).text


def test_a_raw_message_lost_or_out_of_reach_is_said_with_its_status(mailgate, monkeypatch):
    """The blob store down (S3 unreachable): 75, try again; the bytes gone: 66."""
    from mailgate import storage

    (mailgate.tmp_path / "junk.eml").write_bytes(b"not mail at all")
    mailgate("ingest", str(mailgate.tmp_path / "junk.eml"), expect=65)
    [entry] = json.loads(mailgate("quarantine", "list", "--json").text)

    def unreachable(self, digest):
        raise storage.BlobUnavailable("s3: endpoint unreachable")

    with monkeypatch.context() as patched:
        patched.setattr(storage.BlobStore, "get", unreachable)
        assert mailgate("quarantine", "show", str(entry["id"]), expect=75)
        assert mailgate("quarantine", "retry", str(entry["id"]), expect=75)
    for blob in (mailgate.tmp_path / "var" / "raw").rglob("*.eml"):
        blob.unlink()
    assert mailgate("quarantine", "show", str(entry["id"]), expect=66)

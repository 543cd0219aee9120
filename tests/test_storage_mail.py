"""Mail through the pipeline with its blobs in a real S3 endpoint (moto over HTTP on
loopback): raw mail and attachments go to the bucket, none to the disk; when the
object store is down, failing or slow, the sender is told to try again (SMTP 451,
`ingest` exit 75) and nothing is half-applied."""
from __future__ import annotations

import smtplib
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from mailgate.config import Settings
from mailgate.db import Database
from mailgate.errors import TemporaryFailure
from mailgate.gateway import Gateway
from mailgate.models import Address, Attachment, Department, Inbound, Message, Quarantine, Ticket
from mailgate.pipeline import Envelope, ingest
from mailgate.storage import sha256_hex
from tests.mails import make_mail
from tests.servers.daemon import DaemonThread
from tests.servers.s3 import fault_proxy, moto_server, own_moto_server  # noqa: F401

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
ENVELOPE = Envelope("smtp", "customer@example.org", ("support@example.com",))


def with_attachment(**headers) -> bytes:
    return make_mail(attachments=[("invoice.pdf", "application/pdf", PDF)], **headers)


def s3_settings(tmp_path, endpoint: str, bucket: str, **storage) -> Settings:
    return Settings().replace(
        database={"url": f"sqlite:///{tmp_path / 'mailgate.db'}"},
        storage={"dir": tmp_path / "var", "fsync": False, "backend": "s3", "bucket": bucket,
                 "endpoint_url": endpoint, "region": "us-east-1", "access_key_id": "test",
                 "secret_access_key": "test", "timeout": 1.0, "attempts": 1,
                 **storage},
        gateway={"instance": "mailgate-test"})


def with_support(settings: Settings) -> Gateway:
    gw = Gateway(settings)
    gw.db.upgrade()
    with gw.db.unit_of_work() as session:
        session.add(Address(address="support@example.com",
                            department=Department(key="support", name="Support")))
    return gw


def counts(db: Database) -> dict[str, int]:
    with db.unit_of_work() as session:
        return {table.__tablename__: session.scalar(select(func.count()).select_from(table))
                for table in (Inbound, Ticket, Message, Attachment, Quarantine)}


def keys(client, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", ()))


def test_raw_mail_and_attachments_go_to_the_bucket_and_nothing_to_disk(
        tmp_path, moto_server):  # noqa: F811
    bucket = moto_server.create_bucket()
    gw = with_support(s3_settings(tmp_path, moto_server.url, bucket))
    raw = with_attachment()
    result = ingest(gw, raw, ENVELOPE)
    assert result.outcome == "new"
    with gw.db.unit_of_work() as session:
        stored = session.scalar(select(Attachment))
        assert stored.stored_name == gw.storage.attachments.relative_path(sha256_hex(PDF))
    assert keys(moto_server.client(), bucket) == [
        f"attachments/{stored.stored_name}", f"raw/{gw.storage.raw.relative_path(sha256_hex(raw))}"]
    assert gw.storage.attachments.get(sha256_hex(PDF)) == PDF
    assert not (tmp_path / "var" / "raw").exists()
    assert not (tmp_path / "var" / "attachments").exists()
    gw.close()


@pytest.mark.parametrize("keep_raw", [True, False])
def test_a_failing_object_store_fails_the_message_whole(
        tmp_path, keep_raw, moto_server, fault_proxy):  # noqa: F811
    # keep_raw: the raw PUT, before anything, fails; without it, the attachment's PUT
    # inside the transaction fails and the transaction is rolled back
    gw = with_support(s3_settings(tmp_path, fault_proxy.url, moto_server.create_bucket(),
                                  keep_raw=keep_raw))
    fault_proxy.mode = "error"  # moto never answers 500 itself: the proxy does
    with pytest.raises(TemporaryFailure, match="500 InternalError"):
        ingest(gw, with_attachment(), ENVELOPE)
    assert set(counts(gw.db).values()) == {0}  # no ticket, no record, no quarantine
    fault_proxy.mode = "pass"
    assert ingest(gw, with_attachment(), ENVELOPE).outcome == "new"
    assert counts(gw.db)["tickets"] == 1
    gw.close()


def test_a_slow_object_store_leaves_at_most_an_unreferenced_blob(
        tmp_path, moto_server, fault_proxy):  # noqa: F811
    bucket = moto_server.create_bucket()
    gw = with_support(s3_settings(tmp_path, fault_proxy.url, bucket, keep_raw=False,
                                  timeout=0.3))
    fault_proxy.mode, fault_proxy.delay = "slow", 1.0  # longer than [storage] timeout
    with pytest.raises(TemporaryFailure, match="timeout"):
        ingest(gw, with_attachment(), ENVELOPE)
    assert set(counts(gw.db).values()) == {0}
    # the store finished the PUT its client gave up on: a whole blob, named by no row
    deadline = time.monotonic() + 10
    while not keys(moto_server.client(), bucket) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert keys(moto_server.client(), bucket) == [
        f"attachments/{gw.storage.attachments.relative_path(sha256_hex(PDF))}"]
    gw.close()


def test_ingest_exits_75_while_the_object_store_fails(
        tmp_path, moto_server, fault_proxy):  # noqa: F811
    settings = s3_settings(tmp_path, fault_proxy.url, moto_server.create_bucket())
    with_support(settings).close()
    config = tmp_path / "mailgate.toml"
    config.write_text(
        f'[database]\nurl = "{settings.database.url}"\n[limits]\nparse_workers = 1\n'
        f'[storage]\ndir = "{tmp_path / "var"}"\nbackend = "s3"\n'
        f'bucket = "{settings.storage.bucket}"\nendpoint_url = "{fault_proxy.url}"\n'
        'access_key_id = "test"\nsecret_access_key_env = "S3_SECRET"\nattempts = 1\n')
    command = [sys.executable, "-m", "mailgate", "--config", str(config), "ingest",
               "--sender", "customer@example.org", "--recipient", "support@example.com"]
    env = {"PATH": "/usr/bin:/bin", "S3_SECRET": "test"}
    fault_proxy.mode = "error"
    done = subprocess.run(command, input=with_attachment(), env=env, capture_output=True,
                          timeout=120)
    assert done.returncode == 75, done.stderr  # EX_TEMPFAIL: the MTA keeps it and retries
    assert b"temporary failure" in done.stderr and b"500 InternalError" in done.stderr
    assert set(counts(Database(settings.database.url)).values()) == {0}


def test_smtp_answers_451_while_the_object_store_is_down(tmp_path, own_moto_server):  # noqa: F811
    settings = s3_settings(tmp_path, own_moto_server.url, own_moto_server.create_bucket())
    settings = settings.replace(smtp={"listen": ("127.0.0.1:0",)}, http={"listen": "127.0.0.1:0"},
                                daemon={"delivery_workers": 1})
    gw = with_support(settings)
    with DaemonThread(settings) as daemon:
        def send(message_id: str) -> None:
            with smtplib.SMTP("127.0.0.1", daemon.port(), timeout=60) as client:
                client.sendmail("customer@example.org", ["support@example.com"],
                                with_attachment(message_id=message_id))

        send("<before@example.org>")
        own_moto_server.stop()
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send("<during@example.org>")
        assert refused.value.smtp_code == 451
        assert counts(gw.db)["inbound"] == 1  # the one before; nothing of the second
        # moto keeps nothing across a restart (AWS would still have the bucket)
        own_moto_server.start()
        own_moto_server.create_bucket(settings.storage.bucket)
        send("<during@example.org>")  # the client's retry
    with gw.db.unit_of_work() as session:
        assert sorted(session.scalars(select(Inbound.message_id))) == [
            "<before@example.org>", "<during@example.org>"]
    assert counts(gw.db)["tickets"] == 2
    gw.close()

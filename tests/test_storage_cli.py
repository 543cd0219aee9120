"""`mailgate storage migrate` and `mailgate storage check` against a real S3 endpoint
(moto over HTTP on loopback) and an installation's files."""
from __future__ import annotations

import json

import pytest

from mailgate.cli import main
from mailgate.config import load_settings
from mailgate.gateway import Gateway, open_storage
from mailgate.models import Address, Department
from mailgate.pipeline import Envelope, ingest
from mailgate.storage import sha256_hex
from tests.mails import make_mail
from tests.servers.s3 import free_port, moto_server  # noqa: F401

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


def write_config(tmp_path, endpoint: str, bucket: str, backend: str = "files",
                 folder: str = "var") -> str:
    path = tmp_path / f"{backend}-{folder}.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "mailgate.db"}"\n'
        f'[storage]\ndir = "{tmp_path / folder}"\nfsync = false\nbackend = "{backend}"\n'
        f'bucket = "{bucket}"\nprefix = "mg/"\nendpoint_url = "{endpoint}"\n'
        'region = "us-east-1"\naccess_key_id = "test"\nsecret_access_key = "test"\n'
        'attempts = 1\ntimeout = 2.0\n')
    return str(path)


def installation(config: str) -> dict[str, str]:
    """A ticket with an attachment and a quarantined message, stored as `config` says;
    the sha256 of each blob by what it is."""
    gw = Gateway(load_settings(config, env={}))
    gw.db.upgrade()
    with gw.db.unit_of_work() as session:
        session.add(Address(address="support@example.com",
                            department=Department(key="support", name="Support")))
    mail = make_mail(attachments=[("invoice.pdf", "application/pdf", PDF)])
    held = make_mail(to="nobody@example.com", subject="routes nowhere")
    assert ingest(gw, mail, Envelope("pipe", "c@example.org", ("support@example.com",))
                  ).outcome == "new"
    assert ingest(gw, held, Envelope("pipe", "c@example.org", ("nobody@example.com",))
                  ).outcome == "quarantined"
    gw.close()
    return {"mail": sha256_hex(mail), "held": sha256_hex(held), "pdf": sha256_hex(PDF)}


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def spoil(moto, bucket: str, config: str, missing: str, corrupt: str) -> None:
    """Remove one attachment from the bucket, and change one raw message's bytes."""
    store = open_storage(load_settings(config, env={}).storage)
    s3 = moto.client()
    s3.delete_object(Bucket=bucket,
                     Key=f"mg/attachments/{store.attachments.relative_path(missing)}")
    s3.put_object(Bucket=bucket, Key=f"mg/raw/{store.raw.relative_path(corrupt)}",
                  Body=b"not the mail any more")


def test_migrate_copies_every_blob_once(tmp_path, capsys, moto_server):  # noqa: F811
    bucket = moto_server.create_bucket()
    files = write_config(tmp_path, moto_server.url, bucket)
    installation(files)
    local = open_storage(load_settings(files, env={}).storage)
    broken = sha256_hex(b"what it was")
    local.attachments.path(broken).parent.mkdir(parents=True)
    local.attachments.path(broken).write_bytes(b"what it became")  # corrupt on disk

    code, out, err = run(capsys, "--config", files, "storage", "migrate", "--to", "s3")
    assert code == 65, out + err  # the corrupt one is named, not copied
    assert f"{tmp_path / 'var'} -> s3://{bucket}/mg/: 3 copied, 0 there already, " \
           "1 not copied" in out
    assert f"attachments  {broken}  corrupt  source: not copied" in out
    assert "copying raw: 2/2 (100 %)" in err and "copying attachments: 2/2 (100 %)" in err
    s3 = moto_server.client()
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert len(listed) == 3 and all(key.startswith("mg/") for key in listed)
    # interrupted halfway, or new blobs meanwhile: a second run copies only what is missing
    s3.delete_object(Bucket=bucket, Key=listed[0])
    code, out, _ = run(capsys, "--config", files, "storage", "migrate", "--to", "s3")
    assert "1 copied, 2 there already, 1 not copied" in out


def test_check_finds_missing_and_corrupt_blobs_and_migrate_goes_back(tmp_path, capsys,
                                                                      moto_server):  # noqa: F811
    bucket = moto_server.create_bucket()
    in_s3 = write_config(tmp_path, moto_server.url, bucket, backend="s3")
    blobs = installation(in_s3)
    code, out, _ = run(capsys, "--config", in_s3, "storage", "check")
    assert (code, out) == (0, f"s3://{bucket}/mg/: 3 blobs referenced, 0 missing or corrupt, "
                              "0 stored but unreferenced\n")
    spoil(moto_server, bucket, in_s3, missing=blobs["pdf"], corrupt=blobs["held"])
    code, out, _ = run(capsys, "--config", in_s3, "storage", "check", "--json")
    assert code == 65
    assert json.loads(out)["problems"] == [
        {"store": "raw", "sha256": blobs["held"], "problem": "corrupt",
         "where": "quarantine #1, inbound #2"},
        {"store": "attachments", "sha256": blobs["pdf"], "problem": "missing",
         "where": "attachments #1"}]
    code, out, _ = run(capsys, "--config", in_s3, "storage", "check", "--quick")
    assert code == 65 and "1 missing or corrupt" in out and "corrupt" not in out.split("\n", 1)[1]
    # back to files, into an empty folder: what the bucket holds, checked as it is read
    back = write_config(tmp_path, moto_server.url, bucket, folder="restored")
    code, out, _ = run(capsys, "--config", back, "storage", "migrate", "--to", "files")
    assert code == 65 and "1 copied, 0 there already, 1 not copied" in out
    restored = open_storage(load_settings(back, env={}).storage)
    assert restored.raw.get(blobs["mail"]) == open_storage(
        load_settings(in_s3, env={}).storage).raw.get(blobs["mail"])


def test_storage_commands_exit_78_without_a_bucket_and_75_when_it_cannot_be_reached(
        tmp_path, capsys):
    config = tmp_path / "mailgate.toml"
    config.write_text(f'[storage]\ndir = "{tmp_path / "var"}"\n')
    code, _, err = run(capsys, "--config", str(config), "storage", "migrate", "--to", "s3")
    assert code == 78 and "set [storage] bucket" in err
    down = write_config(tmp_path, f"http://127.0.0.1:{free_port()}", "mailgate-blobs", "s3")
    code, _, err = run(capsys, "--config", down, "storage", "check")
    assert code == 75 and "Could not connect" in err
    code, _, err = run(capsys, "--config", down, "storage", "migrate", "--to", "files")
    assert code == 75 and "goes on where it stopped" in err


@pytest.mark.parametrize("tty", [False, True])
def test_progress_is_a_line_per_tenth_in_a_log_and_one_line_on_a_terminal(tty):
    from mailgate.cli.storage import ProgressLine

    class Stream:
        def __init__(self):
            self.text = ""

        def isatty(self):
            return tty

        def write(self, text):
            self.text += text

        def flush(self):
            pass

    stream = Stream()
    progress = ProgressLine("copying", stream)
    for done in range(1, 101):
        progress("raw", done, 100)
    if tty:
        assert stream.text.endswith("\rcopying raw: 100/100 (100 %)\n")
        assert stream.text.count("\n") == 1
    else:
        assert stream.text.splitlines() == [f"copying raw: {n}/100 ({n} %)"
                                            for n in (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)]

"""The one blob interface, on disk and in a real S3 endpoint (moto over HTTP on
loopback): the same behaviour from both backends, and an object store's faults
are temporary failures (OSError), never a wrong answer."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from mailgate.config import ConfigError, Settings, load_settings
from mailgate.gateway import open_storage
from mailgate.storage import BlobUnavailable, CorruptBlob, Storage, sha256_hex
from tests.servers.s3 import FaultProxy, fault_proxy, moto_server, own_moto_server  # noqa: F401

DATA = b"%PDF-1.4 an invoice\n"


def s3_settings(endpoint: str, bucket: str, **more):
    return Settings().replace(storage={
        "backend": "s3", "bucket": bucket, "endpoint_url": endpoint, "region": "us-east-1",
        "access_key_id": "test", "secret_access_key": "test", "prefix": "mg/",
        "timeout": 1.0, "attempts": 1, **more}).storage


@pytest.fixture(params=["files", "s3"])
def storage(request, tmp_path) -> Storage:
    if request.param == "files":
        return Storage.files(tmp_path / "var", fsync=False)
    server = request.getfixturevalue("moto_server")
    return open_storage(s3_settings(server.url, server.create_bucket()))


def tamper(storage: Storage, digest: str, data: bytes) -> None:
    """Replace a stored attachment's bytes behind the store's back."""
    store = storage.attachments
    if hasattr(store, "root"):
        store.path(digest).write_bytes(data)
    else:
        store.bucket.client.put_object(Bucket=store.bucket.name, Body=data,
                                       Key=f"mg/attachments/{store.relative_path(digest)}")


def test_blobs_are_stored_and_found_by_their_sha256(storage):
    digest = storage.attachments.put(DATA)
    assert digest == sha256_hex(DATA)
    assert storage.attachments.put(DATA, digest) == digest  # idempotent
    assert storage.attachments.get(digest) == DATA
    assert storage.attachments.exists(digest) and not storage.raw.exists(digest)
    assert storage.attachments.relative_path(digest) == f"{digest[:2]}/{digest[2:4]}/{digest}"
    raw = storage.raw.put(b"Subject: hi\r\n\r\nhello\r\n")
    assert storage.raw.relative_path(raw).endswith(f"/{raw}.eml")
    assert list(storage.attachments.listing()) == [(digest, len(DATA))]
    assert list(storage.raw.listing()) == [(raw, 22)]
    storage.probe()
    with pytest.raises(ValueError):
        storage.attachments.relative_path("../../etc/passwd")


def test_what_was_stored_is_checked_when_read_back(storage):
    digest = storage.attachments.put(DATA)
    tamper(storage, digest, DATA.replace(b"invoice", b"INVOICE"))
    with pytest.raises(CorruptBlob, match=digest):
        storage.attachments.get(digest)
    with pytest.raises(FileNotFoundError):
        storage.attachments.get(sha256_hex(b"never stored"))


def test_objects_have_the_file_paths_under_the_prefix(moto_server):  # noqa: F811
    bucket = moto_server.create_bucket()
    storage = open_storage(s3_settings(moto_server.url, bucket))
    digest = storage.raw.put(b"raw mail")
    storage.attachments.put(DATA)
    keys = [o["Key"] for o in moto_server.client().list_objects_v2(Bucket=bucket)["Contents"]]
    attachment = storage.attachments.relative_path(sha256_hex(DATA))
    assert sorted(keys) == [f"mg/attachments/{attachment}",
                            f"mg/raw/{digest[:2]}/{digest[2:4]}/{digest}.eml"]
    assert storage.where == f"s3://{bucket}/mg/"


def test_an_endpoint_that_is_down_is_a_temporary_failure(own_moto_server):  # noqa: F811
    storage = open_storage(s3_settings(own_moto_server.url, own_moto_server.create_bucket()))
    digest = storage.attachments.put(DATA)
    own_moto_server.stop()
    for call in (lambda: storage.attachments.put(b"new"), lambda: storage.attachments.get(digest),
                 storage.probe, lambda: list(storage.raw.listing())):
        with pytest.raises(BlobUnavailable, match="Could not connect") as info:
            call()
        assert isinstance(info.value, OSError)  # what every caller treats as "try again"


def test_500s_and_a_slow_endpoint_are_temporary_failures(moto_server, fault_proxy):  # noqa: F811
    # moto never answers 500 nor stalls by itself: the proxy in front of it does
    bucket = moto_server.create_bucket()
    storage = open_storage(s3_settings(fault_proxy.url, bucket, attempts=2))
    digest = storage.attachments.put(DATA)
    fault_proxy.mode, before = "error", fault_proxy.requests
    with pytest.raises(BlobUnavailable, match="500 InternalError"):
        storage.attachments.get(digest)
    assert fault_proxy.requests - before == 2  # [storage] attempts: botocore tried again
    fault_proxy.mode = "pass"
    hasty = open_storage(s3_settings(fault_proxy.url, bucket, timeout=0.3))
    hasty.probe()  # its client made and connected
    fault_proxy.mode, fault_proxy.delay = "slow", 5.0
    started = time.monotonic()
    with pytest.raises(BlobUnavailable, match="timeout"):
        hasty.attachments.put(b"late")
    assert time.monotonic() - started < 2.5  # bounded by [storage] timeout and attempts
    fault_proxy.mode = "pass"
    assert storage.attachments.get(digest) == DATA


def test_s3_settings_are_checked_with_their_keys(tmp_path):
    config = tmp_path / "mailgate.toml"
    config.write_text('[storage]\nbackend = "s3"\naccess_key_id = "AKIA"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(config, env={})
    assert dict(info.value.problems) == {
        "storage.bucket": 'required with backend = "s3"',
        "storage.secret_access_key": "access_key_id and secret_access_key go together"}
    config.write_text('[storage]\nbackend = "S3"\nbucket = "mg"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(config, env={})
    assert [key for key, _ in info.value.problems] == ["storage.backend", "storage.bucket"]


def test_s3_credentials_come_from_the_environment_or_a_file(tmp_path):
    (tmp_path / "secret").write_text("s3cr3t\n")
    config = tmp_path / "mailgate.toml"
    config.write_text('[storage]\nbackend = "s3"\nbucket = "mailgate-blobs"\n'
                      'access_key_id_env = "KEY_ID"\n'
                      f'secret_access_key_file = "{tmp_path}/secret"\n')
    storage = load_settings(config, env={"KEY_ID": "AKIA1"}).storage
    assert (storage.access_key_id, storage.secret_access_key) == ("AKIA1", "s3cr3t")


@pytest.mark.parametrize("backend, imported", [("files", False), ("s3", True)])
def test_boto3_is_imported_only_for_the_s3_backend(tmp_path, backend, imported):
    code = ("import sys; from pathlib import Path; from mailgate.config import Settings; "
            "from mailgate.gateway import Gateway; gw = Gateway(Settings().replace(storage="
            f"{{'dir': Path({str(tmp_path)!r}), 'backend': {backend!r}, "
            "'bucket': 'mailgate-blobs'})); print('boto3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == str(imported)

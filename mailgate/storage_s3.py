"""Blobs in an S3-compatible object store (AWS S3, MinIO, Ceph RGW, Garage, R2).

Every host of a cluster reads and writes the same bucket, so a ticket's files and
a quarantined message are there for whichever daemon needs them. The objects are
`<prefix>raw/ab/cd/<sha256>.eml` and `<prefix>attachments/ab/cd/<sha256>`: the
file backend's paths under `[storage] dir`, so `storage migrate` maps one onto the
other. A PUT is atomic (an object is there whole or not at all) and carries the
bytes' MD5 (Content-MD5), so the server refuses bytes damaged on the way; reads
are checked against the sha256 by `Blobs.get`.

Every failure (endpoint down or slow, 5xx, throttling, refused credentials, a
missing bucket) is a `BlobUnavailable`, an OSError: the pipeline answers 451 or
exits 75 and the outbox tries again later. A missing object is FileNotFoundError.
botocore tries each request `[storage] attempts` times (with its "standard" backoff
between them), each bounded by `[storage] timeout`.

This module is imported only when `[storage] backend = "s3"` (see `open_storage`).
"""
from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import threading
from typing import Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .config import StorageSettings
from .storage import BlobUnavailable, Blobs, Storage

MISSING = ("NoSuchKey", "404", "NotFound")  # a HEAD's 404 has no error code but "404"


@contextlib.contextmanager
def translated(key: str) -> Iterator[None]:
    """botocore's exceptions as OSError: FileNotFoundError or BlobUnavailable."""
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in MISSING:
            raise FileNotFoundError(errno.ENOENT, "no such object", key) from error
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        raise BlobUnavailable(errno.EIO, f"S3 answered {status} {code}", key) from error
    except BotoCoreError as error:  # connection refused, timeouts, a broken response
        raise BlobUnavailable(errno.EIO, f"S3: {error}") from error  # names the URL


class Bucket:
    """A bucket (and key prefix) and the client that reaches it, made on first use
    (botocore clients are thread-safe; each worker process makes its own)."""

    def __init__(self, settings: StorageSettings):
        self.settings = settings
        self.name, self.prefix = settings.bucket, settings.prefix
        self._client = None
        self._lock = threading.Lock()

    @property
    def client(self):
        with self._lock:
            if self._client is None:
                self._client = make_client(self.settings)
            return self._client

    def put(self, key: str, data: bytes) -> None:
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        with translated(key):
            self.client.put_object(Bucket=self.name, Key=self.prefix + key, Body=data,
                                   ContentMD5=md5)

    def get(self, key: str) -> bytes:
        with translated(key):
            body = self.client.get_object(Bucket=self.name, Key=self.prefix + key)["Body"]
            with contextlib.closing(body):
                return body.read()

    def exists(self, key: str) -> bool:
        try:
            with translated(key):
                self.client.head_object(Bucket=self.name, Key=self.prefix + key)
        except FileNotFoundError:
            return False
        return True

    def keys(self, folder: str) -> Iterator[tuple[str, int]]:
        """(key under `folder`, size) of every object there, in key order."""
        start = self.prefix + folder
        with translated(start):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.name, Prefix=start)
            for page in pages:
                for item in page.get("Contents", ()):
                    yield item["Key"][len(start):], item["Size"]

    def probe(self) -> None:
        with translated(self.name):
            self.client.head_bucket(Bucket=self.name)


def make_client(settings: StorageSettings):
    """An S3 client for `settings`: our timeouts and retries; checksums only where
    the protocol requires them (S3-compatible stores differ on the newer ones)."""
    config = Config(connect_timeout=settings.timeout, read_timeout=settings.timeout,
                    retries={"mode": "standard", "total_max_attempts": settings.attempts},
                    s3={"addressing_style": settings.addressing_style},
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required")
    credentials = {"aws_access_key_id": settings.access_key_id,
                   "aws_secret_access_key": settings.secret_access_key} \
        if settings.access_key_id else {}  # else the AWS default chain
    # a session of its own: boto3's default session is not thread-safe
    return boto3.session.Session().client(
        "s3", endpoint_url=settings.endpoint_url or None,
        region_name=settings.region or None, config=config, **credentials)


class S3Blobs(Blobs):
    """The blobs under `<prefix><folder>/` of a bucket."""

    def __init__(self, bucket: Bucket, folder: str, suffix: str = ""):
        super().__init__(suffix)
        self.bucket = bucket
        self.folder = folder + "/"

    def _write(self, name: str, data: bytes) -> None:
        self.bucket.put(self.folder + name, data)

    def _read(self, name: str) -> bytes:
        return self.bucket.get(self.folder + name)

    def _exists(self, name: str) -> bool:
        return self.bucket.exists(self.folder + name)

    def _names(self) -> Iterator[tuple[str, int]]:
        return self.bucket.keys(self.folder)

    def probe(self) -> None:
        self.bucket.probe()


def s3_storage(settings: StorageSettings) -> Storage:
    bucket = Bucket(settings)
    where = f"s3://{settings.bucket}/{settings.prefix}"
    return Storage(S3Blobs(bucket, "raw", ".eml"), S3Blobs(bucket, "attachments"), where)

"""Settings: defaults in code, one TOML file, secrets from the environment or files.

`load_settings()` returns one typed `Settings` object that is passed down to
everything else; nothing reads the environment or the file deeper inside.
Each section is a frozen dataclass whose keys are declared with `config_keys.key`
(type, default, checks); the peers' sections live in `config_transports`, how mail
is judged in `config_mail`, the service hours in `service`, and all of them are
importable from here. Every problem found is reported with its key (``mailgate
check`` prints them).
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .config_checks import at_least, one_of, positive, split_hostport
from .config_customers import CustomerSettings
from .config_keys import MiB, Reader, key
from .config_rules import FieldSettings, Rule, rule_problems
from .config_mail import (MIN_SECRET_BYTES, DepartmentRouting, RoutingSettings,
                          SecuritySettings, SpamSettings, ThreadingSettings)
from .config_transports import (HttpSettings, ImapAccount, LmtpSettings, OutboundSettings,
                                SmsSettings, SmtpSettings)
from .config_web import WebSettings
from .service import ServiceSettings
from .status_labels import StatusLabels, read_status_labels

__all__ = ["ConfigError", "Settings", "load_settings", "split_hostport", "MiB",
           "MIN_SECRET_BYTES", "DEFAULT_ALLOWED_TYPES", "DatabaseSettings", "StorageSettings",
           "LimitSettings", "ThreadingSettings", "RoutingSettings", "DepartmentRouting",
           "GatewaySettings", "DaemonSettings", "SecuritySettings", "SpamSettings",
           "LogSettings", "SmtpSettings", "LmtpSettings", "HttpSettings", "ImapAccount",
           "OutboundSettings", "SmsSettings", "ServiceSettings", "WebSettings"]

DEFAULT_ALLOWED_TYPES = (
    "application/pdf",
    "image/jpeg",
    "image/png",
    "image/gif",
    "text/plain",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    # what people attach every day (issue 13): the names phones and Windows give
    # JPEG and PNG, iPhone photos, data exports, invites, forwarded mail, archives
    # (zip bombs are refused by their directory), and short screen recordings
    # (max_attachment_size keeps them short)
    "image/pjpeg",
    "image/jpg",
    "image/x-png",
    "image/webp",
    "image/heic",
    "image/heif",
    "text/csv",
    "application/csv",
    "application/json",
    "application/xml",
    "text/xml",
    "text/calendar",
    "message/rfc822",
    "application/zip",
    "application/x-zip-compressed",
    "video/mp4",
    "video/quicktime",
    "video/webm",
)


class ConfigError(Exception):
    """The configuration has problems; `.problems` lists (key, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {m}" for k, m in problems))


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = key("")  # default filled in from [storage] dir
    password: str = key("")  # secret: password_env / password_file
    pool_size: int = key(10)
    # PostgreSQL: seconds to connect (and authenticate), and that one statement may run
    # (the server cancels it; a silent server is given up a few seconds later)
    connect_timeout: float = key(5.0, positive)
    statement_timeout: float = key(30.0, positive)


def bucket_name(value: str) -> str | None:
    """An S3 bucket name (3-63 lowercase letters, digits, dots and hyphens), or empty."""
    if not value or (3 <= len(value) <= 63 and value[0].isalnum() and value[-1].isalnum()
                     and all(c in "abcdefghijklmnopqrstuvwxyz0123456789.-" for c in value)):
        return None
    return ("must be 3-63 lowercase letters, digits, dots or hyphens, starting and ending "
            f"with a letter or digit; got {value!r}")


@dataclass(frozen=True)
class StorageSettings:
    dir: Path = key(Path("./var"))
    keep_raw: bool = key(True)
    fsync: bool = key(True)
    # Where the blobs (raw mail, attachments, quarantined mail) live: "files" under
    # `dir`, or "s3": an S3-compatible object store that every host shares. `dir`
    # keeps what is local by nature either way (the outbox journal and file transport).
    backend: str = key("files", one_of("files", "s3"))
    bucket: str = key("", bucket_name)
    prefix: str = key("")  # before every key in the bucket, e.g. "mailgate/"
    endpoint_url: str = key("")  # empty: AWS; else MinIO, Ceph RGW, Garage, R2...
    region: str = key("")
    # both empty (and no _env/_file): the AWS default chain (environment, profile, role)
    access_key_id: str = key("")
    secret_access_key: str = key("")
    addressing_style: str = key("auto", one_of("auto", "path", "virtual"))
    timeout: float = key(10.0, positive)  # seconds to connect, and to wait for each read
    attempts: int = key(3, at_least(1))  # tries of each request (backoff between them)

    def problems(self):
        if self.backend == "s3" and not self.bucket:
            yield "bucket", 'required with backend = "s3"'
        if bool(self.access_key_id) != bool(self.secret_access_key):
            yield "secret_access_key", "access_key_id and secret_access_key go together"


@dataclass(frozen=True)
class LimitSettings:
    max_message_size: int = key(25 * MiB, positive)
    max_attachment_size: int = key(10 * MiB, positive)
    allowed_types: tuple[str, ...] = key(DEFAULT_ALLOWED_TYPES)
    max_depth: int = key(20, positive)
    max_parts: int = key(500, positive)
    max_header_bytes: int = key(512 * 1024, positive)
    max_addresses: int = key(500, positive)
    max_received: int = key(100)
    parse_timeout: float = key(20.0)
    parse_memory: int = key(2048 * MiB)
    parse_workers: int = key(2, positive)
    # attachments that run code when opened: refused unless allowed here
    allow_macros: bool = key(False)  # Office/OpenDocument files with a macro project
    allow_pdf_scripts: bool = key(False)  # PDFs with JavaScript, /Launch or automatic actions


@dataclass(frozen=True)
class GatewaySettings:
    instance: str = key("mailgate")  # loop marker value, also used in Message-IDs
    own_addresses: tuple[str, ...] = key(())
    hostname: str = key("")  # our Message-IDs' host (signing.mail_host); "": the FQDN


@dataclass(frozen=True)
class DaemonSettings:
    shutdown_timeout: float = key(30.0)
    delivery_workers: int = key(0)  # processes running the pipeline; 0: two per CPU


@dataclass(frozen=True)
class LogSettings:
    level: str = key("INFO", one_of("DEBUG", "INFO", "WARNING", "ERROR"))
    format: str = key("text", one_of("text", "json"))


@dataclass(frozen=True)
class Settings:
    """Every section; the top level of the TOML file."""
    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    limits: LimitSettings = LimitSettings()
    threading: ThreadingSettings = ThreadingSettings()
    routing: RoutingSettings = RoutingSettings()
    gateway: GatewaySettings = GatewaySettings()
    log: LogSettings = LogSettings()
    smtp: SmtpSettings = SmtpSettings()
    lmtp: LmtpSettings = LmtpSettings()
    http: HttpSettings = HttpSettings()
    daemon: DaemonSettings = DaemonSettings()
    outbound: OutboundSettings = OutboundSettings()
    sms: SmsSettings = SmsSettings()
    security: SecuritySettings = SecuritySettings()
    spam: SpamSettings = SpamSettings()
    service: ServiceSettings = ServiceSettings()
    web: WebSettings = WebSettings()
    statuses: StatusLabels = key(StatusLabels(), read=read_status_labels)  # status_labels.py
    customers: CustomerSettings = CustomerSettings()
    imap: tuple[ImapAccount, ...] = ()
    fields: FieldSettings = FieldSettings()  # what a customer's mail may set (config_rules)
    rules: tuple[Rule, ...] = ()  # [[rules]]: the admin's, in order
    source: str = key("(defaults)", toml=False)  # the file read, for messages

    @property
    def outbox_dir(self) -> Path:
        return Path(self.outbound.dir) if self.outbound.dir else self.storage.dir / "outbox"

    @property
    def database_url(self) -> str:
        url = self.database.url or f"sqlite:///{self.storage.dir / 'mailgate.db'}"
        if self.database.password and "@" in url and ":@" not in url:
            scheme, rest = url.split("://", 1)
            user, host = rest.split("@", 1)
            url = f"{scheme}://{user}:{quote(self.database.password, safe='')}@{host}"
        return url

    def replace(self, **sections: Any) -> "Settings":
        """A copy with whole sections, or some keys of a section, replaced:
        ``settings.replace(limits={"max_depth": 5}, storage=StorageSettings(...))``."""
        changes = {}
        for name, value in sections.items():
            if isinstance(value, dict):
                value = dataclasses.replace(getattr(self, name), **value)
            changes[name] = value
        return dataclasses.replace(self, **changes)

    def problems(self):
        names: set[str] = set()
        for i, account in enumerate(self.imap):
            if account.name in names:
                yield f"imap[{i}].name", f"duplicate account name {account.name!r}"
            names.add(account.name)
        yield from rule_problems(self.rules, self.fields)


def load_settings(path: str | os.PathLike | None = None, env: dict | None = None) -> Settings:
    """Read settings from `path` (or $MAILGATE_CONFIG); raise ConfigError on problems."""
    env = dict(os.environ if env is None else env)
    path = path or env.get("MAILGATE_CONFIG")
    reader = Reader(env)
    settings = reader.section(Settings, _read_toml(path) if path else {}, "")
    if reader.problems:
        raise ConfigError(reader.problems)
    return dataclasses.replace(settings, source=str(path) if path else "(defaults)")


def _read_toml(path: str | os.PathLike) -> dict:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([("(file)", f"cannot read {path}: {exc.strerror}")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([("(file)", f"{path}: {exc}")]) from exc

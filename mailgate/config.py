"""Settings: defaults in code, one TOML file, secrets from the environment or files.

`load_settings()` returns one typed `Settings` object that is passed down to
everything else; nothing reads the environment or the file deeper inside.
Every problem found is reported with its key (``mailgate check`` prints them).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from .service import ServiceSettings, load_service

MiB = 1024 * 1024
MIN_SECRET_BYTES = 32  # the HMAC key behind signed Message-IDs and VERP tags

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
    url: str = ""  # default filled in from [storage] dir
    password: str = ""  # secret: password_env / password_file
    pool_size: int = 10


@dataclass(frozen=True)
class StorageSettings:
    dir: Path = Path("./var")
    keep_raw: bool = True
    fsync: bool = True


@dataclass(frozen=True)
class LimitSettings:
    max_message_size: int = 25 * MiB
    max_attachment_size: int = 10 * MiB
    allowed_types: tuple[str, ...] = DEFAULT_ALLOWED_TYPES
    max_depth: int = 20
    max_parts: int = 500
    max_header_bytes: int = 512 * 1024
    max_addresses: int = 500
    max_received: int = 100
    parse_timeout: float = 20.0
    parse_memory: int = 2048 * MiB
    parse_workers: int = 2
    # attachments that run code when opened: refused unless allowed here
    allow_macros: bool = False  # Office/OpenDocument files with a macro project
    allow_pdf_scripts: bool = False  # PDFs with JavaScript, /Launch or automatic actions


@dataclass(frozen=True)
class ThreadingSettings:
    prefix: str = "MG"
    foreign_sender: str = "new_linked"  # or "append"
    reopen_days: int = 14


@dataclass(frozen=True)
class RoutingSettings:
    catch_all: str = ""  # department key that takes mail for unknown addresses


@dataclass(frozen=True)
class GatewaySettings:
    instance: str = "mailgate"  # loop marker value, also used in Message-IDs
    own_addresses: tuple[str, ...] = ()
    hostname: str = "localhost"


@dataclass(frozen=True)
class SmtpSettings:
    listen: tuple[str, ...] = ("127.0.0.1:2525",)
    max_message_size: int = 25 * MiB
    workers: int = 8  # threads running the pipeline for SMTP/LMTP deliveries
    hostname: str = ""  # announced name; default: the machine's FQDN
    tls_cert: str = ""  # enables STARTTLS
    tls_key: str = ""
    require_tls: bool = False
    auth_users_file: str = ""  # "user:password" lines; enables AUTH PLAIN/LOGIN over TLS
    allow_networks: tuple[str, ...] = ()  # empty: any client that can connect
    max_recipients: int = 100  # RCPTs per message; more get 452 4.5.3 (RFC 5321 4.5.3.1.8)
    # clients (networks) whose Authentication-Results headers count: the MTA in
    # front of us (SMTP or LMTP). Mail from any other client is the sender's
    # word only. Empty: nothing received over SMTP/LMTP carries proof.
    trusted_relays: tuple[str, ...] = ()
    timeout: float = 300.0


@dataclass(frozen=True)
class LmtpSettings:
    listen: tuple[str, ...] = ()


@dataclass(frozen=True)
class HttpSettings:
    listen: str = "127.0.0.1:9025"


@dataclass(frozen=True)
class DaemonSettings:
    shutdown_timeout: float = 30.0
    delivery_workers: int = 0  # processes running the pipeline; 0: two per CPU


@dataclass(frozen=True)
class ImapAccount:
    name: str = ""
    host: str = ""
    port: int = 0  # 0: 993 with tls, 143 otherwise
    security: str = "tls"  # tls | starttls | none
    user: str = ""
    auth: str = "password"  # password | xoauth2
    password: str = ""
    oauth_token_url: str = ""
    oauth_client_id: str = ""
    oauth_client_secret: str = ""
    oauth_refresh_token: str = ""  # empty: client-credentials grant
    oauth_scope: str = ""
    ca_file: str = ""
    folder: str = "INBOX"
    department: str = ""  # department of this mailbox when no address matches
    after: str = "seen"  # seen | move
    processed_folder: str = "Processed"
    quarantine_folder: str = "Quarantine"  # empty: flag $MailgateQuarantined instead
    poll_interval: float = 60.0
    idle: bool = True
    batch_size: int = 20
    timeout: float = 30.0

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.security == "tls" else 143)


@dataclass(frozen=True)
class OutboundSettings:
    transport: str = "file"  # file | smtp
    dir: str = ""  # file transport folder; default <storage.dir>/outbox
    relay_host: str = ""
    relay_port: int = 0  # 0: 465 with tls, 587 with starttls, 25 otherwise
    relay_security: str = "starttls"  # starttls | tls | none
    relay_user: str = ""
    relay_password: str = ""
    relay_timeout: float = 30.0
    from_address: str = ""  # default: the department's first address
    from_name: str = ""  # default: the department's name
    bounce_address: str = ""  # VERP base, e.g. bounces@example.com -> bounces+o42@example.com
    hostname: str = ""  # right-hand side of our Message-IDs; default [gateway] hostname
    default_locale: str = "en"
    timezone: str = "UTC"  # dates in mail, until a department calendar says otherwise
    templates_dir: str = ""  # admin overrides: files here win over templates/
    response_promise: str = ""  # sentence in acknowledgements; default per locale
    notify_statuses: tuple[str, ...] = ("answered", "resolved", "closed", "reopened")
    ack_limit_per_hour: int = 5  # automatic replies to one address per hour
    ack_limit_per_domain: int = 50  # ... to all addresses of one domain per hour
    ack_limit_per_network: int = 20  # ... caused by one client network (/24, /56) per hour
    # no acknowledgement when our boundary's DMARC check failed for the From domain
    # (needs [security] trusted_authserv_ids)
    ack_requires_auth: bool = True
    suppress_after: int = 3  # hard bounces before an address is suppressed
    max_attempts: int = 12
    retry_base: float = 60.0  # seconds; doubles per attempt, capped at 6 h
    send_interval: float = 30.0
    attach_limit: int = 10 * MiB  # attachments copied into agent notifications, in total
    close_words: tuple[str, ...] = ("#close",)


@dataclass(frozen=True)
class SmsSettings:
    backend: str = "log"  # log | webhook | twilio
    max_segments: int = 3
    timeout: float = 10.0
    webhook_url: str = ""
    webhook_method: str = "POST"
    webhook_headers: tuple[str, ...] = ()  # "Name: value" lines
    webhook_body: str = '{"to": {{ to|tojson }}, "text": {{ text|tojson }}}'
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = ""
    twilio_base_url: str = "https://api.twilio.com"


@dataclass(frozen=True)
class SecuritySettings:
    # HMAC key for agent notification Message-IDs; default: a random key kept in
    # <storage.dir>/secret.key (created on first use, mode 0600)
    secret: str = ""
    previous_secret: str = ""  # the key before the last rotation ...
    previous_valid_until: str = ""  # ... accepted until this ISO 8601 moment
    trusted_authserv_ids: tuple[str, ...] = ()  # Authentication-Results from these MTAs count
    # hosts of our own mail boundary (the `by` of their Received: headers); an
    # Authentication-Results header below a Received: by any other host is the
    # sender's own and never counts. Default: the trusted authserv-ids.
    internal_hosts: tuple[str, ...] = ()
    dmarc_alignment: str = "relaxed"  # relaxed (same organizational domain) | strict
    proof_max_age_days: int = 30  # a signed Message-ID proves its reader this long


@dataclass(frozen=True)
class LogSettings:
    level: str = "INFO"
    format: str = "text"  # or "json"


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    threading: ThreadingSettings = field(default_factory=ThreadingSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    log: LogSettings = field(default_factory=LogSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    lmtp: LmtpSettings = field(default_factory=LmtpSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    sms: SmsSettings = field(default_factory=SmsSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    imap: tuple[ImapAccount, ...] = ()
    source: str = "(defaults)"

    @property
    def outbox_dir(self) -> Path:
        return Path(self.outbound.dir) if self.outbound.dir else self.storage.dir / "outbox"

    @property
    def database_url(self) -> str:
        url = self.database.url or f"sqlite:///{self.storage.dir / 'mailgate.db'}"
        if self.database.password and "@" in url and ":@" not in url:
            scheme, rest = url.split("://", 1)
            user, host = rest.split("@", 1)
            from urllib.parse import quote

            url = f"{scheme}://{user}:{quote(self.database.password, safe='')}@{host}"
        return url

    def replace(self, **sections: Any) -> "Settings":
        """A copy with whole sections or section fields replaced (tests use this)."""
        changes = {}
        for name, value in sections.items():
            if isinstance(value, dict):
                value = dataclasses.replace(getattr(self, name), **value)
            changes[name] = value
        return dataclasses.replace(self, **changes)


SECTIONS = {f.name for f in dataclasses.fields(Settings)
            if f.name not in ("source", "imap", "service")}
CHOICES = {
    ("threading", "foreign_sender"): {"new_linked", "append"},
    ("log", "format"): {"text", "json"},
    ("log", "level"): {"DEBUG", "INFO", "WARNING", "ERROR"},
    ("imap", "security"): {"tls", "starttls", "none"},
    ("imap", "auth"): {"password", "xoauth2"},
    ("imap", "after"): {"seen", "move"},
    ("outbound", "transport"): {"file", "smtp"},
    ("outbound", "relay_security"): {"starttls", "tls", "none"},
    ("sms", "backend"): {"log", "webhook", "twilio"},
    ("sms", "webhook_method"): {"GET", "POST", "PUT"},
    ("security", "dmarc_alignment"): {"relaxed", "strict"},
}


def _convert(key: str, value: Any, kind: Any, problems: list) -> Any:
    origin = getattr(kind, "__origin__", None)
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    elif kind is Path:
        if isinstance(value, str):
            return Path(value)
    elif origin is tuple:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
    problems.append((key, f"expected {getattr(kind, '__name__', kind)}, got {value!r}"))
    return None


def _read_secret(key: str, table: dict, name: str, env: dict, problems: list) -> str | None:
    """A secret may come from NAME, NAME_env (a variable's name) or NAME_file."""
    if f"{name}_env" in table:
        var = table[f"{name}_env"]
        if var not in env:
            problems.append((f"{key}_env", f"environment variable {var} is not set"))
            return None
        return env[var]
    if f"{name}_file" in table:
        path = Path(table[f"{name}_file"])
        try:
            return path.read_text().strip()
        except OSError as exc:
            problems.append((f"{key}_file", f"cannot read {path}: {exc.strerror}"))
            return None
    return table.get(name)


def _build(cls: type, name: str, where: str, table: dict, env: dict, problems: list) -> Any:
    """An instance of the dataclass `cls` from `table`; problems keyed by `where`.KEY."""
    hints = get_type_hints(cls)
    known = set(hints) | {f"{k}_env" for k in hints} | {f"{k}_file" for k in hints}
    for key in table:
        if key not in known:
            problems.append((f"{where}.{key}", "unknown key"))
    values = {}
    for key, kind in hints.items():
        raw = _read_secret(f"{where}.{key}", table, key, env, problems)
        if raw is None:
            continue
        value = _convert(f"{where}.{key}", raw, kind, problems)
        if value is None:
            continue
        allowed = CHOICES.get((name, key))
        if allowed and value not in allowed:
            problems.append((f"{where}.{key}", f"must be one of {sorted(allowed)}"))
            continue
        values[key] = value
    return cls(**values)


def _build_imap(tables: Any, env: dict, problems: list) -> tuple[ImapAccount, ...]:
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        problems.append(("imap", "must be an array of tables: [[imap]]"))
        return ()
    accounts, names = [], set()
    for i, table in enumerate(tables):
        where = f"imap[{i}]"
        account = _build(ImapAccount, "imap", where, table, env, problems)
        if not account.name or not account.host or not account.user:
            problems.append((where, "name, host and user are required"))
        if account.name in names:
            problems.append((f"{where}.name", f"duplicate account name {account.name!r}"))
        names.add(account.name)
        if account.auth == "password" and not account.password:
            problems.append((f"{where}.password", "required (password_env / password_file)"))
        if account.auth == "xoauth2" and not (account.oauth_token_url and account.oauth_client_id):
            problems.append((f"{where}.oauth_token_url",
                             "xoauth2 needs oauth_token_url and oauth_client_id"))
        accounts.append(account)
    return tuple(accounts)


def split_hostport(value: str) -> tuple[str, int] | None:
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        return None
    return host, int(port)


def _check_values(settings: Settings, problems: list) -> None:
    limits = settings.limits
    for key in ("max_message_size", "max_attachment_size", "max_depth", "max_parts",
                "max_header_bytes", "max_addresses", "parse_workers"):
        if getattr(limits, key) <= 0:
            problems.append((f"limits.{key}", "must be positive"))
    prefix = settings.threading.prefix
    if not prefix.isalnum() or not prefix.isascii():
        problems.append(("threading.prefix", "must be ASCII letters and digits"))
    addresses = [("smtp.listen", a) for a in settings.smtp.listen]
    addresses += [("lmtp.listen", a) for a in settings.lmtp.listen] + [("http.listen",
                                                                         settings.http.listen)]
    for key, value in addresses:
        if split_hostport(value) is None:
            problems.append((key, f"not host:port: {value!r}"))
    if bool(settings.smtp.tls_cert) != bool(settings.smtp.tls_key):
        problems.append(("smtp.tls_cert", "tls_cert and tls_key go together"))
    for key in ("tls_cert", "tls_key", "auth_users_file"):
        path = getattr(settings.smtp, key)
        if path and not Path(path).is_file():
            problems.append((f"smtp.{key}", f"no such file: {path}"))
    out = settings.outbound
    if out.transport == "smtp" and not out.relay_host:
        problems.append(("outbound.relay_host", "required with transport = \"smtp\""))
    for key in ("from_address", "bounce_address"):
        value = getattr(out, key)
        if value and ("@" not in value or any(c in value for c in " <>\r\n")):
            problems.append((f"outbound.{key}", f"not an address: {value!r}"))
    until = settings.security.previous_valid_until
    if until:
        try:
            moment = dt.datetime.fromisoformat(until)
            if moment.tzinfo is None:
                raise ValueError
        except ValueError:
            problems.append(("security.previous_valid_until",
                             "an ISO 8601 moment with offset, e.g. 2026-12-31T00:00:00+00:00"))
    for key in ("secret", "previous_secret"):
        value = getattr(settings.security, key)
        if value and len(value.encode()) < MIN_SECRET_BYTES:
            problems.append((f"security.{key}", f"too short: at least {MIN_SECRET_BYTES} "
                             "bytes (e.g. `openssl rand -hex 32`)"))
    if settings.smtp.max_recipients < 1:
        problems.append(("smtp.max_recipients", "at least 1"))
    if settings.security.proof_max_age_days < 1:
        problems.append(("security.proof_max_age_days", "at least 1"))
    if settings.security.previous_secret and not until:
        problems.append(("security.previous_valid_until", "required with previous_secret"))
    sms = settings.sms
    if sms.backend == "webhook" and not sms.webhook_url:
        problems.append(("sms.webhook_url", "required with backend = \"webhook\""))
    if sms.backend == "twilio" and not (sms.twilio_account_sid and sms.twilio_auth_token
                                        and sms.twilio_from):
        problems.append(("sms.twilio_account_sid",
                         "twilio needs twilio_account_sid, twilio_auth_token and twilio_from"))
    if settings.smtp.auth_users_file and not settings.smtp.tls_cert:
        problems.append(("smtp.auth_users_file", "AUTH needs STARTTLS (tls_cert, tls_key)"))
    for key in ("allow_networks", "trusted_relays"):
        for net in getattr(settings.smtp, key):
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                problems.append((f"smtp.{key}", f"not a network: {net!r}"))


def load_settings(path: str | os.PathLike | None = None, env: dict | None = None) -> Settings:
    """Read settings from `path` (or $MAILGATE_CONFIG); raise ConfigError on problems."""
    env = dict(os.environ if env is None else env)
    path = path or env.get("MAILGATE_CONFIG")
    data: dict = {}
    problems: list[tuple[str, str]] = []
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError([("(file)", f"cannot read {path}: {exc.strerror}")]) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([("(file)", f"{path}: {exc}")]) from exc
    sections: dict[str, Any] = {}
    for name, table in data.items():
        if name == "imap":
            sections["imap"] = _build_imap(table, env, problems)
        elif name == "service":
            sections["service"] = load_service(table, problems)
        elif name not in SECTIONS:
            problems.append((name, "unknown section"))
        elif not isinstance(table, dict):
            problems.append((name, "must be a table"))
        else:
            cls = get_type_hints(Settings)[name]
            sections[name] = _build(cls, name, name, table, env, problems)
    settings = Settings(**sections, source=str(path) if path else "(defaults)")
    _check_values(settings, problems)
    if problems:
        raise ConfigError(problems)
    return settings

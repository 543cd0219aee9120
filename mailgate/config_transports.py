"""Settings of the peers mailgate talks to: [smtp], [lmtp], [http], [[imap]], [outbound], [sms].

Sections declared with `config_keys.key`; `mailgate.config` gathers them into
`Settings` (import them from there).
"""
from __future__ import annotations

from dataclasses import dataclass

from .config_checks import (address, at_least, each, existing_file, host_port, network,
                            one_of, region_code)
from .config_keys import MiB, key
from .service import known_timezone


@dataclass(frozen=True)
class SmtpSettings:
    listen: tuple[str, ...] = key(("127.0.0.1:2525",), each(host_port))
    max_message_size: int = key(25 * MiB)
    # threads that hand SMTP/LMTP deliveries to the delivery worker processes and
    # wait for them, so that the listener never blocks
    workers: int = key(8)
    hostname: str = key("")  # announced name; default: the machine's FQDN
    tls_cert: str = key("", existing_file)  # enables STARTTLS
    tls_key: str = key("", existing_file)
    require_tls: bool = key(False)
    # "user:password" lines; enables AUTH PLAIN/LOGIN over TLS
    auth_users_file: str = key("", existing_file)
    allow_networks: tuple[str, ...] = key((), each(network))  # empty: any client that can connect
    # RCPTs per message; more get 452 4.5.3 (RFC 5321 4.5.3.1.8)
    max_recipients: int = key(100, at_least(1))
    # clients (networks) whose Authentication-Results headers count: the MTA in
    # front of us (SMTP or LMTP). Mail from any other client is the sender's
    # word only. Empty: nothing received over SMTP/LMTP carries proof.
    trusted_relays: tuple[str, ...] = key((), each(network))
    timeout: float = key(300.0)

    def problems(self):
        if bool(self.tls_cert) != bool(self.tls_key):
            yield "tls_cert", "tls_cert and tls_key go together"
        if self.auth_users_file and not self.tls_cert:
            yield "auth_users_file", "AUTH needs STARTTLS (tls_cert, tls_key)"


@dataclass(frozen=True)
class LmtpSettings:
    listen: tuple[str, ...] = key((), each(host_port))


@dataclass(frozen=True)
class HttpSettings:
    listen: str = key("127.0.0.1:9025", host_port)


@dataclass(frozen=True)
class ImapAccount:
    name: str = key("", required="is required")
    host: str = key("", required="is required")
    port: int = key(0)  # 0: 993 with tls, 143 otherwise
    security: str = key("tls", one_of("tls", "starttls", "none"))
    user: str = key("", required="is required")
    auth: str = key("password", one_of("password", "xoauth2"))
    password: str = key("")
    oauth_token_url: str = key("")
    oauth_client_id: str = key("")
    oauth_client_secret: str = key("")
    oauth_refresh_token: str = key("")  # empty: client-credentials grant
    oauth_scope: str = key("")
    ca_file: str = key("")
    folder: str = key("INBOX")
    department: str = key("")  # department of this mailbox when no address matches
    after: str = key("seen", one_of("seen", "move"))
    processed_folder: str = key("Processed")
    quarantine_folder: str = key("Quarantine")  # empty: flag $MailgateQuarantined instead
    poll_interval: float = key(60.0)
    idle: bool = key(True)
    batch_size: int = key(20)
    timeout: float = key(30.0)

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.security == "tls" else 143)

    def problems(self):
        if self.auth == "password" and not self.password:
            yield "password", "required (password_env / password_file)"
        if self.auth == "xoauth2" and not (self.oauth_token_url and self.oauth_client_id):
            yield "oauth_token_url", "xoauth2 needs oauth_token_url and oauth_client_id"


@dataclass(frozen=True)
class OutboundSettings:
    transport: str = key("file", one_of("file", "smtp"))
    dir: str = key("")  # file transport folder; default <storage.dir>/outbox
    relay_host: str = key("")
    relay_port: int = key(0)  # 0: 465 with tls, 587 with starttls, 25 otherwise
    relay_security: str = key("starttls", one_of("starttls", "tls", "none"))
    relay_user: str = key("")
    relay_password: str = key("")
    relay_timeout: float = key(30.0)
    from_address: str = key("", address)  # default: the department's first address
    from_name: str = key("")  # default: the department's name
    # VERP base, e.g. bounces@example.com -> bounces+o42@example.com
    bounce_address: str = key("", address)
    hostname: str = key("")  # right-hand side of our Message-IDs; default [gateway] hostname
    default_locale: str = key("en")
    # dates in mail about a department without a service calendar (a calendar's zone wins)
    timezone: str = key("UTC", known_timezone)
    templates_dir: str = key("")  # admin overrides: files here win over templates/
    response_promise: str = key("")  # sentence in acknowledgements; default per locale
    notify_statuses: tuple[str, ...] = key(("answered", "resolved", "closed", "reopened"))
    ack_limit_per_hour: int = key(5)  # automatic replies to one address per hour
    ack_limit_per_domain: int = key(50)  # ... to all addresses of one domain per hour
    ack_limit_per_network: int = key(20)  # ... caused by one client network (/24, /56) per hour
    # no acknowledgement when our boundary's DMARC check failed for the From domain
    # (needs [security] trusted_authserv_ids)
    ack_requires_auth: bool = key(True)
    suppress_after: int = key(3)  # hard bounces before an address is suppressed
    workers: int = key(4, at_least(1))  # deliveries at once, each with its own relay connection
    max_attempts: int = key(12)
    retry_base: float = key(60.0)  # seconds; doubles per attempt, capped at 6 h
    send_interval: float = key(30.0)
    attach_limit: int = key(10 * MiB)  # attachments copied into agent notifications, in total
    close_words: tuple[str, ...] = key(("#close",))

    def problems(self):
        if self.transport == "smtp" and not self.relay_host:
            yield "relay_host", 'required with transport = "smtp"'


@dataclass(frozen=True)
class SmsSettings:
    backend: str = key("log", one_of("log", "webhook", "twilio"))
    # where a phone number written without its country code (0912 …) is read when
    # neither the contact's nor their department's locale says (fa: IR, ka: GE)
    default_region: str = key("", region_code)
    max_segments: int = key(3)
    timeout: float = key(10.0)
    webhook_url: str = key("")
    webhook_method: str = key("POST", one_of("GET", "POST", "PUT"))
    webhook_headers: tuple[str, ...] = key(())  # "Name: value" lines
    webhook_body: str = key('{"to": {{ to|tojson }}, "text": {{ text|tojson }}}')
    twilio_account_sid: str = key("")
    twilio_auth_token: str = key("")
    twilio_from: str = key("")
    twilio_base_url: str = key("https://api.twilio.com")

    def problems(self):
        if self.backend == "webhook" and not self.webhook_url:
            yield "webhook_url", 'required with backend = "webhook"'
        if self.backend == "twilio" and not (self.twilio_account_sid and self.twilio_auth_token
                                             and self.twilio_from):
            yield "twilio_account_sid", ("twilio needs twilio_account_sid, twilio_auth_token "
                                         "and twilio_from")

"""[web]: the customers' status pages (`mailgate/web/`), served by `mailgate run`.

Declared with `config_keys.key`; `mailgate.config` puts the section into
`Settings` as `settings.web`.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from .config_checks import at_least, describes, host_port
from .config_keys import key, toml


@describes('"host:port" string')
def listen_address(value: str) -> str | None:
    """host:port, or empty (the pages are not served by this daemon)."""
    return host_port(value) if value else None


@describes("absolute http(s) URL string")
def absolute_url(value: str) -> str | None:
    """`https://support.example.com/status` (no query or fragment), or empty."""
    if not value:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname \
            or parts.query or parts.fragment:
        return f"not an absolute http(s) URL without query: {toml(value)}"
    return None


@dataclass(frozen=True)
class WebSettings:
    # where this daemon serves the pages; empty: not served here
    listen: str = key("", listen_address)
    # the pages as customers reach them (a reverse proxy in front); empty: no status
    # links in mail
    base_url: str = key("", absolute_url)
    link_days: int = key(90, at_least(1))  # how long a status link works

    @property
    def root(self) -> str:
        """`base_url` without its trailing slash."""
        return self.base_url.rstrip("/")

    def problems(self):
        if self.listen and not self.base_url:
            yield "base_url", ("required with listen: the status links in mail name it "
                               '(e.g. "https://support.example.com/status")')

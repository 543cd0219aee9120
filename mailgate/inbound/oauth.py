"""OAuth 2.0 access tokens for IMAP XOAUTH2 (Google and Microsoft 365 have retired
passwords for IMAP).

A token is obtained from the provider's token endpoint with a refresh token
(user mailboxes) or with the client-credentials grant (Microsoft 365 app access),
cached, and refreshed a minute before it expires. The IMAP poller logs in with it
(`imap/client.py`) and drops it (`invalidate`) after a pass that failed with an IMAP
error, a refused token among them.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from ..config import ImapAccount


class TokenError(Exception):
    pass


class TokenSource:
    def __init__(self, account: ImapAccount, clock=time.monotonic):
        self.account = account
        self.clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def form(self) -> dict[str, str]:
        a = self.account
        data = {"client_id": a.oauth_client_id}
        if a.oauth_client_secret:
            data["client_secret"] = a.oauth_client_secret
        if a.oauth_refresh_token:
            data.update(grant_type="refresh_token", refresh_token=a.oauth_refresh_token)
        else:
            data["grant_type"] = "client_credentials"
        if a.oauth_scope:
            data["scope"] = a.oauth_scope
        return data

    def token(self) -> str:
        with self._lock:
            if self._token and self.clock() < self._expires - 60:
                return self._token
            body = urllib.parse.urlencode(self.form()).encode()
            request = urllib.request.Request(self.account.oauth_token_url, data=body, headers={
                "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.account.timeout) as response:
                    reply = json.loads(response.read().decode("utf-8"))
            except (urllib.error.URLError, OSError, ValueError) as error:
                raise TokenError(f"token endpoint {self.account.oauth_token_url}: {error}") \
                    from error
            if "access_token" not in reply:
                raise TokenError(f"token endpoint refused: {reply.get('error', reply)}")
            self._token = reply["access_token"]
            self._expires = self.clock() + float(reply.get("expires_in", 3600))
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

"""The status pages' Starlette app: routes and the headers every answer carries.
`create_app(gw)` reads `gw.settings` at each request, so a reload applies.

Every answer carries a strict Content-Security-Policy (nothing but our own
stylesheet; no script, frame, remote image or font), `Referrer-Policy:
no-referrer` (the signed link must not leak to another site), `no-store`
caching, `nosniff` and `frame-ancestors 'none'`. No page needs JavaScript.
"""
from __future__ import annotations

from typing import Callable

from starlette.applications import Starlette
from starlette.routing import Route

from ..gateway import Gateway
from . import pages
from .render import stylesheet

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"referrer-policy", b"no-referrer"),
           (b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
           (b"cache-control", b"no-store"), (b"cross-origin-resource-policy", b"same-origin")]


class SecurityHeaders:
    """ASGI middleware: HEADERS on every HTTP answer, whatever the route."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [
                    *[(k, v) for k, v in message.get("headers", []) if k not in dict(HEADERS)],
                    *HEADERS]}
            await send(message)

        return await self.app(scope, receive, with_headers)


def create_app(gw: Gateway, wake: Callable[[], None] = lambda: None) -> SecurityHeaders:
    """The app over `gw`; `wake()` is called after a commit that queued mail."""
    app = Starlette(routes=[
        Route("/ticket/{token}", pages.ticket_page),
        Route("/tickets/{token}", pages.list_page),
        Route("/file/{token}/{name}", pages.file_download),
        Route("/renew", pages.renew, methods=["POST"]),
        Route("/static/page.css", stylesheet),
    ])
    app.state.gw = gw
    app.state.wake = wake
    return SecurityHeaders(app)

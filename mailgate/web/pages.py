"""The status pages: a ticket, the list of a contact's tickets, a file, and a fresh
link by mail. Each page opens one unit of work, reads plain values (`data.py`) and
renders them; anything a link does not open is one plain page (403, or 410 for an
authentic link that expired) that says nothing about why."""
from __future__ import annotations

import functools
from urllib.parse import parse_qsl, quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..models import utcnow
from ..outbound.contexts import locale_for
from ..signing import signer_for
from . import data
from .forms import OPEN, filters, read_form
from .links import FILE_LINK_LIFE, Link, LinkState, Scope, derive, read
from .render import chosen_locale, page
from .renew import send_fresh_link
from .words import LOCALES, Speaker

FORM_LIMIT = 4096  # bytes of the fresh-link form's body


def opens(scope: Scope, root: str = "../"):
    """An endpoint for the links of `scope`, called as `endpoint(request, link)` with a
    valid one; any other link gets `refused`."""
    def wrap(endpoint):
        @functools.wraps(endpoint)
        def answer(request: Request) -> Response:
            state, link = read(signer_for(request.app.state.gw.settings),
                               request.path_params["token"], scope, utcnow())
            if state is not LinkState.VALID:
                return refused(request, state, root)
            return endpoint(request, link)
        return answer
    return wrap


def switcher(query: dict) -> dict[str, str]:
    """The language switcher's links: this page, with the same filters, in each locale."""
    return {code: "?" + urlencode({**query, "lang": code}) for code in LOCALES}


def refused(request: Request, state: LinkState, root: str = "../") -> Response:
    """The one page for a link that opens nothing: a form for a fresh link by mail."""
    query = dict(request.query_params)
    speaker = Speaker(request.app.state.gw.settings,
                      chosen_locale(query, request.app.state.gw.settings.outbound.default_locale))
    expired = state is LinkState.EXPIRED
    return page("refused.html", speaker, 410 if expired else 403, root=root,
                title=speaker.t("expired" if expired else "invalid"),
                token=request.path_params.get("token", ""), switch=switcher(query))


@opens(Scope.TICKET)
def ticket_page(request: Request, link: Link) -> Response:
    gw, now, query = request.app.state.gw, utcnow(), dict(request.query_params)
    with gw.db.unit_of_work() as session:
        ticket = data.visible_ticket(session, link.subject, link.contact)
        if ticket is None:
            return refused(request, LinkState.INVALID)
        who = data.contact(session, link.contact)
        speaker = Speaker(gw.settings, chosen_locale(query, locale_for(gw.settings, who, ticket)))
        view = data.ticket_view(session, gw.settings, ticket)
    files = {i: derive(gw.settings, link, Scope.FILE, i, now, FILE_LINK_LIFE)
             for m in view["messages"] for i in m["attachment_ids"]}
    return page("ticket.html", speaker, ticket=view, files=files, quote=quote,
                list_token=derive(gw.settings, link, Scope.LIST, 0, now),
                title=speaker.t("ticket", number=view["number"]), switch=switcher(query))


@opens(Scope.LIST)
def list_page(request: Request, link: Link) -> Response:
    gw, now, query = request.app.state.gw, utcnow(), dict(request.query_params)
    with gw.db.unit_of_work() as session:
        who = data.contact(session, link.contact)
        latest = data.latest_ticket(session, link.contact)
        if who is None or latest is None:
            return refused(request, LinkState.INVALID)
        speaker = Speaker(gw.settings, chosen_locale(query, locale_for(gw.settings, who, latest)))
        categories = data.contact_categories(session, link.contact)
        form = read_form(query, categories)
        timezone = data.summary(gw.settings, latest)["timezone"]
        rows = data.contact_tickets(session, gw.settings, link.contact, filters(form, timezone))
    tokens = {row["id"]: derive(gw.settings, link, Scope.TICKET, row["id"], now) for row in rows}
    return page("tickets.html", speaker, rows=rows, tokens=tokens, form=form,
                categories=categories, open_choice=OPEN, title=speaker.t("your_tickets"),
                switch=switcher(query), lang_value=query.get("lang", ""))


@opens(Scope.FILE, root="../../")
def file_download(request: Request, link: Link) -> Response:
    gw = request.app.state.gw
    with gw.db.unit_of_work() as session:
        attachment = data.visible_attachment(session, link.subject, link.contact)
        if attachment is None:
            return refused(request, LinkState.INVALID, root="../../")
        name, digest = attachment.filename or "attachment", attachment.sha256
    body = gw.storage.attachments.get(digest)
    # never rendered by the browser as ours: a download, of an opaque type
    return Response(body, media_type="application/octet-stream", headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}"})


async def renew(request: Request) -> Response:
    """POST from a refused link's page: a fresh link by mail to the address on file of
    the contact the link was made for (if it was ours at all); the same answer either way."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            break
    form = dict(parse_qsl(body[:FORM_LIMIT].decode("utf-8", "replace")))
    gw = request.app.state.gw
    if await run_in_threadpool(send_fresh_link, gw, form.get("token", ""), utcnow()):
        request.app.state.wake()  # the outbox sender: deliver now
    speaker = Speaker(gw.settings, chosen_locale(form, gw.settings.outbound.default_locale))
    return page("sent.html", speaker, root="./", title=speaker.t("sent"), switch={})


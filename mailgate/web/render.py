"""The status pages' templates (one set for every locale: the words come from
`words.py`) and the stylesheet, the only other thing a page loads."""
from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.responses import HTMLResponse, Response

from ..localdates import language
from .words import LOCALES, Speaker

HERE = Path(__file__).resolve().parent
STYLESHEET = (HERE / "static" / "page.css").read_bytes()
TEMPLATES = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=True,
                        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def chosen_locale(query: dict, fallback: str) -> str:
    """The locale the switcher chose (`?lang=fa`), else `fallback`."""
    chosen = query.get("lang", "")
    return chosen if chosen in LOCALES else language(fallback)


def page(name: str, speaker: Speaker, status: int = 200, root: str = "../", **values
         ) -> HTMLResponse:
    """Template `name` in the speaker's locale; `root`: the app's root, relative to the
    page (links stay right behind any path prefix a proxy adds)."""
    html = TEMPLATES.get_template(name).render(
        t=speaker.t, s=speaker, lang=speaker.lang, dir=speaker.dir, root=root,
        locales=LOCALES, **values)
    return HTMLResponse(html, status, headers={"Content-Language": speaker.lang})


def stylesheet(request) -> Response:
    return Response(STYLESHEET, media_type="text/css")

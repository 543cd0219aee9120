"""Templates: one Jinja2 environment, one folder per locale, admin overrides first.

Each message NAME is `templates/<locale>/NAME.subject`, `NAME.txt` and optionally
`NAME.html` (then the mail is multipart/alternative); SMS texts are
`templates/<locale>/sms/NAME.txt`. Files starting with "_" are not messages: the
messages of a locale extend its `_layout.html` / `_layout.txt` and import names
and macros from its `_parts.html` / `_parts.txt`, by locale-prefixed name
("fa/_layout.html"). A file of the same relative name in `[outbound]
templates_dir` wins over the built-in one, so an override can replace a layout
or part, or extend the built-in one. A template missing in a locale falls back
to `en` with a warning. Templates receive plain values (dicts, strings,
datetimes), never ORM objects. HTML is autoescaped; a missing variable is an
error (StrictUndefined), so `mailgate check` catches typos. A template is read
once (no `auto_reload`: asking the disk whether every template, layout and part
had changed cost more than a third of rendering an acknowledgement); the daemon
makes new Templates on SIGHUP, so an edited one takes effect at the next reload.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)

from ..config import Settings
from ..mail.headers import one_line
from ..localdates import format_date, format_datetime, format_due, language, to_persian_digits
from ..status_labels import status_labels

log = logging.getLogger("mailgate.templates")


def builtin_folder() -> Path:
    """The built-in templates: `mailgate/templates` inside an installed package (the
    build maps the checkout's top-level `templates/` there), else the checkout's own
    `templates/` (an editable install runs from the source tree)."""
    package = Path(str(resources.files("mailgate")))
    for folder in (package / "templates", package.parent / "templates"):
        if (folder / "en").is_dir():
            return folder
    return package / "templates"  # missing: `mailgate check` says so


BUILTIN = builtin_folder()
RTL = {"fa", "ar", "he", "ur"}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


class Templates:
    def __init__(self, settings: Settings):
        self.settings = settings
        folders = [settings.outbound.templates_dir] if settings.outbound.templates_dir else []
        self.folders = [Path(f) for f in folders] + [BUILTIN]
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(str(f)) for f in self.folders]),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=True,
            lstrip_blocks=True, auto_reload=False)
        self._resolved: dict[tuple[str, str], str | None] = {}  # see _resolve

    def locales(self) -> list[str]:
        return sorted({p.name for f in self.folders if f.is_dir() for p in f.iterdir()
                       if p.is_dir()})

    def names(self, sms: bool = False) -> list[str]:
        """The messages (or SMS texts): files starting with "_" are layouts and parts."""
        folder = BUILTIN / "en" / ("sms" if sms else "")
        suffix = ".txt"
        return sorted(p.name[: -len(suffix)] for p in folder.glob(f"*{suffix}")
                      if not p.name.startswith("_"))

    def _resolve(self, locale: str, relative: str) -> str | None:
        """`<lang>/relative` if it exists, else `en/relative` (warned once), else None;
        remembered, as the templates are (a miss costs the loaders a look on disk)."""
        key = (locale, relative)
        if key not in self._resolved:
            self._resolved[key] = self._find(locale, relative)
        return self._resolved[key]

    def _find(self, locale: str, relative: str) -> str | None:
        lang = language(locale) if locale else "en"
        for candidate in (f"{lang}/{relative}", f"en/{relative}"):
            try:
                self.env.get_template(candidate)
            except TemplateNotFound:
                continue
            if not candidate.startswith(f"{lang}/"):
                log.warning("template %s missing for locale %s; using en", relative, lang)
            return candidate
        return None

    def _context(self, locale: str, context: dict) -> dict:
        lang = language(locale)
        tz = context.get("timezone") or self.settings.outbound.timezone

        def when(value):
            if isinstance(value, str):
                value = dt.datetime.fromisoformat(value)
            return format_datetime(value, lang, tz) if value else ""

        def due(value):  # a deadline: with its time zone in every locale
            if isinstance(value, str):
                value = dt.datetime.fromisoformat(value)
            return format_due(value, lang, tz) if value else ""

        def day(value):
            if isinstance(value, str):
                value = dt.datetime.fromisoformat(value)
            return format_date(value, lang, tz) if value else ""

        def digits(value):
            return to_persian_digits(str(value)) if lang == "fa" else str(value)

        def size(value):
            value = int(value)
            text = (f"{value / 1048576:.1f} MB" if value >= 1048576 else
                    f"{value / 1024:.0f} KB" if value >= 1024 else f"{value} B")
            return digits(text)

        department = context.get("department")
        labels = status_labels(self.settings, lang,
                               department.get("key") if isinstance(department, dict) else None)
        return {**context, "locale": lang, "dir": "rtl" if lang in RTL else "ltr",
                "when": when, "due": due, "day": day, "digits": digits, "size": size,
                "status_labels": labels}

    def render(self, name: str, locale: str, context: dict) -> Rendered:
        """The subject (one line), text and HTML of message `name`."""
        values = self._context(locale, context)
        subject_name = self._resolve(locale, f"{name}.subject")
        text_name = self._resolve(locale, f"{name}.txt")
        if subject_name is None or text_name is None:
            raise TemplateNotFound(f"{name}.subject/.txt")
        html_name = self._resolve(locale, f"{name}.html")
        subject = one_line(self.env.get_template(subject_name).render(values), 900)
        text = self.env.get_template(text_name).render(values)
        html = self.env.get_template(html_name).render(values) if html_name else None
        return Rendered(subject, text, html)

    def render_sms(self, name: str, locale: str, context: dict) -> str:
        template = self._resolve(locale, f"sms/{name}.txt")
        if template is None:
            raise TemplateNotFound(f"sms/{name}.txt")
        return self.env.get_template(template).render(self._context(locale, context)).strip()

    def check(self, samples: dict[str, dict]) -> list[tuple[str, str]]:
        """Render every message and SMS in every locale; (template, error) for failures."""
        problems = []
        for locale in self.locales():
            for name in self.names():
                try:
                    self.render(name, locale, samples.get(name, samples["_default"]))
                except Exception as error:  # report every kind of template error
                    problems.append((f"{locale}/{name}", f"{error.__class__.__name__}: {error}"))
            for name in self.names(sms=True):
                try:
                    self.render_sms(name, locale, samples.get(name, samples["_default"]))
                except Exception as error:
                    problems.append((f"{locale}/sms/{name}",
                                     f"{error.__class__.__name__}: {error}"))
        return problems

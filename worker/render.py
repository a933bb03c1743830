"""Email rendering: sandboxed Jinja2 -> subject, preheader, HTML (CSS inlined) and text.

Templates are marketers' content, so they run in a SandboxedEnvironment with
StrictUndefined (a misspelt variable fails loudly instead of mailing a blank) and see only
the plain values in the context we pass: no settings, no environment, no files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import FileSystemLoader, StrictUndefined, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

_MONTHS = {
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    "pt_BR": [
        "janeiro",
        "fevereiro",
        "março",
        "abril",
        "maio",
        "junho",
        "julho",
        "agosto",
        "setembro",
        "outubro",
        "novembro",
        "dezembro",
    ],
}


class TemplateMissing(LookupError):
    """No template of that name in any of the lookup folders."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    preheader: str
    html: str
    text: str


def format_date(value: date | datetime | str | None, locale: str = "en") -> str:
    """'March 5, 2026' / '5 de março de 2026'."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    months = _MONTHS.get(locale, _MONTHS["en"])
    month = months[value.month - 1]
    if locale == "pt_BR":
        return f"{value.day} de {month} de {value.year}"
    return f"{month} {value.day}, {value.year}"


def one_line(value: str) -> str:
    """Subjects and preheaders are header-like: never let a newline through."""
    return re.sub(r"\s+", " ", value).strip()


class Renderer:
    """Compiles each template once per process and renders it for a locale and membership."""

    def __init__(self, templates_dir: Path, default_locale: str = "en") -> None:
        self.templates_dir = Path(templates_dir)
        self.default_locale = default_locale
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader(str(self.templates_dir)),
            undefined=StrictUndefined,
            autoescape=lambda name: bool(name and name.endswith(".html")),
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self.env.filters["date"] = format_date
        self._inliner = css_inline.CSSInliner(load_remote_stylesheets=False)

    def candidates(self, name: str, locale: str, membership_id: str | None) -> list[str]:
        """The lookup order: membership + locale, membership + default locale, locale,
        default locale."""
        locales = [locale] if locale == self.default_locale else [locale, self.default_locale]
        folders = []
        if membership_id:
            folders += [f"memberships/{membership_id}/{loc}" for loc in locales]
        folders += locales
        return [f"{folder}/{name}" for folder in folders]

    def resolve(self, name: str, locale: str, membership_id: str | None) -> str:
        for candidate in self.candidates(name, locale, membership_id):
            if (self.templates_dir / candidate).is_file():
                return candidate
        raise TemplateMissing(f"no template {name!r} for locale {locale!r}")

    def render(
        self,
        name: str,
        context: Mapping[str, Any],
        *,
        locale: str,
        membership_id: str | None = None,
    ) -> RenderedEmail:
        locale = locale if (self.templates_dir / locale).is_dir() else self.default_locale
        values = {**context, "locale": locale}
        try:
            html_tpl = self.env.get_template(self.resolve(f"{name}.html", locale, membership_id))
            text_tpl = self.env.get_template(self.resolve(f"{name}.txt", locale, membership_id))
        except TemplateNotFound as exc:
            raise TemplateMissing(str(exc)) from exc
        block_ctx = html_tpl.new_context(values)
        subject = one_line("".join(html_tpl.blocks["subject"](block_ctx)))
        preheader = one_line("".join(html_tpl.blocks["preheader"](block_ctx)))
        html = self._inliner.inline(html_tpl.render(values))
        text = text_tpl.render(values).strip() + "\n"
        return RenderedEmail(subject=subject, preheader=preheader, html=html, text=text)

"""Email rendering: sandboxed Jinja2 -> subject, preheader, HTML (CSS inlined) and text.

Templates are marketers' content, so they run in an immutable SandboxedEnvironment with
StrictUndefined (a misspelt variable fails loudly instead of mailing a blank) and see only
the plain values in the context we pass: no settings, no environment, no files. Rendering is
bounded in time and size (worker/sandbox.py), so a template that loops forever or builds a
huge string fails with `RenderLimitError` instead of hanging a worker or eating its memory.
"""

from __future__ import annotations

import html as html_escape
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import (
    BaseLoader,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    pass_context,
)
from jinja2.runtime import Context
from jinja2.utils import Cycler, Joiner

from .sandbox import (
    MAX_VALUE_CHARS,
    RENDER_BUDGET_SECONDS,
    BoundedNamespace,
    BoundedSandbox,
    bounded_range,
    metered,
    tick,
)
from .sandbox import RenderLimitError as RenderLimitError  # callers catch it from here

# An email part's output (HTML or text) is one value: the same limit.
MAX_OUTPUT_CHARS = MAX_VALUE_CHARS

# Locale and membership ids come from webhooks and become folder names: keep them plain.
_LOCALE = re.compile(r"[A-Za-z]{2,3}(_[A-Za-z0-9]{2,4})?")
_MEMBERSHIP = re.compile(r"[A-Za-z0-9_-]{1,64}")

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
# Currency a price is shown in when the template does not name one.
_LOCALE_CURRENCY = {"en": "USD", "pt_BR": "BRL"}
_CURRENCY_SYMBOLS = {"USD": "$", "BRL": "R$", "EUR": "€", "GBP": "£"}


class TemplateMissing(LookupError):
    """No template of that name in any of the lookup folders."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    preheader: str
    html: str
    text: str


# --- filters --------------------------------------------------------------------------------


def _locale_of(context: Context, locale: str | None) -> str:
    return locale or context.get("locale") or "en"


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


def format_money(
    value: int | float | str | Decimal | None, currency: str | None = None, locale: str = "en"
) -> str:
    """'$1,234.56' (en) / 'R$ 1.234,56' (pt_BR). The currency defaults to the locale's."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:
        raise ValueError(f"money: {value!r} is not a number") from exc
    code = (currency or _LOCALE_CURRENCY.get(locale, "USD")).upper()
    symbol = _CURRENCY_SYMBOLS.get(code, code + " ")
    sign = "-" if amount < 0 else ""
    digits = f"{abs(amount):,.2f}"  # 1,234.56
    if locale == "pt_BR":
        digits = digits.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
        return f"{sign}{symbol.strip()} {digits}"
    return f"{sign}{symbol}{digits}"


@pass_context
def _date_filter(context: Context, value: Any, locale: str | None = None) -> str:
    return format_date(value, _locale_of(context, locale))


@pass_context
def _money_filter(
    context: Context, value: Any, currency: str | None = None, locale: str | None = None
) -> str:
    return format_money(value, currency, _locale_of(context, locale))


def one_line(value: str) -> str:
    """Subjects and preheaders are header-like text: never let a newline through, and undo
    the HTML escaping of the .html template they live in ("Tom & Jerry", not `&amp;`)."""
    return re.sub(r"\s+", " ", html_escape.unescape(value)).strip()


# --- plain data -----------------------------------------------------------------------------

_PLAIN_SCALARS = (str, int, float, bool, date, datetime, Decimal, type(None))


def plain(value: Any, where: str = "context") -> Any:
    """Copy `value`, refusing anything but plain data: templates never get live objects
    (settings, clients, functions) whose attributes could lead somewhere."""
    if isinstance(value, _PLAIN_SCALARS):
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: keys must be strings, not {key!r}")
            out[key] = plain(item, f"{where}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [plain(item, f"{where}[{n}]") for n, item in enumerate(value)]
    raise TypeError(f"{where}: {type(value).__name__} is not plain data")


def bounded(chunks: Iterator[str], limit: int = MAX_OUTPUT_CHARS) -> str:
    """Join rendered output, stopping as soon as it is too long or too slow."""
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise RenderLimitError(f"the email is longer than {limit} characters")
        if len(out) % 64 == 0:  # loops count their own steps; this is the backstop
            tick()
        out.append(chunk)
    return "".join(out)


# --- the renderer ---------------------------------------------------------------------------


def make_environment(
    templates_dir: Path, *, loader: BaseLoader | None = None, auto_reload: bool = False
) -> BoundedSandbox:
    """`loader`: read templates from elsewhere than the folder (the safety net's last good
    versions); `auto_reload`: notice files edited while the process runs."""
    env = BoundedSandbox(
        loader=loader or FileSystemLoader(str(templates_dir)),
        undefined=StrictUndefined,
        autoescape=lambda name: bool(name and name.endswith(".html")),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=auto_reload,
    )
    env.filters["date"] = _date_filter
    env.filters["money"] = _money_filter
    # Only harmless helpers; no lipsum (unbounded text), and a range that watches the clock.
    env.install_bounds(
        {
            "range": bounded_range,
            "dict": dict,
            "namespace": BoundedNamespace,
            "cycler": Cycler,
            "joiner": Joiner,
        }
    )
    return env


class Renderer:
    """Compiles each template once per process and renders it for a locale and membership."""

    def __init__(
        self,
        templates_dir: Path,
        default_locale: str = "en",
        budget_seconds: float = RENDER_BUDGET_SECONDS,
        *,
        loader: BaseLoader | None = None,
        auto_reload: bool = False,
    ) -> None:
        self.templates_dir = Path(templates_dir)
        self.default_locale = default_locale
        self.budget_seconds = budget_seconds
        self.env = make_environment(self.templates_dir, loader=loader, auto_reload=auto_reload)
        # Keep @media (dark mode) rules in a <style> tag: they cannot be inlined.
        self._inliner = css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)

    def locales(self) -> list[str]:
        """Locale folders present (en, pt_BR, ...)."""
        return sorted(
            p.name
            for p in self.templates_dir.iterdir()
            if p.is_dir() and p.name != "memberships" and not p.name.startswith((".", "_"))
        )

    def candidates(self, name: str, locale: str, membership_id: str | None) -> list[str]:
        """The lookup order: membership + locale, membership + default locale, locale,
        default locale."""
        locales = [locale] if locale == self.default_locale else [locale, self.default_locale]
        folders = []
        if membership_id and _MEMBERSHIP.fullmatch(membership_id):
            folders += [f"memberships/{membership_id}/{loc}" for loc in locales]
        folders += locales
        return [f"{folder}/{name}" for folder in folders]

    def exists(self, name: str) -> bool:
        """A template of that name: a file, or what the loader knows (saved versions)."""
        has = getattr(self.env.loader, "has_template", None)
        return has(name) if has else (self.templates_dir / name).is_file()

    def resolve(self, name: str, locale: str, membership_id: str | None) -> str:
        for candidate in self.candidates(name, locale, membership_id):
            if self.exists(candidate):
                return candidate
        raise TemplateMissing(f"no template {name!r} for locale {locale!r}")

    def resolve_pair(self, name: str, locale: str, membership_id: str | None) -> tuple[str, str]:
        """The .html and .txt files an email uses. Both come from the same folder, so a
        member never gets an HTML part in one language and a text part in another."""
        html = self.resolve(f"{name}.html", locale, membership_id)
        folder = html.rsplit("/", 1)[0]
        text = f"{folder}/{name}.txt"
        if not self.exists(text):
            raise TemplateMissing(f"{folder}/{name}.html has no matching {name}.txt")
        return html, text

    def shipped_locale(self, locale: str | None) -> str:
        """`locale` when its folder exists (and the name is a plain locale tag), else the
        default: an unknown language gets the default's words, never an error."""
        if _LOCALE.fullmatch(locale or "") and (self.templates_dir / locale).is_dir():
            return locale
        return self.default_locale

    def render(
        self,
        name: str,
        context: Mapping[str, Any],
        *,
        locale: str,
        membership_id: str | None = None,
    ) -> RenderedEmail:
        locale = self.shipped_locale(locale)
        html, text = self.resolve_pair(name, locale, membership_id)
        return self.render_files(html, text, context, locale=locale)

    def render_files(
        self, html_name: str, text_name: str, context: Mapping[str, Any], *, locale: str
    ) -> RenderedEmail:
        """Render one given pair of files (paths relative to the templates folder)."""
        values = {**plain(context), "locale": locale}
        try:
            html_tpl = self.env.get_template(html_name)
            text_tpl = self.env.get_template(text_name)
        except TemplateNotFound as exc:
            raise TemplateMissing(str(exc)) from exc
        with metered(self.budget_seconds):
            subject = one_line(self._block(html_tpl, "subject", values))
            preheader = one_line(self._block(html_tpl, "preheader", values))
            html = self._inliner.inline(self._render(html_tpl, values))
            text = self._render(text_tpl, values).strip() + "\n"
        return RenderedEmail(subject=subject, preheader=preheader, html=html, text=text)

    def _render(self, template: Template, values: dict[str, Any]) -> str:
        try:
            return bounded(template.root_render_func(template.new_context(values)))
        except Exception as exc:
            _mark(exc, template)
            self.env.handle_exception()

    def _block(self, template: Template, block: str, values: dict[str, Any]) -> str:
        render_block = template.blocks.get(block)
        if render_block is None:
            return ""
        try:
            return bounded(render_block(template.new_context(values)))
        except Exception as exc:
            _mark(exc, template)
            self.env.handle_exception()


def _mark(exc: Exception, template: Template) -> None:
    """Note which file was being rendered; `handle_exception` then re-raises with the
    traceback pointing at template files and lines."""
    if getattr(exc, "template_name", None) is None:
        try:
            exc.template_name = template.name  # type: ignore[attr-defined]
        except AttributeError:
            pass

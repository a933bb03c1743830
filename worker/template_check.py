"""Check the whole template set before anyone gets an email from it.

Renders every email the playbook names, in every language folder and every membership
override, with sample data, and reports problems as `file:line: message` in words a
marketer can act on. Used by `flask --app hooks templates check`, by the worker's start-up
check and by the test suite. Reads files; no Redis, no network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

from jinja2 import TemplateNotFound, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError, UndefinedError

from .compose import missing_unsubscribe_parts
from .playbook import Playbook, Step
from .reasons import Reason
from .render import RenderedEmail, Renderer, RenderLimitError, TemplateMissing
from .samples import FULL, VARIANTS, Variant, sample_context, sample_step, template_names
from .sandbox import metered
from .settings import Settings
from .template_lint import (
    did_you_mean,
    drift,
    outside_blocks,
    outside_blocks_message,
    unclosed_tag,
)

ERROR = "error"
WARNING = "warning"
README = "email_templates/README.md"
_TEXT_URL = re.compile(r"""\b[a-z][a-z0-9+.-]*://[^\s<>"')\]]+""", re.IGNORECASE)
_FAREWELL_PATHS = ("/feedback/", "/unsubscribe/")


@dataclass(frozen=True, order=True)
class Problem:
    file: str  # relative to the templates folder, e.g. "pt_BR/winback.html"
    line: int | None
    message: str
    severity: str = ERROR

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        label = "" if self.severity == ERROR else f"{self.severity}: "
        return f"{where}: {label}{self.message}"


@dataclass
class CheckReport:
    templates_dir: Path
    problems: list[Problem] = field(default_factory=list)
    renders: int = 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, problem: Problem) -> None:
        if problem not in self.problems:
            self.problems.append(problem)


class TemplateSetError(ValueError):
    """The template set has errors; the worker refuses to start on it."""

    def __init__(self, report: CheckReport) -> None:
        shown = "; ".join(str(p) for p in report.errors[:5])
        more = len(report.errors) - 5
        super().__init__(
            f"the email templates in {report.templates_dir} have {len(report.errors)} "
            f"problem(s): {shown}{f' (and {more} more)' if more > 0 else ''}. "
            "Run `flask --app hooks templates check` for the full list."
        )
        self.report = report


def check_templates(settings: Settings, playbook: Playbook, reasons: list[Reason]) -> CheckReport:
    renderer = Renderer(settings.templates_dir, settings.default_locale)
    report = CheckReport(settings.templates_dir)
    _check_syntax(renderer, report)
    names = template_names(playbook)
    locales = renderer.locales()
    if settings.default_locale not in locales:
        report.add(Problem(f"{settings.default_locale}/", None, _no_default_folder(settings)))
    for folder, locale, membership_id in _folders(renderer, locales):
        present = _names_in(renderer.templates_dir / folder)
        for name in sorted(present | (set(names) if membership_id is None else set())):
            _check_parts(report, renderer, folder, name, settings.default_locale)
            html, text = f"{folder}/{name}.html", f"{folder}/{name}.txt"
            if not (renderer.templates_dir / html).is_file():
                continue
            if not (renderer.templates_dir / text).is_file():
                continue
            step = sample_step(playbook, name, membership_id)
            streams = {step.stream} if membership_id else names.get(name, {step.stream})
            _check_renders(
                report,
                renderer,
                settings,
                reasons,
                html,
                text,
                locale,
                membership_id,
                step,
                streams,
            )
    report.problems.sort(key=lambda p: (p.severity != ERROR, p.file, p.line or 0))
    return report


def check_email(
    settings: Settings,
    playbook: Playbook,
    reasons: list[Reason],
    renderer: Renderer,
    html: str,
    text: str,
    *,
    locale: str,
    membership_id: str | None,
) -> CheckReport:
    """The check's renders of one email (both sample variants, every stream it is sent
    on), from `renderer`'s files."""
    report = CheckReport(renderer.templates_dir)
    name = html.rsplit("/", 1)[-1][: -len(".html")]
    step = sample_step(playbook, name, membership_id)
    streams = {step.stream} if membership_id else template_names(playbook).get(name, {step.stream})
    _check_renders(
        report, renderer, settings, reasons, html, text, locale, membership_id, step, streams
    )
    return report


def _check_renders(
    report: CheckReport,
    renderer: Renderer,
    settings: Settings,
    reasons: list[Reason],
    html: str,
    text: str,
    locale: str,
    membership_id: str | None,
    step: Step,
    streams: set[str],
) -> None:
    """One email rendered with both sample variants on every stream it is sent on."""
    for stream in sorted(streams):
        for variant in VARIANTS:
            _check_render(
                report,
                renderer,
                settings,
                reasons,
                html,
                text,
                locale=locale,
                membership_id=membership_id,
                step=replace(step, stream=stream),
                variant=variant,
            )


def require_valid_templates(
    settings: Settings, playbook: Playbook, reasons: list[Reason]
) -> CheckReport:
    report = check_templates(settings, playbook, reasons)
    if not report.ok:
        raise TemplateSetError(report)
    return report


# --- what to check --------------------------------------------------------------------------


def _folders(renderer: Renderer, locales: list[str]) -> list[tuple[str, str, str | None]]:
    """(folder, locale, membership id) for every folder that holds emails."""
    found: list[tuple[str, str, str | None]] = [(loc, loc, None) for loc in locales]
    overrides = renderer.templates_dir / "memberships"
    if overrides.is_dir():
        for membership in sorted(p for p in overrides.iterdir() if p.is_dir()):
            for folder in sorted(p for p in membership.iterdir() if p.is_dir()):
                found.append(
                    (f"memberships/{membership.name}/{folder.name}", folder.name, membership.name)
                )
    return found


def _names_in(folder: Path) -> set[str]:
    return {
        p.stem
        for p in folder.iterdir()
        if p.suffix in (".html", ".txt") and not p.name.startswith(("_", "."))
    }


def _no_default_folder(settings: Settings) -> str:
    return (
        f"there is no folder for the default language {settings.default_locale} "
        "(FAREWELL_DEFAULT_LOCALE); every email needs a version there"
    )


def _check_syntax(renderer: Renderer, report: CheckReport) -> None:
    root = renderer.templates_dir
    for path in sorted(root.rglob("*")):
        if path.suffix not in (".html", ".txt") or not path.is_file():
            continue
        name = path.relative_to(root).as_posix()
        try:
            renderer.env.get_template(name)
        except TemplateSyntaxError as exc:
            source = path.read_text(encoding="utf-8")
            unclosed = unclosed_tag(renderer.env, source, exc)
            if unclosed:
                report.add(Problem(name, unclosed[0], unclosed[1]))
            else:
                report.add(Problem(name, exc.lineno, _syntax_message(exc)))
            continue
        source = path.read_text(encoding="utf-8")
        for line, what in outside_blocks(renderer.env, source):
            report.add(Problem(name, line, outside_blocks_message(what)))


def _check_parts(
    report: CheckReport, renderer: Renderer, folder: str, name: str, default_locale: str
) -> None:
    root = renderer.templates_dir
    has_html = (root / folder / f"{name}.html").is_file()
    has_text = (root / folder / f"{name}.txt").is_file()
    if has_html and not has_text:
        report.add(
            Problem(
                f"{folder}/{name}.html",
                None,
                f"missing text part: add {folder}/{name}.txt (the plain-text version of this "
                "email; every email needs both)",
            )
        )
    elif has_text and not has_html:
        report.add(
            Problem(
                f"{folder}/{name}.txt",
                None,
                f"missing HTML part: add {folder}/{name}.html (every email needs both)",
            )
        )
    elif not has_html and folder == default_locale:
        report.add(
            Problem(
                f"{folder}/{name}.html",
                None,
                f"missing email: the playbook sends {name!r}, so {folder} (the default "
                f"language) needs {name}.html and {name}.txt",
            )
        )
    elif not has_html:
        report.add(
            Problem(
                f"{folder}/{name}.html",
                None,
                f"no {folder} version of {name!r}: members who speak {folder} will get the "
                f"{default_locale} one",
                WARNING,
            )
        )


def _check_render(
    report: CheckReport,
    renderer: Renderer,
    settings: Settings,
    reasons: list[Reason],
    html: str,
    text: str,
    *,
    locale: str,
    membership_id: str | None,
    step: Step,
    variant: Variant,
) -> None:
    context = sample_context(
        settings, step, reasons, locale=locale, membership_id=membership_id, variant=variant
    )
    report.renders += 1
    try:
        email = renderer.render_files(html, text, context, locale=locale)
    except Exception as exc:  # every failure becomes a readable problem
        file, line = _where(exc, renderer.templates_dir, default=html)
        if isinstance(exc, TemplateSyntaxError):
            return  # the syntax pass reported it, at the line where the tag opens
        report.add(Problem(file, line, describe_error(exc, known_names(context))))
        return
    _check_output(report, renderer, settings, email, html, text, step.stream, context)
    if variant == FULL:
        _check_drift(report, renderer, html, text, {**context, "locale": locale})


def known_names(context: dict[str, object]) -> set[str]:
    """Every variable and field a template can use: the context's names, the fields of
    its dicts (a reason's `label`...), and what Jinja adds (`loop`)."""
    names = set(context) | {"locale", "loop"}
    for value in context.values():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict):
                names |= set(item)
    return names


def _check_drift(
    report: CheckReport,
    renderer: Renderer,
    html: str,
    text: str,
    values: dict[str, object],
) -> None:
    """A sentence in one part and not the other: the text part was not updated along
    with the HTML part (or the other way round). Compared on the content blocks."""
    try:
        with metered(renderer.budget_seconds):
            html_part = renderer._block(renderer.env.get_template(html), "content", values)
            text_part = renderer._block(renderer.env.get_template(text), "content", values)
    except Exception:  # a failing render is reported by the render check
        return
    only_html, only_text = drift(html_part, text_part)
    if not (only_html or only_text):
        return
    said = []
    if only_html:
        said.append(f"{only_html[0]!r} is in {html} but not in the text part{_more(only_html)}")
    if only_text:
        said.append(f"{only_text[0]!r} is in the text part but not in {html}{_more(only_text)}")
    report.add(
        Problem(
            text,
            None,
            f"the text part drifts from the HTML part: {'; '.join(said)}. Update {text} to "
            f"match, or generate it from the HTML part: "
            f"`flask --app hooks templates text-from-html {html}`",
            WARNING,
        )
    )


def _more(found: list[str]) -> str:
    return f" (and {len(found) - 1} more sentence(s))" if len(found) > 1 else ""


def _check_output(
    report: CheckReport,
    renderer: Renderer,
    settings: Settings,
    email: RenderedEmail,
    html: str,
    text: str,
    stream: str,
    context: dict[str, object],
) -> None:
    if not email.subject:
        report.add(
            Problem(
                html,
                None,
                "missing subject: add {% block subject %}Your subject line{% endblock %}",
            )
        )
    if not email.preheader:
        report.add(
            Problem(
                html,
                None,
                "no preheader (the grey line inbox lists show after the subject): add "
                "{% block preheader %}...{% endblock %}",
                WARNING,
            )
        )
    unsubscribe = str(context.get("unsubscribe_url") or "")
    if stream == "marketing" and unsubscribe:
        missing = missing_unsubscribe_parts(unsubscribe, email)
        for file in (f for part, f in (("html", html), ("text", text)) if part in missing):
            report.add(
                Problem(
                    file,
                    None,
                    "marketing email without the unsubscribe link: add {{ unsubscribe_url }} "
                    "(the layout's footer has it; keep {% extends %} on the layout)",
                )
            )
    flagged: set[tuple[str, int]] = set()
    for file, urls in ((html, _html_links(email.html)), (text, _TEXT_URL.findall(email.text))):
        for url in urls:
            message = link_problem(url, settings.base_url)
            if not message:
                continue
            where, line = _find_in_sources(renderer, file, url)
            if line is not None and (where, line) in flagged:
                continue  # one line in a loop makes many links: report it once
            flagged.add((where, line or 0))
            report.add(Problem(where, line, message))


# --- links ----------------------------------------------------------------------------------


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"a": "href", "area": "href", "img": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value is not None:
                self.links.append(value.strip())


def _html_links(html: str) -> list[str]:
    parser = _LinkParser()
    parser.feed(html)
    return parser.links


def link_problem(url: str, base_url: str) -> str | None:
    """Why a link in an email is wrong, or None. Links to Farewell's own pages must be
    built from FAREWELL_BASE_URL (use the variables); every other link must be a full
    https:// address, since a relative or http link breaks or warns in mail clients."""
    if url.startswith(("mailto:", "tel:")):
        return None
    base = base_url.rstrip("/")
    if url == base or url.startswith(base + "/") or url.startswith(base + "?"):
        return None
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return (
            f"link {url!r} is not a full address: links in emails must start with https:// "
            "(use the link variables, e.g. {{ feedback_url }})"
        )
    if parts.scheme != "https":
        return f"link {url!r} must start with https:// (email clients warn about {parts.scheme}:)"
    if parts.path.startswith(_FAREWELL_PATHS):
        return (
            f"link {url!r} points at a feedback or unsubscribe page but not at "
            f"FAREWELL_BASE_URL ({base}): use {{{{ feedback_url }}}} or {{{{ unsubscribe_url }}}}"
        )
    return None


def _find_in_sources(renderer: Renderer, file: str, url: str) -> tuple[str, int | None]:
    """The file and line a bad link comes from: the template or a layout it extends. A
    link built partly from a variable is found by its literal start (`href="/feedback/`)."""
    sources: list[tuple[str, list[str]]] = []
    queue, seen = [file], set()
    while queue:
        name = queue.pop(0)
        if name in seen:
            continue
        seen.add(name)
        try:
            source = (renderer.templates_dir / name).read_text(encoding="utf-8")
            queue += [r for r in meta.find_referenced_templates(renderer.env.parse(source)) if r]
        except (OSError, TemplateSyntaxError):
            continue
        sources.append((name, source.splitlines()))
    needles = [url, url.replace("&", "&amp;")]
    needles += [f'{attr}="{url[:k]}' for k in range(len(url), 0, -1) for attr in ("href", "src")]
    for needle in needles:
        for name, lines in sources:
            for n, line in enumerate(lines, start=1):
                if needle in line:
                    return name, n
    return file, None


# --- messages -------------------------------------------------------------------------------


def _where(exc: BaseException, templates_dir: Path, default: str) -> tuple[str, int | None]:
    root = templates_dir.resolve()
    if isinstance(exc, TemplateSyntaxError) and exc.name:
        return exc.name, exc.lineno
    found: tuple[str, int | None] = (getattr(exc, "template_name", None) or default, None)
    tb = exc.__traceback__
    while tb is not None:
        filename = Path(tb.tb_frame.f_code.co_filename)
        if filename.is_absolute() and filename.resolve().is_relative_to(root):
            found = (filename.resolve().relative_to(root).as_posix(), tb.tb_lineno)
        tb = tb.tb_next
    return found


def _syntax_message(exc: TemplateSyntaxError) -> str:
    return f"syntax error: {exc.message or exc}"


def describe_error(exc: BaseException, known: set[str] | frozenset[str] = frozenset()) -> str:
    """A rendering failure in plain words (used by the check and the previews). `known`:
    the names a template could have meant, for "did you mean ...?"."""
    if isinstance(exc, TemplateSyntaxError):
        return _syntax_message(exc)
    if isinstance(exc, UndefinedError):
        unknown = re.fullmatch(r"'(.+)' is undefined", str(exc.message))
        if unknown:
            name = unknown.group(1)
            guess = did_you_mean(name, known)
            hint = f"Did you mean {{{{ {guess} }}}}? " if guess else "Check the spelling; "
            return (
                f"unknown variable {{{{ {name} }}}}: emails do not get a variable called "
                f"{name!r}. {hint}{README} lists every variable"
            )
        field_ = re.search(r"has no attribute '(.+)'", str(exc.message))
        guess = did_you_mean(field_.group(1), known) if field_ else None
        hint = f"did you mean {guess!r}? " if guess else ""
        return f"unknown variable or field ({exc.message}); {hint}{README} lists every variable"
    if isinstance(exc, SecurityError):
        return f"uses something templates are not allowed to touch ({exc})"
    if isinstance(exc, RenderLimitError):
        return f"stopped: {exc}"
    if isinstance(exc, TemplateNotFound | TemplateMissing):
        return f"refers to a template that does not exist: {exc}"
    if isinstance(exc, RecursionError):
        return "stopped: a macro or loop calls itself without end"
    return f"could not be rendered: {type(exc).__name__}: {exc}"

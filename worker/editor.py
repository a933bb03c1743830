"""What the admin editor does with a draft, apart from HTTP: render it with a membership's
sample data, and run the template check on it for every language and membership it
affects. Reads files and Redis (the published versions); never writes."""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import TemplateSyntaxError

from .playbook import Playbook
from .reasons import Reason
from .render import RenderedEmail, Renderer
from .samples import sample_context, sample_step
from .settings import Settings
from .store import Store
from .template_check import ERROR, CheckReport, Problem, check_email, describe_error
from .template_lint import outside_blocks, outside_blocks_message, unclosed_tag
from .versions import EmailRef, VersionedLoader


@dataclass(frozen=True)
class Draft:
    ref: EmailRef
    html: str  # the HTML part's whole source (subject and preheader blocks included)
    text: str


def draft_renderer(settings: Settings, store: Store | None, draft: Draft | None) -> Renderer:
    """Published versions and files, with the draft's two parts on top."""
    overlay = {draft.ref.html: draft.html, draft.ref.text: draft.text} if draft else {}
    loader = VersionedLoader(settings.templates_dir, store, overlay)
    return Renderer(settings.templates_dir, settings.default_locale, loader=loader)


def preview(
    settings: Settings,
    store: Store | None,
    playbook: Playbook,
    reasons: list[Reason],
    draft: Draft,
    membership_title: str | None = None,
) -> RenderedEmail:
    """The draft rendered with sample data; `membership_title`: the membership's real one."""
    ref = draft.ref
    renderer = draft_renderer(settings, store, draft)
    step = sample_step(playbook, ref.name, ref.membership_id or None)
    context = sample_context(
        settings, step, reasons, locale=ref.locale, membership_id=ref.membership_id or None
    )
    if membership_title:
        context["membership_title"] = membership_title
    return renderer.render_files(ref.html, ref.text, context, locale=ref.locale)


def affected(settings: Settings, playbook: Playbook, renderer: Renderer, ref: EmailRef) -> list:
    """(locale, membership id or None) of every email a save of `ref` changes: its own,
    the memberships without an override of their own, and (for the default language) the
    languages without this email, whose members get it."""
    found: list[tuple[str, str | None]] = [(ref.locale, ref.membership_id or None)]
    if ref.membership_id:
        return found
    memberships = set(playbook.memberships)
    overrides = settings.templates_dir / "memberships"
    if overrides.is_dir():
        memberships |= {p.name for p in overrides.iterdir() if p.is_dir()}
    locales = [ref.locale]
    if ref.locale == settings.default_locale:
        locales += [
            loc
            for loc in renderer.locales()
            if loc != ref.locale and not renderer.exists(f"{loc}/{ref.name}.html")
        ]
    for locale in locales:
        if locale != ref.locale:
            found.append((locale, None))
        for membership in sorted(memberships):
            own = [f"memberships/{membership}/{locale}/{ref.name}.html"]
            if not any(renderer.exists(name) for name in own):
                found.append((locale, membership))
    return found


def check_draft(
    settings: Settings,
    store: Store | None,
    playbook: Playbook,
    reasons: list[Reason],
    draft: Draft,
) -> CheckReport:
    """The template check's verdict on the draft, for everything it affects."""
    renderer = draft_renderer(settings, store, draft)
    report = CheckReport(settings.templates_dir)
    ref = draft.ref
    for name, source in ((ref.html, draft.html), (ref.text, draft.text)):
        try:
            renderer.env.parse(source)
        except TemplateSyntaxError as exc:
            unclosed = unclosed_tag(renderer.env, source, exc)
            line, message = unclosed or (exc.lineno, describe_error(exc))
            report.add(Problem(name, line, message))
            continue
        for line, what in outside_blocks(renderer.env, source):
            report.add(Problem(name, line, outside_blocks_message(what)))
    if report.errors:
        return report
    for locale, membership_id in affected(settings, playbook, renderer, ref):
        one = check_email(
            settings,
            playbook,
            reasons,
            renderer,
            ref.html,
            ref.text,
            locale=locale,
            membership_id=membership_id,
        )
        report.renders += one.renders
        for problem in one.problems:
            report.add(problem)
    report.problems.sort(key=lambda p: (p.severity != ERROR, p.file, p.line or 0))
    return report

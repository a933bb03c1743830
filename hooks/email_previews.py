"""Email previews with sample data, shared by the admin gallery and the preview command.

Files are read on every use (no caching), so a marketer who edits a template sees the
change on the next reload, without restarting anything. Versions published in the admin
editor win over the files, as they do when the worker sends.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from functools import cached_property
from urllib.parse import urlsplit

from flask import render_template

from worker.mail import get_transport
from worker.mail.message import OutgoingEmail
from worker.playbook import Playbook, Step, load_playbook
from worker.reasons import Reason, load_reasons
from worker.render import RenderedEmail, Renderer
from worker.samples import preview_email, sample_email, sample_step, template_names
from worker.settings import Settings
from worker.store import Store
from worker.template_check import describe_error
from worker.versions import VersionedLoader

_MEMBERSHIP_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class PreviewError(ValueError):
    """A choice that does not exist (unknown language, malformed membership id)."""


class UnknownEmail(PreviewError):
    """No email of that name in the playbook or the default language folder."""


@dataclass(frozen=True)
class Preview:
    name: str
    locale: str
    membership_id: str
    stream: str
    email: RenderedEmail | None
    error: str = ""  # why it could not be rendered, in the check's words
    when: str = ""  # when the playbook sends it, in words


@dataclass
class Previews:
    settings: Settings
    store: Store | None = None  # with it, versions published in the editor win over files

    @cached_property
    def renderer(self) -> Renderer:
        loader = VersionedLoader(self.settings.templates_dir, self.store)
        return Renderer(self.settings.templates_dir, self.settings.default_locale, loader=loader)

    @cached_property
    def playbook(self) -> Playbook:
        return load_playbook(self.settings.playbook_path)

    @cached_property
    def reasons(self) -> list[Reason]:
        return load_reasons(self.settings.reasons_path)

    def names(self) -> list[str]:
        """Every email the playbook sends, plus any other in the default language folder."""
        names = set(template_names(self.playbook))
        folder = self.settings.templates_dir / self.settings.default_locale
        if folder.is_dir():
            names |= {p.stem for p in folder.glob("*.html") if not p.name.startswith("_")}
        return sorted(names)

    def locales(self) -> list[str]:
        return self.renderer.locales()

    def memberships(self) -> list[str]:
        """Membership ids with their own playbook or template overrides."""
        ids = set(self.playbook.memberships)
        overrides = self.settings.templates_dir / "memberships"
        if overrides.is_dir():
            ids |= {p.name for p in overrides.iterdir() if p.is_dir()}
        return sorted(ids, key=lambda i: (len(i), i))

    def validate(self, name: str | None, locale: str, membership_id: str) -> None:
        if name is not None and name not in self.names():
            raise UnknownEmail(f"there is no email called {name!r}")
        if locale not in self.locales():
            raise PreviewError(
                f"there is no {locale!r} language folder (have: {', '.join(self.locales())})"
            )
        if membership_id and not _MEMBERSHIP_ID.fullmatch(membership_id):
            raise PreviewError("a membership id is letters, digits, '-' or '_'")

    def render(self, name: str, locale: str, membership_id: str = "") -> Preview:
        stream = sample_step(self.playbook, name, membership_id or None).stream
        try:
            email = preview_email(
                self.settings,
                self.renderer,
                self.playbook,
                self.reasons,
                name,
                locale=locale,
                membership_id=membership_id or None,
            )
        except Exception as exc:  # a broken template is shown, not a crashed page
            return Preview(
                name,
                locale,
                membership_id,
                stream,
                None,
                describe_error(exc),
                self.when(name, membership_id),
            )
        return Preview(
            name, locale, membership_id, stream, email, when=self.when(name, membership_id)
        )

    def when(self, name: str, membership_id: str = "") -> str:
        """When the playbook sends email `name` to this membership's members, in words."""
        steps = [s for s in self.playbook.steps_for(membership_id or None) if name in s.templates]
        if not steps:
            return "not sent by the playbook" + (" for this membership" if membership_id else "")
        return "; ".join(timing(step) for step in steps)

    def test_email(self, name: str, locale: str, membership_id: str, to: str) -> OutgoingEmail:
        email = sample_email(
            self.settings,
            self.renderer,
            self.playbook,
            self.reasons,
            name,
            locale=locale,
            membership_id=membership_id or None,
            to=to,
        )
        host = urlsplit(self.settings.base_url).hostname or "localhost"
        # A fresh Message-ID per test, so repeated tests are separate messages.
        return replace(
            email,
            subject=f"[Test] {email.subject}",
            message_id=f"<test-{name}-{secrets.token_hex(6)}@{host}>",
            tags={"test": "1", "template": name},
        )

    def send_test(self, name: str, locale: str, membership_id: str, to: str) -> str:
        """Send through the configured transport; returns the message id. Raises MailError
        (and rendering errors) for the caller to report."""
        transport = get_transport(self.settings)
        try:
            return transport.send(self.test_email(name, locale, membership_id, to))
        finally:
            close = getattr(transport, "close", None)
            if close:
                close()


def timing(step: Step) -> str:
    """'14 days after the cancellation, if the member has not answered the survey'."""
    seconds = int(step.delay.total_seconds())
    if seconds == 0:
        words = "right after the cancellation"
    else:
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if seconds % size == 0:
                count = seconds // size
                words = f"{count} {unit}{'s' if count != 1 else ''} after the cancellation"
                break
    if step.only_if_no_feedback:
        words += ", if the member has not answered the survey"
    if step.only_if_reason:
        words += f", only to members who left for: {', '.join(step.only_if_reason)}"
    return words


def preview_page(preview: Preview) -> str:
    """A standalone HTML file: subject, preheader, the HTML part (sandboxed) and text part."""
    return render_template("email_preview_file.html", p=preview)

"""The live safety net: a template that fails at send time never stops an email.

The worker renders with `SafeRenderer`. When an email's template fails (a syntax error
saved while the service runs, an unknown variable, a render limit, a marketing email that
lost its unsubscribe link, a file deleted), the member gets, in this order:

1. the last version of that email that rendered (its files as they were, kept in Redis
   at every successful render whose content changed, and for every email at the worker's
   start-up, where the whole set must render);
2. the default: the email's file in the templates folder, when the version that failed
   was saved in the admin editor (worker/versions.py); then the same email in the
   `email_templates/` folder that comes with Farewell, when FAREWELL_TEMPLATES_DIR points
   elsewhere.

Only when neither renders does the send fail as before (RQ retries it). Every failure is
recorded (`templates:failures`): /healthz warns, /metrics counts, the dashboard shows a
banner and the gallery marks the email, until content that renders replaces the broken
one (the next successful render of changed content clears it; so does the worker's sweep,
which re-checks a failed email with sample data once its files change).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from jinja2 import DictLoader, TemplateNotFound, TemplateSyntaxError, meta
from redis.exceptions import RedisError

from .render import RenderedEmail, Renderer, TemplateMissing
from .settings import PROJECT_ROOT
from .store import Store
from .versions import VersionedLoader

log = logging.getLogger(__name__)

SHIPPED_DIR = PROJECT_ROOT / "email_templates"
FALLBACK_METRIC = "farewell_template_fallbacks_total"


class Fallback(StrEnum):
    """What a member got instead of the failing template."""

    LAST_GOOD = "last_good"
    SHIPPED = "shipped_default"
    NONE = "none"  # nothing rendered: the send failed (and is retried)


FALLBACK_WORDS = {
    Fallback.LAST_GOOD: "members get the last version that rendered",
    Fallback.SHIPPED: "members get the shipped default",
    Fallback.NONE: "emails are NOT going out (no earlier version renders)",
}


class UnsubscribeLost(ValueError):
    """A marketing email rendered without its unsubscribe link in a part."""

    def __init__(self, message: str, rendered: RenderedEmail) -> None:
        super().__init__(message)
        self.rendered = rendered


@dataclass(frozen=True)
class TemplateFailure:
    email: str  # "en/winback" or "memberships/gold/en/winback"
    file: str  # the file at fault, when known
    line: int | None
    error: str  # in the check's words
    fallback: Fallback
    at: float
    count: int = 1

    @classmethod
    def from_entry(cls, email: str, entry: Mapping[str, Any]) -> TemplateFailure:
        return cls(
            email=email,
            file=str(entry.get("file") or email),
            line=entry.get("line"),
            error=str(entry.get("error", "")),
            fallback=Fallback(entry.get("fallback", Fallback.NONE)),
            at=float(entry.get("at", 0)),
            count=int(entry.get("count", 1)),
        )

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def sentence(self) -> str:
        """One line for /healthz and the dashboard."""
        return (
            f"email {self.email} failed at send time ({self.where}: {self.error}); "
            f"{FALLBACK_WORDS[self.fallback]} until it is fixed"
        )


def template_failures(store: Store) -> list[TemplateFailure]:
    return [TemplateFailure.from_entry(e, v) for e, v in store.template_failures().items()]


def digest(files: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(sorted(files.items()))).encode()).hexdigest()[:16]


def closure(renderer: Renderer, names: list[str]) -> dict[str, str]:
    """The sources of `names` and of every template they extend, include or import."""
    files: dict[str, str] = {}
    queue = list(names)
    while queue:
        name = queue.pop(0)
        if name in files:
            continue
        source = renderer.env.loader.get_source(renderer.env, name)[0]  # type: ignore[union-attr]
        files[name] = source
        try:
            queue += [r for r in meta.find_referenced_templates(renderer.env.parse(source)) if r]
        except TemplateSyntaxError:
            pass
    return files


def check_unsubscribe(context: Mapping[str, Any], email: RenderedEmail) -> None:
    """compose's guardrail, applied here so that a lost link falls back too."""
    url = context.get("unsubscribe_url")
    if not url:
        return
    for part, body in (("HTML", email.html), ("text", email.text)):
        if str(url) not in body.replace("&amp;", "&"):
            raise UnsubscribeLost(f"the {part} part does not show {{{{ unsubscribe_url }}}}", email)


class SafeRenderer(Renderer):
    """The worker's renderer: notices files edited on disk, remembers what rendered and
    falls back when the current template fails (see the module's docstring)."""

    def __init__(
        self,
        templates_dir: Path,
        default_locale: str,
        store: Store,
        shipped_dir: Path = SHIPPED_DIR,
    ) -> None:
        self.loader = VersionedLoader(templates_dir, store)
        super().__init__(templates_dir, default_locale, loader=self.loader, auto_reload=True)
        self.store = store
        self.shipped_dir = shipped_dir
        # email -> (the stat of its files, their digest) as last saved: saves a read and
        # a Redis write per send while nothing changes.
        self._saved: dict[str, tuple[tuple[tuple[str, int, int], ...], str]] = {}
        self.rechecked: dict[str, str] = {}  # email -> digest the sweep last re-checked

    def render(
        self,
        name: str,
        context: Mapping[str, Any],
        *,
        locale: str,
        membership_id: str | None = None,
    ) -> RenderedEmail:
        locale = self.shipped_locale(locale)
        # The emails this could be, most specific first ("memberships/gold/en/winback").
        candidates = [
            c[: -len(".html")] for c in self.candidates(f"{name}.html", locale, membership_id)
        ]
        try:
            html, text = self.resolve_pair(name, locale, membership_id)
        except TemplateMissing as exc:  # deleted while running: the last good one it was
            return self._fall_back(
                exc, candidates, candidates, name, context, locale, membership_id
            )
        email = html[: -len(".html")]
        try:
            rendered = self.render_files(html, text, context, locale=locale)
            check_unsubscribe(context, rendered)
        except Exception as exc:
            return self._fall_back(exc, [email], candidates, name, context, locale, membership_id)
        self.remember(email, html, text)
        return rendered

    def remember(self, email: str, html: str, text: str, *, strict: bool = False) -> None:
        """Keep these files as `email`'s last good version, if they changed. Best effort
        at send time (a Redis hiccup must not fail an email that rendered: the next send
        tries again); `strict` lets a Redis error through (the start-up's snapshot)."""
        stats = self._stats([html, text, *self._saved_names(email)])
        saved = self._saved.get(email)
        if saved is not None and saved[0] == stats:
            return
        try:
            files = closure(self, [html, text])
        except (OSError, TemplateNotFound):
            return
        files_digest = digest(files)
        # Files touched (even back to the saved content): save, and clear a failure.
        try:
            self.store.template_rendered(email, files_digest, files)
        except RedisError:
            if strict:
                raise
            log.warning("email %s: its last good version could not be saved (Redis)", email)
            return
        self._saved[email] = (self._stats(sorted(files)), files_digest)

    def _saved_names(self, email: str) -> list[str]:
        saved = self._saved.get(email)
        return [name for name, _, _ in saved[0]] if saved else []

    def _stats(self, names: list[str]) -> tuple[tuple[str, int, int], ...]:
        return tuple(self.loader.signature(name) for name in sorted(set(names)))

    def _fall_back(
        self,
        exc: Exception,
        emails: list[str],
        candidates: list[str],
        name: str,
        context: Mapping[str, Any],
        locale: str,
        membership_id: str | None = None,
    ) -> RenderedEmail:
        """`emails`: the one that failed, or (a file gone) every one it could have been."""
        for candidate in emails:
            self._saved.pop(candidate, None)  # the next success saves and clears
        from .template_check import _where, describe_error  # the check imports us

        try:
            saved = [(c, self.store.last_good_template(c)) for c in candidates]
        except RedisError:  # no saved versions to offer: the defaults still are
            saved = [(c, None) for c in candidates]
        # The failing email is the one a member would have got: the resolved one, or the
        # most specific with a version saved.
        email = next((c for c, g in saved if g is not None and c in emails), emails[-1])
        try:
            current = digest(closure(self, [f"{email}.html", f"{email}.txt"]))
        except (OSError, TemplateNotFound):
            current = "missing"
        used, rendered = Fallback.NONE, None
        last = dict(saved).get(email)
        if last is not None and last.get("digest") != current:
            rendered = _try_files(self, last["files"], email, context, locale)
            used = Fallback.LAST_GOOD if rendered else used
        if rendered is None:
            rendered = self._try_defaults(name, context, locale, membership_id)
            used = Fallback.SHIPPED if rendered else used
        if isinstance(exc, UnsubscribeLost):
            file, line, error = f"{email}.html", None, f"marketing email without its link: {exc}"
        else:
            file, line = _where(exc, self.templates_dir, default=f"{email}.html")
            error = describe_error(exc)
        try:
            previous = self.store.template_failures().get(email, {})
            count = int(previous.get("count", 0)) + 1 if previous.get("digest") == current else 1
            self.store.record_template_failure(
                email,
                {
                    "file": file,
                    "line": line,
                    "error": error,
                    "digest": current,
                    "fallback": used.value,
                    "at": time.time(),
                    "count": count,
                },
            )
        except RedisError:  # reported in the log below; sends do not wait for Redis
            pass
        self.store.count(FALLBACK_METRIC, email=email, used=used.value)
        log.error(
            "email %s failed at send time (%s%s: %s); %s",
            email,
            file,
            f":{line}" if line else "",
            error,
            FALLBACK_WORDS[used],
        )
        if rendered is None and isinstance(exc, UnsubscribeLost):
            return exc.rendered  # compose's own guard refuses it, in its words
        if rendered is None:
            raise exc
        return rendered

    def _try_defaults(
        self, name: str, context: Mapping[str, Any], locale: str, membership_id: str | None
    ) -> RenderedEmail | None:
        """The files: the templates folder's (when a saved version is what failed), then
        the ones shipped with Farewell (when the folder is another one)."""
        folders = [self.templates_dir]
        if self.shipped_dir.is_dir() and self.shipped_dir.resolve() != (
            self.templates_dir.resolve()
        ):
            folders.append(self.shipped_dir)
        for folder in folders:
            files = Renderer(folder, self.default_locale, self.budget_seconds)
            try:
                rendered = files.render(name, context, locale=locale, membership_id=membership_id)
                check_unsubscribe(context, rendered)
            except Exception:  # noqa: S112 - the next default, or the original error
                continue
            return rendered
        return None


def _try_files(
    renderer: Renderer,
    files: Mapping[str, str],
    email: str,
    context: Mapping[str, Any],
    locale: str,
) -> RenderedEmail | None:
    """Render `email` from saved sources, or None if they do not render either."""
    saved = Renderer(
        renderer.templates_dir,
        renderer.default_locale,
        renderer.budget_seconds,
        loader=DictLoader(dict(files)),
    )
    html, text = f"{email}.html", f"{email}.txt"
    if html not in files or text not in files:
        return None
    try:
        rendered = saved.render_files(html, text, context, locale=locale)
        check_unsubscribe(context, rendered)
    except Exception:
        return None
    return rendered


def emails_on_disk(templates_dir: Path) -> list[tuple[str, str]]:
    """(html, text) of every email in the folder: language folders and overrides."""
    pairs = []
    for html in sorted(templates_dir.rglob("*.html")):
        name = html.relative_to(templates_dir).as_posix()
        text = html.with_suffix(".txt")
        if "/" in name and not html.name.startswith(("_", ".")) and text.is_file():
            pairs.append((name, name[: -len(".html")] + ".txt"))
    return pairs


def remember_all(renderer: SafeRenderer) -> None:
    """At start-up, after the whole set passed the check: every email's files are a
    version that renders."""
    for html, text in emails_on_disk(renderer.templates_dir):
        renderer.remember(html[: -len(".html")], html, text, strict=True)


Check = Callable[[str, str, str, str | None], None]


def recheck(renderer: SafeRenderer, check: Check) -> list[str]:
    """Clear the failures whose files changed and now pass `check(html, text, locale,
    membership_id)` (which raises when they do not): a fixed file clears its warning even
    before anyone is sent that email. Returns the emails cleared."""
    cleared = []
    for email, entry in renderer.store.template_failures().items():
        html, text = f"{email}.html", f"{email}.txt"
        try:
            files = closure(renderer, [html, text])
        except (OSError, TemplateNotFound):
            continue
        files_digest = digest(files)
        if files_digest in (entry.get("digest"), renderer.rechecked.get(email)):
            continue  # unchanged since it failed, or since this process last tried
        renderer.rechecked[email] = files_digest
        parts = email.split("/")
        membership_id = parts[1] if parts[0] == "memberships" and len(parts) == 4 else None
        try:
            check(html, text, parts[-2], membership_id)
        except Exception as exc:
            log.info("email %s changed but still fails: %s", email, exc)
            continue
        renderer.store.template_rendered(email, files_digest, files)
        cleared.append(email)
        log.info("email %s renders again: its failure is cleared", email)
    return cleared


__all__ = [
    "FALLBACK_METRIC",
    "Fallback",
    "SafeRenderer",
    "TemplateFailure",
    "TemplateMissing",
    "closure",
    "digest",
    "emails_on_disk",
    "recheck",
    "remember_all",
    "template_failures",
]

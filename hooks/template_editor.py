"""`/admin/templates/<name>/edit`: the marketers' editor, with preview, versions and rollback.

- GET shows the email's published version (or its file) in four fields — subject,
  preheader, HTML, text — for a language and optionally one membership, with a preview:
  the HTML part at phone and desktop widths, the text part, and the subject line as an
  inbox lists it, rendered with sample data and the membership's real title.
- POST with `action=preview` re-renders the typed draft; `action=save` runs the template
  check on the draft for every language and membership it affects: an error refuses the
  save (422, the message at its line), warnings are shown, and a good draft becomes a new
  published version (worker/versions.py), sent by the worker from then on.
- `/history` shows a diff between any two versions; `/publish` publishes an older one
  (rollback); `/unpublish` goes back to the file.

Admin-only (basic auth), every POST CSRF-checked, each part at most MAX_PART_CHARS, and
previews render in the same bounded sandbox as sends. Drafts are kept in Redis for an hour
so the preview frames can load them.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisError

from worker.editor import Draft, check_draft, preview
from worker.playbook import PlaybookError
from worker.template_check import describe_error
from worker.versions import (
    EmailRef,
    Version,
    VersionError,
    check_sizes,
    diff,
    file_sources,
    join_html,
    split_html,
)

from .admin_auth import admin_required
from .admin_templates import EMAIL_CSP, GALLERY_CSP
from .email_previews import Previews
from .security import no_store, verify_csrf
from .services import get_services

bp = Blueprint("template_editor", __name__, url_prefix="/admin/templates")
DRAFT_TTL = 3600
# The gallery's policy plus the editor's own script (live preview), from this site only.
EDITOR_CSP = GALLERY_CSP + "; script-src 'self'; connect-src 'self'"


bp.after_request(no_store)


@bp.errorhandler(RedisError)
def _redis_down(exc: RedisError) -> ResponseReturnValue:
    message = f"Redis is not answering ({type(exc).__name__}); your text was not saved.\n"
    return Response(message, 503, mimetype="text/plain")


def _ref(name: str) -> EmailRef:
    settings = get_services().settings
    locale = request.values.get("locale") or settings.default_locale
    membership = request.values.get("membership", "").strip()
    try:
        ref = EmailRef(name, locale, membership)
    except VersionError as exc:
        abort(400, description=str(exc))
    previews = Previews(settings)
    try:
        if name not in previews.names():
            abort(404, description=f"there is no email called {name!r}")
    except PlaybookError as exc:
        abort(503, description=f"The playbook could not be read: {exc}")
    if locale not in previews.locales():
        abort(400, description=f"there is no {locale!r} language folder")
    return ref


def _current(ref: EmailRef) -> tuple[str, str, int | None]:
    """The sources members get now: the published version, the email's own files, or
    (a new language or membership version) the one it falls back to."""
    services = get_services()
    store = services.store
    published = store.published_templates().get(ref.key)
    if published:
        version = store.template_version(ref.key, published)
        if version:
            return version["html"], version["text"], published
    own = file_sources(services.settings.templates_dir, ref)
    if own:
        return own[0], own[1], None
    renderer = Previews(services.settings, store=store).renderer
    try:
        html, text = renderer.resolve_pair(ref.name, ref.locale, ref.membership_id or None)
        loader = renderer.env.loader
        return (
            loader.get_source(renderer.env, html)[0],  # type: ignore[union-attr]
            loader.get_source(renderer.env, text)[0],  # type: ignore[union-attr]
            None,
        )
    except Exception:
        return "", "", None


def _form_draft(ref: EmailRef) -> tuple[Draft, str]:
    form = request.form
    parts = {k: form.get(k, "") for k in ("subject", "preheader", "html", "text", "note")}
    try:
        check_sizes(**parts)
    except VersionError as exc:
        abort(413, description=str(exc))
    html = join_html(parts["subject"], parts["preheader"], parts["html"])
    return Draft(ref, html, parts["text"].replace("\r\n", "\n")), parts["note"].strip()


def _title(membership_id: str) -> str | None:
    if not membership_id:
        return None
    return get_services().store.cancellation_memberships().get(membership_id)


def _page(ref: EmailRef, draft: Draft, *, status: int = 200, **values: object) -> Response:
    services = get_services()
    store, settings = services.store, services.settings
    previews = Previews(settings, store=store)
    title = _title(ref.membership_id)
    rendered, render_error = None, ""
    try:
        rendered = preview(settings, store, previews.playbook, previews.reasons, draft, title)
    except Exception as exc:  # shown beside the fields, not a 500
        render_error = describe_error(exc)
    token = secrets.token_urlsafe(16)
    store.save_template_draft(
        token, {"email": ref.key, "html": draft.html, "text": draft.text}, DRAFT_TTL
    )
    subject, preheader, body = split_html(draft.html)
    versions = [Version.from_entry(v) for v in store.template_versions(ref.key)]
    html = render_template(
        "admin_template_edit.html",
        lang="en",
        ref=ref,
        fields={"subject": subject, "preheader": preheader, "html": body, "text": draft.text},
        rendered=rendered,
        render_error=render_error,
        token=token,
        versions=list(reversed(versions)),
        published=store.published_templates().get(ref.key),
        title=title,
        when=previews.when(ref.name, ref.membership_id),
        sender=settings.mail_from,
        stamp=_stamp,
        **{"problems": None, "note": "", **values},
    )
    response = Response(html, status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = EDITOR_CSP
    return response


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


@bp.get("/<name>/edit")
@admin_required
def edit(name: str) -> ResponseReturnValue:
    ref = _ref(name)
    html, text, _ = _current(ref)
    return _page(ref, Draft(ref, html, text))


@bp.post("/<name>/edit")
@admin_required
def edit_post(name: str) -> ResponseReturnValue:
    verify_csrf()
    ref = _ref(name)
    draft, note = _form_draft(ref)
    if request.form.get("action") != "save":
        return _page(ref, draft, note=note)
    services = get_services()
    previews = Previews(services.settings, store=services.store)
    report = check_draft(
        services.settings, services.store, previews.playbook, previews.reasons, draft
    )
    if not report.ok:
        return _page(ref, draft, status=422, problems=report.problems, note=note)
    store = services.store
    if not store.template_versions(ref.key):
        # The first save keeps what members got until now, so a rollback can return to it.
        html, text, _ = _current(ref)
        if html or text:
            entry = {"at": time.time(), "note": "before the first edit", "html": html, "text": text}
            store.add_template_version(ref.key, entry, publish=False)
    entry = {"at": time.time(), "note": note, "html": draft.html, "text": draft.text}
    n = store.add_template_version(ref.key, entry, publish=True)
    flash(f"Saved and published version {n} of {ref.key}.", "ok")
    for warning in report.warnings:
        flash(f"Warning: {warning}", "warning")
    return redirect(_edit_url(ref), 303)


def _edit_url(ref: EmailRef, endpoint: str = ".edit", **more: object) -> str:
    return url_for(
        endpoint,
        name=ref.name,
        locale=ref.locale,
        membership=ref.membership_id or None,
        **more,
    )


@bp.post("/<name>/publish")
@admin_required
def publish(name: str) -> ResponseReturnValue:
    """Rollback: publish an older version (as it was saved; it passed the check then)."""
    verify_csrf()
    ref = _ref(name)
    store = get_services().store
    try:
        n = int(request.form.get("version", ""))
    except ValueError:
        abort(400, description="version must be a number")
    if store.template_version(ref.key, n) is None:
        abort(404, description=f"{ref.key} has no version {n}")
    store.publish_template_version(ref.key, n)
    flash(f"Published version {n} of {ref.key}: members get it from now on.", "ok")
    return redirect(_edit_url(ref), 303)


@bp.post("/<name>/unpublish")
@admin_required
def unpublish(name: str) -> ResponseReturnValue:
    """Send the file in the templates folder again; the history stays."""
    verify_csrf()
    ref = _ref(name)
    get_services().store.unpublish_template(ref.key)
    flash(f"{ref.key}: members get the file in the templates folder again.", "ok")
    return redirect(_edit_url(ref), 303)


@bp.get("/<name>/history")
@admin_required
def history(name: str) -> ResponseReturnValue:
    """The diff between versions `a` and `b` (default: the last two)."""
    ref = _ref(name)
    store = get_services().store
    versions = {v["n"]: Version.from_entry(v) for v in store.template_versions(ref.key)}
    if not versions:
        abort(404, description=f"{ref.key} has no saved versions yet")
    last = max(versions)
    try:
        b = int(request.args.get("b", last))
        a = int(request.args.get("a", b - 1))
    except ValueError:
        abort(400, description="a and b are version numbers")
    if b not in versions or (a not in versions and a != 0):
        abort(404, description=f"{ref.key} has versions 1 to {last}")
    lines = diff(versions.get(a), versions[b], f"version {a}", f"version {b}")
    html = render_template(
        "admin_template_history.html",
        lang="en",
        ref=ref,
        a=a,
        b=b,
        lines=lines,
        versions=sorted(versions.values(), key=lambda v: -v.n),
        stamp=_stamp,
    )
    return Response(html, mimetype="text/html")


@bp.get("/<name>/draft/<token>")
@admin_required
def draft_html(name: str, token: str) -> ResponseReturnValue:
    """A draft's HTML part, for the editor's preview frames (the gallery's strict CSP)."""
    ref = _ref(name)
    services = get_services()
    entry = services.store.template_draft(token)
    if entry is None or entry.get("email") != ref.key:
        abort(404, description="this preview has expired; preview again")
    previews = Previews(services.settings, store=services.store)
    draft = Draft(ref, entry["html"], entry["text"])
    try:
        rendered = preview(
            services.settings,
            services.store,
            previews.playbook,
            previews.reasons,
            draft,
            _title(ref.membership_id),
        )
    except Exception as exc:
        return Response(
            f"could not be rendered: {describe_error(exc)}\n", 422, mimetype="text/plain"
        )
    response = Response(rendered.html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = EMAIL_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response

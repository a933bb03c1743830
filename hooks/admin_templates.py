"""`/admin/templates`: every email rendered with sample data, per language and membership,
and a "send me a test" button that mails it to FAREWELL_ADMIN_EMAIL.

The email's HTML is served by its own route with a strict CSP of its own (inline styles
only: no scripts, no remote fetches but https images, sandboxed) and shown in a sandboxed
iframe; the gallery page keeps the site's CSP, plus `frame-src 'self'` for that iframe.
"""

from __future__ import annotations

import logging

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisError

from worker.mail.errors import MailError
from worker.playbook import PlaybookError
from worker.privacy import mask_email
from worker.safety import template_failures
from worker.template_check import describe_error

from .admin_auth import admin_required
from .email_previews import PreviewError, Previews, UnknownEmail
from .security import CSP, verify_csrf
from .services import get_services

log = logging.getLogger(__name__)
bp = Blueprint("admin_templates", __name__, url_prefix="/admin/templates")

GALLERY_CSP = CSP + "; frame-src 'self'"
# The email itself: what a mail client would allow, minus anything active.
EMAIL_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox"
)


def _choices(previews: Previews) -> tuple[str, str]:
    locale = request.values.get("locale") or previews.settings.default_locale
    membership = request.values.get("membership", "").strip()
    return locale, membership


def _previews_or_400(name: str | None = None) -> tuple[Previews, str, str]:
    services = get_services()
    previews = Previews(services.settings, store=services.store)
    locale, membership = _choices(previews)
    try:
        previews.validate(name, locale, membership)
    except PreviewError as exc:
        abort(404 if isinstance(exc, UnknownEmail) else 400, description=str(exc))
    except PlaybookError as exc:
        abort(503, description=f"The playbook could not be read: {exc}")
    return previews, locale, membership


@bp.get("")
@admin_required
def gallery() -> ResponseReturnValue:
    services = get_services()
    previews = Previews(services.settings, store=services.store)
    try:
        names = previews.names()
        locale, membership = _choices(previews)
        previews.validate(None, locale, membership)
    except PlaybookError as exc:
        return _page(previews, error=f"The playbook could not be read: {exc}"), 200
    except PreviewError as exc:
        abort(400, description=str(exc))
    items = [previews.render(name, locale, membership) for name in names]
    return _page(previews, items=items, locale=locale, membership=membership)


def _page(previews: Previews, **values: object) -> Response:
    settings = previews.settings
    try:
        store = get_services().store
        failures = {f.email: f for f in template_failures(store)}
        titles = store.cancellation_memberships()  # learned from the events received
    except RedisError:  # the gallery reads files; it works without Redis
        failures, titles = {}, {}
    try:
        locales, memberships = previews.locales(), previews.memberships()
    except PlaybookError:
        locales, memberships = [settings.default_locale], []
    # ...and every membership seen in a cancellation, with its title.
    memberships = sorted(set(memberships) | set(titles), key=lambda i: (len(i), i))
    html = render_template(
        "admin_templates.html",
        failures=failures,
        titles=titles,
        lang="en",
        locales=locales,
        memberships=memberships,
        admin_email=settings.admin_email,
        transport=settings.mail_transport,
        # Forms need the signed session (CSRF); without FAREWELL_SECRET_KEY there is none.
        can_post=bool(current_app.secret_key),
        **{"items": [], "locale": settings.default_locale, "membership": "", **values},
    )
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = GALLERY_CSP
    return response


@bp.get("/<name>/html")
@admin_required
def email_html(name: str) -> ResponseReturnValue:
    previews, locale, membership = _previews_or_400(name)
    preview = previews.render(name, locale, membership)
    if preview.email is None:
        return Response(
            f"{name} could not be rendered: {preview.error}\n", 422, mimetype="text/plain"
        )
    response = Response(preview.email.html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = EMAIL_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.post("/<name>/send-test")
@admin_required
def send_test(name: str) -> ResponseReturnValue:
    verify_csrf()
    previews, locale, membership = _previews_or_400(name)
    to = previews.settings.admin_email
    if not to:
        abort(409, description="Set FAREWELL_ADMIN_EMAIL to the address test emails go to.")
    try:
        message_id = previews.send_test(name, locale, membership, to)
    except MailError as exc:
        log.warning("test of %s to %s failed: %s", name, mask_email(to), exc)
        flash(f"The test of {name} could not be sent: {exc}", "error")
    except Exception as exc:  # a template that does not render is reported, not a 500
        flash(f"The test of {name} could not be rendered: {describe_error(exc)}", "error")
    else:
        log.info("test of %s sent to %s (%s)", name, mask_email(to), message_id)
        flash(
            f"Sent a test of {name} ({locale}) to {to} via {previews.settings.mail_transport}.",
            "ok",
        )
    return redirect(url_for(".gallery", locale=locale, membership=membership or None), 303)

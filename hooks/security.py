"""Headers every HTML page gets, and the CSRF token for its forms.

CSRF uses Flask's signed session cookie: the session holds a random token, each form
carries it in a hidden `csrf_token` field, and a POST without the matching value is refused.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, Request, Response, abort, request, session
from flask.sessions import SecureCookieSessionInterface, SessionMixin

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# The survey page alone runs a script: its own static file, which POSTs to its own origin.
SURVEY_CSP = CSP.replace(
    "default-src 'none';", "default-src 'none'; script-src 'self'; connect-src 'self';"
)
CSRF_FIELD = "csrf_token"
# Machine endpoints: errors in JSON, and no session cookie.
API_PATHS = ("/hooks/", "/healthz", "/metrics")


class NoSessionOnApi(SecureCookieSessionInterface):
    """Webhooks never use the session: skip building a cookie signer for each of them
    (a measurable share of a webhook's CPU time). Pages keep Flask's signed-cookie session."""

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if request.path.startswith(API_PATHS):
            return None  # Flask then uses its NullSession
        return super().open_session(app, request)


def no_store(response: Response) -> Response:
    """Pages with members' addresses and words, and one-time redirects: never kept by a
    proxy or the browser's cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


def csrf_token() -> str:
    """The token to put in a form's hidden `csrf_token` field (Jinja global)."""
    token = session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def verify_csrf() -> None:
    """Abort with 400 unless the POSTed form carries this session's token."""
    expected = session.get(CSRF_FIELD)
    given = request.form.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        abort(400, description="This form has expired. Please reload the page and try again.")


def _page_headers(response: Response) -> Response:
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Frame-Options", "DENY")
        # Token pages must not leak their URL to other sites.
        response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def session_cookie_config(base_url: str) -> dict[str, object]:
    """The session cookie's defaults: SameSite=Lax always, Secure once the site is https.
    Set before a caller's config (Flask predefines both keys, so setdefault would be a no-op)."""
    return {
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": base_url.startswith("https://"),
    }


def init_app(app: Flask) -> None:
    if type(app.session_interface) is SecureCookieSessionInterface:
        app.session_interface = NoSessionOnApi()
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.after_request(_page_headers)

"""Optional bearer token for the operational endpoints (FAREWELL_METRICS_TOKEN).

Unset, `/metrics` and `/healthz` are public, as before. Set, `/metrics` needs
`Authorization: Bearer <token>`, and `/healthz` answers only `{"status": ...}` (200 or 503,
the liveness a load balancer needs) unless the token comes with the request; its details
(counts, sources, errors) are for the operator. A wrong token is a 401 on both.
"""

from __future__ import annotations

import enum
import functools
import hmac
from collections.abc import Callable
from typing import Any

from flask import jsonify, make_response, request

from .services import get_services

CHALLENGE = 'Bearer realm="Farewell operations"'


class Access(enum.Enum):
    PUBLIC = "public"  # no token configured
    GRANTED = "granted"  # the right token
    ABSENT = "absent"  # a token is configured; the request brings none
    REFUSED = "refused"  # a token is configured; the request brings another


def access(token: str, authorization: str | None) -> Access:
    """Pure: what a request with this Authorization header may see."""
    if not token:
        return Access.PUBLIC
    if not authorization:
        return Access.ABSENT
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return Access.GRANTED
    return Access.REFUSED


def _refused() -> Any:
    response = jsonify(error="this endpoint needs FAREWELL_METRICS_TOKEN as a bearer token")
    response.headers["WWW-Authenticate"] = CHALLENGE
    return response, 401


def _current() -> Access:
    return access(get_services().settings.metrics_token, request.headers.get("Authorization"))


def token_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """The view only with the token (when one is configured)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if _current() in (Access.ABSENT, Access.REFUSED):
            return _refused()
        return view(*args, **kwargs)

    return wrapped


def details_need_token(view: Callable[..., Any]) -> Callable[..., Any]:
    """The view's JSON in full with the token; without one, its `status` and code only."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        seen = _current()
        if seen is Access.REFUSED:
            return _refused()
        response = make_response(view(*args, **kwargs))
        if seen is Access.ABSENT:
            status = (response.get_json(silent=True) or {}).get("status", "unknown")
            return jsonify(status=status), response.status_code
        return response

    return wrapped

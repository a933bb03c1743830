"""HTTP basic auth for the owner's pages: user `admin`, password FAREWELL_ADMIN_PASSWORD.

Without a password the admin does not exist (404, with a page saying how to turn it on),
rather than being open. Wrong credentials count towards FAREWELL_RATE_LIMIT per client
address; past it, that address gets 429 until the window ends, even with the right
password (hooks/ratelimit.py).
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from typing import Any

from flask import Response, request

from . import ratelimit
from .services import get_services

log = logging.getLogger(__name__)
ADMIN_USER = "admin"
REALM = 'Basic realm="Farewell admin", charset="UTF-8"'
REFUSED_METRIC = "farewell_admin_refused_total"
ADMIN_OFF = (
    "The Farewell admin is off: no password is set.\n"
    "Set FAREWELL_ADMIN_PASSWORD (at least 12 characters) and restart; then sign in as\n"
    "user admin. `make run` generates one into var/local.env on its first start.\n"
)


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        services = get_services()
        password = services.settings.admin_password
        if not password:
            return Response(ADMIN_OFF, 404, mimetype="text/plain")
        retry_after = ratelimit.blocked(services.store, services.settings, "admin")
        if retry_after is not None:
            return ratelimit.too_many("admin", retry_after, plain=True)
        auth = request.authorization
        ok = (
            auth is not None
            and auth.type == "basic"
            and hmac.compare_digest((auth.username or "").encode(), ADMIN_USER.encode())
            and hmac.compare_digest((auth.password or "").encode(), password.encode())
        )
        if not ok:
            # A browser's first request carries no credentials: only a wrong guess counts.
            if auth is not None:
                retry_after = ratelimit.note_refusal(
                    services.store, services.settings, "admin", REFUSED_METRIC
                )
                if retry_after is not None:
                    return ratelimit.too_many("admin", retry_after, plain=True)
                log.info("admin: wrong user name or password from %s", ratelimit.client_address())
            return Response(
                "Authentication required.\n",
                401,
                {"WWW-Authenticate": REALM},
                mimetype="text/plain",
            )
        return view(*args, **kwargs)

    return wrapped
